// The intrusive augmented interval tree (include/rmapkit/interval_tree.h): unit tests of
// ordering, stabbing queries and removal shapes, a RapidCheck property against a
// brute-force oracle, and a 100000-node scale test.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "rmapkit/interval_tree.h"

namespace rmapkit {
namespace {

struct item {
  std::uint64_t start = 0;
  std::uint64_t last = 0;
  int id = 0;
  interval_tree_node rb;
};

struct item_traits {
  static std::uint64_t start(const item& i) { return i.start; }
  static std::uint64_t last(const item& i) { return i.last; }
};

using tree_t = interval_tree<item, &item::rb, item_traits>;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

/// `n` items with ids 0..n-1 and the given key; a vector that is never resized afterwards.
std::vector<item> make_items(std::size_t n, std::uint64_t start = 0, std::uint64_t last = 0) {
  std::vector<item> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i].id = static_cast<int>(i);
    v[i].start = start;
    v[i].last = last;
  }
  return v;
}

std::vector<int> inorder_ids(const tree_t& t) {
  std::vector<int> ids;
  t.for_each([&](item& i) { ids.push_back(i.id); });
  return ids;
}

std::vector<int> overlap_ids(const tree_t& t, std::uint64_t qs, std::uint64_t ql) {
  std::vector<int> ids;
  t.for_each_overlap(qs, ql, [&](item& i) { ids.push_back(i.id); });
  return ids;
}

/// The same query through iter_first / iter_next.
std::vector<int> iter_ids(const tree_t& t, std::uint64_t qs, std::uint64_t ql) {
  std::vector<int> ids;
  for (const item* i = t.iter_first(qs, ql); i != nullptr; i = t.iter_next(*i, qs, ql)) ids.push_back(i->id);
  return ids;
}

bool overlaps(const item& i, std::uint64_t qs, std::uint64_t ql) { return i.start <= ql && qs <= i.last; }

/// The expected in-order sequence, maintained by brute force.
class oracle {
 public:
  void insert(item* x) {
    const auto pos = std::upper_bound(seq_.begin(), seq_.end(), x->start,
                                      [](std::uint64_t s, const item* e) { return s < e->start; });
    seq_.insert(pos, x);
  }
  void insert_after(item* x, const item* prev) {
    const auto pos = std::find(seq_.begin(), seq_.end(), prev);
    seq_.insert(pos + 1, x);
  }
  void remove(const item* x) { seq_.erase(std::find(seq_.begin(), seq_.end(), x)); }
  [[nodiscard]] std::size_t size() const { return seq_.size(); }
  [[nodiscard]] std::vector<int> ids() const {
    std::vector<int> ids;
    for (const item* i : seq_) ids.push_back(i->id);
    return ids;
  }
  [[nodiscard]] std::vector<int> overlap_ids(std::uint64_t qs, std::uint64_t ql) const {
    std::vector<int> ids;
    for (const item* i : seq_)
      if (overlaps(*i, qs, ql)) ids.push_back(i->id);
    return ids;
  }

 private:
  std::vector<item*> seq_;
};

// ---------------------------------------------------------------------------------------
// Unit tests

TEST(IntervalTree, EmptyTree) {
  tree_t t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(t.iter_first(0, max_u64), nullptr);
  EXPECT_TRUE(inorder_ids(t).empty());
  EXPECT_TRUE(overlap_ids(t, 0, max_u64).empty());
  item stray{.start = 1, .last = 2, .id = 0, .rb = {}};
  t.remove(stray);  // not linked: no effect
  EXPECT_EQ(t.iter_next(stray, 0, max_u64), nullptr);
  EXPECT_FALSE(t.contains(stray));
  EXPECT_EQ(t.verify(), "");
}

