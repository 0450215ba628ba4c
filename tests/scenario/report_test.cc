// The report text: numbering by first appearance, flag order, line order.
#include <gtest/gtest.h>

#include "rmapkit/scenario/report.h"

namespace rmapkit::scenario {
namespace {

TEST(Report, NumbersFramesAndSwapSlotsByFirstAppearancePerBlock) {
  report_block b{"after", {}};
  report_region p{"P", "A", {{0, 4, "rw-p", "anon", std::nullopt}}, {}};
  p.pages.push_back(
      {0, report_page::state::frame, 0x5000, 2, page_flag::anon | page_flag::excl, std::nullopt, false, std::nullopt});
  p.pages.push_back({1, report_page::state::swap, 0x77, 0, 0, std::nullopt, false, std::nullopt});
  p.pages.push_back({2, report_page::state::zero, 0, 0, 0, std::nullopt, false, std::nullopt});
  p.pages.push_back({3, report_page::state::frame, 0x1000, 1, page_flag::anon | page_flag::ksm | page_flag::swapcache,
                     std::nullopt, false, std::nullopt});
  report_region q{"Q", "A", {{0, 1, "r--s", "file:F@3", std::nullopt}}, {}};
  q.pages.push_back({0, report_page::state::frame, 0x1000, 1, 0,
                     static_cast<std::uint8_t>(bit(page_life::dirty) | bit(page_life::lru)), false, std::nullopt});
  q.pages.push_back({1, report_page::state::swap, 0x78, 0, 0, std::nullopt, false, std::nullopt});
  b.regions = {p, q};
  EXPECT_EQ(format(b),
            "check after\n"
            "vma P A 0 4 rw-p anon\n"
            "page P A 0 frame=1 count=2 anon excl\n"
            "page P A 1 swap=1\n"
            "page P A 2 zero\n"
            "page P A 3 frame=2 count=1 anon ksm swapcache\n"
            "vma Q A 0 1 r--s file:F@3\n"
            "page Q A 0 frame=2 count=1 dirty lru\n"
            "page Q A 1 swap=2\n"
            "end\n");
}

TEST(Report, Version2FieldsFollowTheVersion1FlagsAndNumberFoliosByFirstAppearance) {
  report_block b{"", {}};
  report_region p{"P", "A", {{0, 1024, "rw-p", "anon", std::nullopt}}, {}};
  const auto life = static_cast<std::uint8_t>(bit(page_life::lru));
  const auto anon = static_cast<std::uint8_t>(page_flag::anon);
  p.pages.push_back({0, report_page::state::frame, 0x2000, 2, page_flag::anon | page_flag::excl, life, true,
                     report_folio{0x2000, 9, 0}});
  p.pages.push_back({1, report_page::state::frame, 0x2001, 2, anon, std::nullopt, true, report_folio{0x2000, 9, 1}});
  p.pages.push_back({2, report_page::state::frame, 0x3003, 1, anon, std::nullopt, false, report_folio{0x3000, 4, 3}});
  p.pages.push_back({3, report_page::state::frame, 0x4000, 1, anon, std::nullopt, false, std::nullopt});
  p.pages.push_back({512, report_page::state::zero, 0, 0, 0, std::nullopt, true, std::nullopt});
  p.pages.push_back({513, report_page::state::zero, 0, 0, 0, std::nullopt, false, std::nullopt});
  b.regions = {p};
  EXPECT_EQ(format(b),
            "check\n"
            "vma P A 0 1024 rw-p anon\n"
            "page P A 0 frame=1 count=2 anon excl pmd folio=1 order=9 sub=0 lru\n"
            "page P A 1 frame=2 count=2 anon pmd folio=1 order=9 sub=1\n"
            "page P A 2 frame=3 count=1 anon folio=2 order=4 sub=3\n"
            "page P A 3 frame=4 count=1 anon\n"
            "page P A 512 zero pmd\n"
            "page P A 513 zero\n"
            "end\n");
}

TEST(Report, UnlabelledCheckAndRegionWithoutVma) {
  report_block b{"", {report_region{"P", "A", {}, {}}}};
  EXPECT_EQ(format(b), "check\nend\n");
}

TEST(Report, SmapsFollowTheRegionsPagesInTheKernelsFormat) {
  smaps_values v{};
  v[0] = 16;         // Rss
  v[1] = 5;          // Pss
  v[7] = 123456789;  // Referenced: wider than its 8 columns, as the kernel prints it
  report_block b{"", {report_region{"P", "A", {{0, 4, "rw-p", "anon", v}, {4, 6, "r--p", "anon", std::nullopt}}, {}}}};
  auto text = format(b);
  EXPECT_EQ(text.substr(0, text.find("Pss_Dirty")),
            "check\n"
            "vma P A 0 4 rw-p anon\n"
            "vma P A 4 6 r--p anon\n"
            "smaps P A 0 4\n"
            "Rss:                  16 kB\n"
            "Pss:                   5 kB\n");
  EXPECT_NE(text.find("\nReferenced:     123456789 kB\nAnonymous:             0 kB\n"), std::string::npos) << text;
  EXPECT_TRUE(text.ends_with("SwapPss:               0 kB\nLocked:                0 kB\nend\n")) << text;
  EXPECT_EQ(text.find("smaps P A 4 6"), std::string::npos) << "a VMA without figures prints none";
}

}  // namespace
}  // namespace rmapkit::scenario
