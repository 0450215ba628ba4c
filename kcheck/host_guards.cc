#include "kcheck/host_guards.h"
#include "kcheck/thp_guard.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kcheck/damon.h"
#include "kcheck/procfs.h"
#include "kcheck/tracefs.h"
#include "rmapkit/scenario/diag.h"
#include "rmapkit/types.h"

namespace rmapkit::kcheck {

namespace {

std::system_error sys_error(const std::string& what, int err = errno) { return {err, std::generic_category(), what}; }

/// The cgroup-v1 memory controller's directory for our own cgroup, or "" when absent.
std::string own_memcg_dir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto c1 = line.find(':');
    auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    auto controllers = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    if (controllers.find(",memory,") == std::string::npos) continue;
    auto path = line.substr(c2 + 1);
    std::string dir = "/sys/fs/cgroup/memory" + (path == "/" ? std::string() : path);
    struct stat st {};
    if (::stat((dir + "/memory.force_empty").c_str(), &st) == 0) return dir;
  }
  return {};
}

constexpr const char* SWAP_PREFIX = "rmapkit-swap-";
/// A run records where its swap file is (KSM_RECORD_DIR/SWAP_RECORD_PREFIX<pid>) before
/// creating it, so that the next run finds it in whatever --swap-dir it was made.
constexpr const char* SWAP_RECORD_PREFIX = "rmapkit-swapfile-";

std::string swap_record() { return fmt::format("{}/{}{}", KSM_RECORD_DIR, SWAP_RECORD_PREFIX, ::getpid()); }

/// Turns off and removes the swap file @path, when its name is that of a run's swap file.
void remove_swap_file(const std::string& path) {
  const auto slash = path.rfind('/');
  if (pid_suffix(slash == std::string::npos ? path : path.substr(slash + 1), SWAP_PREFIX) <= 0) return;
  ::swapoff(path.c_str());
  ::unlink(path.c_str());
}

/// The swap records of runs that are gone: (record, swap file) pairs.
std::vector<std::pair<std::string, std::string>> stale_swap_records() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : list_dir(KSM_RECORD_DIR)) {
    const pid_t pid = pid_suffix(name, SWAP_RECORD_PREFIX);
    const std::string record = fmt::format("{}/{}", KSM_RECORD_DIR, name);
    if (pid <= 0 || pid_alive(pid) || !own_regular_file(record)) continue;
    std::ifstream in(record);
    std::string path;
    std::getline(in, path);
    out.emplace_back(record, path);
  }
  return out;
}
constexpr const char* MEMCG_PREFIX = "rmapkit_";

}  // namespace

// ---- machine_lock ------------------------------------------------------------------

machine_lock::machine_lock(const interrupt_check& check_interrupt, const lock_wait& how, const std::string& path)
    : _path(path), _fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
  if (!_fd) throw sys_error(fmt::format("cannot open the lock file {}", _path));
  if (::flock(_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) throw sys_error(fmt::format("cannot lock {}", _path));
    if (!how.wait)
      throw lock_busy(fmt::format(
          "the machine lock {} is held by {}, and --no-wait was given: try again when it is free", _path, holder()));
    if (how.notice)
      how.notice(fmt::format("waiting for the machine lock {}, held by {} (--no-wait fails instead)", _path, holder()));
    while (::flock(_fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) throw sys_error(fmt::format("cannot lock {}", _path));
      check_interrupt();
    }
  }
  record_holder();
}

machine_lock::~machine_lock() {
  // Still holding it: nobody can read a half-cleared record.
  if (_fd) (void)::ftruncate(_fd.get(), 0);
}

