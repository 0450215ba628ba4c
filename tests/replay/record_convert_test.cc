// The recorder's conversion of perf records and /proc cuts into a trace, without the
// kernel: perf items and raw cuts made by hand go in, a text trace comes out, and the
// replay of that trace must agree with its own cuts.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "replay/record_internal.h"
#include "rmapkit/replay/replay.h"
#include "rmapkit/replay/rtrace.h"

namespace rmapkit::replay {
namespace {

constexpr std::uint64_t CLONE_VM_FLAG = 0x100, CLONE_VFORK_FLAG = 0x4000;  // <sched.h>'s values
constexpr tid_t ROOT = 100, CHILD = 101;
const std::vector<tracepoint_desc> TPS{{"task:task_newtask", 1, {}}};

item exec_of(tid_t t, nsec_t time) {
  item it;
  it.what = item::kind::exec;
  it.time = time;
  it.pid = it.tid = t;
  return it;
}

/// The task_newtask tracepoint (which the conversion reads clone flags from) and the
/// side band's FORK record of @child, a new process of @parent.
std::vector<item> spawn(tid_t parent, tid_t child, std::uint64_t flags, nsec_t time) {
  item tp;
  tp.what = item::kind::tracepoint;
  tp.time = time;
  tp.pid = tp.tid = parent;
  tp.tp = 0;
  tp.v = {child, flags};
  item fork;
  fork.what = item::kind::fork;
  fork.time = time + 1;
  fork.pid = fork.tid = child;
  fork.v = {parent, parent};
  return {tp, fork};
}

/// @pids each showing the same empty address space but for one anonymous VMA.
raw_snapshot cut(nsec_t time, std::vector<tid_t> pids) {
  raw_snapshot s;
  s.time = time;
  for (tid_t p : pids) {
    kcheck::maps_entry v;
    v.start = vaddr_t{0x7f0000000000};
    v.end = vaddr_t{0x7f0000002000};
    v.perms = "rw-p";
    s.processes.push_back({p, {v}, {}});
  }
  return s;
}

std::vector<ev_snapshot> snapshots_of(const std::string& trace) {
  std::istringstream in(trace);
  reader r(in, "converted");
  std::vector<ev_snapshot> out;
  while (auto rec = r.next())
    if (const auto* s = std::get_if<ev_snapshot>(&rec->ev)) out.push_back(*s);
  return out;
}

std::string converted(std::vector<item> items, std::vector<raw_snapshot> cuts) {
  std::ostringstream out;
  writer w(out, encoding::text, header{"test", PAGE_SIZE, "record_convert_test"});
  record_stats st;
  convert_recording(ROOT, TPS, std::move(items), std::move(cuts), w, st);
  return out.str();
}

TEST(RecordConvert, AVforkChildBeforeItsExecIsItsParentsAddressSpaceNotASecondOne) {
  // posix_spawn() (make, a shell) is clone(CLONE_VM | CLONE_VFORK): until the child's execve
  // /proc shows the parent's mm under both processes, and a cut can land in that window.
  std::vector<item> items{exec_of(ROOT, 10)};
  for (auto& it : spawn(ROOT, CHILD, CLONE_VM_FLAG | CLONE_VFORK_FLAG, 20)) items.push_back(it);
  items.push_back(exec_of(CHILD, 40));
  const auto trace = converted(items, {cut(30, {CHILD, ROOT}), cut(50, {ROOT, CHILD})});
  const auto snaps = snapshots_of(trace);
  ASSERT_EQ(snaps.size(), 2U);
  ASSERT_EQ(snaps[0].processes.size(), 1U) << "one mm, one process\n" << trace;
  EXPECT_EQ(snaps[0].processes[0].tid, ROOT) << "under the lowest tid that has it";
  ASSERT_EQ(snaps[1].processes.size(), 2U) << "after its execve the child has its own mm\n" << trace;
  EXPECT_EQ(snaps[1].processes[1].tid, CHILD);
}

TEST(RecordConvert, AForkChildIsAnAddressSpaceOfItsOwn) {
  std::vector<item> items{exec_of(ROOT, 10)};
  for (auto& it : spawn(ROOT, CHILD, 0, 20)) items.push_back(it);
  const auto snaps = snapshots_of(converted(items, {cut(30, {ROOT, CHILD})}));
  ASSERT_EQ(snaps.size(), 1U);
  ASSERT_EQ(snaps[0].processes.size(), 2U);
  EXPECT_EQ(snaps[0].processes[0].tid, ROOT);
  EXPECT_EQ(snaps[0].processes[1].tid, CHILD);
}

}  // namespace
}  // namespace rmapkit::replay
