// Internal to the scenario library: how a report numbers raw identities (pfns, swap
// entries) so that the model's and the kernel's reports compare as text.
#pragma once

#include <cstdint>
#include <unordered_map>

namespace rmapkit::scenario::detail {

/// Numbers raw identities 1, 2, ... in order of first appearance.
class first_seen {
 public:
  std::uint64_t operator()(std::uint64_t raw) {
    auto [it, fresh] = _ids.try_emplace(raw, _ids.size() + 1);
    return it->second;
  }

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> _ids;
};

}  // namespace rmapkit::scenario::detail