std::string machine_lock::holder() const {
  std::string text(512, '\0');
  const auto n = ::pread(_fd.get(), text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text.empty() ? "another process (it has not said who yet)" : text;
}

void machine_lock::record_holder() const {
  std::ifstream in("/proc/self/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  while (!cmdline.empty() && cmdline.back() == ' ') cmdline.pop_back();
  if (cmdline.size() > 200) cmdline = cmdline.substr(0, 200) + "...";
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  const auto text = fmt::format("pid {} ({}) since {:%Y-%m-%d %H:%M:%S}\n", ::getpid(), cmdline, fmt::localtime(now));
  // The record is a courtesy to waiting runs: failing to write it must not fail the run.
  if (::ftruncate(_fd.get(), 0) == 0) (void)::pwrite(_fd.get(), text.data(), text.size(), 0);
}

// ---- ksm_guard ---------------------------------------------------------------------

namespace {

std::string ksm_path(const std::string& knob) { return fmt::format("{}/{}", KSM_DIR, knob); }

/// The knobs a run may change, restored in this order: run last, so that ksmd never
/// restarts with a run's settings.
constexpr std::array<const char*, 5> KSM_KNOBS = {"stable_node_chains_prune_millisecs", "sleep_millisecs",
                                                  "pages_to_scan", "smart_scan", "run"};

/// stable_node_chains_prune_millisecs for a `ksm` without prune passes: a day, longer
/// than any run, so a chain's prune interval never elapses (the default, 2 s, elapses or
/// not depending on how long the scenario's statements took).
constexpr const char* KSM_PRUNE_NEVER_MS = "86400000";

bool known_knob(const std::string& k) { return std::find(KSM_KNOBS.begin(), KSM_KNOBS.end(), k) != KSM_KNOBS.end(); }

/// Writes @saved back under @dir, run last and run=2 as 0; the knobs it could not write.
std::vector<std::string> write_back(const std::string& dir, const std::map<std::string, std::string>& saved) {
  std::vector<std::string> failed;
  for (const char* knob : KSM_KNOBS) {
    auto it = saved.find(knob);
    if (it == saved.end()) continue;
    // run=2 would unmerge every KSM page on the machine: leave ksmd stopped instead.
    const std::string value = std::string(knob) == "run" && it->second == "2" ? "0" : it->second;
    if (int e = write_value(dir + "/" + knob, value))
      failed.push_back(fmt::format("{}={} ({})", knob, value, std::strerror(e)));
  }
  return failed;
}

std::map<std::string, std::string> read_ksm_record(const std::string& path) {
  // Nothing but the knobs a run sets, to numbers, is ever written back.
  const auto lines = read_record_lines(path, [](const std::string& knob, const std::string& value) {
    return known_knob(knob) && !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
  });
  return {lines.begin(), lines.end()};
}

}  // namespace

ksm_guard::ksm_guard(std::string ksm_dir, std::string record_dir)
    : _dir(std::move(ksm_dir)), _record(fmt::format("{}/{}{}", record_dir, KSM_RECORD_PREFIX, ::getpid())) {
  struct stat st {};
  if (::stat(_dir.c_str(), &st) != 0) throw std::runtime_error("KSM is not available: no " + _dir);
  // The scenario language assumes the kernel defaults; a machine set otherwise
  // would give other results, and changing them needs every KSM page unmerged.
  if (auto v = read_number(path("max_page_sharing")); v != 256)
    throw std::runtime_error(fmt::format("KSM max_page_sharing is {}; scenarios assume the default 256", v));
  if (auto v = read_number(path("use_zero_pages")); v != 0)
    throw std::runtime_error(fmt::format("KSM use_zero_pages is {}; scenarios assume the default 0", v));
  // ksmd must not merge behind the scenario's back: stopped except during `ksm`.
  set("run", "0");
  // A chain left by a run killed before it could free it would be freed, or not, by a
  // search of ours passing it in the tree, which --ksm-counters would show.
  if (read_number(path("stable_node_chains")) != 0) free_empty_chains();
}

/// Runs ksmd, as fast as it goes, for @scans full scans (at most 5 s), then stops it.
void ksm_guard::run_scans(int scans) {
  using clock = std::chrono::steady_clock;
  set("stable_node_chains_prune_millisecs", KSM_PRUNE_NEVER_MS);
  set("sleep_millisecs", "0");
  set("pages_to_scan", "4000");
  struct stat st {};
  if (::stat(path("smart_scan").c_str(), &st) == 0) set("smart_scan", "0");
  const auto target = read_number(path("full_scans")) + static_cast<std::uint64_t>(scans);
  set("run", "1");
  const auto deadline = clock::now() + std::chrono::seconds(5);
  while (read_number(path("full_scans")) < target && clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  (void)write_value(path("run"), "0");
}

// A stable-node chain is freed only when a walk of the tree meets it with no dup left:
// one whose KSM pages are all gone stays in the tree, and in stable_node_chains, after
// the run that made it. A chain needs more than max_page_sharing sharers of one content
// on two KSM pages, which scenarios reach with `write value=V` (every byte V). (Unique
// contents become KSM pages only through copies made without a write, one per process,
// so a chain of one would take hundreds of processes.) One mergeable page of each of the
// 256 byte values, scanned twice (checksum, then search), meets every such chain.
// Nothing merges (the pages differ from each other), and the pages go before ksmd stops.
void ksm_guard::free_empty_chains() {
  constexpr std::size_t pages = 256;
  void* p = ::mmap(nullptr, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw sys_error("cannot map the pages that free KSM's empty chains");
  auto* bytes = static_cast<unsigned char*>(p);
  if (::madvise(p, pages * PAGE_SIZE, MADV_MERGEABLE) == 0) {
    for (std::size_t v = 0; v < pages; ++v) std::memset(bytes + v * PAGE_SIZE, static_cast<int>(v), PAGE_SIZE);
    run_scans(3);
  }
  ::munmap(p, pages * PAGE_SIZE);
  forget_exited_mms();  // and their rmap_items, which would count as pages_unshared
}

// The value before the run is on disk before the knob changes: a SIGKILL at any point
// leaves a record of everything changed so far.
void ksm_guard::set(const std::string& knob, const std::string& value) {
  if (knob == "run" && value == "2") throw std::logic_error("ksm_guard: refusing to write run=2");
  if (!known_knob(knob)) throw std::logic_error("ksm_guard: " + knob + " is not a knob it restores");
  if (!_saved.count(knob)) {
    _saved[knob] = trimmed(read_text(path(knob)));
    std::string text;
    for (const auto& [k, v] : _saved) text += k + "=" + v + "\n";
    write_record_file(_record, text);
  }
  if (int e = write_value(path(knob), value))
    throw sys_error(fmt::format("cannot write {} to {}", value, path(knob)), e);
}

// The scenario's processes have exited, but ksmd drops an exited mm's rmap_items (and so
// their share of pages_shared, pages_sharing, ...) only on its next visit, and it stays
// stopped after the run: the next run would read our leftovers in the machine-wide
// counters. Let it visit them: until the counters are back to zero, or two full scans
// when something else on the machine uses KSM too.
void ksm_guard::forget_exited_mms() noexcept {
  using clock = std::chrono::steady_clock;
  try {
    auto leftover = [this] {
      std::uint64_t n = 0;
      for (const char* c : {"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile"})
        n += read_number(path(c));
      return n;
    };
    if (leftover() == 0) return;
    const auto scans = read_number(path("full_scans"));
    if (write_value(path("run"), "1") != 0) return;
    const auto deadline = clock::now() + std::chrono::seconds(5);
    while (leftover() != 0 && read_number(path("full_scans")) < scans + 2 && clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    (void)write_value(path("run"), "0");
  } catch (...) {  // a destructor's helper: restoring the knobs matters more
  }
}

ksm_guard::~ksm_guard() {
  if (_ran) {
    try {
      if (read_number(path("stable_node_chains")) != 0) free_empty_chains();
    } catch (...) {  // restoring the knobs matters more
    }
    forget_exited_mms();
  }
  const auto failed = write_back(_dir, _saved);
  for (const auto& f : failed) std::fprintf(stderr, "rmapkit: cannot restore KSM's %s\n", f.c_str());
  // A knob that could not be restored keeps its record, for the next run to try again.
  if (failed.empty()) ::unlink(_record.c_str());
}

void restore_stale_knobs(const std::string& record_dir, const std::string& prefix, const std::string& knob_dir,
                         const char* what,
                         const std::function<std::vector<std::string>(const std::string& record)>& write_back) {
  for (const auto& name : list_dir(record_dir)) {
    const pid_t pid = pid_suffix(name, prefix);
    if (pid <= 0 || pid_alive(pid)) continue;
    const std::string record = record_dir + "/" + name;
    const auto failed = write_back(record);
    if (!failed.empty())
      throw std::runtime_error(fmt::format(
          "a previous rmapkit kernel run was killed and left {} tuned, and {} cannot be written back to {}; "
          "write the values to {}/KNOB by hand, then remove {}",
          what, fmt::join(failed, ", "), knob_dir, knob_dir, record));
    ::unlink(record.c_str());
  }
}

void restore_stale_ksm(const std::string& ksm_dir, const std::string& record_dir) {
  restore_stale_knobs(record_dir, KSM_RECORD_PREFIX, ksm_dir, "KSM",
                      [&](const std::string& record) { return write_back(ksm_dir, read_ksm_record(record)); });
}

void ksm_guard::run_to_fixpoint(const interrupt_check& check_interrupt, bool prune, int timeout_s) {
  using clock = std::chrono::steady_clock;
  set("stable_node_chains_prune_millisecs", prune ? "0" : KSM_PRUNE_NEVER_MS);
  set("sleep_millisecs", "0");
  set("pages_to_scan", "4000");
  struct stat st {};
  if (::stat(path("smart_scan").c_str(), &st) == 0) set("smart_scan", "0");
  set("run", "1");
  _ran = true;
  auto stop = [this] { (void)write_value(path("run"), "0"); };
  try {
    auto deadline = clock::now() + std::chrono::seconds(timeout_s);
    auto counters = [this] {
      return std::array<std::uint64_t, 4>{read_number(path("pages_shared")), read_number(path("pages_sharing")),
                                          read_number(path("pages_unshared")), read_number(path("pages_volatile"))};
    };
    auto scans = read_number(path("full_scans"));
    std::array<std::uint64_t, 4> last{~0ULL, ~0ULL, ~0ULL, ~0ULL};
    int stable = 0;
    // Unchanged counters over three full scans: every mergeable page was considered
    // at least twice since the last change, so nothing more will merge.
    while (stable < 3) {
      while (read_number(path("full_scans")) == scans) {
        if (clock::now() > deadline)
          throw scenario::statement_error(fmt::format("ksm: did not settle within {} s", timeout_s));
        check_interrupt();
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
      scans = read_number(path("full_scans"));
      auto now = counters();
      stable = now == last ? stable + 1 : 0;
      last = now;
    }
  } catch (...) {
    stop();
    throw;
  }
  stop();
}

scenario::ksm_counters ksm_guard::counters() {
  auto n = [](const char* knob) { return read_number(ksm_path(knob)); };
  return {n("pages_shared"),   n("pages_sharing"),      n("pages_unshared"),
          n("pages_volatile"), n("stable_node_chains"), n("stable_node_dups")};
}

// ---- swap_guard --------------------------------------------------------------------

namespace {

/// Writes the header of a version-1 swap area (what mkswap writes) into the first page.
void write_swap_header(int fd, std::uint64_t pages) {
  std::vector<unsigned char> page(PAGE_SIZE, 0);
  const std::uint32_t version = 1;
  const auto last_page = static_cast<std::uint32_t>(pages - 1);
  std::memcpy(&page[1024], &version, 4);
  std::memcpy(&page[1028], &last_page, 4);
  std::memcpy(&page[PAGE_SIZE - 10], "SWAPSPACE2", 10);
  if (::pwrite(fd, page.data(), page.size(), 0) != static_cast<ssize_t>(page.size()))
    throw sys_error("cannot write the swap header");
}

}  // namespace

swap_guard::swap_guard(const std::string& dir, std::uint64_t bytes)
    : _path(fmt::format("{}/{}{}", dir, SWAP_PREFIX, ::getpid())) {
  bytes = (bytes + (1 << 20) - 1) & ~((std::uint64_t{1} << 20) - 1);
  write_record_file(swap_record(), _path + "\n");
  unique_fd fd(::open(_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    const int e = errno;
    ::unlink(swap_record().c_str());
    throw sys_error(fmt::format("cannot create the swap file {}", _path), e);
  }
  try {
    if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes)) != 0)
      throw sys_error(fmt::format("cannot allocate {} bytes for the swap file {}", bytes, _path));
    write_swap_header(fd.get(), bytes / PAGE_SIZE);
    if (::fsync(fd.get()) != 0) throw sys_error("cannot sync the swap file");
    fd.reset();
    // Highest priority: our pages go to our file, never to another device (a zram
    // device would swap exclusive pages in without the swap cache).
    if (::swapon(_path.c_str(), SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK)) != 0)
      throw sys_error(fmt::format("swapon {} failed (the file system of {} must support swap files)", _path, dir));
    _active = true;
  } catch (...) {
    ::unlink(_path.c_str());
    ::unlink(swap_record().c_str());
    throw;
  }
}

swap_guard::~swap_guard() {
  if (_active && ::swapoff(_path.c_str()) != 0) {
    // Leave the file: removing an active swap file would strand its slots.
    std::fprintf(stderr, "rmapkit: swapoff %s failed: %s\n", _path.c_str(), std::strerror(errno));
    return;
  }
  ::unlink(_path.c_str());
  ::unlink(swap_record().c_str());
}

// ---- memcg_guard -------------------------------------------------------------------

memcg_guard::memcg_guard() : _parent(own_memcg_dir()) {
  if (_parent.empty())
    throw std::runtime_error("reclaim and shrink need the cgroup-v1 memory controller (/sys/fs/cgroup/memory)");
  _path = fmt::format("{}/{}{}", _parent, MEMCG_PREFIX, ::getpid());
  if (::mkdir(_path.c_str(), 0755) != 0) throw sys_error(fmt::format("cannot create the memory cgroup {}", _path));
  // The kernel default, whatever the parent's: reclaim must be free to swap anon pages.
  (void)write_text(_path + "/memory.swappiness", "60");
  if (int e = write_text(_path + "/cgroup.procs", std::to_string(::getpid()))) {
    ::rmdir(_path.c_str());
    throw sys_error(fmt::format("cannot join the memory cgroup {}", _path), e);
  }
}

memcg_guard::~memcg_guard() {
  (void)write_text(_parent + "/cgroup.procs", std::to_string(::getpid()));
  for (int i = 0; i < 100 && ::rmdir(_path.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void memcg_guard::shrink_pass() {
  const auto swappiness = _path + "/memory.swappiness";
  const auto before = trimmed(read_text(swappiness));
  if (int e = write_text(swappiness, "0")) throw sys_error(fmt::format("shrink: cannot write 0 to {}", swappiness), e);
  const int e = write_text(_path + "/memory.force_empty", "0");
  (void)write_text(swappiness, before);
  if (e) throw sys_error(fmt::format("shrink: cannot write {}/memory.force_empty", _path), e);
}

void memcg_guard::reclaim_pass() {
  (void)write_text(_path + "/memory.force_empty", "0");
  // Shrinking the limit reclaims what force_empty left on the active list; it fails
  // with EBUSY (kernel memory stays charged), which is expected.
  (void)write_text(_path + "/memory.limit_in_bytes", "4096");
  (void)write_text(_path + "/memory.limit_in_bytes", "-1");
}

// ---- leftovers, LRU drain, CPU pinning ---------------------------------------------

bool stale_leftovers_exist(const std::string& swap_dir) {
  auto any_dead = [](const std::string& dir, const char* prefix) {
    for (const auto& name : list_dir(dir))
      if (pid_t pid = pid_suffix(name, prefix); pid > 0 && !pid_alive(pid)) return true;
    return false;
  };
  const auto memcg = own_memcg_dir();
  return any_dead(KSM_RECORD_DIR, KSM_RECORD_PREFIX) || any_dead(DAMON_RECORD_DIR, DAMON_RECORD_PREFIX) ||
         any_dead(swap_dir, SWAP_PREFIX) || !stale_swap_records().empty() ||
         (!memcg.empty() && any_dead(memcg, MEMCG_PREFIX)) || stale_trace_instances_exist() || stale_thp_exists();
}

void remove_stale_leftovers(const std::string& swap_dir) {
  for (const auto& [record, path] : stale_swap_records()) {
    remove_swap_file(path);
    ::unlink(record.c_str());
  }
  // Swap files of runs older than the records.
  for (const auto& name : list_dir(swap_dir)) {
    pid_t pid = pid_suffix(name, SWAP_PREFIX);
    if (pid > 0 && !pid_alive(pid)) remove_swap_file(swap_dir + "/" + name);
  }
  remove_stale_trace_instances();
  restore_stale_damon();
  restore_stale_ksm();
  restore_stale_thp();
  auto parent = own_memcg_dir();
  if (parent.empty()) return;
  for (const auto& name : list_dir(parent)) {
    pid_t pid = pid_suffix(name, MEMCG_PREFIX);
    if (pid > 0 && !pid_alive(pid)) ::rmdir((parent + "/" + name).c_str());
  }
}

void lru_drain() {
  alignas(4096) static char page[4096];
  page[0] = 1;
  void* pages[1] = {page};
  int status[1] = {-1};
  // Ask which node the page is on, then "move" it there: migration starts with
  // lru_cache_disable(), which drains every CPU's LRU batches, and moves nothing.
  if (::syscall(SYS_move_pages, 0, 1, pages, nullptr, status, 0) != 0 || status[0] < 0) return;
  int node[1] = {status[0]};
  (void)::syscall(SYS_move_pages, 0, 1, pages, node, status, MPOL_MF_MOVE);
}

cpu_pin_guard::cpu_pin_guard() : _saved(sizeof(cpu_set_t)) {
  auto* old = reinterpret_cast<cpu_set_t*>(_saved.data());
  if (::sched_getaffinity(0, sizeof(cpu_set_t), old) != 0) return;
  for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, old)) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    _pinned = ::sched_setaffinity(0, sizeof one, &one) == 0;
    return;
  }
}

cpu_pin_guard::~cpu_pin_guard() {
  if (_pinned) ::sched_setaffinity(0, sizeof(cpu_set_t), reinterpret_cast<cpu_set_t*>(_saved.data()));
}

}  // namespace rmapkit::kcheck
