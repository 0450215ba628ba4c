// The workloads that made rmap history, as scenario generators (`rmapkit gen KIND`), so
// every design and the kernel run the same statements (docs/designs.md).
#pragma once

#include <string>

namespace rmapkit::scenario {

/// N-way fork fan-out with COW (the 2010 AIM7 case): P maps @vmas anonymous regions of
/// @pages pages and writes them, forks @children children that stay alive, each of
/// which writes every page (its own copies), then `reclaim` walks every page. With one
/// anon_vma per family, the walk of a child's private page visits every VMA of the
/// family; with anon_vma chains, about one.
struct fanout_options {
  unsigned children = 16;
  unsigned vmas = 1;
  unsigned pages = 4;
  bool reclaim = true;
};
[[nodiscard]] std::string generate_fanout(const fanout_options& o);

/// A serial fork chain (the 2012 unbounded-growth report): each generation writes one
/// page of the region, forks the next and exits. Without fork-time reuse every
/// generation leaves one more anon_vma behind.
struct forkchain_options {
  unsigned generations = 100;
  unsigned pages = 16;
};
[[nodiscard]] std::string generate_forkchain(const forkchain_options& o);

/// @processes processes sharing one file of @pages pages (read-mapped, then `reclaim`).
struct fileshare_options {
  unsigned processes = 16;
  unsigned pages = 16;
};
[[nodiscard]] std::string generate_fileshare(const fileshare_options& o);

/// The prio tree's case (2004): @processes processes each map @windows windows of
/// @window_pages pages of one file of @pages pages, at offsets scattered by @seed, read
/// them, and `reclaim` walks every page. A walk of the 2.6.6 lists reads every window of
/// the file; a tree reads the few that hold the page, and its path.
struct filewindows_options {
  unsigned processes = 16;
  unsigned windows = 16;
  unsigned window_pages = 4;
  unsigned pages = 4096;
  unsigned seed = 1;
};
[[nodiscard]] std::string generate_filewindows(const filewindows_options& o);

/// KSM pages with many sharers: @pages equal pages in P, shared with @children forked
/// children, merged by `ksm` (max_page_sharing = 256 splits them into chains of dups).
struct ksm_options {
  unsigned pages = 512;
  unsigned children = 1;
};
[[nodiscard]] std::string generate_ksm(const ksm_options& o);

/// A build-like storm of short-lived processes: `make` forks @jobs jobs, @parallel alive
/// at a time; each maps and writes a heap of @pages pages, forks a compiler that writes
/// half of it, and both exit.
struct buildstorm_options {
  unsigned jobs = 64;
  unsigned parallel = 2;
  unsigned pages = 8;
};
[[nodiscard]] std::string generate_buildstorm(const buildstorm_options& o);

}  // namespace rmapkit::scenario
