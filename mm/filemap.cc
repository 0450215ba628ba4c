// Kernel: mm/filemap.c: the page cache of a file (filemap_get_folio() with FGP_CREAT, and
// filemap_remove_folio()).
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

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

void machine::filemap_remove_folio(folio& f) {
  address_space* as = f.file();
  as->i_pages.erase(f.index.value);
  f.mapping = nullptr;
  folio_put(f);  // the page cache's reference
}

}  // namespace rmapkit::mm
