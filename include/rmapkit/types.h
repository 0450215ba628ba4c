// Strong types shared by every layer: virtual addresses, page frame numbers and
// page offsets are distinct, so a pfn can never be passed where an address is meant.
#pragma once

#include <compare>
#include <cstdint>

#include <fmt/format.h>

namespace rmapkit {

inline constexpr unsigned PAGE_SHIFT = 12;
inline constexpr std::uint64_t PAGE_SIZE = std::uint64_t{1} << PAGE_SHIFT;

/// A value of a given kind; only the arithmetic that makes sense for the kind is offered.
template <typename Tag>
struct strong_u64 {
  std::uint64_t value = 0;

  constexpr strong_u64() = default;
  constexpr explicit strong_u64(std::uint64_t v) : value(v) {}
  constexpr auto operator<=>(const strong_u64&) const = default;
};

struct vaddr_tag {};
struct pfn_tag {};
struct pgoff_tag {};

/// A user virtual address.
using vaddr_t = strong_u64<vaddr_tag>;
/// A physical page frame number.
using pfn_t = strong_u64<pfn_tag>;
/// A page offset: into a file (`vm_pgoff`, `folio->index`) or into a region.
using pgoff_t = strong_u64<pgoff_tag>;

/// Address of page @n counted from @base.
constexpr vaddr_t page_addr(vaddr_t base, std::uint64_t n) { return vaddr_t{base.value + (n << PAGE_SHIFT)}; }
/// Number of whole pages from @from to @to.
constexpr std::uint64_t pages_between(vaddr_t from, vaddr_t to) { return (to.value - from.value) >> PAGE_SHIFT; }

}  // namespace rmapkit

template <typename Tag>
struct fmt::formatter<rmapkit::strong_u64<Tag>> : fmt::formatter<std::uint64_t> {
  auto format(rmapkit::strong_u64<Tag> v, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{:#x}", v.value);
  }
};
