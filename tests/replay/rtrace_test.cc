// The .rtrace format (docs/rtrace.md): every event survives the text and the binary form
// unchanged, the two forms convert into each other, and malformed input is refused with
// the place and the reason.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/replay/rtrace.h"

namespace rmapkit::replay {
namespace {

std::vector<record> every_kind_of_record() {
  const vaddr_t a{0x7f0000000000};
  ev_snapshot snap{"after the fork", {}};
  snap.processes.push_back({100,
                            {{a, page_addr(a, 4), {true, true, false, false}, false, {}, {}},
                             {page_addr(a, 8), page_addr(a, 9), {true, false, true, true}, false, 3, pgoff_t{7}},
                             {page_addr(a, 9), page_addr(a, 10), {true, true, false, true}, true, {}, {}}},
                            {{a, page_state::anon, 12, true},
                             {page_addr(a, 1), page_state::zero, 0, false},
                             {page_addr(a, 2), page_state::swap, 5, false},
                             {page_addr(a, 3), page_state::ksm, 13, false},
                             {page_addr(a, 8), page_state::file, 14, false}}});
  snap.processes.push_back({101, {}, {}});
  return {
      {0, ev_file{3, 16, "libc.so.6"}},
      {0, ev_exec{100}},
      {5, ev_map{100, a, 4, {true, true, false, false}, {}, {}, false, false}},
      {5, ev_map{100, page_addr(a, 8), 2, {true, false, true, true}, 3, pgoff_t{7}, true, true, false}},
      {5, ev_map{100, page_addr(a, 16), 2049, {false, false, false, false}, {}, {}, false, false, true}},
      {6, ev_fault{100, a, access::write, true, std::nullopt}},
      {6, ev_fault{100, page_addr(a, 1), access::read, false, std::nullopt}},
      {6, ev_fault{100, page_addr(a, 2), access::exec, true, std::uint8_t{0x5a}}},
      {7, ev_protect{100, a, 1, {true, false, false, false}}},
      {8, ev_mremap{100, a, 4, page_addr(a, 100), 8, true}},
      {9, ev_brk{100, vaddr_t{0x555555559010}, vaddr_t{0x55555557a000}}},
      {9, ev_advise{100, a, 4, "dontneed"}},
      {10, ev_lock{100, a, 4, true}},
      {10, ev_lock{100, a, 4, false}},
      {10, ev_lock_all{100, true, true, true, false}},
      {10, ev_lock_all{100, true, false, true, true}},
      {10, ev_lock_all{100, false}},
      {11, ev_fork{100, 101}},
      {11, ev_clone_vm{100, 102}},
      {12, ev_clear_refs{101, "anon"}},
      {12, ev_inject{"ksm-prune"}},
      {13, ev_lost{42}},
      {14, snap},
      {15, ev_unmap{100, a, 4}},
      {19, ev_kmem{36, 30, 66, 59}},
      {20, ev_exit{102}},
  };
}

std::string encode(const std::vector<record>& recs, encoding e, const header& h = {"6.18.44", PAGE_SIZE, "test 1"}) {
  std::ostringstream out;
  writer w(out, e, h);
  for (const auto& r : recs) w.write(r);
  return out.str();
}

std::vector<record> decode(const std::string& bytes, header* h = nullptr, encoding* e = nullptr) {
  std::istringstream in(bytes);
  reader r(in, "t.rtrace");
  if (h) *h = r.head();
  if (e) *e = r.format();
  std::vector<record> out;
  while (auto rec = r.next()) out.push_back(*rec);
  return out;
}

TEST(Rtrace, EveryEventSurvivesTheTextForm) {
  const auto recs = every_kind_of_record();
  header h;
  encoding e{};
  EXPECT_EQ(decode(encode(recs, encoding::text), &h, &e), recs);
  EXPECT_EQ(e, encoding::text);
  EXPECT_EQ(h, (header{"6.18.44", PAGE_SIZE, "test 1"}));
}

TEST(Rtrace, EveryEventSurvivesTheBinaryForm) {
  const auto recs = every_kind_of_record();
  header h;
  encoding e{};
  EXPECT_EQ(decode(encode(recs, encoding::binary), &h, &e), recs);
  EXPECT_EQ(e, encoding::binary);
  EXPECT_EQ(h.kernel, "6.18.44");
}

TEST(Rtrace, BinaryIsSmallerThanText) {
  const auto recs = every_kind_of_record();
  EXPECT_LT(encode(recs, encoding::binary).size(), encode(recs, encoding::text).size() / 2);
}

TEST(Rtrace, TheTextFormReadsAsDocumented) {
  const std::string text =
      "rtrace 1\nkernel 6.18.44\npage-size 4096\nrecorder hand\n"
      "# a comment, then a blank line\n\n"
      "@10 exec 7\n"
      "map 7 0x1000 2 rw-p anon\n"
      "@12 fault 7 0x2000 w value=0x2a\n"
      "snapshot one two\n  process 7\n    vma 0x1000 0x3000 rw-p anon\n    page 0x2000 anon 9 excl\nend\n";
  const auto recs = decode(text);
  ASSERT_EQ(recs.size(), 4U);
  EXPECT_EQ(recs[1], (record{10, ev_map{7, vaddr_t{0x1000}, 2, {true, true, false, false}, {}, {}, false, false}}));
  EXPECT_EQ(recs[2], (record{12, ev_fault{7, vaddr_t{0x2000}, access::write, true, std::uint8_t{42}}}));
  const auto& s = std::get<ev_snapshot>(recs[3].ev);
  EXPECT_EQ(s.label, "one two");
  ASSERT_EQ(s.processes.size(), 1U);
  EXPECT_EQ(s.processes[0].pages, (std::vector<snap_page>{{vaddr_t{0x2000}, page_state::anon, 9, true}}));
}

TEST(Rtrace, TheWriterRefusesTimeGoingBack) {
  std::ostringstream out;
  writer w(out, encoding::text, {});
  w.write({5, ev_exec{1}});
  EXPECT_THROW(w.write({4, ev_exit{1}}), trace_error);
}

/// The error a text trace with @body after a valid header gives.
std::string text_error(const std::string& body) {
  try {
    decode("rtrace 1\nkernel k\npage-size 4096\nrecorder r\n" + body);
  } catch (const trace_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Rtrace, MalformedTextNamesTheLineAndTheReason) {
  EXPECT_EQ(text_error("exec 1\nfrob 1\n"), "t.rtrace:6: unknown event 'frob'");
  EXPECT_EQ(text_error("map 1 0x1001 1 rw-p anon\n"), "t.rtrace:5: start 0x1001 is not page-aligned");
  EXPECT_EQ(text_error("map 1 0x1000 1 rwzp anon\n"),
            "t.rtrace:5: permissions 'rwzp': expected rw-p as in /proc/PID/maps");
  EXPECT_EQ(text_error("map 1 0x1000 0 rw-p anon\n"), "t.rtrace:5: a range of 0 pages");
  EXPECT_EQ(text_error("map 1 0x1000 1 rw-p heap\n"), "t.rtrace:5: mapping kind 'heap': expected anon or file");
  EXPECT_EQ(text_error("exec 0\n"), "t.rtrace:5: tid 0 is out of range");
  EXPECT_EQ(text_error("@5 exec 1\n@4 exit 1\n"), "t.rtrace:6: time 4 goes back from 5");
  EXPECT_EQ(text_error("fault 1 0x1000 q\n"), "t.rtrace:5: fault access 'q': expected r, w or x");
  EXPECT_EQ(text_error("fork 1\n"), "t.rtrace:5: expected 'fork PARENT CHILD'");
  EXPECT_EQ(text_error("snapshot s\n  process 1\n    page 0x1000 anon 1\n"),
            "t.rtrace:7: the trace ends inside a snapshot (no 'end')");
  EXPECT_EQ(text_error("snapshot s\n  vma 0x1000 0x2000 rw-p anon\nend\n"),
            "t.rtrace:6: 'vma' before the snapshot's first 'process TID'");
  EXPECT_EQ(text_error("inject compaction\n"), "t.rtrace:5: inject 'compaction': expected ksm, ksm-prune or reclaim");
  EXPECT_EQ(text_error("lock-all 1 always\n"), "t.rtrace:5: unknown lock-all flag 'always' (current, future, onfault)");
  EXPECT_EQ(text_error("unlock-all 1 current\n"), "t.rtrace:5: expected 'unlock-all TID'");
}

TEST(Rtrace, ABadHeaderIsRefused) {
  EXPECT_THROW(decode("rtrace 2\n"), trace_error);
  EXPECT_THROW(decode(""), trace_error);
  try {
    decode("rtrace 1\nkernel k\npage-size 16384\nrecorder r\n");
    FAIL() << "a 16 KiB page size was accepted";
  } catch (const trace_error& e) {
    EXPECT_STREQ(e.what(), "t.rtrace:3: page size 16384: the model has 4096-byte pages");
  }
}

TEST(Rtrace, ATruncatedBinaryTraceNamesTheByte) {
  auto bytes = encode(every_kind_of_record(), encoding::binary);
  bytes.resize(bytes.size() - 2);  // the last record (exit: tag, time, tid) loses its time and tid
  try {
    decode(bytes);
    FAIL() << "a truncated trace was read to the end";
  } catch (const trace_error& e) {
    EXPECT_NE(std::string(e.what()).find("t.rtrace: byte "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("the trace ends inside a record"), std::string::npos) << e.what();
  }
  auto bad_tag = encode({}, encoding::binary) + std::string(1, '\x7e');
  EXPECT_THROW(decode(bad_tag), trace_error);
}

}  // namespace
}  // namespace rmapkit::replay
