// Kernel: mm/filemap.c: the page cache of a file (filemap_get_folio() with FGP_CREAT, and
// filemap_remove_folio()). A large folio has an entry for each of its pages, as the
// kernel's multi-index xarray entry answers for each index it covers.
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

folio* machine::filemap_get_folio(address_space& as, pgoff_t index, bool create) {
  if (auto it = as.i_pages.find(index.value); it != as.i_pages.end()) return &folio_of(it->second);
  if (!create) return nullptr;
  folio& f = alloc_folio();
  filemap_add_folio(as, f, index);
  folio_put(f);  // the allocation's reference: the page cache holds its own
  return &f;
}

// A new shmem folio reads as zeroes; its allocation's reference stays the caller's.
void machine::filemap_add_folio(address_space& as, folio& f, pgoff_t index) {
  f.mapping = &as;
  f.index = index;
  f.set(folio_flag::swapbacked);
  const std::uint64_t nr = f.nr_pages();
  for (std::uint64_t i = 0; i < nr; ++i) {
    _frames[f.pfn.value + i].content = 0;
    as.i_pages.emplace(index.value + i, pfn_t{f.pfn.value + i});
  }
  f.refcount += static_cast<int>(nr);
  folio_add_lru(f, nullptr);
}

void machine::filemap_remove_folio(folio& f) {
  address_space* as = f.file();
  const std::uint64_t nr = f.nr_pages();
  for (std::uint64_t i = 0; i < nr; ++i) as->i_pages.erase(f.index.value + i);
  f.mapping = nullptr;
  // The page cache's references; the last put frees the folio.
  folio_put_refs(f, static_cast<int>(nr));
}

}  // namespace rmapkit::mm
