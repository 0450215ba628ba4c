// Kernel: mm/vmstat.c: the event counters as /proc/vmstat names them, and the model's
// own accounting of live objects and anonymous memory (what /proc/slabinfo and
// /proc/meminfo would say).
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
      "unevictable_pgs_munlocked", "unevictable_pgs_rescued"};
  // clang-format on
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
  for (const auto& o : _file->objects()) design += o.live();
  return {_mm_slab.live(), _vmas.live(), _anon_vmas.live(), _avcs.live(), _files.live(), folios, design};
}

}  // namespace rmapkit::mm
