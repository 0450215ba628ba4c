// Hard and big inputs (issue 17): what wraps round, what the kernel refuses and what
// would make rmapkit hold unbounded memory is a FILE:LINE error before anything runs.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::scenario {
namespace {

/// The error of @text, or "" when it resolves.
std::string error_of(const std::string& text) {
  auto sc = parse(text, "t.rmap");
  if (!sc) return sc.error().str();
  auto prog = resolve(*sc);
  return prog ? std::string() : prog.error().str();
}

TEST(Limits, MmapOffsetThatWrapsIsEoverflow) {
  EXPECT_EQ(error_of("file F pages=4\nspawn P\nP: mmap A file F private pages=2 offset=18446744073709551614\n"),
            "t.rmap:3: mmap: offset=18446744073709551614 pages=2 ends beyond the largest file offset "
            "(2251799813685247 pages): the kernel refuses it (EOVERFLOW)");
}

TEST(Limits, MmapOffsetAtTheKernelsLimit) {
  // The kernel accepts offset + pages = 2^51 - 1 (it would fault beyond the file), refuses 2^51.
  EXPECT_EQ(error_of("file F pages=4\nspawn P\nP: mmap A file F private pages=2 offset=2251799813685245\n"),
            "t.rmap:3: mmap: offset=2251799813685245 pages=2 reaches beyond file F (4 pages)");
  EXPECT_EQ(error_of("file F pages=4\nspawn P\nP: mmap A file F private pages=2 offset=2251799813685246\n"),
            "t.rmap:3: mmap: offset=2251799813685246 pages=2 ends beyond the largest file offset "
            "(2251799813685247 pages): the kernel refuses it (EOVERFLOW)");
  // Page 2^52 + 1 is byte offset 4096 once multiplied: it must not map page 1.
  EXPECT_NE(error_of("file F pages=4\nspawn P\nP: mmap A file F private pages=2 offset=4503599627370497\n"), "");
  EXPECT_EQ(error_of("file F pages=4\nspawn P\nP: mmap A file F private pages=2 offset=2\n"), "");
}

TEST(Limits, PageIndexThatWrapsIsOutsideTheRegion) {
  const std::string head = "spawn P\nP: mmap A anon private pages=2\n";
  EXPECT_EQ(error_of(head + "P: read A[18446744073709551615]\n"),
            "t.rmap:3: read: page A[18446744073709551615] outside region A (2 pages)");
  EXPECT_EQ(error_of(head + "P: write A[18446744073709551615]\n"),
            "t.rmap:3: write: page A[18446744073709551615] outside region A (2 pages)");
  EXPECT_EQ(error_of(head + "P: munmap A[18446744073709551615]\n"),
            "t.rmap:3: munmap: page A[18446744073709551615] outside region A (2 pages)");
  EXPECT_EQ(error_of(head + "P: read A[2]\n"), "t.rmap:3: read: page A[2] outside region A (2 pages)");
  EXPECT_EQ(error_of(head + "P: read A[1]\n"), "");
}

TEST(Limits, LongTokensAreShortenedInErrors) {
  const std::string token(4000, 'x');
  auto e = error_of("spawn P\nP: " + token + "\n");
  EXPECT_EQ(e, "t.rmap:2: unknown statement '" + std::string(40, 'x') + "…(4000 bytes)'");
  auto n = error_of("spawn P\nP: mmap A anon private pages=" + std::string(500, '9') + "\n");
  EXPECT_EQ(n, "t.rmap:2: bad number '" + std::string(40, '9') + "…(500 bytes)' for pages");
}

TEST(Limits, LongLineIsAnError) {
  EXPECT_EQ(error_of("spawn P\n#" + std::string(MAX_LINE_BYTES, 'c') + "\n"),
            "t.rmap:2: line of 4097 bytes is too long (a line may be at most 4096 bytes)");
  EXPECT_EQ(error_of("spawn P\n#" + std::string(MAX_LINE_BYTES - 1, 'c') + "\n"), "");
}

TEST(Limits, ScenarioLargerThanTheCapIsAnError) {
  std::string text(MAX_SCENARIO_BYTES + 1, '\n');
  EXPECT_EQ(error_of(text), "t.rmap: larger than a scenario may be (64 MiB at most)");
}

TEST(Limits, FileNameLongerThanMemfdTakesIsAnError) {
  const std::string ok(243, 'f'), too_long(244, 'f');
  EXPECT_EQ(error_of("file " + ok + " pages=1\n"), "");
  EXPECT_EQ(error_of("file " + too_long + " pages=1\n"),
            "t.rmap:1: file: a name of 244 bytes is too long (at most 243): the kernel refuses a memfd name over 249 "
            "bytes (EINVAL), and the kernel runner adds 6");
}

TEST(Limits, ProcessesAliveAtOnceAreBounded) {
  std::string text;
  for (std::uint64_t i = 0; i < MAX_LIVE_PROCESSES; ++i) text += "spawn P" + std::to_string(i) + "\n";
  EXPECT_EQ(error_of(text + "P0: exit\nspawn Q\n"), "");  // one exited: room for one more
  EXPECT_EQ(error_of(text + "P0: fork C\n"),
            "t.rmap:16385: fork: C would be process 16385 alive at once (at most 16384): fork fails with EAGAIN "
            "beyond the kernel's pid_max");
}

TEST(Limits, VmasOfOneProcessAreBounded) {
  // mprotect of every other page splits a region into one VMA a page.
  std::string text = "spawn P\nP: mmap A anon private pages=140000\n";
  for (int i = 0; i < 140000; i += 2) text += "P: mprotect A[" + std::to_string(i) + "] r\n";
  auto e = error_of(text);
  EXPECT_EQ(e,
            "t.rmap:32503: process P would have 65002 VMAs (at most 65000): the kernel refuses more than "
            "vm.max_map_count (ENOMEM)");
  // Put back, the VMAs merge again: 60,000 VMAs, merged, then 30,000 holes stay under the limit.
  std::string undo = "spawn P\nP: mmap A anon private pages=100000\n";
  for (int i = 0; i < 60000; i += 2) undo += "P: mprotect A[" + std::to_string(i) + "] r\n";
  for (int i = 0; i < 60000; i += 2) undo += "P: mprotect A[" + std::to_string(i) + "] rw\n";
  for (int i = 0; i < 60000; i += 2) undo += "P: munmap A[" + std::to_string(i) + "]\n";
  EXPECT_EQ(error_of(undo), "");
}

TEST(Limits, SlotsEndBelowTheAgentsExecutable) {
  // The kernel loads a PIE agent at 0x555555554000 and up: a slot there fails with EEXIST.
  EXPECT_EQ(MAX_SLOTS, 70997U);
  EXPECT_LE(slot_start(MAX_SLOTS).value, 0x555555554000U);
  std::string text = "spawn P\nP: mmap A anon private pages=1\n";
  for (std::uint64_t i = 1; i < MAX_SLOTS; ++i) text += "P: mremap A move\n";
  EXPECT_EQ(error_of(text), "");
  EXPECT_EQ(error_of(text + "P: mremap A move\n"), "t.rmap:70999: too many regions (at most 70997 slots)");
}

TEST(Limits, HugeUntouchedRegionsCostTheResolverLittle) {
  // 60,000 regions of 262,143 pages: 15.7 billion pages, each page's state once kept apart.
  std::string text = "spawn P\n";
  for (int i = 0; i < 60000; ++i) text += "P: mmap R" + std::to_string(i) + " anon private pages=262143\n";
  text += "P: mprotect R0[5:7] r\nP: fork C\nP: munmap R1[3]\n";
  EXPECT_EQ(error_of(text), "");
}

TEST(Limits, FrameBoundCountsPagesHeldAtOnce) {
  // A 256 MiB region written 20 times holds 256 MiB, not 5 GiB: the swap file and the
  // kernel back end's memory cap go by it.
  std::string text = "spawn P\nP: mmap A anon private pages=65536\n";
  for (int i = 0; i < 20; ++i) text += "P: write A\n";
  auto sc = parse(text + "P: fork C\nC: exit\n", "t.rmap");
  ASSERT_TRUE(sc);
  auto prog = resolve(*sc);
  ASSERT_TRUE(prog) << prog.error().str();
  EXPECT_EQ(prog->page_bound, 20U * 65536);
  EXPECT_EQ(prog->mapped_peak, 2U * 65536);  // with the child
  EXPECT_EQ(prog->frame_bound(), 2U * 65536);
  EXPECT_EQ(prog->live_process_peak, 2U);
}

}  // namespace
}  // namespace rmapkit::scenario