TEST(IntervalTree, SingleNode) {
  tree_t t;
  item a{.start = 10, .last = 20, .id = 7, .rb = {}};
  EXPECT_FALSE(a.rb.linked());
  t.insert(a);
  EXPECT_TRUE(a.rb.linked());
  EXPECT_TRUE(t.contains(a));
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(a.rb.subtree_last, 20u);
  EXPECT_FALSE(a.rb.red);
  EXPECT_EQ(t.iter_first(15, 15), &a);
  EXPECT_EQ(t.iter_next(a, 15, 15), nullptr);
  EXPECT_EQ(inorder_ids(t), std::vector<int>{7});
  t.remove(a);
  EXPECT_FALSE(a.rb.linked());
  EXPECT_EQ(a.rb.parent, nullptr);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(t.iter_first(15, 15), nullptr);
}

TEST(IntervalTree, StabbingBoundariesAreInclusive) {
  tree_t t;
  item a{.start = 10, .last = 20, .id = 0, .rb = {}};
  t.insert(a);
  EXPECT_TRUE(overlap_ids(t, 9, 9).empty());
  EXPECT_EQ(overlap_ids(t, 10, 10), std::vector<int>{0});
  EXPECT_EQ(overlap_ids(t, 20, 20), std::vector<int>{0});
  EXPECT_TRUE(overlap_ids(t, 21, 21).empty());
  EXPECT_TRUE(overlap_ids(t, 0, 9).empty());
  EXPECT_EQ(overlap_ids(t, 0, 10), std::vector<int>{0});
  EXPECT_EQ(overlap_ids(t, 20, 30), std::vector<int>{0});
  EXPECT_TRUE(overlap_ids(t, 21, 30).empty());
  EXPECT_EQ(overlap_ids(t, 12, 13), std::vector<int>{0});
  EXPECT_EQ(overlap_ids(t, 0, max_u64), std::vector<int>{0});

  // Keys at both ends of the range.
  item lo{.start = 0, .last = 0, .id = 1, .rb = {}};
  item hi{.start = max_u64 - 1, .last = max_u64, .id = 2, .rb = {}};
  item top{.start = max_u64, .last = max_u64, .id = 3, .rb = {}};
  t.insert(hi);
  t.insert(top);
  t.insert(lo);
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(overlap_ids(t, 0, 0), std::vector<int>{1});
  EXPECT_EQ(overlap_ids(t, max_u64, max_u64), (std::vector<int>{2, 3}));
  EXPECT_EQ(overlap_ids(t, max_u64 - 1, max_u64 - 1), std::vector<int>{2});
  EXPECT_EQ(overlap_ids(t, 0, max_u64), (std::vector<int>{1, 0, 2, 3}));
  EXPECT_EQ(iter_ids(t, 0, max_u64), (std::vector<int>{1, 0, 2, 3}));
}

TEST(IntervalTree, EqualStartsKeepInsertionOrder) {
  tree_t t;
  auto v = make_items(64);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = 5;
    v[i].last = 5 + (i * 7) % 13;  // lasts vary: order must not depend on them
    t.insert(v[i]);
  }
  item before{.start = 4, .last = 100, .id = 100, .rb = {}};
  item after{.start = 6, .last = 6, .id = 101, .rb = {}};
  t.insert(after);
  t.insert(before);
  ASSERT_EQ(t.verify(), "");
  std::vector<int> want{100};
  for (int i = 0; i < 64; ++i) want.push_back(i);
  want.push_back(101);
  EXPECT_EQ(inorder_ids(t), want);
  EXPECT_EQ(overlap_ids(t, 5, 5), std::vector<int>(want.begin(), want.end() - 1));
}

TEST(IntervalTree, InsertAfterAmongManyEqualKeys) {
  for (std::size_t at = 0; at < 40; ++at) {
    tree_t t;
    auto v = make_items(40, 9, 12);
    for (auto& i : v) t.insert(i);
    item x{.start = 9, .last = 12, .id = 1000, .rb = {}};
    t.insert_after(x, v[at]);
    ASSERT_EQ(t.verify(), "") << "after #" << at;
    std::vector<int> want(40);
    std::iota(want.begin(), want.end(), 0);
    want.insert(want.begin() + static_cast<std::ptrdiff_t>(at) + 1, 1000);
    EXPECT_EQ(inorder_ids(t), want) << "after #" << at;
  }
}

