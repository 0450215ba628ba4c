// Kernel: mm/page_alloc.c (frames), mm/shmem.c + mm/memfd.c (files), mm/swapfile.c
// (swap slots), kernel/fork.c (mm_alloc). The machine's objects and their lifetimes.
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

machine::machine(std::string_view design) : _anon(make_anon_rmap(design, *this)) {
  _frames.grow();  // pfn 0 is never a frame
  _frames.grow();
  _zero_pfn = pfn_t{1};
  auto& zero = _frames[1];
  zero.pfn = _zero_pfn;
  zero.set(folio_flag::in_use);
  zero.refcount = 1;  // reserved, never freed
  zero.set(folio_flag::uptodate);
}

machine::~machine() = default;

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

mm_struct* machine::mm_alloc(std::string name) {
  auto* mm = _mm_slab.alloc();
  mm->id = ++_mm_serial;
  mm->name = std::move(name);
  if (_anon->wants_pte_events()) mm->pgd.observe(this, mm);
  _mms.push_back(mm);
  return mm;
}

address_space* machine::memfd_create(std::string name, std::uint64_t pages, std::uint64_t key) {
  auto* as = _files.alloc();
  as->name = std::move(name);
  as->shmem = true;
  as->size_pages = pages;
  as->users = 1;
  // The scenario fills every page with a write(): all of them sit in the page cache.
  for (std::uint64_t i = 0; i < pages; ++i) {
    folio* f = filemap_get_folio(*as, pgoff_t{i}, true);
    f->content = key * 0x100000001b3ULL + i + 1;
    f->set(folio_flag::dirty);
  }
  return as;
}

void machine::file_put(address_space* as) {
  if (--as->users > 0) return;
  // Last reference: the file's pages go with it (truncate_inode_pages()).
  for (auto& [index, pfn] : as->i_pages) {
    folio& f = folio_of(pfn);
    f.mapping = nullptr;
    folio_put(f);
  }
  as->i_pages.clear();
  for (auto& [index, entry] : as->swapped) free_swap_and_cache(entry);
  as->swapped.clear();
  _files.free(as);
}

folio* machine::filemap_get_folio(address_space& as, pgoff_t index, bool create) {
  if (auto it = as.i_pages.find(index.value); it != as.i_pages.end()) return &folio_of(it->second);
  if (!create) return nullptr;
  folio& f = alloc_folio();  // its reference becomes the page cache's
  f.mapping = &as;
  f.index = index;
  f.set(folio_flag::swapbacked);
  f.content = 0;  // a new shmem page reads as zeroes
  as.i_pages.emplace(index.value, f.pfn);
  folio_add_lru(f, nullptr);
  return &f;
}

std::map<std::string, std::uint64_t> machine::vmstat() const {
  static constexpr const char* names[NR_VM_EVENTS] = {
      "pgfault",         "pgmajfault",          "pswpin",         "pswpout",        "pgscan_direct",
      "pgsteal_direct",  "pgscan_anon",         "pgscan_file",    "pgsteal_anon",   "pgsteal_file",
      "pgactivate",      "pgdeactivate",        "pgrefill",       "pgrotated",      "pgmigrate_success",
      "pgmigrate_fail",  "cow_ksm",             "unevictable_pgs_culled", "unevictable_pgs_mlocked",
      "unevictable_pgs_munlocked", "unevictable_pgs_rescued"};
  std::map<std::string, std::uint64_t> out;
  for (std::size_t i = 0; i < NR_VM_EVENTS; ++i)
    if (_events[i]) out[names[i]] = _events[i];
  return out;
}

machine::anon_footprint_t machine::anon_footprint() const {
  anon_footprint_t a;
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn) {
    const folio& f = _frames[pfn];
    if (!f.in_use() || !f.is_anon()) continue;
    a.frames++;
    a.mappings += static_cast<std::uint64_t>(f.mapcount);
  }
  return a;
}

machine::live_objects machine::live() const {
  std::size_t folios = 0;
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn) folios += _frames[pfn].in_use() ? 1U : 0U;
  std::size_t design = 0;
  for (const auto& o : _anon->objects()) design += o.live();
  return {_mm_slab.live(), _vmas.live(), _anon_vmas.live(), _avcs.live(), _files.live(), folios, design};
}

}  // namespace rmapkit::mm
