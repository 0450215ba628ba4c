#include "support/machine_state.h"

#include <dirent.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "kcheck/damon.h"
#include "kcheck/host_guards.h"
#include "rmapkit/kcheck/kernel.h"
#include "support/subprocess.h"

namespace rmapkit::testing {

namespace {

std::vector<std::string> entries(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string n = e->d_name; n.rfind(prefix, 0) == 0) out.push_back(n);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string own_memcg() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (("," + line.substr(c1 + 1, c2 - c1 - 1) + ",").find(",memory,") != std::string::npos)
      return "/sys/fs/cgroup/memory" + line.substr(c2 + 1);
  }
  return {};
}

/// Under /sys/kernel/mm/damon/admin: every kdamond's state, every scheme's action. Not a
/// kdamond's pid: a run that prints smaps figures turns the kdamonds off and on again,
/// which starts new threads (kcheck/damon.h); that the action pause commits online
/// instead is checked on a fake tree (damon_test.cc).
std::map<std::string, std::string> read_damon() {
  std::map<std::string, std::string> out;
  const std::string admin = "/sys/kernel/mm/damon/admin/";
  auto count = [&](const std::string& rel) {
    const std::string v = trim(slurp(admin + rel));
    return v.empty() ? 0 : std::stoi(v);
  };
  for (int k = 0, nk = count("kdamonds/nr_kdamonds"); k < nk; ++k) {
    const std::string kd = "kdamonds/" + std::to_string(k);
    out[kd + "/state"] = trim(slurp(admin + kd + "/state"));
    for (int c = 0, nc = count(kd + "/contexts/nr_contexts"); c < nc; ++c) {
      const std::string ctx = kd + "/contexts/" + std::to_string(c);
      for (int s = 0, ns = count(ctx + "/schemes/nr_schemes"); s < ns; ++s) {
        const std::string action = ctx + "/schemes/" + std::to_string(s) + "/action";
        out[action] = trim(slurp(admin + action));
      }
    }
  }
  return out;
}

/// The mount points of tracefs, from /proc/mounts, in its order.
std::vector<std::string> tracefs_mounts() {
  std::vector<std::string> out;
  std::istringstream in(slurp("/proc/mounts"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string device, mount_point, type;
    if (fields >> device >> mount_point >> type && type == "tracefs") out.push_back(mount_point);
  }
  return out;
}

std::map<std::string, std::string> read_thp_knobs() {
  namespace fs = std::filesystem;
  const fs::path dir = "/sys/kernel/mm/transparent_hugepage";
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto rel = it->path().lexically_relative(dir).string();
    // Counters move by themselves: khugepaged's scans and the per-size statistics.
    if (rel.find("stats") != std::string::npos || rel == "khugepaged/full_scans" ||
        rel == "khugepaged/pages_collapsed" || rel == "hpage_pmd_size")
      continue;
    if (it->is_regular_file(ec)) out[rel] = trim(slurp(it->path().string()));
  }
  return out;
}

}  // namespace

machine_state read_machine_state() {
  machine_state s;
  for (const char* knob : {"run", "sleep_millisecs", "pages_to_scan", "smart_scan", "max_page_sharing",
                           "use_zero_pages", "merge_across_nodes", "stable_node_chains_prune_millisecs"})
    s.ksm_knobs[knob] = trim(slurp(std::string("/sys/kernel/mm/ksm/") + knob));
  std::istringstream swaps(slurp("/proc/swaps"));
  std::string line;
  std::getline(swaps, line);  // header
  while (std::getline(swaps, line)) s.swap_devices.push_back(line.substr(0, line.find_first_of(" \t")));
  s.swap_files = entries("/var/tmp", "rmapkit-swap-");
  if (auto cg = own_memcg(); !cg.empty()) s.memcgs = entries(cg, "rmapkit_");
  // Wherever tracefs is mounted (/sys/kernel/tracing, /sys/kernel/debug/tracing, both or
  // neither): the mounts themselves, the kmem settings and the rmapkit-PID instances.
  const auto mounts = tracefs_mounts();
  std::string all;
  for (const auto& mp : mounts) all += (all.empty() ? "" : " ") + mp;
  s.tracing["mounts"] = all;
  for (const auto& mp : mounts) {
    for (const char* f : {"tracing_on", "buffer_size_kb", "options/event-fork", "set_event_pid",
                          "events/kmem/kmem_cache_alloc/enable", "events/kmem/kmem_cache_alloc/filter",
                          "events/kmem/kmem_cache_free/enable", "events/kmem/kmem_cache_free/filter"})
      s.tracing[mp + "/" + f] = trim(slurp(mp + "/" + f));
    std::string instances;
    for (const auto& i : entries(mp + "/instances", "rmapkit-")) instances += " " + i;
    s.tracing[mp + "/instances"] = instances;
  }
  for (const auto& pid : entries("/proc", "")) {
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (trim(slurp("/proc/" + pid + "/comm")) == "rmapkit-agent") s.agents.push_back(pid);
  }
  s.damon = read_damon();
  s.thp = read_thp_knobs();
  return s;
}

std::ostream& operator<<(std::ostream& os, const machine_state& s) {
  os << "ksm:";
  for (const auto& [k, v] : s.ksm_knobs) os << ' ' << k << '=' << v;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    os << "; " << what << ':';
    for (const auto& x : v) os << ' ' << x;
  };
  list("swaps", s.swap_devices);
  list("swap files", s.swap_files);
  list("memcgs", s.memcgs);
  list("agents", s.agents);
  os << "; tracing:";
  for (const auto& [k, v] : s.tracing) os << ' ' << k << '=' << v;
  os << "; damon:";
  for (const auto& [k, v] : s.damon) os << ' ' << k << '=' << v;
  os << "; thp:";
  for (const auto& [k, v] : s.thp) os << ' ' << k << '=' << v;
  return os;
}

struct damon_paused_for_test::impl {
  std::optional<kcheck::damon_guard> guard;
};

damon_paused_for_test::damon_paused_for_test() : _impl(std::make_unique<impl>()) {
  const kcheck::machine_lock lock([] {});
  kcheck::restore_stale_damon();
  _impl->guard.emplace(kcheck::damon_hold::monitoring);
}

damon_paused_for_test::~damon_paused_for_test() {
  const kcheck::machine_lock lock([] {});
  _impl->guard.reset();
}

std::string kernel_unavailable() {
  auto why = kcheck::missing_privileges();
  return why ? *why : std::string();
}

}  // namespace rmapkit::testing
