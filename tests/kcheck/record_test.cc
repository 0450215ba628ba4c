// rmapkit record on the live kernel: a program with anonymous, heap, file, thread and
// fork activity (tests/replay/record_probe.cc) is recorded with cuts while it sleeps, and its
// replay on the model agrees with every cut — every VMA, and every page but the file pages
// fault-around maps where the kernel's page cache had none (a known cause: the model
// assumes a warm cache). Skips, saying why, where recording cannot run.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/replay/record.h"
#include "rmapkit/replay/replay.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"
#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::replay {
namespace {

struct replayed_trace {
  record_stats recorded;
  replay_stats replayed;
  std::size_t snapshots = 0;
  std::vector<difference> differences;
  std::uint64_t model_anon_vmas = 0, model_avcs = 0;  ///< allocated by the replay (linux-6)
};

replayed_trace record_and_replay(const std::vector<std::string>& argv, double check_every) {
  replayed_trace out;
  std::ostringstream trace;
  writer w(trace, encoding::binary, recording_header());
  record_options opts;
  opts.check_every = check_every;
  out.recorded = record_command(argv, w, opts);

  std::istringstream in(trace.str());
  reader rd(in, "recording");
  replayer r({"linux-6", false});  // the invariants at each cut and at the end: after every event is minutes
  while (auto rec = rd.next()) {
    if (const auto* want = std::get_if<ev_snapshot>(&rec->ev)) {
      EXPECT_NO_THROW(r.check_invariants());
      ++out.snapshots;
      for (auto& d : compare(*want, r.take(want->label))) out.differences.push_back(std::move(d));
    } else {
      r.apply(*rec);
    }
  }
  EXPECT_NO_THROW(r.check_invariants());
  out.replayed = r.stats();
  const auto objs = r.machine().anon_rmap_design().objects();
  out.model_anon_vmas = mm::find_object(objs, "anon_vma")->allocated;
  out.model_avcs = mm::find_object(objs, "anon_vma_chain")->allocated;
  return out;
}

TEST(Record, AProgramsReplayAgreesWithEveryCutOfItsRecording) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  const auto t = record_and_replay({RMAPKIT_RECORD_PROBE, "700"}, 0.25);
  EXPECT_EQ(t.recorded.exit_status, 0);
  EXPECT_EQ(t.recorded.lost, 0U);
  EXPECT_EQ(t.recorded.tasks, 3U) << "the program, its thread and its child";
  EXPECT_GE(t.snapshots, 2U) << "cuts every 0.25 s of a 0.7 s sleep";
  EXPECT_GE(t.recorded.records, 50U);
  EXPECT_TRUE(t.replayed.refused.empty()) << t.replayed.first_refusals.front();
  EXPECT_TRUE(t.replayed.unsupported.empty()) << t.replayed.unsupported.begin()->first;
  EXPECT_EQ(t.replayed.applied.at("fork"), 1U);
  EXPECT_EQ(t.replayed.applied.at("clone-vm"), 1U);
  EXPECT_GE(t.replayed.applied.at("brk"), 1U);
  // The kernel's anon_vma and anon_vma_chain allocations (kmem tracepoints) against the
  // model's: the issue asks for 5 %; this program's are equal.
  ASSERT_TRUE(t.recorded.kmem.has_value()) << "the kernel's counts were not taken";
  ASSERT_TRUE(t.replayed.kernel_kmem.has_value()) << "the trace has no kmem record";
  EXPECT_GT(t.recorded.kmem->anon_vma_alloc, 0U);
  EXPECT_NEAR(static_cast<double>(t.model_anon_vmas), static_cast<double>(t.recorded.kmem->anon_vma_alloc),
              0.05 * static_cast<double>(t.recorded.kmem->anon_vma_alloc));
  EXPECT_NEAR(static_cast<double>(t.model_avcs), static_cast<double>(t.recorded.kmem->avc_alloc),
              0.05 * static_cast<double>(t.recorded.kmem->avc_alloc));
  for (const auto& d : t.differences) {
    const bool cache_hole = (d.cause == "page-extra" && d.text.find(" is file in the replay") != std::string::npos) ||
                            (d.cause == "page-missing" && d.text.find(" is file in the trace") != std::string::npos);
    EXPECT_TRUE(cache_hole) << d.cause << ": " << d.text;
  }
}

