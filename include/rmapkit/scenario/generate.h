// Random scenario generation (`rmapkit gen random`): valid scenarios of every statement
// kind, reproducible from a seed, for property tests and differential testing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rmapkit::scenario {

/// How often the generator proposes each kind of statement, as relative weights (a
/// profile's "weights", docs/fuzzing.md). machine_wide is `ksm` (with ksm) or `reclaim`
/// (with reclaim); touch is read or write.
struct statement_weights {
  unsigned touch = 0, mmap = 0, fork = 0, exit = 0, munmap = 0, mprotect = 0, mremap = 0, madvise = 0, mlock = 0,
           check = 0, spawn = 0, machine_wide = 0, clear_refs = 0;
};

/// What kind of region an mmap makes, as relative weights (a profile's "mmap").
struct mmap_weights {
  unsigned anon_private = 0, anon_shared = 0, file = 0;
};

struct random_options {
  std::uint64_t seed = 1;
  unsigned statements = 60;        ///< statements to generate (checks included)
  unsigned max_processes = 6;      ///< live processes at most
  unsigned max_region_pages = 24;  ///< largest region created by mmap
  bool pageout = true;             ///< madvise pageout (needs swap on the kernel)
  bool ksm = false;                ///< mergeable + ksm statements
  /// Aims at where KSM is hard (implies ksm): regions of hundreds of pages written with a
  /// few values, so that contents have more sharers than max_page_sharing and chains
  /// form, shrink, refill and collapse; `ksm prune`; forks, COW, pageout and swap-in,
  /// unmerging and exits between scans.
  bool ksm_heavy = false;
  bool reclaim = false;  ///< reclaim statements
  /// `report smaps` first, so that every check prints smaps figures, and `clear_refs`
  /// among the statements (weight 3 in gen random's own mix; a profile's "clear_refs").
  bool smaps = false;
  /// Half the mmaps map into an existing region (`mmap R[i:j]`: next to its VMAs, over
  /// them, beyond its end), and protections include rx and rwx: VMAs that join and split.
  bool neighbours = false;
  /// Scenario format version 2: a `thp` line with random sizes first; most new regions
  /// `huge`, some of PMD size or more (512 to 1,100 pages, whatever --pages says); `madvise
  /// collapse` (only where the kernel accepts it: a whole private anonymous `huge` region of
  /// 512 pages or more that nothing has reshaped) and `shrink` among the statements.
  bool thp = false;
  /// With thp: the `thp` line enables exactly these anonymous (and shmem) sizes, as sets of
  /// orders, instead of random ones; `collapse` is drawn only when 2m is among the
  /// anonymous sizes (`--thp-anon 16k,64k` asks for mTHP alone: what the model runs).
  std::optional<std::uint16_t> thp_anon{}, thp_shmem{};
  /// With thp and 2m: `madvise collapse` among the statements.
  bool collapse = true;
  /// The profile these options came from, named in the scenario's first line; empty for
  /// none (the line then names gen random's options alone).
  std::string profile{};
  /// The statement mix; without it, gen random's own (one for ksm_heavy, one otherwise).
  std::optional<statement_weights> weights{};
  /// The region mix of mmap; without it, gen random's own.
  std::optional<mmap_weights> mmap_kinds{};
};

/// A valid scenario as text, ending with a `check`; the same options give the same text.
/// It resolves, and it runs to its end on both back ends: it steers clear of what only the
/// running memory manager refuses (it resizes only regions no statement has split, and
/// reclaims only before the first ksm). Time and memory grow linearly with @opts.statements.
[[nodiscard]] std::string generate_random(const random_options& opts);

}  // namespace rmapkit::scenario
