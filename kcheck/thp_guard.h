// The THP knobs a version 2 scenario (a `thp` line) borrows for its run: the sizes it names
// in `madvise` mode and every other size `never`, with the settings that make large folio
// faults deterministic (docs/scenario-format.md, "Version 2"). Like KSM's, the knobs are
// machine-wide: the run holds the machine lock, records every value before it changes it
// (so that a run killed with SIGKILL is undone by the next), and restores them all.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rmapkit/scenario/program.h"

namespace rmapkit::kcheck {

inline constexpr const char* THP_DIR = "/sys/kernel/mm/transparent_hugepage";
/// THP_RECORD_DIR/THP_RECORD_PREFIX<pid>: the knobs' values before a run changed them.
inline constexpr const char* THP_RECORD_DIR = "/tmp";
inline constexpr const char* THP_RECORD_PREFIX = "rmapkit-thp-";

/// What this kernel offers: the orders of its `hugepages-NkB/enabled` (anonymous) and
/// `hugepages-NkB/shmem_enabled` (shmem) knobs, bit o = order o.
struct thp_offer {
  std::uint16_t anon_orders = 0, shmem_orders = 0;
};
[[nodiscard]] thp_offer thp_offered(const std::string& thp_dir = THP_DIR);

/// Why @want cannot run on a kernel that offers @have ("this kernel has no anonymous 16k
/// folios; it offers anon=..., shmem=..."), or an empty string.
[[nodiscard]] std::string thp_unavailable(const scenario::op_thp& want, const thp_offer& have);

/// Machine-wide counters whose movement during a run means something behind the scenario's
/// back changed its memory (khugepaged collapsed, a fault fell back to a smaller order,
/// compaction migrated, global reclaim or a slab drop ran the shrinkers).
using thp_counters = std::map<std::string, std::uint64_t>;
[[nodiscard]] thp_counters read_thp_counters(const std::string& thp_dir = THP_DIR);
/// The counters that moved from @before to @after, as "name +N" words; empty when none did.
/// @ignore names counters the scenario's own statements move (`reclaim` scans).
[[nodiscard]] std::vector<std::string> moved(const thp_counters& before, const thp_counters& after,
                                             const std::vector<std::string>& ignore = {});

/// Sets the knobs for @sizes and restores them at the end. Never writes a khugepaged knob:
/// a write wakes khugepaged, which must not run during a scenario. Throws
/// scenario::statement_error naming what is missing when the kernel lacks a size.
class thp_guard {
 public:
  explicit thp_guard(const scenario::op_thp& sizes, std::string thp_dir = THP_DIR,
                     std::string record_dir = THP_RECORD_DIR);
  ~thp_guard();
  thp_guard(const thp_guard&) = delete;
  thp_guard& operator=(const thp_guard&) = delete;

 private:
  void set(const std::string& knob, const std::string& value);
  /// Writes back every knob set so far, newest first; the record goes once all are back.
  void restore() noexcept;
  std::string _dir;
  std::string _record;
  std::map<std::string, std::string> _saved;  // knob (relative to _dir) -> value before the run
  std::vector<std::string> _order;            // knobs in the order they were set: restored in reverse
};

/// Gives back the knobs a run killed without cleanup recorded (a record whose run is dead).
/// Throws std::runtime_error, saying what to do, when a knob cannot be written back.
void restore_stale_thp(const std::string& thp_dir = THP_DIR, const std::string& record_dir = THP_RECORD_DIR);
/// Whether such a record exists.
[[nodiscard]] bool stale_thp_exists(const std::string& record_dir = THP_RECORD_DIR);

}  // namespace rmapkit::kcheck
