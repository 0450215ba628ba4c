// The scenario language: what parses, into what, and every kind of mistake the spec
// names, with its exact FILE:LINE message.
#include <gtest/gtest.h>

#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::scenario {
namespace {

tl::expected<program, diag> load(const std::string& text) {
  auto sc = parse(text, "t.rmap");
  if (!sc) return tl::make_unexpected(sc.error());
  return resolve(*sc);
}

TEST(Parser, EveryStatementParses) {
  const char* text = R"(# a comment line
file F pages=0x20        # hex numbers
spawn P
P: mmap A anon private pages=8 prot=r
P: mmap B anon shared pages=4
P: mmap C file F private pages=16 offset=16 prot=none
P: mmap D file F shared pages=2
P : read A[1]
P: write B value=255
P: write B[1:3]
P: fork C1
C1: exit
P: munmap A[7]
P: mprotect A[0:2] rw
P: mremap D pages=1
P: mremap D move
P: madvise B[0] mergeable
P: mlock B
P: munlock B
ksm
ksm prune
reclaim
check
check LABEL_1
)";
  auto prog = load(text);
  ASSERT_TRUE(prog) << prog.error().str();
  EXPECT_EQ(prog->ops.size(), 23U);
  EXPECT_FALSE(std::get<op_ksm>(prog->ops[18].body).prune);
  EXPECT_TRUE(std::get<op_ksm>(prog->ops[19].body).prune);
  EXPECT_TRUE(prog->needs_machine_lock);
  EXPECT_TRUE(prog->needs_swap);
  EXPECT_TRUE(prog->needs_ksm);
  EXPECT_EQ(prog->process_names, (std::vector<std::string>{"P", "C1"}));
  const auto& mmap_c = std::get<op_mmap>(prog->ops[4].body);
  EXPECT_EQ(mmap_c.base, slot_start(2));
  EXPECT_EQ(mmap_c.offset, 16U);
  EXPECT_EQ(mmap_c.prot, prot::none);
  EXPECT_EQ(mmap_c.kind, map_kind::file_private);
  const auto& write = std::get<op_write>(prog->ops[8].body);
  EXPECT_EQ(write.span.start, page_addr(slot_start(1), 1));
  EXPECT_EQ(write.span.pages, 2U);
  const auto& move = std::get<op_mremap_move>(prog->ops[14].body);
  EXPECT_EQ(move.old_base, slot_start(3));
  EXPECT_EQ(move.new_base, slot_start(4));  // the next unused slot
  EXPECT_EQ(std::get<op_check>(prog->ops.back().body).label, "LABEL_1");
  EXPECT_EQ(prog->ops[6].text, "P : read A[1]");
  for (const auto& o : prog->ops)
    if (const auto* c = std::get_if<op_check>(&o.body)) {
      EXPECT_FALSE(c->smaps) << "no report smaps: no smaps";
    }
}

