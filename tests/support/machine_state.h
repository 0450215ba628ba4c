// What a kernel run may change on the machine, read before and after it: a run must
// leave everything as it found it.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace rmapkit::testing {

struct machine_state {
  std::map<std::string, std::string> ksm_knobs;
  std::vector<std::string> swap_devices;   ///< /proc/swaps file names
  std::vector<std::string> swap_files;     ///< /var/tmp/rmapkit-swap-*
  std::vector<std::string> memcgs;         ///< rmapkit_* memory cgroups beside ours
  std::vector<std::string> agents;         ///< live rmapkit-agent processes
  /// tracefs: whether mounted and, when it is, the kmem settings a kmem count touches.
  std::map<std::string, std::string> tracing;
  /// DAMON's kdamonds (state, pid: a restart would change it) and their schemes' actions,
  /// by path under /sys/kernel/mm/damon/admin.
  std::map<std::string, std::string> damon;

  bool operator==(const machine_state&) const = default;
};

machine_state read_machine_state();
std::ostream& operator<<(std::ostream& os, const machine_state& s);

/// Empty when the kernel back end can run here, else why not (tests then skip).
std::string kernel_unavailable();

}  // namespace rmapkit::testing