TEST(IntervalTree, InsertAfterChainsLikeFork) {
  // dup_mmap() puts each child VMA right after its parent: repeated insert_after
  // after the same prev puts the newest first.
  tree_t t;
  auto parents = make_items(8, 3, 7);
  for (auto& p : parents) t.insert(p);
  auto children = make_items(8, 3, 7);
  for (std::size_t i = 0; i < children.size(); ++i) {
    children[i].id = 100 + static_cast<int>(i);
    t.insert_after(children[i], parents[i]);
    ASSERT_EQ(t.verify(), "");
  }
  std::vector<int> want;
  for (int i = 0; i < 8; ++i) {
    want.push_back(i);
    want.push_back(100 + i);
  }
  EXPECT_EQ(inorder_ids(t), want);

  item y{.start = 3, .last = 7, .id = 200, .rb = {}};
  item z{.start = 3, .last = 7, .id = 201, .rb = {}};
  t.insert_after(y, parents[0]);
  t.insert_after(z, parents[0]);
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(inorder_ids(t)[1], 201);
  EXPECT_EQ(inorder_ids(t)[2], 200);
  EXPECT_EQ(inorder_ids(t)[3], 100);
}

TEST(IntervalTree, InsertAfterWithLargerLastUpdatesAncestors) {
  tree_t t;
  auto v = make_items(31);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = i;
    v[i].last = i;
    t.insert(v[i]);
  }
  item x{.start = 3, .last = 1000, .id = 99, .rb = {}};
  t.insert_after(x, v[3]);
  ASSERT_EQ(t.verify(), "");
  EXPECT_EQ(overlap_ids(t, 500, 500), std::vector<int>{99});
  EXPECT_EQ(overlap_ids(t, 30, 30), (std::vector<int>{99, 30}));
}

TEST(IntervalTree, PreconditionViolationsKeepTheTreeValid) {
  tree_t t;
  tree_t other;
  auto v = make_items(10);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = 10 * i;
    v[i].last = 10 * i + 5;
    t.insert(v[i]);
  }
  t.insert(v[3]);  // already linked: no effect
  EXPECT_EQ(t.size(), 10u);
  other.insert(v[3]);  // linked in t: no effect on other
  EXPECT_TRUE(other.empty());
  item stray{.start = 30, .last = 31, .id = 50, .rb = {}};
  other.insert(stray);
  t.remove(stray);  // in another tree: no effect
  EXPECT_TRUE(other.contains(stray));
  EXPECT_FALSE(t.contains(stray));
  item x{.start = 41, .last = 42, .id = 60, .rb = {}};
  t.insert_after(x, v[1]);  // different start: falls back to insert()
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(other.verify(), "");
  EXPECT_EQ(t.size(), 11u);
  EXPECT_EQ(inorder_ids(t), (std::vector<int>{0, 1, 2, 3, 4, 60, 5, 6, 7, 8, 9}));
  item y{.start = 30, .last = 30, .id = 61, .rb = {}};
  t.insert_after(y, stray);  // prev in another tree: insert()
  EXPECT_EQ(inorder_ids(t), (std::vector<int>{0, 1, 2, 3, 61, 4, 60, 5, 6, 7, 8, 9}));
  EXPECT_EQ(t.verify(), "");
}

/// A tree of 63 nodes with distinct keys i*10 .. i*10+4, plus the node sets by shape.
struct shaped_tree {
  tree_t t;
  std::vector<item> v = make_items(63);
  shaped_tree() {
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i].start = 10 * i;
      v[i].last = 10 * i + 4;
      t.insert(v[i]);
    }
  }
  item* find(bool (*pred)(const interval_tree_node&)) {
    for (auto& i : v)
      if (i.rb.linked() && pred(i.rb)) return &i;
    return nullptr;
  }
  void remove_and_check(item* x) {
    ASSERT_NE(x, nullptr);
    std::vector<int> want = inorder_ids(t);
    want.erase(std::find(want.begin(), want.end(), x->id));
    const std::size_t before = t.size();
    t.remove(*x);
    ASSERT_EQ(t.verify(), "");
    EXPECT_EQ(t.size(), before - 1);
    EXPECT_FALSE(x->rb.linked());
    EXPECT_EQ(x->rb.parent, nullptr);
    EXPECT_EQ(x->rb.left, nullptr);
    EXPECT_EQ(x->rb.right, nullptr);
    EXPECT_EQ(inorder_ids(t), want);
    EXPECT_TRUE(overlap_ids(t, x->start, x->last).empty());
  }
};

