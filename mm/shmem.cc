// Kernel: mm/shmem.c and mm/memfd.c: a memfd is a shmem file. Its creation, the last
// put (truncate), shmem_get_folio() (a page from the page cache, back from swap, or new) and
// shmem_writeout() (pageout of a shmem page).
#include <string>
#include <utility>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

address_space* machine::memfd_create(std::string name, std::uint64_t pages, std::uint64_t key) {
  auto* as = _files.alloc();
  as->name = std::move(name);
  as->shmem = true;
  as->size_pages = pages;
  as->users = 1;
  // The scenario fills every page with a write(): all of them sit in the page cache, dirty
  // and referenced (shmem_write_begin() marks each page accessed once).
  for (std::uint64_t i = 0; i < pages; ++i) {
    folio* f = filemap_get_folio(*as, pgoff_t{i}, true);
    f->content = key * 0x100000001b3ULL + i + 1;
    f->set(folio_flag::dirty);
    f->set(folio_flag::referenced);
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

folio* machine::shmem_get_folio(address_space& as, pgoff_t index) {
  if (folio* f = filemap_get_folio(as, index, false)) return f;
  if (auto it = as.swapped.find(index.value); it != as.swapped.end()) {
    // shmem_swapin_folio(): back into the page cache; the slot is let go.
    swp_entry_t e = it->second;
    as.swapped.erase(it);
    folio& f = swapin(e);
    f.mapping = &as;
    f.index = index;
    folio_get(f);  // the page cache's reference
    as.i_pages.emplace(index.value, f.pfn);
    swap_free(e);
    delete_from_swap_cache(f);
    f.set(folio_flag::dirty);
    return &f;
  }
  return filemap_get_folio(as, index, true);
}

// Kernel: shmem_writeout(): at pageout, the page moves from its file's page cache to the
// swap cache; the file keeps the swap entry in its place.
void machine::shmem_writeout(address_space& as, folio& f) {
  add_to_swap(f);
  swap_duplicate(f.swap);  // the file's reference
  as.swapped.emplace(f.index.value, f.swap);
  filemap_remove_folio(f);  // the swap cache holds the folio now
}

}  // namespace rmapkit::mm
