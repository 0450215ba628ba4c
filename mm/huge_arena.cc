// The model's own bulk memory from huge-page regions (include/rmapkit/mm/huge_arena.h).
#include "rmapkit/mm/huge_arena.h"

#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>

namespace rmapkit::mm {

namespace {

/// A fresh region: HUGE_REGION_BYTES at a HUGE_REGION_BYTES boundary, advised huge. The
/// mapping is made twice as large and trimmed, as mmap() aligns only to pages.
std::byte* map_region() {
  void* m = ::mmap(nullptr, 2 * HUGE_REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  const auto at = reinterpret_cast<std::uintptr_t>(m);
  const auto aligned = (at + HUGE_REGION_BYTES - 1) & ~(std::uintptr_t{HUGE_REGION_BYTES} - 1);
  if (aligned > at) ::munmap(m, aligned - at);
  if (const auto tail = at + 2 * HUGE_REGION_BYTES - (aligned + HUGE_REGION_BYTES); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + HUGE_REGION_BYTES), tail);
  // Advice only: a kernel without THP says EINVAL, and the region works in small pages.
  (void)::madvise(reinterpret_cast<void*>(aligned), HUGE_REGION_BYTES, MADV_HUGEPAGE);
  return reinterpret_cast<std::byte*>(aligned);
}

/// The regions pieces are cut from, one per piece size: pieces of one size fill a region
/// exactly, so nothing inside a region is ever unmapped until its pieces are freed (an
/// unmap inside a huge page splits it into 4 KiB mappings, which is what this avoids).
class arena {
 public:
  void* alloc(std::size_t bytes) {
    const std::lock_guard<std::mutex> g(_lock);
    cursor& c = _by_size[static_cast<std::size_t>(std::countr_zero(bytes))];
    if (!c.region || c.used == HUGE_REGION_BYTES) {
      c.region = map_region();
      c.used = 0;
    }
    std::byte* piece = c.region + c.used;
    c.used += bytes;
    // Faulted in now, in one call (the first piece of a region faults its huge page): the
    // caller fills it at once. Advice only, as above (Linux 5.14 has it).
    (void)::madvise(piece, bytes, MADV_POPULATE_WRITE);
    return piece;
  }

 private:
  struct cursor {
    std::byte* region = nullptr;
    std::size_t used = 0;
  };
  std::mutex _lock;
  std::array<cursor, std::countr_zero(HUGE_REGION_BYTES) + 1> _by_size{};
};

std::atomic<std::size_t> g_handed_out{0};

arena& the_arena() {
  static arena a;  // its regions outlive it: every piece is unmapped on its own
  return a;
}

}  // namespace

void* huge_arena_alloc(std::size_t bytes) {
  if (bytes < 4096 || bytes > HUGE_REGION_BYTES || !std::has_single_bit(bytes))
    throw std::invalid_argument("huge_arena_alloc: size must be a power of two from 4 KiB to 2 MiB");
  void* piece = the_arena().alloc(bytes);
#if defined(__SANITIZE_ADDRESS__)
  // The leak checker scans the heap for pointers, not mappings: a page table or a name
  // that only a slab's object points to would look leaked.
  __lsan_register_root_region(piece, bytes);
#endif
  g_handed_out.fetch_add(bytes, std::memory_order_relaxed);
  return piece;
}

void huge_arena_free(void* piece, std::size_t bytes) noexcept {
#if defined(__SANITIZE_ADDRESS__)
  // What a slab or the frame pool poisoned stays poisoned in the shadow after the unmap,
  // and would be reported in whatever is mapped here next.
  ASAN_UNPOISON_MEMORY_REGION(piece, bytes);
  __lsan_unregister_root_region(piece, bytes);
#endif
  ::munmap(piece, bytes);
  g_handed_out.fetch_sub(bytes, std::memory_order_relaxed);
}

std::size_t huge_arena_bytes() noexcept { return g_handed_out.load(std::memory_order_relaxed); }

}  // namespace rmapkit::mm