TEST(IntervalTree, RemoveRootLeafAndInnerNodes) {
  {
    shaped_tree s;
    for (int round = 0; round < 10; ++round)
      s.remove_and_check(s.find([](const interval_tree_node& n) { return n.parent == nullptr; }));
  }
  {
    shaped_tree s;
    for (int round = 0; round < 10; ++round)
      s.remove_and_check(s.find([](const interval_tree_node& n) { return n.left == nullptr && n.right == nullptr; }));
  }
  {
    shaped_tree s;
    for (int round = 0; round < 10; ++round)
      s.remove_and_check(s.find(
          [](const interval_tree_node& n) { return n.parent != nullptr && n.left != nullptr && n.right != nullptr; }));
  }
  {
    shaped_tree s;  // a node with exactly one child
    for (int round = 0; round < 5; ++round) {
      item* x = s.find([](const interval_tree_node& n) { return (n.left == nullptr) != (n.right == nullptr); });
      if (x == nullptr) x = s.find([](const interval_tree_node& n) { return n.left == nullptr; });
      s.remove_and_check(x);
    }
  }
  {
    shaped_tree s;  // down to empty, in a scrambled order
    for (std::size_t k = 0; k < s.v.size(); ++k) s.remove_and_check(&s.v[(k * 17) % s.v.size()]);
    EXPECT_TRUE(s.t.empty());
  }
}

TEST(IntervalTree, RemoveUpdatesAugmentation) {
  tree_t t;
  auto v = make_items(20);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = i;
    v[i].last = i == 2 ? 1000 : i;  // one long interval dominates subtree_last
    t.insert(v[i]);
  }
  EXPECT_EQ(overlap_ids(t, 900, 900), std::vector<int>{2});
  t.remove(v[2]);
  ASSERT_EQ(t.verify(), "");
  EXPECT_TRUE(overlap_ids(t, 900, 900).empty());
  EXPECT_EQ(t.iter_first(20, max_u64), nullptr);
}

TEST(IntervalTree, ReinsertAfterRemoveWithNewKey) {
  tree_t t;
  auto v = make_items(30);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = 100 * i;
    v[i].last = 100 * i + 50;
    t.insert(v[i]);
  }
  // Move node 5 from [500, 550] to [2950, 3100] (like an mremap/vma_adjust re-key).
  t.remove(v[5]);
  v[5].start = 2950;
  v[5].last = 3100;
  t.insert(v[5]);
  ASSERT_EQ(t.verify(), "");
  EXPECT_TRUE(overlap_ids(t, 500, 550).empty());
  EXPECT_EQ(overlap_ids(t, 2950, 2950), (std::vector<int>{29, 5}));
  EXPECT_EQ(overlap_ids(t, 3050, 3050), std::vector<int>{5});
  EXPECT_EQ(inorder_ids(t).back(), 5);
  // And into another tree.
  tree_t other;
  t.remove(v[5]);
  other.insert(v[5]);
  EXPECT_EQ(t.verify(), "");
  EXPECT_EQ(other.verify(), "");
  EXPECT_EQ(t.size(), 29u);
  EXPECT_EQ(other.size(), 1u);
}

TEST(IntervalTree, ForEachMayRemoveTheCurrentNode) {
  tree_t t;
  auto v = make_items(50);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = i;
    v[i].last = i + 3;
    t.insert(v[i]);
  }
  t.for_each_overlap(10, 20, [&](item& i) {
    if (i.id % 2 == 0) t.remove(i);
  });
  ASSERT_EQ(t.verify(), "");
  std::vector<int> want;
  for (int i = 7; i <= 20; ++i)
    if (i % 2 == 1) want.push_back(i);
  EXPECT_EQ(overlap_ids(t, 10, 20), want);
  t.for_each([&](item& i) { t.remove(i); });
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.verify(), "");
  for (const auto& i : v) EXPECT_FALSE(i.rb.linked());
}

