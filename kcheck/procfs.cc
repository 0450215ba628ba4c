#include "kcheck/procfs.h"
#include <dirent.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

namespace rmapkit::kcheck {

namespace {

std::system_error sys_error(const std::string& what) { return {errno, std::generic_category(), what}; }

unique_fd open_ro(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error(fmt::format("cannot open {}", path));
  return fd;
}

void pread_all(int fd, void* buf, std::size_t len, off_t off, const char* what) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    auto n = ::pread(fd, p, len, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw sys_error(fmt::format("cannot read {}", what));
    p += n;
    len -= static_cast<std::size_t>(n);
    off += n;
  }
}

/// Parses "start-end perms offset dev inode path".
bool parse_maps_line(const std::string& line, maps_entry& e) {
  std::istringstream in(line);
  std::string range;
  if (!(in >> range >> e.perms >> std::hex >> e.offset >> e.dev >> std::dec >> e.inode)) return false;
  auto dash = range.find('-');
  if (dash == std::string::npos) return false;
  e.start = vaddr_t{std::stoull(range.substr(0, dash), nullptr, 16)};
  e.end = vaddr_t{std::stoull(range.substr(dash + 1), nullptr, 16)};
  std::getline(in >> std::ws, e.path);
  return true;
}

}  // namespace

std::vector<maps_entry> read_vmas(pid_t pid, vaddr_t from, vaddr_t to, bool with_flags) {
  auto path = fmt::format("/proc/{}/{}", pid, with_flags ? "smaps" : "maps");
  std::ifstream in(path);
  if (!in) throw std::system_error(errno, std::generic_category(), fmt::format("cannot open {}", path));
  std::vector<maps_entry> out;
  std::string line;
  bool in_range = false;
  while (std::getline(in, line)) {
    maps_entry e;
    // smaps interleaves "Key: value" lines; a VMA header line starts with a hex range.
    if (line.find('-') < line.find(' ') && parse_maps_line(line, e)) {
      in_range = e.start < to && e.end > from;
      if (in_range) out.push_back(std::move(e));
      continue;
    }
    if (!in_range || !with_flags) continue;
    if (auto colon = line.find(':'); colon != std::string::npos && line.ends_with(" kB")) {
      out.back().smaps_kb[line.substr(0, colon)] = std::stoull(line.substr(colon + 1));
      continue;
    }
    if (line.rfind("VmFlags:", 0) == 0) {
      std::istringstream fl(line.substr(8));
      std::string f;
      while (fl >> f) {
        if (f == "lo") out.back().locked = true;
        if (f == "mg") out.back().mergeable = true;
      }
    }
  }
  return out;
}

std::vector<std::uint64_t> read_pagemap(pid_t pid, vaddr_t start, std::uint64_t pages) {
  auto fd = open_ro(fmt::format("/proc/{}/pagemap", pid));
  std::vector<std::uint64_t> out(pages);
  pread_all(fd.get(), out.data(), pages * sizeof(std::uint64_t),
            static_cast<off_t>((start.value >> PAGE_SHIFT) * sizeof(std::uint64_t)), "pagemap");
  return out;
}

