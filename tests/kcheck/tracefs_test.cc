// The kernel's share of a statement's time (rmapkit bench --kernel-share) read from trace
// lines: which spans count and which do not. The lines are the format of a tracefs
// instance's trace_pipe with trace_clock mono, as Linux 6.18 prints them.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <sys/syscall.h>

#include "kcheck/tracefs.h"

namespace rmapkit::kcheck {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr nanoseconds at(long sec, long usec) { return seconds(sec) + microseconds(usec); }

// A fork in agent 100: its clone's entry and return; the child (101) returns from the same
// clone without entering it; then an unrelated syscall that is not measured.
const std::string fork_trace =
    "   rmapkit-agent-100     [001] ..... 50.000010: sys_enter: NR 56 (1200011, 0, 0, 7f, 0, 0)\n"
    "   rmapkit-agent-100     [001] ..... 50.000020: mmap_lock_start_locking: mm=0000a memcg_id=7 write=true\n"
    "   rmapkit-agent-100     [001] ..... 50.000400: mmap_lock_released: mm=0000a memcg_id=7 write=true\n"
    "   rmapkit-agent-100     [001] ..... 50.000460: sys_exit: NR 56 = 101\n"
    "   rmapkit-agent-101     [000] ..... 50.000470: sys_exit: NR 56 = 0\n"
    "   rmapkit-agent-100     [001] ..... 50.000500: sys_enter: NR 11 (7f0000, 1000)\n"
    "   rmapkit-agent-100     [001] ..... 50.000530: sys_exit: NR 11 = 0\n";

TEST(KernelShare, AForksCloneIsTimedFromEntryToReturnInTheParent) {
  auto s = parse_trace_spans(fork_trace, {SYS_clone, SYS_clone3}, at(50, 0), at(51, 0));
  ASSERT_EQ(s.syscalls.size(), 1U);
  EXPECT_EQ(s.syscalls[0], microseconds(450));
  EXPECT_TRUE(s.exit_mmaps.empty());
}

TEST(KernelShare, OnlyTheStatementsSystemCallsCount) {
  auto s = parse_trace_spans(fork_trace, {SYS_munmap}, at(50, 0), at(51, 0));
  ASSERT_EQ(s.syscalls.size(), 1U);
  EXPECT_EQ(s.syscalls[0], microseconds(30));
}

TEST(KernelShare, ASpanOutsideTheStatementsWindowDoesNotCount) {
  // The window ends before the clone returns, and begins after the munmap entered.
  EXPECT_TRUE(parse_trace_spans(fork_trace, {SYS_clone}, at(50, 0), at(50, 450)).syscalls.empty());
  EXPECT_TRUE(parse_trace_spans(fork_trace, {SYS_munmap}, at(50, 510), at(51, 0)).syscalls.empty());
}

// An exit: sched_process_exit comes first on 6.18; a short read lock (not exit_mmap), then
// exit_mmap's read lock for the unmap and its write lock for the page tables and VMAs.
const std::string exit_trace =
    "   rmapkit-agent-101     [000] ..... 60.000100: sched_process_exit: comm=rmapkit-agent pid=101 prio=120 "
    "group_dead=true\n"
    "   rmapkit-agent-101     [000] ..... 60.000101: mmap_lock_start_locking: mm=0000b memcg_id=7 write=false\n"
    "   rmapkit-agent-101     [000] ..... 60.000102: mmap_lock_released: mm=0000b memcg_id=7 write=false\n"
    "   rmapkit-agent-101     [000] ..... 60.000110: mmap_lock_start_locking: mm=0000b memcg_id=1 write=false\n"
    "   rmapkit-agent-101     [000] ..... 60.000300: mmap_lock_released: mm=0000b memcg_id=1 write=false\n"
    "   rmapkit-agent-101     [000] ..... 60.000300: mmap_lock_start_locking: mm=0000b memcg_id=1 write=true\n"
    "   rmapkit-agent-101     [000] ..... 60.000420: mmap_lock_released: mm=0000b memcg_id=1 write=true\n";

TEST(KernelShare, AnExitIsTimedFromExitMmapsReadLockToItsWriteLocksRelease) {
  auto s = parse_trace_spans(exit_trace, {}, at(60, 0), at(61, 0));
  EXPECT_TRUE(s.syscalls.empty());
  ASSERT_EQ(s.exit_mmaps.size(), 1U);
  EXPECT_EQ(s.exit_mmaps[0], microseconds(310));
}

TEST(KernelShare, LocksOfAProcessThatDidNotExitAreNoExitMmap) {
  // The same locks without sched_process_exit: a process at work (the fork above).
  std::string locks = exit_trace.substr(exit_trace.find('\n') + 1);
  EXPECT_TRUE(parse_trace_spans(locks, {}, at(60, 0), at(61, 0)).exit_mmaps.empty());
  EXPECT_TRUE(parse_trace_spans(fork_trace, {}, at(50, 0), at(51, 0)).exit_mmaps.empty());
}

TEST(KernelShare, LinesItCannotReadAreSkipped) {
  auto s = parse_trace_spans(
      "# tracer: nop\n\ngarbage line\n" + fork_trace + "   x-1 [000] ..... 70.1: sys_exit: NR 56\n", {SYS_clone},
      at(50, 0), at(80, 0));
  ASSERT_EQ(s.syscalls.size(), 1U);
  EXPECT_EQ(s.syscalls[0], microseconds(450));
}

TEST(KernelShare, MeasuresTheSystemCallStatementsForkAndExitOnly) {
  for (const char* k :
       {"mmap", "munmap", "mprotect", "madvise", "mremap", "mremap-move", "mlock", "munlock", "fork", "exit"})
    EXPECT_TRUE(time_tracer::measures(k)) << k;
  for (const char* k : {"spawn", "file", "write", "read", "ksm", "reclaim", "check", "report", "thp", "shrink"})
    EXPECT_FALSE(time_tracer::measures(k)) << k;
}

}  // namespace
}  // namespace rmapkit::kcheck
