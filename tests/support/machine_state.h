// What a kernel run may change on the machine, read before and after it: a run must
// leave everything as it found it.
#pragma once

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace rmapkit::testing {

struct machine_state {
  std::map<std::string, std::string> ksm_knobs;
  std::vector<std::string> swap_devices;  ///< /proc/swaps file names
  std::vector<std::string> swap_files;    ///< /var/tmp/rmapkit-swap-*
  std::vector<std::string> memcgs;        ///< rmapkit_* memory cgroups beside ours
  std::vector<std::string> agents;        ///< live rmapkit-agent processes
  /// tracefs: where it is mounted (/proc/mounts) and, through each mount, the kmem settings
  /// a kmem count touches and the rmapkit-PID instances.
  std::map<std::string, std::string> tracing;
  /// DAMON's kdamonds' states and their schemes' actions, by path under
  /// /sys/kernel/mm/damon/admin.
  std::map<std::string, std::string> damon;
  /// Every THP, shmem-THP and khugepaged knob under /sys/kernel/mm/transparent_hugepage
  /// (counters and statistics left out), by path relative to it.
  std::map<std::string, std::string> thp;

  bool operator==(const machine_state&) const = default;
};

machine_state read_machine_state();
std::ostream& operator<<(std::ostream& os, const machine_state& s);

/// For a test that starts many kernel runs: DAMON's kdamonds turned off once, for the
/// whole test (kcheck/damon.h, damon_hold::monitoring), so that each run finds nothing to
/// hold. A run's own pause of the actions is two commits, each waiting up to one DAMON
/// sampling interval (0.5 s on our machines): 200 random scenarios took 188 s instead of
/// 10. Holds the machine lock only while it changes DAMON.
class damon_paused_for_test {
 public:
  damon_paused_for_test();
  ~damon_paused_for_test();
  damon_paused_for_test(const damon_paused_for_test&) = delete;
  damon_paused_for_test& operator=(const damon_paused_for_test&) = delete;

 private:
  struct impl;
  std::unique_ptr<impl> _impl;
};

/// Empty when the kernel back end can run here, else why not (tests then skip).
std::string kernel_unavailable();

}  // namespace rmapkit::testing
