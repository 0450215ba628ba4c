// Kernel: mm/page_alloc.c: the frames (struct pages) and their allocation and freeing.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "rmapkit/mm/huge_arena.h"
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

namespace {

constexpr std::size_t CHUNK_BYTES = std::size_t{4096} * sizeof(folio);

/// Under AddressSanitizer a pooled chunk is poisoned: a folio of a machine that is gone is
/// still reported when used, as it was when the chunk was unmapped.
void poison(void* chunk, bool on) {
#if defined(__SANITIZE_ADDRESS__)
  if (on) ASAN_POISON_MEMORY_REGION(chunk, CHUNK_BYTES);
  else ASAN_UNPOISON_MEMORY_REGION(chunk, CHUNK_BYTES);
#else
  (void)chunk;
  (void)on;
#endif
}

/// Chunks of machines that are gone, for the next machine, as slab_cache keeps its slabs:
/// every scenario run builds a fresh machine, and fresh memory costs a fault and a clear (a
/// chunk given back is unmapped).
class chunk_pool {
 public:
  chunk_pool() { _mem.reserve(LIMIT); }
  chunk_pool(const chunk_pool&) = delete;
  chunk_pool& operator=(const chunk_pool&) = delete;
  ~chunk_pool() {
    for (void* m : _mem) huge_arena_free(m, CHUNK_BYTES);  // unpoisons it under ASan
  }
  void* get() {
    {
      const std::lock_guard<std::mutex> g(_lock);
      if (!_mem.empty()) {
        void* m = _mem.back();
        _mem.pop_back();
        poison(m, false);
        return m;
      }
    }
    return huge_arena_alloc(CHUNK_BYTES);  // populated, in huge pages where the kernel has them
  }
  void put(void* m) noexcept {
    {
      const std::lock_guard<std::mutex> g(_lock);
      if (_mem.size() < LIMIT) {
        poison(m, true);
        _mem.push_back(m);  // no allocation: capacity is reserved
        return;
      }
    }
    huge_arena_free(m, CHUNK_BYTES);
  }

 private:
  static constexpr std::size_t LIMIT = 64;  // 16 MiB
  std::mutex _lock;
  std::vector<void*> _mem;
};

chunk_pool& pool() {
  static chunk_pool p;  // machines are never static: every frame table is gone before it is
  return p;
}

}  // namespace

frame_table::chunk frame_table::map_chunk() {
  static_assert(CHUNK * sizeof(folio) == CHUNK_BYTES, "the pool's chunks are the table's");
  auto* frames = static_cast<folio*>(pool().get());
  std::uninitialized_default_construct_n(frames, CHUNK);
  return chunk(frames);
}

void frame_table::chunk_unmap::operator()(folio* p) const {
  std::destroy_n(p, CHUNK);
  pool().put(p);
}

folio& frame_table::out_of_range(std::uint64_t pfn) {
  throw std::out_of_range(fmt::format("pfn {} is beyond the last frame", pfn));
}

folio& machine::alloc_folio(unsigned order) {
  const std::uint64_t nr = std::uint64_t{1} << order;
  std::uint64_t pfn;
  if (order == 0 && _free_head != 0) {
    pfn = _free_head;
    _free_head = _frames[pfn].lru_next;
  } else {
    // A large folio is taken from the end of the table, naturally aligned as the buddy
    // allocator's blocks are; the frames skipped to align it go to the free list. Freed
    // frames are reused one by one only: the model does not merge buddies.
    while (_frames.size() % nr != 0) {
      folio& pad = _frames.grow();
      pad.pfn = pfn_t{_frames.size() - 1};
      free_frame(pad);
    }
    pfn = _frames.size();
    // folio::lru_prev/lru_next and the free list hold pfns in 32 bits (16 TiB of frames).
    if (pfn + nr - 1 > UINT32_MAX) throw std::length_error("alloc_folio: more than 2^32 frames");
    for (std::uint64_t i = 0; i < nr; ++i) _frames.grow();
  }
  for (std::uint64_t i = 0; i < nr; ++i) {
    folio& page = _frames[pfn + i];
    page = folio{};
    page.pfn = pfn_t{pfn + i};
    page.order = static_cast<std::uint8_t>(order);
    page.set(folio_flag::in_use);
  }
  folio& f = _frames[pfn];
  f.refcount = 1;  // the caller's reference
  f.set(folio_flag::uptodate);
  if (order > 0) _large.emplace(pfn, large_folio_state{});
  return f;
}

void machine::free_frame(folio& f) {
  f.clear(folio_flag::in_use);
  f.mapping = nullptr;
  f.flags = 0;
  f.order = 0;
  // The buddy allocator links free pages through page->lru; a free frame is on no LRU list.
  f.lru_next = _free_head;
  _free_head = static_cast<std::uint32_t>(f.pfn.value);
}

void machine::folio_put_refs(folio& f, int nr) {
  if (f.pfn == _zero_pfn) return;
  if (f.is_large() && f.pfn != f.head_pfn()) throw std::logic_error("folio_put: a tail page, not its folio");
  if ((f.refcount -= nr) > 0) return;
  if (f.refcount < 0 || folio_mapped(f)) throw std::logic_error("folio_put: freeing a mapped or over-put folio");
  if (f.test(folio_flag::lru)) lruvec_del_folio(f);
  const std::uint64_t pages = f.nr_pages(), head = f.pfn.value;
  if (pages > 1) {
    _large.erase(head);
    std::erase(_deferred_split, f.pfn);
  }
  // Tails first, so that the head is the first frame handed out again, as before.
  for (std::uint64_t i = pages; i-- > 0;) {
    folio& page = _frames[head + i];
    if (page.mapcount != 0) throw std::logic_error("folio_put: freeing a mapped page");
    free_frame(page);
  }
}

}  // namespace rmapkit::mm
