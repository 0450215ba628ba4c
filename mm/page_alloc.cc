// Kernel: mm/page_alloc.c: the frames (struct pages) and their allocation and freeing.
#include <sys/mman.h>

#include <memory>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

frame_table::chunk frame_table::map_chunk() {
  void* mem = ::mmap(nullptr, CHUNK * sizeof(folio), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  auto* frames = static_cast<folio*>(mem);
  std::uninitialized_default_construct_n(frames, CHUNK);
  return chunk(frames);
}

void frame_table::chunk_unmap::operator()(folio* p) const {
  std::destroy_n(p, CHUNK);
  ::munmap(p, CHUNK * sizeof(folio));
}

folio& frame_table::out_of_range(std::uint64_t pfn) {
  throw std::out_of_range(fmt::format("pfn {} is beyond the last frame", pfn));
}

folio& machine::alloc_folio() {
  std::uint64_t pfn;
  if (!_free.empty()) {
    pfn = _free.back();
    _free.pop_back();
  } else {
    pfn = _frames.size();
    _frames.grow();
  }
  folio& f = _frames[pfn];
  f = folio{};
  f.pfn = pfn_t{pfn};
  f.set(folio_flag::in_use);
  f.refcount = 1;  // the caller's reference
  f.set(folio_flag::uptodate);
  return f;
}

void machine::folio_put(folio& f) {
  if (f.pfn == _zero_pfn) return;
  if (--f.refcount > 0) return;
  if (f.refcount < 0 || f.mapcount != 0) throw std::logic_error("folio_put: freeing a mapped or over-put folio");
  if (f.test(folio_flag::lru)) lruvec_del_folio(f);
  f.clear(folio_flag::in_use);
  f.mapping = nullptr;
  f.flags = 0;
  _free.push_back(f.pfn.value);
}

}  // namespace rmapkit::mm