/// What the issue asks of a real workload's replay: every VMA agrees at every cut, pages
/// differ only by a named cause (here: file pages, which the kernel's page cache decides),
/// and the anon_vma/AVC allocations are within 5 % of the kernel's.
void expect_faithful(const replayed_trace& t) {
  EXPECT_EQ(t.recorded.exit_status, 0);
  EXPECT_EQ(t.recorded.lost, 0U);
  EXPECT_GE(t.snapshots, 1U);
  EXPECT_TRUE(t.replayed.refused.empty()) << t.replayed.first_refusals.front();
  EXPECT_TRUE(t.replayed.unsupported.empty()) << t.replayed.unsupported.begin()->first;
  std::size_t holes = 0;
  for (const auto& d : t.differences) {
    // The page cache's cause, both ways: a file page the model's warm cache let fault-around
    // map and the kernel's did not hold, or one the kernel mapped with the rest of a large
    // page-cache folio (finish_fault() maps a whole folio) past the model's 16-page window.
    const bool cache_hole = (d.cause == "page-extra" && d.text.find(" is file in the replay") != std::string::npos) ||
                            (d.cause == "page-missing" && d.text.find(" is file in the trace") != std::string::npos);
    EXPECT_TRUE(cache_hole) << d.cause << ": " << d.text;
    holes += cache_hole ? 1 : 0;
  }
  ASSERT_TRUE(t.recorded.kmem.has_value());
  const auto& k = *t.recorded.kmem;
  EXPECT_NEAR(static_cast<double>(t.model_anon_vmas), static_cast<double>(k.anon_vma_alloc),
              0.05 * static_cast<double>(k.anon_vma_alloc));
  EXPECT_NEAR(static_cast<double>(t.model_avcs), static_cast<double>(k.avc_alloc),
              0.05 * static_cast<double>(k.avc_alloc));
  std::printf(
      "  %llu records, %llu tasks, %zu cuts, %zu page-cache holes; anon_vma %llu/%llu, AVC %llu/%llu "
      "(kernel/model)\n",
      static_cast<unsigned long long>(t.recorded.records), static_cast<unsigned long long>(t.recorded.tasks),
      t.snapshots, holes, static_cast<unsigned long long>(k.anon_vma_alloc),
      static_cast<unsigned long long>(t.model_anon_vmas), static_cast<unsigned long long>(k.avc_alloc),
      static_cast<unsigned long long>(t.model_avcs));
}

/// A small C project (@units files and a main) in a fresh directory, with its Makefile.
std::string c_project(int units) {
  auto dir = std::filesystem::path(testing::temp_file("project.keep", "")).parent_path() / "project";
  std::filesystem::create_directories(dir);
  std::string main = "#include <stdio.h>\n";
  for (int i = 0; i < units; ++i) {
    std::ofstream(dir / fmt::format("u{}.c", i)) << fmt::format(
        "#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n"
        "double work{0}(int n) {{ double *v = calloc(n, sizeof *v), s = 0;\n"
        "  for (int j = 0; j < n; j++) v[j] = sin(j + {0});\n"
        "  for (int j = 0; j < n; j++) s += v[j] * (double)strlen(\"abc\");\n"
        "  free(v); return s; }}\n",
        i);
    main += fmt::format("double work{}(int);\n", i);
  }
  main += "int main(void) { double s = 0;\n";
  for (int i = 0; i < units; ++i) main += fmt::format("  s += work{}(1000);\n", i);
  main += "  printf(\"%f\\n\", s); return 0; }\n";
  std::ofstream(dir / "main.c") << main;
  std::ofstream(dir / "Makefile") << "OBJS := $(patsubst %.c,%.o,$(wildcard *.c))\n"
                                     "app: $(OBJS)\n\t$(CC) -o $@ $(OBJS) -lm\n"
                                     "%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n";
  return dir.string();
}

TEST(RecordWorkloads, AMakeOfACProjectReplaysFaithfully) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  if (::access("/usr/bin/make", X_OK) != 0 || ::access("/usr/bin/cc", X_OK) != 0) GTEST_SKIP() << "no make or cc";
  const auto dir = c_project(12);
  expect_faithful(record_and_replay({"make", "-s", "-j2", "-C", dir}, 0.2));
}

TEST(RecordWorkloads, APythonScriptWithAThreadPoolAndAForkedProcessPoolReplaysFaithfully) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  const auto script = testing::temp_file(
      "pool.py",
      "import json, multiprocessing as mp, concurrent.futures as cf\n"
      "def job(n):\n    return len(json.dumps({str(i): [i, i * 0.5, 'x' * (i % 40)] for i in range(n)}))\n"
      "if __name__ == '__main__':\n"
      "    with cf.ThreadPoolExecutor(2) as ex: a = list(ex.map(job, [20000] * 4))\n"
      "    with mp.get_context('fork').Pool(2) as p: b = p.map(job, [20000] * 8)\n"
      "    print(a[0], b[0])\n");
  expect_faithful(record_and_replay({"python3", script}, 0.2));
}

TEST(RecordWorkloads, AForkingServerReplaysFaithfully) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  const auto script = testing::temp_file(
      "server.py",
      "import socketserver, socket, threading\n"
      "class H(socketserver.BaseRequestHandler):\n"
      "    def handle(self):\n"
      "        buf = bytearray(256 * 1024)\n"
      "        for i in range(0, len(buf), 4096): buf[i] = 1\n"
      "        self.request.sendall(self.request.recv(64).upper())\n"
      "srv = socketserver.ForkingTCPServer(('127.0.0.1', 0), H)\n"
      "threading.Thread(target=srv.serve_forever, daemon=True).start()\n"
      "for i in range(60):\n"
      "    with socket.create_connection(srv.server_address) as c: c.sendall(b'hi'); c.recv(64)\n"
      "srv.shutdown(); srv.server_close()\n");
  expect_faithful(record_and_replay({"python3", script}, 0.3));
}