TEST(IntervalTree, CopiedNodeIsUnlinked) {
  tree_t t;
  item a{.start = 1, .last = 2, .id = 1, .rb = {}};
  t.insert(a);
  item b = a;  // like vm_area_dup(): same key, fresh hook
  b.id = 2;
  EXPECT_FALSE(b.rb.linked());
  t.insert_after(b, a);
  EXPECT_EQ(inorder_ids(t), (std::vector<int>{1, 2}));
  item c{.start = 1, .last = 2, .id = 3, .rb = {}};
  c = a;  // assignment copies the key but not the links
  EXPECT_FALSE(c.rb.linked());
  EXPECT_TRUE(a.rb.linked());
  EXPECT_EQ(t.verify(), "");
}

TEST(IntervalTree, ClearAndMove) {
  auto v = make_items(100);
  tree_t t;
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = i % 10;
    v[i].last = i % 10 + i % 3;
    t.insert(v[i]);
  }
  const std::vector<int> order = inorder_ids(t);
  tree_t moved(std::move(t));
  EXPECT_EQ(moved.size(), 100u);
  EXPECT_EQ(moved.verify(), "");
  EXPECT_EQ(inorder_ids(moved), order);
  EXPECT_TRUE(moved.contains(v[0]));
  tree_t assigned;
  item extra{.start = 1, .last = 1, .id = 500, .rb = {}};
  assigned.insert(extra);
  assigned = std::move(moved);  // unlinks `extra`, takes the 100 nodes
  EXPECT_FALSE(extra.rb.linked());
  EXPECT_EQ(assigned.size(), 100u);
  EXPECT_EQ(assigned.verify(), "");
  assigned.clear();
  EXPECT_TRUE(assigned.empty());
  EXPECT_EQ(assigned.verify(), "");
  for (const auto& i : v) EXPECT_FALSE(i.rb.linked());
  for (auto& i : v) assigned.insert(i);
  EXPECT_EQ(assigned.verify(), "");
  EXPECT_EQ(assigned.size(), 100u);
}

TEST(IntervalTree, VerifyReportsCorruption) {
  auto v = make_items(31);
  tree_t t;
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].start = i;
    v[i].last = i + 1;
    t.insert(v[i]);
  }
  ASSERT_EQ(t.verify(), "");
  item* root = nullptr;
  for (auto& i : v)
    if (i.rb.parent == nullptr) root = &i;
  ASSERT_NE(root, nullptr);

  root->rb.subtree_last += 1;
  EXPECT_NE(t.verify().find("subtree_last"), std::string::npos) << t.verify();
  root->rb.subtree_last -= 1;

  root->rb.red = true;
  EXPECT_EQ(t.verify(), "root is red");
  root->rb.red = false;

  // A key changed while linked breaks the order.
  item* left = static_cast<item*>(root->rb.left->owner);
  const item saved = *left;
  left->start = root->start + 1;
  left->last = left->start;
  EXPECT_NE(t.verify().find("starts before"), std::string::npos) << t.verify();
  left->start = saved.start;
  left->last = saved.last;
  EXPECT_EQ(t.verify(), "");
  left->last = left->start - 1;
  EXPECT_NE(t.verify().find("last < start"), std::string::npos) << t.verify();
  left->last = saved.last;

  // Recolouring a black leaf red, where its parent is red or the black heights change.
  item* leaf = nullptr;
  for (auto& i : v)
    if (i.rb.linked() && i.rb.left == nullptr && i.rb.right == nullptr && !i.rb.red) leaf = &i;
  if (leaf != nullptr) {
    leaf->rb.red = true;
    EXPECT_NE(t.verify(), "");
    leaf->rb.red = false;
  }
  item* any_leaf = nullptr;
  for (auto& i : v)
    if (i.rb.linked() && i.rb.left == nullptr && i.rb.right == nullptr) any_leaf = &i;
  ASSERT_NE(any_leaf, nullptr);
  any_leaf->rb.red = !any_leaf->rb.red;
  EXPECT_NE(t.verify(), "");
  any_leaf->rb.red = !any_leaf->rb.red;

  interval_tree_node* const saved_parent = root->rb.left->parent;
  root->rb.left->parent = root->rb.right;
  EXPECT_NE(t.verify().find("parent"), std::string::npos) << t.verify();
  root->rb.left->parent = saved_parent;
  EXPECT_EQ(t.verify(), "");
}