namespace {

// PAGEMAP_SCAN (Linux 6.7), not in the 6.1 headers Debian 12 installs: the ioctl's
// argument and result as include/uapi/linux/fs.h defines them.
struct pm_scan_region {
  std::uint64_t start, end, categories;
};
struct pm_scan_arg {
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  std::uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long PAGEMAP_SCAN_IOCTL = _IOWR('f', 16, pm_scan_arg);
constexpr std::uint64_t PAGE_IS_HUGE = 1U << 6;

}  // namespace

std::vector<std::pair<vaddr_t, vaddr_t>> read_pmd_mapped(pid_t pid, vaddr_t start, vaddr_t end) {
  auto fd = open_ro(fmt::format("/proc/{}/pagemap", pid));
  std::vector<std::pair<vaddr_t, vaddr_t>> out;
  std::vector<pm_scan_region> vec(64);
  while (start < end) {
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.start = start.value;
    arg.end = end.value;
    arg.vec = reinterpret_cast<std::uintptr_t>(vec.data());
    arg.vec_len = vec.size();
    arg.category_anyof_mask = PAGE_IS_HUGE;
    arg.return_mask = PAGE_IS_HUGE;
    const long n = ::ioctl(fd.get(), PAGEMAP_SCAN_IOCTL, &arg);
    if (n < 0)
      throw std::system_error(errno, std::generic_category(),
                              fmt::format("PAGEMAP_SCAN of /proc/{}/pagemap (Linux 6.7 or later is needed)", pid));
    for (long i = 0; i < n; ++i) {
      const auto& r = vec[static_cast<std::size_t>(i)];
      if (!out.empty() && out.back().second.value == r.start) out.back().second = vaddr_t{r.end};
      else out.emplace_back(vaddr_t{r.start}, vaddr_t{r.end});
    }
    if (arg.walk_end <= start.value) break;  // no progress: the kernel walked nothing more
    start = vaddr_t{arg.walk_end};
  }
  return out;
}

kpage_reader::kpage_reader() : _count(open_ro("/proc/kpagecount")), _flags(open_ro("/proc/kpageflags")) {}

std::uint64_t kpage_reader::count(pfn_t pfn) const {
  std::uint64_t v = 0;
  pread_all(_count.get(), &v, sizeof v, static_cast<off_t>(pfn.value * sizeof v), "/proc/kpagecount");
  return v;
}

std::uint64_t kpage_reader::flags(pfn_t pfn) const {
  std::uint64_t v = 0;
  pread_all(_flags.get(), &v, sizeof v, static_cast<off_t>(pfn.value * sizeof v), "/proc/kpageflags");
  return v;
}

std::pair<pfn_t, unsigned> kpage_reader::folio_of(pfn_t pfn) const {
  constexpr std::uint64_t window = 512;
  const auto head_bit = std::uint64_t{1} << KPF_COMPOUND_HEAD, tail_bit = std::uint64_t{1} << KPF_COMPOUND_TAIL;
  const std::uint64_t first = pfn.value & ~(window - 1);
  std::uint64_t w[window];
  pread_all(_flags.get(), w, sizeof w, static_cast<off_t>(first * sizeof w[0]), "/proc/kpageflags");
  std::uint64_t i = pfn.value - first;
  if (!(w[i] & (head_bit | tail_bit))) return {pfn, 0};
  while (i > 0 && (w[i] & tail_bit)) --i;
  std::uint64_t n = 1;
  while (i + n < window && (w[i + n] & tail_bit)) ++n;
  unsigned order = 0;
  while ((std::uint64_t{1} << order) < n) ++order;
  return {pfn_t{first + i}, order};
}

std::uint64_t own_pfn_probe() {
  void* p = ::mmap(nullptr, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  *static_cast<volatile char*>(p) = 1;
  std::uint64_t pfn = 0;
  try {
    auto e = read_pagemap(::getpid(), vaddr_t{reinterpret_cast<std::uintptr_t>(p)}, 1);
    if (e[0] & PM_PRESENT) pfn = e[0] & PM_PFN_MASK;
  } catch (const std::system_error&) {
    pfn = 0;
  }
  ::munmap(p, PAGE_SIZE);
  return pfn;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::system_error(errno, std::generic_category(), fmt::format("cannot read {}", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int write_text(const std::string& path, const std::string& value) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  auto n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return errno;
  return n == static_cast<ssize_t>(value.size()) ? 0 : EIO;
}

int write_value(const std::string& path, const std::string& value) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) return errno;
  auto n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return errno;
  return n == static_cast<ssize_t>(value.size()) ? 0 : EIO;
}

std::vector<std::pair<std::string, std::string>> read_record_lines(
    const std::string& path, const std::function<bool(const std::string& knob, const std::string& value)>& accept) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!own_regular_file(path)) return out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto knob = line.substr(0, eq), value = line.substr(eq + 1);
    if (accept(knob, value)) out.emplace_back(std::move(knob), std::move(value));
  }
  return out;
}

void write_record_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  ::unlink(tmp.c_str());
  int e = 0;
  {
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) e = errno;
    else if (auto n = ::write(fd.get(), text.data(), text.size()); n != static_cast<ssize_t>(text.size()))
      e = n < 0 ? errno : EIO;
  }
  if (e == 0 && ::rename(tmp.c_str(), path.c_str()) == 0) return;
  const int err = e ? e : errno;
  ::unlink(tmp.c_str());
  throw std::system_error(err, std::generic_category(), "cannot write " + path);
}

bool own_regular_file(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid();
}

std::uint64_t read_number(const std::string& path) {
  auto s = read_text(path);
  try {
    return std::stoull(s);
  } catch (const std::exception&) {
    throw std::runtime_error(fmt::format("{}: not a number: '{}'", path, s));
  }
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

pid_t pid_suffix(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return 0;
  const std::size_t digits = name.size() - prefix.size();
  if (digits == 0 || digits > 9) return 0;  // at most 9 digits: no overflow
  pid_t pid = 0;
  for (char c : name.substr(prefix.size())) {
    if (c < '0' || c > '9') return 0;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
  }
  return names;
}

}  // namespace rmapkit::kcheck
