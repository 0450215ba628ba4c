// Readers for what /proc shows of a process's memory: maps, smaps VmFlags, pagemap,
// kpagecount and kpageflags (Documentation/admin-guide/mm/pagemap.rst).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kcheck/fd.h"
#include "rmapkit/types.h"

namespace rmapkit::kcheck {

/// One line of /proc/PID/maps.
struct maps_entry {
  vaddr_t start, end;
  std::string perms;  // "rw-p"
  std::uint64_t offset = 0;
  std::string dev;  // "fd:01": the file's device, major:minor in hex
  std::uint64_t inode = 0;
  std::string path;
  bool locked = false;     // VmFlags "lo", with_flags only
  bool mergeable = false;  // VmFlags "mg", with_flags only
  /// Every "Name:  N kB" line of smaps (Rss, Pss, ...), with_flags only.
  std::map<std::string, std::uint64_t, std::less<>> smaps_kb;
};

/// VMAs of @pid that intersect [from, to). With @with_flags, from smaps (slower) so that
/// VM_LOCKED and the smaps figures are known.
std::vector<maps_entry> read_vmas(pid_t pid, vaddr_t from, vaddr_t to, bool with_flags = false);

// pagemap entry bits
inline constexpr std::uint64_t PM_PFN_MASK = (std::uint64_t{1} << 55) - 1;
inline constexpr std::uint64_t PM_SWAP = std::uint64_t{1} << 62;
inline constexpr std::uint64_t PM_PRESENT = std::uint64_t{1} << 63;
inline constexpr unsigned PM_SWAP_TYPE_BITS = 5;

// kpageflags bits
inline constexpr unsigned KPF_REFERENCED = 2;
inline constexpr unsigned KPF_DIRTY = 4;
inline constexpr unsigned KPF_LRU = 5;
inline constexpr unsigned KPF_ACTIVE = 6;
inline constexpr unsigned KPF_UNEVICTABLE = 18;
inline constexpr unsigned KPF_MLOCKED = 33;
inline constexpr unsigned KPF_ANON = 12;
inline constexpr unsigned KPF_SWAPCACHE = 13;
inline constexpr unsigned KPF_KSM = 21;
inline constexpr unsigned KPF_ZERO_PAGE = 24;
/// PG_anon_exclusive (PG_owner_2) on anonymous pages; PG_mappedtodisk on file pages.
inline constexpr unsigned KPF_ANON_EXCLUSIVE = 34;
/// The first page of a compound page (a large folio's head), and every other page of it.
inline constexpr unsigned KPF_COMPOUND_HEAD = 15;
inline constexpr unsigned KPF_COMPOUND_TAIL = 16;

/// Swap types at or above this are not swap devices but migration, device or marker
/// entries (MAX_SWAPFILES on x86-64 with every special type configured is 23).
inline constexpr std::uint64_t FIRST_SPECIAL_SWAP_TYPE = 23;

/// pagemap entries of @pid for @pages pages from @start.
std::vector<std::uint64_t> read_pagemap(pid_t pid, vaddr_t start, std::uint64_t pages);

/// The ranges of [start, end) that @pid maps with PMD entries (the PAGEMAP_SCAN ioctl's
/// PAGE_IS_HUGE, Linux 6.7 and later), ascending, each [first, second).
std::vector<std::pair<vaddr_t, vaddr_t>> read_pmd_mapped(pid_t pid, vaddr_t start, vaddr_t end);

/// /proc/kpagecount and /proc/kpageflags, opened once.
class kpage_reader {
 public:
  kpage_reader();
  std::uint64_t count(pfn_t pfn) const;
  std::uint64_t flags(pfn_t pfn) const;
  /// The folio @pfn belongs to: its head page and order, from the HEAD and TAIL bits of the
  /// naturally aligned 512-page window around it (a folio of order 9 or less lies inside).
  /// Order 0 and @pfn itself for a page that is not part of a compound page.
  std::pair<pfn_t, unsigned> folio_of(pfn_t pfn) const;

 private:
  unique_fd _count, _flags;
};

/// The pfn of a page of our own (touched), or 0 when pagemap hides pfns from us.
std::uint64_t own_pfn_probe();

/// Reads a whole small file (sysfs, procfs); throws system_error when it cannot.
std::string read_text(const std::string& path);
/// Writes @value to a sysfs/procfs/cgroup file; returns 0 or the errno.
int write_text(const std::string& path, const std::string& value);
/// The entries of a directory, without "." and ".."; empty when it cannot be read.
std::vector<std::string> list_dir(const std::string& dir);
/// read_text() parsed as an unsigned number.
std::uint64_t read_number(const std::string& path);
/// @s without its trailing newlines and spaces (sysfs values end in one).
std::string trimmed(std::string s);
bool exists(const std::string& path);

/// write_text() that truncates first (as `echo >` does): for a file of our own as well as
/// for sysfs, so that tests can stand in a directory tree for /sys. 0 or the errno.
int write_value(const std::string& path, const std::string& value);
/// Writes @text to a new file @path.new of our own (never one someone left for us to
/// follow) and renames it to @path: a record is whole or absent, never half written.
/// Throws system_error when it cannot.
void write_record_file(const std::string& path, const std::string& text);
/// The KNOB=VALUE lines of a record written by write_record_file(), in file order, only
/// those @accept takes; nothing when @path is not a regular file of our own.
std::vector<std::pair<std::string, std::string>> read_record_lines(
    const std::string& path, const std::function<bool(const std::string& knob, const std::string& value)>& accept);
/// Whether @path is a regular file owned by us: cleanup runs as root and must not act on
/// a record someone else planted.
bool own_regular_file(const std::string& path);

/// Whether @pid names a process (one we may not signal counts as alive).
bool pid_alive(pid_t pid);
/// Parses NNN out of PREFIXNNN, the names of what a run leaves behind; 0 when the name is
/// not of that shape (or NNN cannot be a pid).
pid_t pid_suffix(const std::string& name, const std::string& prefix);

}  // namespace rmapkit::kcheck
