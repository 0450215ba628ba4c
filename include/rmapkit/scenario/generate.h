// Random scenario generation (`rmapkit gen random`): valid scenarios of every statement
// kind, reproducible from a seed, for property tests and differential testing.
#pragma once

#include <cstdint>
#include <string>

namespace rmapkit::scenario {

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
};

/// A valid scenario as text, ending with a `check`; the same options give the same text.
/// It resolves, and it runs to its end on both back ends: it steers clear of what only the
/// running memory manager refuses (it resizes only regions no statement has split, and
/// reclaims only before the first ksm). Time and memory grow linearly with @opts.statements.
[[nodiscard]] std::string generate_random(const random_options& opts);

}  // namespace rmapkit::scenario
