// rmapkit record on the live kernel: a program with anonymous, heap, file, thread and
// fork activity (tests/replay/record_probe.cc) is recorded with cuts while it sleeps, and its
// replay on the model agrees with every cut — every VMA, and every page but the file pages
// fault-around maps where the kernel's page cache had none (a known cause: the model
// assumes a warm cache). Skips, saying why, where recording cannot run.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/replay/record.h"
#include "rmapkit/replay/replay.h"
#include "support/subprocess.h"

namespace rmapkit::replay {
namespace {

struct replayed_trace {
  record_stats recorded;
  replay_stats replayed;
  std::size_t snapshots = 0;
  std::vector<difference> differences;
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
  replayer r({"linux-6", true});
  while (auto rec = rd.next()) {
    if (const auto* want = std::get_if<ev_snapshot>(&rec->ev)) {
      ++out.snapshots;
      for (auto& d : compare(*want, r.take(want->label))) out.differences.push_back(std::move(d));
    } else {
      r.apply(*rec);
    }
  }
  out.replayed = r.stats();
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
  for (const auto& d : t.differences) {
    const bool cache_hole = d.cause == "page-extra" && d.text.find(" is file in the replay") != std::string::npos;
    EXPECT_TRUE(cache_hole) << d.cause << ": " << d.text;
  }
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

}  // namespace
}  // namespace rmapkit::replay