/// Traits that count key reads: the work a query does.
struct counted_item {
  std::uint64_t start = 0;
  std::uint64_t last = 0;
  interval_tree_node rb;
};
struct counted_traits {
  static inline std::size_t reads = 0;
  static std::uint64_t start(const counted_item& i) {
    ++reads;
    return i.start;
  }
  static std::uint64_t last(const counted_item& i) {
    ++reads;
    return i.last;
  }
};

TEST(IntervalTree, QueriesPruneUsingTheAugmentation) {
  constexpr std::size_t n = 100000;
  std::vector<counted_item> v(n);
  interval_tree<counted_item, &counted_item::rb, counted_traits> t;
  for (std::size_t i = 0; i < n; ++i) {
    v[i].start = 10 * i;
    v[i].last = 10 * i + 5;
    t.insert(v[i]);
  }
  // A long interval early in the order must not make later queries scan.
  counted_item wide{.start = 3, .last = 10 * n, .rb = {}};
  t.insert(wide);
  ASSERT_EQ(t.verify(), "");

  std::size_t k = 0;
  counted_traits::reads = 0;
  t.for_each_overlap(500002, 500002, [&](counted_item&) { ++k; });
  EXPECT_EQ(k, 2u);  // `wide` and [500000, 500005]
  EXPECT_LT(counted_traits::reads, 400u) << "point query read " << counted_traits::reads << " keys";

  counted_traits::reads = 0;
  k = 0;
  t.for_each_overlap(200000, 209999, [&](counted_item&) { ++k; });
  EXPECT_EQ(k, 1001u);
  EXPECT_LT(counted_traits::reads, 5 * k + 400) << "range query read " << counted_traits::reads << " keys";

  counted_traits::reads = 0;
  EXPECT_EQ(t.iter_first(10 * n + 1, max_u64), nullptr);
  EXPECT_LT(counted_traits::reads, 10u);
  t.clear();
}

// ---------------------------------------------------------------------------------------
// Property: random operations against the brute-force oracle

enum class op { insert, insert_after, remove, rekey, remove_range };

