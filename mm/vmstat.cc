// Kernel: mm/vmstat.c: the event counters as /proc/vmstat names them, and the model's
// own accounting of live objects and anonymous memory (what /proc/slabinfo and
// /proc/meminfo would say).
#include <algorithm>
#include <map>
#include <string>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

std::map<std::string, std::uint64_t> machine::vmstat() const {
  // A table, five names a line.
  // clang-format off
  static constexpr const char* names[NR_VM_EVENTS] = {
      "pgfault",         "pgmajfault",          "pswpin",         "pswpout",        "pgscan_direct",
      "pgsteal_direct",  "pgscan_anon",         "pgscan_file",    "pgsteal_anon",   "pgsteal_file",
      "pgactivate",      "pgdeactivate",        "pgrefill",       "pgrotated",      "pgmigrate_success",
      "pgmigrate_fail",  "cow_ksm",             "unevictable_pgs_culled", "unevictable_pgs_mlocked",
      "unevictable_pgs_munlocked", "unevictable_pgs_rescued", "pglazyfree", "pglazyfreed"};
  // clang-format on
  std::map<std::string, std::uint64_t> out;
  for (std::size_t i = 0; i < NR_VM_EVENTS; ++i)
    if (_events[i]) out[names[i]] = _events[i];
  return out;
}

// In 4 KiB pages, large folios too: a page's PTEs, and a PMD once for each page it maps
// (a large folio's mapping and PMD count are on its head; its tails carry their own PTEs').
machine::anon_footprint_t machine::anon_footprint() const {
  anon_footprint_t a;
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn) {
    const folio& f = _frames[pfn];
    if (!f.in_use() || !f.is_anon()) continue;
    const std::uint64_t nr = f.nr_pages();
    a.frames += nr;
    if (nr == 1) {
      a.mappings += static_cast<std::uint64_t>(f.mapcount);
      continue;
    }
    a.mappings += static_cast<std::uint64_t>(large_state(f).entire_mapcount) * nr;
    for (std::uint64_t i = 0; i < nr; ++i) a.mappings += static_cast<std::uint64_t>(_frames[pfn + i].mapcount);
  }
  return a;
}

const char* to_string(rmap_lock_class c) {
  switch (c) {
    case rmap_lock_class::anon_vma_root_rwsem: return "anon_vma->root->rwsem";
    case rmap_lock_class::anon_vma_lock: return "anon_vma->lock";
    case rmap_lock_class::i_mmap_rwsem: return "mapping->i_mmap_rwsem";
    case rmap_lock_class::i_mmap_lock: return "mapping->i_mmap_lock";
    case rmap_lock_class::pte_chain_lock: return "pte_chain_lock(page)";
    case rmap_lock_class::pcache_lock: return "pcache lock (LegoOS)";
    case rmap_lock_class::ptl: return "page table lock (PTL)";
  }
  return "?";
}

void machine::lock_released(rmap_lock_class c, std::uintptr_t instance, std::uint64_t work) {
  auto& k = _locks[static_cast<std::size_t>(c)];
  k.acquisitions++;
  k.work += work;
  k.longest = std::max(k.longest, work);
  auto& in = _lock_instances[static_cast<std::size_t>(c)][instance];
  in.acquisitions++;
  in.work += work;
  if (in.work > k.hottest_work || (in.work == k.hottest_work && in.acquisitions > k.hottest_acquisitions)) {
    k.hottest_work = in.work;
    k.hottest_acquisitions = in.acquisitions;
  }
}

machine::live_objects machine::live() const {
  std::size_t folios = 0;
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn) folios += _frames[pfn].in_use() ? 1U : 0U;
  std::size_t design = 0;
  for (const auto& o : _anon->objects()) design += o.live();
  for (const auto& o : _file->objects()) design += o.live();
  return {_mm_slab.live(), _vmas.live(), _anon_vmas.live(), _avcs.live(), _files.live(), folios, design};
}

}  // namespace rmapkit::mm
