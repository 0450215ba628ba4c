// Generators of the historical rmap workloads (workloads.h). Each returns the text of a
// scenario that resolves: names are unique, every region fits its slot. Each ends with a
// `check`, so that running one reports the state it leads to.
#include "rmapkit/scenario/workloads.h"

#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "rmapkit/scenario/program.h"

namespace rmapkit::scenario {

namespace {

void need(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

/// The statement every workload ends with.
constexpr const char* FINAL_CHECK = "check end\n";

void check_pages(unsigned pages) {
  need(pages >= 1 && pages <= MAX_REGION_PAGES, "pages must be between 1 and the largest region");
}

}  // namespace

std::string generate_fanout(const fanout_options& o) {
  need(o.children >= 1, "children must be at least 1");
  need(o.vmas >= 1 && o.vmas < MAX_SLOTS, "vmas must be at least 1");
  check_pages(o.pages);
  std::string s = fmt::format("# generated: rmapkit gen fanout --children {} --vmas {} --pages {}{}\n", o.children,
                              o.vmas, o.pages, o.reclaim ? "" : " --no-reclaim");
  s += "spawn P\n";
  for (unsigned v = 0; v < o.vmas; ++v)
    s += fmt::format("P: mmap R{} anon private pages={}\nP: write R{}\n", v, o.pages, v);
  for (unsigned c = 1; c <= o.children; ++c) {
    s += fmt::format("P: fork C{}\n", c);
    for (unsigned v = 0; v < o.vmas; ++v) s += fmt::format("C{}: write R{}\n", c, v);
  }
  if (o.reclaim) s += "reclaim\n";
  return s + FINAL_CHECK;
}

std::string generate_forkchain(const forkchain_options& o) {
  need(o.generations >= 1, "generations must be at least 1");
  check_pages(o.pages);
  std::string s = fmt::format("# generated: rmapkit gen forkchain --generations {} --pages {}\n", o.generations,
                              o.pages);
  s += fmt::format("spawn G0\nG0: mmap R anon private pages={}\nG0: write R\n", o.pages);
  for (unsigned g = 1; g <= o.generations; ++g)
    s += fmt::format("G{}: fork G{}\nG{}: write R[{}]\nG{}: exit\n", g - 1, g, g, g % o.pages, g - 1);
  return s + FINAL_CHECK;
}

std::string generate_fileshare(const fileshare_options& o) {
  need(o.processes >= 1, "processes must be at least 1");
  check_pages(o.pages);
  std::string s = fmt::format("# generated: rmapkit gen fileshare --processes {} --pages {}\n", o.processes, o.pages);
  s += fmt::format("file F pages={}\n", o.pages);
  for (unsigned p = 1; p <= o.processes; ++p)
    s += fmt::format("spawn P{0}\nP{0}: mmap M{0} file F shared pages={1}\nP{0}: read M{0}\n", p, o.pages);
  s += "reclaim\n";
  return s + FINAL_CHECK;
}

std::string generate_filewindows(const filewindows_options& o) {
  need(o.processes >= 1 && o.processes <= MAX_LIVE_PROCESSES, "processes must be between 1 and the live limit");
  need(o.windows >= 1 && o.windows < MAX_SLOTS, "windows must be at least 1");
  check_pages(o.window_pages);
  need(o.pages >= o.window_pages && o.pages <= MAX_FILE_PAGES, "the file must hold a window and fit the limit");
  std::string s = fmt::format(
      "# generated: rmapkit gen filewindows --processes {} --windows {} --window-pages {} --pages {} --seed {}\n",
      o.processes, o.windows, o.window_pages, o.pages, o.seed);
  s += fmt::format("file F pages={}\n", o.pages);
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<unsigned> offset(0, o.pages - o.window_pages);
  for (unsigned p = 1; p <= o.processes; ++p) {
    s += fmt::format("spawn P{}\n", p);
    for (unsigned w = 0; w < o.windows; ++w)
      s += fmt::format("P{0}: mmap W{1} file F shared pages={2} offset={3}\nP{0}: read W{1}\n", p, w, o.window_pages,
                       offset(rng));
  }
  s += "reclaim\n";
  return s + FINAL_CHECK;
}

std::string generate_ksm(const ksm_options& o) {
  check_pages(o.pages);
  std::string s = fmt::format("# generated: rmapkit gen ksm --pages {} --children {}\n", o.pages, o.children);
  s += fmt::format("spawn P\nP: mmap R anon private pages={}\nP: madvise R mergeable\nP: write R value=1\n", o.pages);
  for (unsigned c = 1; c <= o.children; ++c) s += fmt::format("P: fork C{}\nC{}: write R value=1\n", c, c);
  s += "ksm\n";
  return s + FINAL_CHECK;
}

std::string generate_buildstorm(const buildstorm_options& o) {
  need(o.jobs >= 1 && o.parallel >= 1, "jobs and parallel must be at least 1");
  need(o.jobs < MAX_SLOTS, "too many jobs for the slot area");
  check_pages(o.pages);
  std::string s = fmt::format("# generated: rmapkit gen buildstorm --jobs {} --parallel {} --pages {}\n", o.jobs,
                              o.parallel, o.pages);
  s += "spawn make\nmake: mmap M anon private pages=4\nmake: write M\n";
  auto finish = [&](unsigned j) { s += fmt::format("cc{0}: exit\njob{0}: exit\n", j); };
  for (unsigned j = 1; j <= o.jobs; ++j) {
    s += fmt::format("make: fork job{0}\njob{0}: mmap H{0} anon private pages={1}\njob{0}: write H{0}\n", j, o.pages);
    s += fmt::format("job{0}: fork cc{0}\ncc{0}: write H{0}[0:{1}]\ncc{0}: write M[0]\n", j, (o.pages + 1) / 2);
    if (j > o.parallel) finish(j - o.parallel);
  }
  for (unsigned j = o.jobs > o.parallel ? o.jobs - o.parallel + 1 : 1; j <= o.jobs; ++j) finish(j);
  return s + FINAL_CHECK;
}

}  // namespace rmapkit::scenario