RC_GTEST_PROP(IntervalTreeProperty, RandomOperationsMatchOracle, ()) {
  constexpr std::size_t pool_size = 64;
  // A small key space gives many ties and overlaps; the base shifts keys to the top of the range.
  const auto key_space = *rc::gen::element(std::uint64_t{4}, std::uint64_t{16}, std::uint64_t{64}, std::uint64_t{4096});
  const auto base = *rc::gen::element(std::uint64_t{0}, std::uint64_t{1000}, max_u64 - key_space - 64);
  const auto n_ops = *rc::gen::inRange<std::size_t>(1, 400);

  std::vector<item> pool = make_items(pool_size);
  tree_t tree;
  oracle orc;

  const auto gen_key = [&](item& x) {
    x.start = base + *rc::gen::inRange<std::uint64_t>(0, key_space);
    x.last = x.start + *rc::gen::inRange<std::uint64_t>(0, 16);
  };
  const auto pick = [&](bool linked) -> item* {
    std::vector<item*> c;
    for (auto& x : pool)
      if (x.rb.linked() == linked) c.push_back(&x);
    if (c.empty()) return nullptr;
    return c[*rc::gen::inRange<std::size_t>(0, c.size())];
  };
  const auto gen_query = [&](std::uint64_t& qs, std::uint64_t& ql) {
    qs = base + *rc::gen::inRange<std::uint64_t>(0, key_space + 16);
    ql = qs + *rc::gen::inRange<std::uint64_t>(0, 20);
  };

  for (std::size_t step = 0; step < n_ops; ++step) {
    const op kind = *rc::gen::weightedElement<op>(
        {{6, op::insert}, {3, op::insert_after}, {3, op::remove}, {3, op::rekey}, {1, op::remove_range}});
    switch (kind) {
      case op::insert:
        if (item* x = pick(false)) {
          gen_key(*x);
          tree.insert(*x);
          orc.insert(x);
        }
        break;
      case op::insert_after: {
        item* prev = pick(true);
        item* x = pick(false);
        if (prev != nullptr && x != nullptr) {
          x->start = prev->start;  // same start; last may differ from prev's
          x->last = x->start + *rc::gen::inRange<std::uint64_t>(0, 16);
          tree.insert_after(*x, *prev);
          orc.insert_after(x, prev);
        }
        break;
      }
      case op::remove:
        if (item* x = pick(true)) {
          tree.remove(*x);
          orc.remove(x);
        }
        break;
      case op::rekey:
        if (item* x = pick(true)) {
          tree.remove(*x);
          orc.remove(x);
          gen_key(*x);
          tree.insert(*x);
          orc.insert(x);
        }
        break;
      case op::remove_range: {
        std::uint64_t qs = 0;
        std::uint64_t ql = 0;
        gen_query(qs, ql);
        tree.for_each_overlap(qs, ql, [&](item& x) {
          tree.remove(x);
          orc.remove(&x);
        });
        RC_ASSERT(tree.iter_first(qs, ql) == nullptr);
        break;
      }
    }

    RC_ASSERT(tree.verify() == std::string{});
    RC_ASSERT(tree.size() == orc.size());
    RC_ASSERT(tree.empty() == (orc.size() == 0));
    RC_ASSERT(inorder_ids(tree) == orc.ids());
    for (const auto& x : pool) RC_ASSERT(tree.contains(x) == x.rb.linked());
    for (int q = 0; q < 3; ++q) {
      std::uint64_t qs = 0;
      std::uint64_t ql = 0;
      gen_query(qs, ql);
      const std::vector<int> want = orc.overlap_ids(qs, ql);
      RC_ASSERT(overlap_ids(tree, qs, ql) == want);
      RC_ASSERT(iter_ids(tree, qs, ql) == want);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Scale

TEST(IntervalTreeScale, HundredThousandNodes) {
  constexpr std::size_t n = 100000;
  const auto t0 = std::chrono::steady_clock::now();
  std::mt19937_64 rng(0x1f2e3d4cu);
  auto v = make_items(n);
  tree_t t;
  for (auto& x : v) {
    x.start = rng() % (std::uint64_t{1} << 20);
    x.last = x.start + rng() % 64;
    t.insert(x);
  }
  ASSERT_EQ(t.size(), n);
  ASSERT_EQ(t.verify(), "");

  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::shuffle(idx.begin(), idx.end(), rng);
  for (std::size_t k = 0; k < n / 2; ++k) t.remove(v[idx[k]]);
  ASSERT_EQ(t.size(), n / 2);
  ASSERT_EQ(t.verify(), "");

  // In-order is sorted by start, ties in insertion (= id) order.
  std::vector<const item*> seq;
  t.for_each([&](item& x) { seq.push_back(&x); });
  ASSERT_EQ(seq.size(), n / 2);
  EXPECT_TRUE(std::is_sorted(seq.begin(), seq.end(), [](const item* a, const item* b) {
    return a->start != b->start ? a->start < b->start : a->id < b->id;
  }));

  for (int q = 0; q < 20; ++q) {
    const std::uint64_t qs = rng() % (std::uint64_t{1} << 20);
    const std::uint64_t ql = qs + rng() % 256;
    std::vector<int> want;
    for (const item* x : seq)
      if (overlaps(*x, qs, ql)) want.push_back(x->id);
    ASSERT_EQ(overlap_ids(t, qs, ql), want);
  }

  for (std::size_t k = n / 2; k < n; ++k) t.remove(v[idx[k]]);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.verify(), "");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  RecordProperty("elapsed_ms", static_cast<int>(ms.count()));
}

}  // namespace
}  // namespace rmapkit
