// What the recorder (record.cc) hands the conversion (record_convert.cc): perf records
// parsed, and snapshots as /proc showed them. Not installed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kcheck/procfs.h"
#include "rmapkit/replay/record.h"

namespace rmapkit::replay {

/// A tracepoint the recorder takes: "sys:name", its id, and the offset and size of each
/// numeric field after the common ones, in the format's order.
struct tracepoint_desc {
  std::string name;
  std::uint64_t id = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> fields;
};

/// The id table's value for the side-band event (not a tracepoint).
inline constexpr std::size_t SIDE_BAND = ~std::size_t{0};

/// One perf record, parsed.
struct item {
  enum class kind : std::uint8_t { tracepoint, mmap2, fork, exit, exec, lost };
  kind what = kind::tracepoint;
  nsec_t time = 0;
  std::uint32_t pid = 0, tid = 0;
  std::size_t tp = 0;  ///< tracepoint: its index in the recorder's list
  /// tracepoint: its numeric fields in order; mmap2: addr, len, pgoff, prot, flags; fork
  /// and exit: ppid, ptid; lost: the count.
  std::array<std::uint64_t, 6> v{};
  std::uint32_t maj = 0, min = 0;  ///< mmap2: the file's device
  std::uint64_t ino = 0, gen = 0;  ///< mmap2: the file's inode and generation
  std::string name;                ///< mmap2: the file's path, or [stack], [vdso], //anon
};

/// The tree's memory at a moment, as /proc showed it while frozen.
struct raw_snapshot {
  nsec_t time = 0;
  struct process {
    tid_t pid = 0;
    std::vector<kcheck::maps_entry> vmas;
    std::vector<snap_page> pages;
  };
  std::vector<process> processes;
};

/// Mappings the kernel makes for itself ([vdso], [vvar], ...): never replayed.
inline bool is_special_mapping(std::string_view name) {
  return name == "[vdso]" || name == "[vvar]" || name == "[vvar_vclock]" || name == "[vsyscall]" || name == "[uprobes]";
}

/// Turns the records of the tree of @root into trace records, in time order, on @w.
/// @st.kmem, when set, is the last record.
void convert_recording(tid_t root, const std::vector<tracepoint_desc>& tps, std::vector<item> items,
                       std::vector<raw_snapshot> snaps, writer& w, record_stats& st);

}  // namespace rmapkit::replay
