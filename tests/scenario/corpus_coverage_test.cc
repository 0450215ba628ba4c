// The golden corpus uses every statement and option of the scenario language, so that
// the kernel's behaviour for each is pinned by an .expected report.
#include <dirent.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "rmapkit/scenario/parser.h"

namespace rmapkit::scenario {
namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

std::set<std::string> features_of_corpus(const std::string& dir = RMAPKIT_SCENARIO_DIR) {
  std::set<std::string> seen;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return seen;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() < 6 || n.substr(n.size() - 5) != ".rmap") continue;
    auto sc = parse_file(dir + "/" + n);
    EXPECT_TRUE(sc) << sc.error().str();
    if (!sc) continue;
    auto range = [&](const range_ref& r) {
      seen.insert(!r.first ? "range:R" : !r.last ? "range:R[i]" : "range:R[i:j]");
    };
    for (const auto& st : sc->statements) {
      std::visit(overloaded{
                     [&](const st_spawn&) { seen.insert("spawn"); },
                     [&](const st_file&) { seen.insert("file"); },
                     [&](const st_mmap& m) {
                       static const char* kinds[] = {"anon private", "anon shared", "file private", "file shared"};
                       seen.insert(std::string("mmap ") + kinds[static_cast<int>(m.kind)]);
                       seen.insert(std::string("mmap prot=") + to_string(m.prot));
                       if (m.offset) seen.insert("mmap offset=");
                       if (m.into) seen.insert(m.into->last ? "mmap R[i:j]" : "mmap R[i]");
                       if (m.noreserve) seen.insert("mmap noreserve");
                       if (m.huge) seen.insert(std::string("mmap huge ") + kinds[static_cast<int>(m.kind)]);
                     },
                     [&](const st_read& s) {
                       seen.insert("read");
                       range(s.range);
                     },
                     [&](const st_write& s) {
                       seen.insert(s.value ? "write value=" : "write");
                       range(s.range);
                     },
                     [&](const st_fork&) { seen.insert("fork"); },
                     [&](const st_exit&) { seen.insert("exit"); },
                     [&](const st_munmap& s) {
                       seen.insert("munmap");
                       range(s.range);
                     },
                     [&](const st_mprotect& s) { seen.insert(std::string("mprotect ") + to_string(s.prot)); },
                     [&](const st_mremap_resize&) { seen.insert("mremap pages="); },
                     [&](const st_mremap_move&) { seen.insert("mremap move"); },
                     [&](const st_madvise& s) { seen.insert(std::string("madvise ") + to_string(s.advice)); },
                     [&](const st_mlock&) { seen.insert("mlock"); },
                     [&](const st_munlock&) { seen.insert("munlock"); },
                     [&](const st_ksm& s) { seen.insert(s.prune ? "ksm prune" : "ksm"); },
                     [&](const st_reclaim&) { seen.insert("reclaim"); },
                     [&](const st_clear_refs& c) { seen.insert(std::string("clear_refs ") + to_string(c.type)); },
                     [&](const st_report& r) {
                       if (r.smaps) seen.insert("report smaps");
                       if (r.flags) seen.insert("report flags");
                     },
                     [&](const st_check& c) { seen.insert(c.label.empty() ? "check" : "check LABEL"); },
                     [&](const st_thp& t) {
                       seen.insert("thp");
                       if (t.shmem_orders) seen.insert("thp shmem=");
                       for (const auto& sz : THP_SIZES)
                         if (t.anon_orders & (1U << sz.order)) seen.insert(std::string("thp anon=") + sz.name);
                     },
                     [&](const st_shrink&) { seen.insert("shrink"); },
                 },
                 st.body);
    }
  }
  ::closedir(d);
  return seen;
}

TEST(CorpusCoverage, EveryStatementAndOptionOfTheSpecAppears) {
  auto seen = features_of_corpus();
  for (const char* f : {"spawn",
                        "file",
                        "mmap anon private",
                        "mmap anon shared",
                        "mmap file private",
                        "mmap file shared",
                        "mmap prot=rw",
                        "mmap prot=r",
                        "mmap prot=none",
                        "mmap prot=rx",
                        "mmap prot=rwx",
                        "mmap R[i:j]",
                        "mmap R[i]",
                        "mmap noreserve",
                        "mmap offset=",
                        "read",
                        "write",
                        "write value=",
                        "fork",
                        "exit",
                        "munmap",
                        "mprotect rw",
                        "mprotect r",
                        "mprotect none",
                        "mprotect rx",
                        "mprotect rwx",
                        "mremap pages=",
                        "mremap move",
                        "madvise dontneed",
                        "madvise mergeable",
                        "madvise unmergeable",
                        "madvise pageout",
                        "madvise dontfork",
                        "madvise dofork",
                        "madvise wipeonfork",
                        "madvise keeponfork",
                        "madvise dontdump",
                        "madvise dodump",
                        "madvise sequential",
                        "madvise random",
                        "madvise normal",
                        "madvise free",
                        "madvise cold",
                        "madvise willneed",
                        "madvise remove",
                        "mlock",
                        "munlock",
                        "ksm",
                        "ksm prune",
                        "reclaim",
                        "clear_refs all",
                        "clear_refs anon",
                        "clear_refs file",
                        "report smaps",
                        "report flags",
                        "check",
                        "check LABEL",
                        "range:R",
                        "range:R[i]",
                        "range:R[i:j]"})
    EXPECT_TRUE(seen.count(f)) << "no scenario in the corpus uses: " << f;
}

TEST(CorpusCoverage, TheVersion2CorpusUsesEveryLargeFolioStatementAndSize) {
  auto seen = features_of_corpus(std::string(RMAPKIT_SCENARIO_DIR) + "/v2");
  for (const char* f : {"thp",
                        "thp shmem=",
                        "thp anon=16k",
                        "thp anon=32k",
                        "thp anon=64k",
                        "thp anon=2m",
                        "mmap huge anon private",
                        "mmap huge anon shared",
                        "madvise collapse",
                        "shrink",
                        "fork",
                        "mremap move",
                        "mremap pages=",
                        "mprotect r",
                        "mlock",
                        "madvise dontfork",
                        "madvise mergeable",
                        "madvise pageout",
                        "reclaim",
                        "ksm"})
    EXPECT_TRUE(seen.count(f)) << "no version 2 scenario uses: " << f;
}

}  // namespace
}  // namespace rmapkit::scenario
