// The radix priority search tree (include/rmapkit/prio_tree.h): its shape rules (heap on
// last, radix path on start, lists of equal intervals, growth at the top), stabbing and
// range queries against a brute-force oracle under random inserts and removals
// (RapidCheck), and the cost a query pays: O(depth + k), not O(n).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include "rmapkit/prio_tree.h"

namespace rmapkit {
namespace {

struct item {
  int id = 0;
};

using tree_t = prio_tree<item>;
using node_t = prio_tree_node<item>;

/// Items and their nodes at fixed addresses (a deque never moves what it holds).
struct pool {
  std::deque<item> items;
  std::deque<node_t> nodes;
  node_t& make(std::uint64_t start, std::uint64_t last) {
    items.push_back({static_cast<int>(items.size())});
    nodes.push_back({});
    auto& n = nodes.back();
    n.item = &items.back();
    n.start = start;
    n.last = last;
    return n;
  }
};

std::vector<int> query(const tree_t& t, std::uint64_t qs, std::uint64_t ql) {
  std::vector<int> ids;
  t.for_each_overlap(qs, ql, [&](item& i) {
    ids.push_back(i.id);
    return true;
  });
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int> oracle(const pool& p, std::uint64_t qs, std::uint64_t ql) {
  std::vector<int> ids;
  for (const auto& n : p.nodes)
    if (n.linked && n.start <= ql && qs <= n.last) ids.push_back(n.item->id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(PrioTree, EmptyTreeFindsNothingAndIsValid) {
  tree_t t;
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(query(t, 0, ~0ULL).empty());
  EXPECT_EQ(t.verify(), "");
}

TEST(PrioTree, HeapOnLastPutsTheLongestReachingIntervalAtTheRoot) {
  tree_t t;
  pool p;
  t.insert(p.make(0, 3));
  t.insert(p.make(4, 9));
  t.insert(p.make(2, 5));
  ASSERT_EQ(t.verify(), "");
  EXPECT_EQ(t.root()->last, 9U);
  EXPECT_EQ(query(t, 4, 4), (std::vector<int>{1, 2}));
  EXPECT_EQ(query(t, 3, 3), (std::vector<int>{0, 2}));
}

TEST(PrioTree, GrowsAtTheTopWhenAnIntervalEndsPastItsWidth) {
  tree_t t;
  pool p;
  for (std::uint64_t i = 0; i < 8; ++i) t.insert(p.make(i, i));
  EXPECT_EQ(t.bits(), 3U);
  t.insert(p.make(5, 1000));  // needs 10 bits: seven new levels, six filled from the old tree
  EXPECT_EQ(t.bits(), 10U);
  ASSERT_EQ(t.verify(), "");
  EXPECT_EQ(t.root()->last, 1000U);
  for (std::uint64_t i = 0; i < 8; ++i) {
    auto want = i >= 5 ? std::vector<int>{static_cast<int>(i), 8} : std::vector<int>{static_cast<int>(i)};
    EXPECT_EQ(query(t, i, i), want) << "at " << i;
  }
}

TEST(PrioTree, EqualIntervalsShareANodeInInsertionOrderAndInsertAfterFollowsItsPrevious) {
  tree_t t;
  pool p;
  auto& a = p.make(10, 20);
  auto& b = p.make(10, 20);
  auto& c = p.make(10, 20);
  t.insert(a);
  t.insert(b);
  t.insert_after(c, a);  // fork: the child's copy right after its parent
  ASSERT_EQ(t.verify(), "");
  std::vector<int> order;
  t.for_each_overlap(15, 15, [&](item& i) {
    order.push_back(i.id);
    return true;
  });
  EXPECT_EQ(order, (std::vector<int>{0, 2, 1}));
  t.remove(a);  // the next equal takes the tree node's place
  ASSERT_EQ(t.verify(), "");
  EXPECT_FALSE(t.root()->in_list());
  EXPECT_EQ(query(t, 10, 10), (std::vector<int>{1, 2}));
  EXPECT_EQ(t.size(), 2U);
}

TEST(PrioTree, RemovingEverythingEmptiesTheTreeAndResetsItsWidth) {
  tree_t t;
  pool p;
  for (std::uint64_t i = 0; i < 50; ++i) t.insert(p.make(i * 7, i * 7 + i % 5));
  for (auto& n : p.nodes) {
    t.remove(n);
    ASSERT_EQ(t.verify(), "");
  }
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.bits(), 1U);
  t.remove(p.nodes.front());  // not linked: nothing happens
  EXPECT_EQ(t.size(), 0U);
}

TEST(PrioTree, ManySmallWindowsOfABigFile_AStabbingQueryLooksAtFewNodes) {
  // 4096 windows of 4 pages, scattered over a 2^20-page file: the case the prio tree was
  // built for. A list walk reads all 4096; the tree reads about its depth.
  tree_t t;
  pool p;
  std::uint64_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::uint64_t start = (x >> 20) % (1U << 20);
    t.insert(p.make(start, start + 3));
  }
  ASSERT_EQ(t.verify(), "");
  std::uint64_t seen = 0, worst = 0;
  for (int q = 0; q < 256; ++q) {
    const std::uint64_t at = p.nodes[static_cast<std::size_t>(q) * 16].start + 1;
    std::uint64_t n = 0;
    t.for_each_overlap(
        at, at, [](item&) { return true; }, [&](const node_t&) { ++n; });
    seen += n;
    worst = std::max(worst, n);
  }
  EXPECT_LT(seen / 256, 200U) << "mean nodes per query";
  EXPECT_LT(worst, 400U);
}

TEST(PrioTree, AQueryStopsWhenItsCallbackSaysSo) {
  tree_t t;
  pool p;
  for (int i = 0; i < 10; ++i) t.insert(p.make(0, 100));
  int calls = 0;
  EXPECT_FALSE(t.for_each_overlap(5, 5, [&](item&) { return ++calls < 3; }));
  EXPECT_EQ(calls, 3);
}

RC_GTEST_PROP(PrioTree, MatchesABruteForceOracleUnderInsertsAndRemovals, ()) {
  const auto space = *rc::gen::element(std::uint64_t{8}, std::uint64_t{64}, std::uint64_t{1} << 20, ~0ULL >> 1);
  const auto ops = *rc::gen::inRange(1, 300);
  tree_t t;
  pool p;
  std::vector<node_t*> linked;
  for (int i = 0; i < ops; ++i) {
    const int what = *rc::gen::inRange(0, 10);
    if (what < 5 || linked.empty()) {
      const auto start = *rc::gen::inRange<std::uint64_t>(0, space);
      const auto len = *rc::gen::element(std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{3},
                                         *rc::gen::inRange<std::uint64_t>(0, space));
      auto& n = p.make(start, start + std::min<std::uint64_t>(len, ~0ULL - start));
      t.insert(n);
      linked.push_back(&n);
    } else if (what < 7) {
      auto* prev = linked[*rc::gen::inRange<std::size_t>(0, linked.size())];
      auto& n = p.make(prev->start, prev->last);
      t.insert_after(n, *prev);
      linked.push_back(&n);
    } else {
      const auto k = *rc::gen::inRange<std::size_t>(0, linked.size());
      t.remove(*linked[k]);
      linked.erase(linked.begin() + static_cast<std::ptrdiff_t>(k));
    }
    RC_ASSERT(t.verify() == "");
    RC_ASSERT(t.size() == linked.size());
    const auto qs = *rc::gen::inRange<std::uint64_t>(0, space);
    const auto ql = qs + *rc::gen::element(std::uint64_t{0}, std::uint64_t{2}, space / 4);
    RC_ASSERT(query(t, qs, ql) == oracle(p, qs, ql));
  }
}

}  // namespace
}  // namespace rmapkit