TEST(Parser, Version2StatementsParseAndMarkTheProgram) {
  auto sc = parse(
      "thp anon=16k,64k,2m shmem=2m\n"
      "spawn P\n"
      "P: mmap A anon private pages=1024 huge\n"
      "P: mmap B anon shared pages=512 huge prot=r noreserve\n"
      "P: mmap C anon private pages=4\n"
      "P: write A[3]\n"
      "P: madvise A collapse\n"
      "shrink\n",
      "t.rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  auto prog = resolve(*sc);
  ASSERT_TRUE(prog) << prog.error().str();
  ASSERT_TRUE(prog->thp);
  EXPECT_EQ(prog->thp->anon_orders, (1U << 2) | (1U << 4) | (1U << 9));
  EXPECT_EQ(prog->thp->shmem_orders, 1U << 9);
  EXPECT_EQ(thp_sizes_text(prog->thp->anon_orders), "16k,64k,2m");
  EXPECT_EQ(thp_sizes_text(0), "none");
  EXPECT_TRUE(prog->needs_machine_lock) << "the THP knobs are machine-wide";
  EXPECT_TRUE(prog->needs_shrink);
  EXPECT_TRUE(std::get<op_mmap>(prog->ops[2].body).huge);
  EXPECT_TRUE(std::get<op_mmap>(prog->ops[3].body).huge);
  EXPECT_TRUE(std::get<op_mmap>(prog->ops[3].body).noreserve);
  EXPECT_FALSE(std::get<op_mmap>(prog->ops[4].body).huge);
  EXPECT_EQ(std::get<op_madvise>(prog->ops[6].body).advice, advice::collapse);
  EXPECT_TRUE(std::holds_alternative<op_shrink>(prog->ops[7].body));
  EXPECT_EQ(statement_kind(prog->ops[0]), "thp");
  EXPECT_EQ(statement_kind(prog->ops[7]), "shrink");
  // A one-page write in a huge region may allocate a whole PMD's worth.
  EXPECT_GE(prog->page_bound, 512U);
}

TEST(Parser, AScenarioWithoutThpIsVersion1) {
  auto sc = parse("spawn P\nP: mmap A anon private pages=4\nP: write A\nshrink\n", "t.rmap");
  ASSERT_TRUE(sc);
  auto prog = resolve(*sc);
  ASSERT_TRUE(prog) << prog.error().str();
  EXPECT_FALSE(prog->thp);
  EXPECT_EQ(prog->page_bound, 4U);
}

TEST(Parser, ClearRefsTakesTheKernelsTypesAndReportSmapsTurnsOnLaterChecks) {
  auto prog = load(
      "spawn P\ncheck before\nP: clear_refs\nP: clear_refs all\nP: clear_refs anon\n"
      "P: clear_refs file\nreport smaps\ncheck after\n");
  ASSERT_TRUE(prog) << prog.error().str();
  ASSERT_EQ(prog->ops.size(), 8U);
  // The values /proc/PID/clear_refs takes: 1 all, 2 anonymous, 3 file-backed.
  const clear_refs_type want[] = {clear_refs_type::all, clear_refs_type::all, clear_refs_type::anon,
                                  clear_refs_type::file};
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(std::get<op_clear_refs>(prog->ops[2 + i].body).type, want[i]);
  EXPECT_EQ(static_cast<int>(clear_refs_type::anon), 2);
  EXPECT_FALSE(std::get<op_check>(prog->ops[1].body).smaps);
  EXPECT_TRUE(std::get<op_check>(prog->ops[7].body).smaps);
  EXPECT_FALSE(prog->needs_machine_lock) << "clear_refs touches one process only";
  EXPECT_EQ(statement_kind(prog->ops[2]), "clear_refs");
  EXPECT_EQ(statement_kind(prog->ops[6]), "report");
  EXPECT_FALSE(std::get<op_check>(prog->ops[7].body).flags);
  report_smaps_everywhere(*prog);
  EXPECT_TRUE(std::get<op_check>(prog->ops[1].body).smaps);
  report_flags_everywhere(*prog);
  EXPECT_TRUE(std::get<op_check>(prog->ops[1].body).flags);
  auto both = load("report smaps flags\ncheck\n");
  ASSERT_TRUE(both) << both.error().str();
  EXPECT_TRUE(std::get<op_check>(both->ops[1].body).smaps && std::get<op_check>(both->ops[1].body).flags);
}

TEST(Parser, CheckListsLiveProcessesAndRegionsInByteOrder) {
  auto prog = load(
      "spawn b\nspawn B\nspawn a\nb: mmap Z anon private pages=1\nb: mmap Y anon private pages=1\n"
      "a: exit\ncheck\n");
  ASSERT_TRUE(prog) << prog.error().str();
  const auto& c = std::get<op_check>(prog->ops.back().body);
  ASSERT_EQ(c.processes.size(), 2U);
  EXPECT_EQ(c.processes[0].name, "B");  // 'B' < 'b' in byte order; a has exited
  EXPECT_EQ(c.processes[1].name, "b");
  ASSERT_EQ(c.processes[1].regions.size(), 2U);
  EXPECT_EQ(c.processes[1].regions[0].name, "Y");
}

TEST(Parser, ForkedChildInheritsRegionsButNotDontforkPages) {
  auto prog = load(
      "spawn P\nP: mmap A anon private pages=4\nP: madvise A[1] dontfork\nP: fork C\nC: read A[0]\n"
      "C: read A[1]\n");
  ASSERT_FALSE(prog);
  EXPECT_EQ(prog.error().str(), "t.rmap:6: read: A[1] is a hole (not mapped)");
}

struct bad_case {
  const char* name;
  const char* text;
  const char* message;  // the whole diag line
};

class BadInput : public ::testing::TestWithParam<bad_case> {};

TEST_P(BadInput, IsRejectedWithItsLineAndReason) {
  auto prog = load(GetParam().text);
  ASSERT_FALSE(prog) << "accepted: " << GetParam().text;
  EXPECT_EQ(prog.error().str(), GetParam().message);
}

// Every kind of mistake of the spec's "Errors" paragraph and "Rules", and the kernel
// refusals the scenario's own history decides.
const bad_case bad_cases[] = {
    {"unknown_statement", "spawn P\nfrobnicate\n", "t.rmap:2: unknown statement 'frobnicate'"},
    {"ksm_bad_word", "ksm now\n", "t.rmap:1: ksm: unexpected 'now' (only 'prune' may follow)"},
    {"clear_refs_bad_type", "spawn P\nP: clear_refs soft\n",
     "t.rmap:2: clear_refs: expected 'all', 'anon' or 'file', got 'soft'"},
    {"clear_refs_two_types", "spawn P\nP: clear_refs anon file\n",
     "t.rmap:2: clear_refs: unexpected 'file' after the type"},
    {"clear_refs_unknown_process", "clear_refs\n", "t.rmap:1: unknown statement 'clear_refs'"},
    {"clear_refs_exited", "spawn P\nP: exit\nP: clear_refs\n", "t.rmap:3: process P has exited"},
    {"report_nothing", "report\n", "t.rmap:1: report: missing argument (what to report: 'smaps', 'flags')"},
    {"report_unknown", "report pagemap\n", "t.rmap:1: report: expected 'smaps' or 'flags', got 'pagemap'"},
    {"report_extra", "report smaps now\n", "t.rmap:1: report: expected 'smaps' or 'flags', got 'now'"},
    {"report_twice", "report flags smaps flags\n", "t.rmap:1: report: 'flags' given twice"},
    {"ksm_prune_and_more", "ksm prune now\n", "t.rmap:1: ksm: unexpected 'now' (only 'prune' may follow)"},
    {"unknown_process_verb", "spawn P\nP: jump A\n", "t.rmap:2: unknown statement 'jump'"},
    {"bad_option", "spawn P\nP: mmap A anon private pages=4 colour=red\n", "t.rmap:2: mmap: unknown option 'colour'"},
    {"option_twice", "spawn P\nP: mmap A anon private pages=4 pages=5\n", "t.rmap:2: mmap: option 'pages' given twice"},
    {"missing_pages", "spawn P\nP: mmap A anon private\n", "t.rmap:2: mmap: missing option pages="},
    {"bad_number", "spawn P\nP: mmap A anon private pages=4x\n", "t.rmap:2: bad number '4x' for pages"},
    {"bad_prot", "spawn P\nP: mmap A anon private pages=4 prot=wx\n",
     "t.rmap:2: bad protection 'wx' (rw, r, none, rx or rwx)"},
    {"bad_advice", "spawn P\nP: mmap A anon private pages=4\nP: madvise A huge\n", "t.rmap:3: unknown advice 'huge'"},
    {"value_not_byte", "spawn P\nP: mmap A anon private pages=4\nP: write A value=256\n",
     "t.rmap:3: write: value=256 is not a byte (0-255)"},
    {"bad_name", "spawn 9P\n", "t.rmap:1: bad process name '9P'"},
    {"two_labels", "check a b\n", "t.rmap:1: check: the label is one name, got 'b' after it"},
    {"empty_range", "spawn P\nP: mmap A anon private pages=4\nP: read A[2:2]\n", "t.rmap:3: empty range 'A[2:2]'"},
    {"bad_range", "spawn P\nP: mmap A anon private pages=4\nP: read A[1\n", "t.rmap:3: bad range 'A[1'"},
    {"extra_argument", "spawn P Q\n", "t.rmap:1: spawn: unexpected 'Q'"},
    {"unknown_process", "spawn P\nQ: mmap A anon private pages=1\n", "t.rmap:2: unknown process Q"},
    {"unknown_region", "spawn P\nP: read A\n", "t.rmap:2: unknown region A in process P"},
    {"unknown_file", "spawn P\nP: mmap A file F shared pages=1\n", "t.rmap:2: mmap: unknown file F"},
    {"page_out_of_range", "spawn P\nP: mmap A anon private pages=2\nP: write A[2]\n",
     "t.rmap:3: write: page A[2] outside region A (2 pages)"},
    {"range_out_of_range", "spawn P\nP: mmap A anon private pages=2\nP: munmap A[1:3]\n",
     "t.rmap:3: munmap: range A[1:3] outside region A (2 pages)"},
    {"page_in_hole", "spawn P\nP: mmap A anon private pages=4\nP: munmap A[1]\nP: read A[0:2]\n",
     "t.rmap:4: read: A[1] is a hole (not mapped)"},
    {"region_too_large", "spawn P\nP: mmap A anon private pages=262144\n",
     "t.rmap:2: mmap: region A of 262144 pages is larger than its slot (at most 262143 pages)"},
    {"grow_too_large", "spawn P\nP: mmap A anon private pages=4\nP: mremap A pages=300000\n",
     "t.rmap:3: mremap: region A of 300000 pages is larger than its slot (at most 262143 pages)"},
    {"exited_process", "spawn P\nP: exit\nP: mmap A anon private pages=1\n", "t.rmap:3: process P has exited"},
    {"reused_process_name", "spawn P\nP: exit\nspawn P\n", "t.rmap:3: name P is already used"},
    {"process_named_like_file", "file F pages=1\nspawn F\n", "t.rmap:2: name F is already used"},
    {"fork_reuses_name", "spawn P\nspawn C\nP: fork C\n", "t.rmap:3: name C is already used"},
    {"reused_region_name", "spawn P\nP: mmap A anon private pages=1\nP: munmap A\nP: mmap A anon private pages=1\n",
     "t.rmap:4: mmap: region name A is already used in process P"},
    {"inherited_region_name", "spawn P\nP: mmap A anon private pages=1\nP: fork C\nC: mmap A anon private pages=1\n",
     "t.rmap:4: mmap: region name A is already used in process C"},
    {"file_beyond_end", "file F pages=4\nspawn P\nP: mmap A file F private pages=4 offset=1\n",
     "t.rmap:3: mmap: offset=1 pages=4 reaches beyond file F (4 pages)"},
    {"zero_pages", "spawn P\nP: mmap A anon private pages=0\n", "t.rmap:2: mmap: region A needs at least one page"},
    {"mremap_shmem", "spawn P\nP: mmap A anon shared pages=4\nP: mremap A pages=8\n",
     "t.rmap:3: mremap: region A is shared anonymous memory: only private anonymous and file regions can be resized"},
    {"mremap_split_region", "spawn P\nP: mmap A anon private pages=4\nP: mprotect A[0] r\nP: mremap A pages=8\n",
     "t.rmap:4: mremap: region A is not one VMA covering pages 0 to 3"},
    {"mremap_beyond_file", "file F pages=4\nspawn P\nP: mmap A file F shared pages=4\nP: mremap A pages=5\n",
     "t.rmap:4: mremap: region A would reach beyond file F (4 pages)"},
    {"move_nothing_left", "spawn P\nP: mmap A anon private pages=2\nP: munmap A\nP: mremap A move\n",
     "t.rmap:4: mremap: region A has no VMA left to move"},
    {"read_prot_none", "spawn P\nP: mmap A anon private pages=2 prot=none\nP: read A[1]\n",
     "t.rmap:3: read: A[1] is prot=none: the access faults (the kernel refuses it)"},
    {"write_prot_r", "spawn P\nP: mmap A anon private pages=2\nP: mprotect A[1] r\nP: write A\n",
     "t.rmap:4: write: A[1] is prot=r: the access faults (the kernel refuses it)"},
    {"dontneed_mlocked", "spawn P\nP: mmap A anon private pages=2\nP: mlock A[1]\nP: madvise A dontneed\n",
     "t.rmap:4: madvise dontneed: A[1] is mlocked: the kernel refuses it (EINVAL)"},
    {"pageout_mlocked", "spawn P\nP: mmap A anon private pages=2\nP: mlock A\nP: madvise A[0] pageout\n",
     "t.rmap:4: madvise pageout: A[0] is mlocked: the kernel refuses it (EINVAL)"},
    {"wipeonfork_file", "file F pages=2\nspawn P\nP: mmap A file F private pages=2\nP: madvise A wipeonfork\n",
     "t.rmap:4: madvise wipeonfork: region A is not private anonymous memory: the kernel refuses it (EINVAL)"},
    {"wipeonfork_shmem", "spawn P\nP: mmap A anon shared pages=2\nP: madvise A wipeonfork\n",
     "t.rmap:3: madvise wipeonfork: region A is not private anonymous memory: the kernel refuses it (EINVAL)"},
    {"mlock_prot_none", "spawn P\nP: mmap A anon private pages=2\nP: mprotect A[0] none\nP: mlock A\n",
     "t.rmap:4: mlock: A[0] is prot=none: the kernel fails such an mlock halfway (ENOMEM)"},
    {"child_lost_dontfork", "spawn P\nP: mmap A anon private pages=2\nP: madvise A dontfork\nP: fork C\nC: write A\n",
     "t.rmap:5: write: A[0] is a hole (not mapped)"},
    {"missing_colon_statement", "spawn P\nP:\n", "t.rmap:2: missing statement after 'P:'"},
    {"mmap_into_with_pages", "spawn P\nP: mmap A anon private pages=4\nP: mmap A[4:8] anon private pages=4\n",
     "t.rmap:3: mmap: a range R[i:j] gives the size; pages= is not allowed with it"},
    {"mmap_into_unknown_region", "spawn P\nP: mmap A anon private pages=4\nP: mmap B[0:2] anon private\n",
     "t.rmap:3: unknown region B in process P"},
    {"mmap_into_empty_range", "spawn P\nP: mmap A anon private pages=4\nP: mmap A[2:2] anon private\n",
     "t.rmap:3: empty range 'A[2:2]'"},
    {"mmap_into_beyond_slot", "spawn P\nP: mmap A anon private pages=4\nP: mmap A[262140:262144] anon private\n",
     "t.rmap:3: mmap: A[262140:262144] reaches beyond the slot of region A (at most 262143 pages)"},
    {"mmap_into_index_wraps", "spawn P\nP: mmap A anon private pages=4\nP: mmap A[18446744073709551615] anon private\n",
     "t.rmap:3: mmap: A[18446744073709551615] reaches beyond the slot of region A (at most 262143 pages)"},
    {"mmap_into_beyond_file",
     "file F pages=4\nspawn P\nP: mmap A anon private pages=4\nP: mmap A[0:4] file F private offset=2\n",
     "t.rmap:4: mmap: offset=2 pages=4 reaches beyond file F (4 pages)"},
    {"mmap_into_exited", "spawn P\nP: mmap A anon private pages=4\nP: exit\nP: mmap A[4:8] anon private\n",
     "t.rmap:4: process P has exited"},
    {"mmap_noreserve_twice", "spawn P\nP: mmap A anon private pages=4 noreserve prot=r noreserve\n",
     "t.rmap:2: mmap: 'noreserve' given twice"},
    // Version 2 (large folios): the errors docs/scenario-format.md names.
    {"mmap_huge_without_thp", "spawn P\nP: mmap A anon private pages=4 huge\n",
     "t.rmap:2: mmap: 'huge' needs a `thp` line before the first mmap (scenario format version 2)"},
    {"mmap_huge_twice", "thp anon=64k\nspawn P\nP: mmap A anon private pages=4 huge huge\n",
     "t.rmap:3: mmap: 'huge' given twice"},
    {"thp_after_mmap", "spawn P\nP: mmap A anon private pages=4\nthp anon=64k\n",
     "t.rmap:3: thp: must come before the first mmap"},
    {"thp_twice", "thp anon=64k\nthp anon=2m\n", "t.rmap:2: thp: given twice (one `thp` line a scenario)"},
    {"thp_unknown_size", "thp anon=64k,8k\n",
     "t.rmap:1: thp: unknown size '8k' in anon= (sizes: 16k 32k 64k 128k 256k 512k 1m 2m, or none)"},
    {"thp_empty_size", "thp anon=64k,\n",
     "t.rmap:1: thp: unknown size '' in anon= (sizes: 16k 32k 64k 128k 256k 512k 1m 2m, or none)"},
    {"thp_size_twice", "thp anon=2m shmem=64k,64k\n", "t.rmap:1: thp: size 64k given twice in shmem="},
    {"thp_without_anon", "thp shmem=64k\n", "t.rmap:1: thp: missing option anon= (sizes such as 64k,2m, or none)"},
    {"thp_unknown_option", "thp anon=64k file=2m\n", "t.rmap:1: thp: unknown option 'file'"},
    {"collapse_without_thp", "spawn P\nP: mmap A anon private pages=4\nP: madvise A collapse\n",
     "t.rmap:3: madvise collapse: needs a `thp` line (scenario format version 2)"},
    {"shrink_with_argument", "shrink now\n", "t.rmap:1: shrink: unexpected 'now'"},
    {"free_file", "file F pages=2\nspawn P\nP: mmap A file F private pages=2\nP: madvise A free\n",
     "t.rmap:4: madvise free: region A is not private anonymous memory: the kernel refuses it (EINVAL)"},
    {"free_locked", "spawn P\nP: mmap A anon private pages=2\nP: mlock A[1]\nP: madvise A free\n",
     "t.rmap:4: madvise free: A[1] is mlocked: the kernel refuses it (EINVAL)"},
    {"cold_locked", "spawn P\nP: mmap A anon private pages=2\nP: mlock A\nP: madvise A[1] cold\n",
     "t.rmap:4: madvise cold: A[1] is mlocked: the kernel refuses it (EINVAL)"},
    {"remove_anon", "spawn P\nP: mmap A anon private pages=2\nP: madvise A remove\n",
     "t.rmap:3: madvise remove: A[0] is not a shared mapping: the kernel refuses it (EINVAL: no file)"},
    {"remove_private_file",
     "file F pages=4\nspawn P\nP: mmap A file F shared pages=4\nP: mmap A[2:4] file F private offset=2\n"
     "P: madvise A remove\n",
     "t.rmap:5: madvise remove: A[2] is not a shared mapping: the kernel refuses it (EACCES: a private mapping)"},
    {"remove_locked", "spawn P\nP: mmap A anon shared pages=2\nP: mlock A[1]\nP: madvise A remove\n",
     "t.rmap:4: madvise remove: A[1] is mlocked: the kernel refuses it (EINVAL)"},
    {"write_rx", "spawn P\nP: mmap A anon private pages=4 prot=rx\nP: write A[1]\n",
     "t.rmap:3: write: A[1] is prot=rx: the access faults (the kernel refuses it)"},
    {"wipeonfork_into_file",
     "file F pages=4\nspawn P\nP: mmap A anon private pages=4\nP: mmap A[2:4] file F private offset=2\n"
     "P: madvise A wipeonfork\n",
     "t.rmap:5: madvise wipeonfork: region A is not private anonymous memory: the kernel refuses it (EINVAL)"},
    {"mremap_into_shmem", "spawn P\nP: mmap A anon private pages=4\nP: mmap A[0:4] anon shared\nP: mremap A pages=8\n",
     "t.rmap:4: mremap: region A is shared anonymous memory: only private anonymous and file regions can be resized"},
};

INSTANTIATE_TEST_SUITE_P(Spec, BadInput, ::testing::ValuesIn(bad_cases),
                         [](const auto& tp) { return std::string(tp.param.name); });

TEST(Parser, MlockIsNotInheritedByFork) {
  // The child's copy is not VM_LOCKED, so dontneed there is allowed.
  auto prog = load("spawn P\nP: mmap A anon private pages=2\nP: mlock A\nP: fork C\nC: madvise A dontneed\n");
  EXPECT_TRUE(prog) << prog.error().str();
}

TEST(Parser, MmapIntoARegionMapsFixedAtItsPageAndGrowsIt) {
  auto prog = load(
      "file F pages=8\nspawn P\nP: mmap A anon private pages=2\nP: mmap A[4:6] file F private offset=1 prot=rx\n"
      "P: read A[4:6]\nP: mremap A move\n");
  ASSERT_TRUE(prog) << prog.error().str();
  const auto& into = std::get<op_mmap>(prog->ops[3].body);
  EXPECT_EQ(into.base, slot_start(0)) << "the region's base, not the mapping's";
  EXPECT_EQ(into.index, 4U);
  EXPECT_EQ(into.start(), page_addr(slot_start(0), 4));
  EXPECT_EQ(into.pages, 2U);
  EXPECT_EQ(into.offset, 1U);
  EXPECT_TRUE(into.fixed);
  EXPECT_EQ(into.prot, prot::rx);
  EXPECT_FALSE(std::get<op_mmap>(prog->ops[2].body).fixed);
  EXPECT_EQ(std::get<op_mremap_move>(prog->ops[5].body).pages, 6U) << "the region grew to 6 pages";

  auto hole = load("spawn P\nP: mmap A anon private pages=2\nP: mmap A[4:6] anon private\nP: read A[3]\n");
  ASSERT_FALSE(hole);
  EXPECT_EQ(hole.error().str(), "t.rmap:4: read: A[3] is a hole (not mapped)");
}

// The file page of a region's page 0 bounds a resize, as mapped into the region last.
TEST(Parser, MremapOfARegionMappedIntoChecksTheFileItMapsNow) {
  auto ok = load(
      "file F pages=8\nspawn P\nP: mmap A anon private pages=4\nP: mmap A[0:4] file F private offset=2\n"
      "P: mremap A pages=6\n");
  EXPECT_TRUE(ok) << ok.error().str();
  auto beyond = load(
      "file F pages=8\nspawn P\nP: mmap A anon private pages=4\nP: mmap A[0:4] file F private offset=2\n"
      "P: mremap A pages=7\n");
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().str(), "t.rmap:5: mremap: region A would reach beyond file F (8 pages)");
}

TEST(Parser, MunmapMayCoverHolesAndGrowKeepsVmaFlags) {
  auto prog = load(
      "spawn P\nP: mmap A anon private pages=4\nP: munmap A[1]\nP: munmap A[0:3]\n"
      "P: mmap B anon private pages=2 prot=r\nP: mremap B pages=4\nP: write B[3]\n");
  ASSERT_FALSE(prog);
  EXPECT_EQ(prog.error().str(), "t.rmap:7: write: B[3] is prot=r: the access faults (the kernel refuses it)");
}

TEST(Parser, MissingFileIsReported) {
  auto sc = parse_file("/nonexistent/x.rmap");
  ASSERT_FALSE(sc);
  EXPECT_EQ(sc.error().str(), "/nonexistent/x.rmap: cannot open: No such file or directory");
}

}  // namespace
}  // namespace rmapkit::scenario
