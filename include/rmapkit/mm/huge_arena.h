// Memory for the model's own bulk metadata — frame chunks (page_alloc.cc) and slabs
// (slab.h) — from 2 MiB-aligned regions the kernel is asked to back with transparent huge
// pages (madvise(MADV_HUGEPAGE); THP is "madvise" on a stock Debian kernel, so memory
// not asked for gets 4 KiB pages).
//
// Why: at 10 million frames the model holds ~7 GiB of folios, VMAs, AVCs and anon_vmas,
// and in 4 KiB pages nearly every access to one of them misses the TLB: the per-operation
// cost at 10⁷ was 4–5× that at 10⁶, and glibc's own huge-page tunable
// (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) cut a quarter of it (docs/performance.md, Scale).
// Asking here makes every run get that, with no environment to set.
//
// A piece is a power of two of at most 2 MiB, aligned to its size, cut from the current
// region; it goes back to the kernel with munmap() of its own range (the kernel splits
// the huge page under it), so a region needs no bookkeeping once carved.
#pragma once

#include <cstddef>

namespace rmapkit::mm {

/// The region size: one PMD-mapped transparent huge page on x86-64.
inline constexpr std::size_t HUGE_REGION_BYTES = std::size_t{2} << 20;

/// A zero-filled piece of @bytes (a power of two, 4 KiB to HUGE_REGION_BYTES), aligned to
/// @bytes. Throws std::bad_alloc when the kernel has no memory to map, std::invalid_argument
/// for a size outside that range.
[[nodiscard]] void* huge_arena_alloc(std::size_t bytes);

/// Returns a piece from huge_arena_alloc() of the same @bytes to the kernel.
void huge_arena_free(void* piece, std::size_t bytes) noexcept;

/// Bytes of the pieces handed out and not yet freed (those the pools keep included): the
/// model's memory that is not on the heap, for a count of what the model uses.
[[nodiscard]] std::size_t huge_arena_bytes() noexcept;

}  // namespace rmapkit::mm
