// Page contents as the model keeps them (folio::content: a fingerprint of the page's bytes,
// what KSM compares and what tells a zero-filled page). Whatever writes pages on the model —
// the scenario runner, the replay of a trace — makes their contents here, so that equal
// writes leave equal pages and no unrelated pages collide.
#pragma once

#include <cstdint>

namespace rmapkit::mm::content {

/// A page filled with byte @v: 0 is zero-filled, like the zero page.
[[nodiscard]] constexpr std::uint64_t filled(std::uint8_t v) { return v; }
/// A page no other write fills alike; @n is unique to the write (below 2^63).
[[nodiscard]] constexpr std::uint64_t unique(std::uint64_t n) { return (std::uint64_t{1} << 63) | n; }
/// The key machine::memfd_create() derives a file's page contents from; @id is unique to the
/// file (below 2^22), so that no file page equals a written one.
[[nodiscard]] constexpr std::uint64_t file_key(std::uint64_t id) { return (std::uint64_t{1} << 62) | (id << 40); }

}  // namespace rmapkit::mm::content