TEST(Record, AProgramUnderMlockallReplaysWithEveryMappingLockedAndFaultedIn) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  const auto t = record_and_replay({RMAPKIT_RECORD_PROBE, "700", "mlockall"}, 0.25);
  EXPECT_EQ(t.recorded.exit_status, 0);
  EXPECT_EQ(t.recorded.lost, 0U);
  EXPECT_GE(t.snapshots, 2U);
  EXPECT_EQ(t.replayed.applied.at("lock-all"), 1U);
  EXPECT_TRUE(t.replayed.refused.empty()) << t.replayed.first_refusals.front();
  EXPECT_TRUE(t.replayed.unsupported.empty()) << t.replayed.unsupported.begin()->first;
  // Every mapping is faulted in whole, file ones too: no page-cache holes to excuse.
  for (const auto& d : t.differences) ADD_FAILURE() << d.cause << ": " << d.text;
}

TEST(Record, ACommandThatCannotRunEndsTheRecordingWithItsStatus) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  const auto t = record_and_replay({"/nonexistent/command"}, 1.0);
  EXPECT_EQ(t.recorded.exit_status, 127);
  EXPECT_EQ(t.snapshots, 0U);
  EXPECT_EQ(t.replayed.events, 0U) << "nothing of the recorder's own child before exec is in the trace";
}

TEST(Record, TheToolRecordsAndReplays) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  const auto path = testing::temp_file("probe.rtrace", "");
  auto o = testing::run(
      {testing::rmapkit_bin(), "record", "--check-every", "0.25", "-o", path, "--", RMAPKIT_RECORD_PROBE, "600"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("rmapkit record: "), std::string::npos) << o.err;
  auto r = testing::run({testing::rmapkit_bin(), "replay", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied: "), std::string::npos) << r.out;
}

// ---- the kernel runner recorded: the corpus read back from its recordings ------------------

/// What a statement is, for the slice: its kind, and the mapping, advice or report it names.
std::string feature_of(const scenario::op& o) {
  if (const auto* m = std::get_if<scenario::op_mmap>(&o.body)) return fmt::format("mmap {}", static_cast<int>(m->kind));
  if (const auto* a = std::get_if<scenario::op_madvise>(&o.body))
    return fmt::format("madvise {}", scenario::to_string(a->advice));
  if (const auto* c = std::get_if<scenario::op_check>(&o.body)) return fmt::format("check {} {}", c->smaps, c->flags);
  return fmt::format("op {}", o.body.index());
}

/// The corpus scenarios that between them make every kind of statement the corpus makes
/// (the first of each, in the corpus's order), and the ones that pinned a recorder bug: each
/// recording costs about 1.5 s of perf set-up, so the whole corpus is a loop users run
/// (docs/rtrace.md).
std::vector<std::string> recorded_slice() {
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (const auto& name : testing::corpus_names(RMAPKIT_SCENARIO_DIR)) {
    // A memfd's size is known from its mappings, and an mremap that grows one is no MMAP2.
    if (name == "24_mremap_file_grow_shrink") {
      out.push_back(name);
      continue;
    }
    auto parsed = scenario::parse_file(std::string(RMAPKIT_SCENARIO_DIR) + "/" + name + ".rmap");
    if (!parsed) continue;  // the corpus test names it
    auto prog = scenario::resolve(*parsed);
    if (!prog) continue;
    bool adds = false;
    for (const auto& o : prog->ops) adds |= seen.insert(feature_of(o)).second;
    if (adds) out.push_back(name);
  }
  return out;
}

class RecordCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordCorpus, ARecordingOfTheKernelRunnerReplaysToTheExpectedReport) {
  if (auto why = record_unavailable()) GTEST_SKIP() << *why;
  if (auto why = testing::kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run: " << why;
  const auto base = std::string(RMAPKIT_SCENARIO_DIR) + "/" + GetParam();
  const auto expected = testing::slurp(base + ".expected");
  const auto trace = testing::temp_file(GetParam() + ".rtrace", "");
  auto rec = testing::run(
      {testing::rmapkit_bin(), "record", "-o", trace, "--", testing::rmapkit_bin(), "kernel", base + ".rmap"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  ASSERT_EQ(rec.out, expected) << "the kernel's own report: the corpus test says why";
  auto rep = testing::run({testing::rmapkit_bin(), "replay", trace, "--scenario", base + ".rmap"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_EQ(rep.out, expected) << rep.err;
}

INSTANTIATE_TEST_SUITE_P(Slice, RecordCorpus, ::testing::ValuesIn(recorded_slice()),
                         [](const auto& tp) { return tp.param; });

TEST(RecordCorpusSlice, CoversEveryKindOfStatementWithAFewScenarios) {
  const auto slice = recorded_slice();
  EXPECT_GE(slice.size(), 10U);
  EXPECT_LE(slice.size(), 40U) << "a slice, not the corpus";
}

}  // namespace
}  // namespace rmapkit::replay
