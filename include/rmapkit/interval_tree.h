// An intrusive, augmented red-black interval tree: the model's counterpart of the
// kernel's include/linux/interval_tree_generic.h built on rbtree_augmented.h. The
// model keeps two such trees, as the kernel does:
//
//   anon_vma->rb_root      nodes are anon_vma_chain objects, keyed by the pgoff
//                          range of the chain's VMA (anon_vma_interval_tree_*);
//   address_space->i_mmap  nodes are VMAs, keyed by [vm_pgoff, vm_pgoff + pages - 1]
//                          (vma_interval_tree_*).
//
// Keys are inclusive page-offset intervals [start, last], read through a Traits
// class (`Traits::start(const T&)`, `Traits::last(const T&)`). A node [s, l]
// overlaps a query [qs, ql] iff s <= ql && qs <= l.
//
// Layout. Each node type embeds an `interval_tree_node` hook (the kernel's
// rb_node plus rb_subtree_last). `subtree_last` is the augmentation: the largest
// `last` in the node's subtree. It is kept correct through insertion (raised
// along the descent path), rotations (the node moving up inherits the old top's
// value; the node moving down recomputes its own) and erasure (recomputed along
// the path from the lowest changed node to the root) — the same propagate /
// copy / rotate contract as the kernel's rb_augment_callbacks.
//
// Ordering guarantees.
//   * In-order traversal is by ascending start.
//   * insert(): among equal starts a new node goes after every existing one, so
//     ties come out in insertion order (as in the kernel, which descends right
//     on equal keys).
//   * insert_after(item, prev): item is placed immediately after prev in
//     in-order (vma_interval_tree_insert_after, used by dup_mmap() on fork so a
//     child VMA follows its parent in i_mmap). prev must be in this tree with
//     the same start as item.
//   * for_each / for_each_overlap / iter_first+iter_next visit in in-order.
//
// Complexity (n nodes, k reported overlaps). insert, insert_after, remove and
// contains are O(log n); insert_after and remove also walk once to the root
// to check that their argument is linked in *this* tree. iter_first is
// O(log n). Iterating all k overlaps uses the kernel's algorithm — subtrees
// whose subtree_last < qs are pruned and the walk stops at the first start > ql —
// so one point or short-range query costs O(log n); between consecutive
// overlaps the walk can skip a run of non-overlapping nodes, so the
// worst-case bound for all k is O(min(n, (k + 1) log n)), O(log n + k) when the
// overlaps are adjacent in in-order. for_each is O(n), verify is O(n).
// Nothing is ever allocated: the tree is a root pointer and a count.
//
// Differences from the kernel, all deliberate:
//   * The hook records the object that embeds it (`owner`) while linked, which
//     makes `linked()` explicit and gives a standard-conforming way back from a
//     hook to its object (no container_of arithmetic).
//   * insert_after() raises subtree_last on every ancestor, so item's last may
//     differ from prev's (the kernel relies on them being equal on fork).
//   * Precondition violations that can be detected cheaply leave the tree valid:
//     inserting a linked item and removing an item that is not in this tree do
//     nothing; insert_after() with a prev that is not in this tree, or whose
//     start differs, falls back to insert(). Nothing here relies on assert().
//   * Copying or assigning a hook never copies links: a copy is unlinked and an
//     assignment leaves the target's links alone (like Boost.Intrusive hooks), so
//     copying a VMA-like object (vm_area_dup) yields an object ready to insert.
//
// Lifetime. A node must stay at the same address while linked, and its key must
// not change while linked (remove, change the key, re-insert). remove() resets
// the hook, so the node can be re-inserted, into this tree or another. Destroying
// a tree does not touch its nodes (as in the kernel); call clear() first if they
// will be reused.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace rmapkit {

/// The hook a node type embeds (like the kernel's rb_node + rb_subtree_last).
struct interval_tree_node {
  interval_tree_node* parent = nullptr;
  interval_tree_node* left = nullptr;
  interval_tree_node* right = nullptr;
  bool red = false;
  std::uint64_t subtree_last = 0;  ///< max `last` in this subtree (the augmentation)
  void* owner = nullptr;           ///< the object embedding this hook while linked; null while unlinked

  interval_tree_node() = default;
  /// A copy is unlinked: links belong to the original object.
  interval_tree_node(const interval_tree_node&) noexcept {}
  /// Assignment keeps the target's own links.
  interval_tree_node& operator=(const interval_tree_node&) noexcept { return *this; }
  ~interval_tree_node() = default;

  /// True while in a tree.
  [[nodiscard]] bool linked() const noexcept { return owner != nullptr; }
};

/// What an interval_tree needs from its Traits: the inclusive key [start, last] of a node.
template <typename Traits, typename T>
concept interval_tree_traits = requires(const T& item) {
  { Traits::start(item) } -> std::convertible_to<std::uint64_t>;
  { Traits::last(item) } -> std::convertible_to<std::uint64_t>;
};

/// The default of a query's `seen` callback: the nodes a search looks at go uncounted.
struct ignore_nodes {
  template <typename T>
  void operator()(const T&) const noexcept {}
};

/// An intrusive augmented red-black interval tree of T, linked through the hook `T::*Hook`.
template <typename T, interval_tree_node T::*Hook, typename Traits>
class interval_tree {
  using node = interval_tree_node;

 public:
  using value_type = T;

  interval_tree() = default;
  interval_tree(const interval_tree&) = delete;
  interval_tree& operator=(const interval_tree&) = delete;
  /// The nodes move with the tree; `other` is left empty.
  interval_tree(interval_tree&& other) noexcept
      : root_(std::exchange(other.root_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  /// Unlinks this tree's current nodes (clear()), then takes `other`'s.
  interval_tree& operator=(interval_tree&& other) noexcept {
    if (this != &other) {
      clear();
      root_ = std::exchange(other.root_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~interval_tree() = default;

  /// Links `item`; among equal starts it goes after the existing nodes. No effect if `item` is linked.
  void insert(T& item) {
    node* const z = hook(item);
    if (z->linked()) return;
    const std::uint64_t s = start_of(item);
    const std::uint64_t l = last_of(item);
    node* parent = nullptr;
    node** link = &root_;
    while (*link != nullptr) {
      parent = *link;
      if (parent->subtree_last < l) parent->subtree_last = l;
      link = s < start_of(parent) ? &parent->left : &parent->right;
    }
    attach(z, item, parent, link, l);
    insert_fixup(z);
    ++size_;
  }

  /// Links `item` immediately after `prev` in in-order. `prev` must be in this tree and have
  /// the same start as `item`; otherwise this is insert(item). No effect if `item` is linked.
  void insert_after(T& item, T& prev) {
    node* const z = hook(item);
    if (z->linked()) return;
    if (!contains(prev) || start_of(prev) != start_of(item)) {
      insert(item);
      return;
    }
    const std::uint64_t l = last_of(item);
    node* const p = hook(prev);
    node* parent = p;
    node** link = &p->right;
    if (p->right != nullptr) {  // the in-order successor slot: leftmost of prev's right subtree
      parent = leftmost(p->right);
      link = &parent->left;
    }
    attach(z, item, parent, link, l);
    // Every ancestor of z gained l; once one already covers it, all above it do.
    for (node* a = parent; a != nullptr && a->subtree_last < l; a = a->parent) a->subtree_last = l;
    insert_fixup(z);
    ++size_;
  }

  /// Links `item` as the left or right child of `parent` (the root when `parent` is null),
  /// then rebalances: the kernel's rb_link_node() and rb_insert_color(), for a caller that
  /// found the place by its own, finer comparison (KSM compares page contents). The place
  /// must be empty and keep the in-order starts non-decreasing; otherwise, or when `item`
  /// is linked, nothing happens.
  void insert_at(T& item, T* parent, bool right) {
    node* const z = hook(item);
    if (z->linked() || (parent != nullptr && !contains(*parent))) return;
    node* const p = parent != nullptr ? hook(*parent) : nullptr;
    node** const link = p == nullptr ? &root_ : (right ? &p->right : &p->left);
    if (*link != nullptr) return;
    const std::uint64_t l = last_of(item);
    attach(z, item, p, link, l);
    for (node* a = p; a != nullptr && a->subtree_last < l; a = a->parent) a->subtree_last = l;
    insert_fixup(z);
    ++size_;
  }

  /// Unlinks `item` and resets its hook. No effect if `item` is not in this tree.
  void remove(T& item) {
    if (!contains(item)) return;
    node* const z = hook(item);
    node* child = nullptr;   // what now sits where the removed colour was
    node* parent = nullptr;  // child's parent
    bool removed_black = false;
    if (z->left == nullptr || z->right == nullptr) {
      child = z->left != nullptr ? z->left : z->right;
      parent = z->parent;
      removed_black = !z->red;
      replace_child(parent, z, child);
      if (child != nullptr) child->parent = parent;
    } else {
      // The successor s (leftmost of the right subtree, no left child) takes z's
      // place and colour; the colour removed is s's, from s's old position.
      node* const s = leftmost(z->right);
      removed_black = !s->red;
      child = s->right;
      if (s == z->right) {
        parent = s;
      } else {
        parent = s->parent;
        parent->left = child;
        if (child != nullptr) child->parent = parent;
        s->right = z->right;
        s->right->parent = s;
      }
      s->left = z->left;
      s->left->parent = s;
      replace_child(z->parent, z, s);
      s->parent = z->parent;
      s->red = z->red;
    }
    // `parent` is the lowest node whose subtree changed, and every node whose
    // subtree changed (including a moved successor) lies on its path to the root.
    for (node* a = parent; a != nullptr; a = a->parent) a->subtree_last = compute(a);
    if (removed_black) erase_fixup(child, parent);
    reset(z);
    --size_;
  }

  /// Unlinks every node (resetting each hook), in O(n) without recursion.
  void clear() noexcept {
    node* n = root_;
    while (n != nullptr) {
      if (n->left != nullptr) {
        n = n->left;
      } else if (n->right != nullptr) {
        n = n->right;
      } else {
        node* const p = n->parent;
        if (p != nullptr) (p->left == n ? p->left : p->right) = nullptr;
        reset(n);
        n = p;
      }
    }
    root_ = nullptr;
    size_ = 0;
  }

  /// True if `item` is linked in this tree (not merely in some tree). O(log n).
  [[nodiscard]] bool contains(const T& item) const noexcept {
    const node* n = hook(item);
    if (!n->linked()) return false;
    while (n->parent != nullptr) n = n->parent;
    return n == root_;
  }

  /// The first node, in in-order, overlapping [start, last]; null if none. `seen`, if
  /// given, is called with each node whose key the search compares (its work).
  template <typename Seen = ignore_nodes>
  [[nodiscard]] T* iter_first(std::uint64_t start, std::uint64_t last, Seen&& seen = {}) const {
    if (root_ == nullptr || root_->subtree_last < start) return nullptr;
    return owner_of(leftmost_overlap(root_, start, last, seen));
  }

  /// The next node after `item`, in in-order, overlapping [start, last]; null if none.
  /// `item` must be in this tree (null if it is not linked at all). `seen` as iter_first.
  template <typename Seen = ignore_nodes>
  [[nodiscard]] T* iter_next(const T& item, std::uint64_t start, std::uint64_t last, Seen&& seen = {}) const {
    const node* n = hook(item);
    if (!n->linked()) return nullptr;
    for (;;) {
      if (n->right != nullptr && n->right->subtree_last >= start)
        return owner_of(leftmost_overlap(n->right, start, last, seen));
      // No overlap to the right below n: climb to the first ancestor reached from its left.
      const node* from = nullptr;
      do {
        from = n;
        n = n->parent;
        if (n == nullptr) return nullptr;
      } while (from == n->right);
      seen(*static_cast<const T*>(owner_of(n)));
      if (start_of(n) > last) return nullptr;  // n and everything after it start too late
      if (last_of(n) >= start) return owner_of(n);
    }
  }

  /// Calls f(T&) on every node overlapping [start, last], in in-order. f must not modify the
  /// tree, except that it may remove the very node it was given.
  template <typename F>
  void for_each_overlap(std::uint64_t start, std::uint64_t last, F&& f) const {
    T* cur = iter_first(start, last);
    while (cur != nullptr) {
      T* const next = iter_next(*cur, start, last);  // taken first: f may remove cur
      std::invoke(f, *cur);
      cur = next;
    }
  }

  /// Calls f(T&) on every node in in-order. f must not modify the tree, except that it may
  /// remove the very node it was given.
  template <typename F>
  void for_each(F&& f) const {
    const node* n = root_ != nullptr ? leftmost(root_) : nullptr;
    while (n != nullptr) {
      const node* const next = successor(n);  // taken first: f may remove n
      std::invoke(f, *owner_of(n));
      n = next;
    }
  }

  [[nodiscard]] bool empty() const noexcept { return root_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// The item at the root, and an item's left or right child (null when there is none):
  /// for a walk that descends as one of the kernel's own searches does, visiting each node
  /// it passes (KSM's stable tree search prunes what it meets on the way).
  [[nodiscard]] T* root_item() const noexcept { return owner_of(root_); }
  [[nodiscard]] static T* child_of(T& item, bool right) noexcept {
    return owner_of(right ? hook(item)->right : hook(item)->left);
  }

  /// Debug check of every invariant: BST order by start (ties' insertion order is not recorded,
  /// so only non-decreasing start can be checked), start <= last, red-black properties (root
  /// black, no red-red, equal black height, height within 2*log2(n+1)), parent pointers, hook
  /// owners, every subtree_last, and size(). Empty when valid, else the first violation found.
  [[nodiscard]] std::string verify() const {
    if (root_ != nullptr && root_->red) return "root is red";
    check_state st;
    st.max_depth = 2 * static_cast<std::size_t>(std::bit_width(size_ + 1));
    std::size_t black_height = 0;
    if (!check(root_, nullptr, 1, st, black_height)) return st.error;
    if (st.count != size_) return cat("size() is ", size_, " but ", st.count, " nodes are reachable");
    return {};
  }

 private:
  struct check_state {
    std::size_t count = 0;  // nodes reached so far
    std::size_t max_depth = 0;
    std::size_t inorder = 0;  // in-order index of the next node to be placed
    bool has_prev = false;
    std::uint64_t prev_start = 0;
    std::string error;
  };

  static std::uint64_t start_of(const T& item) {
    static_assert(interval_tree_traits<Traits, T>,
                  "Traits must provide static start(const T&) and last(const T&) returning std::uint64_t");
    return Traits::start(item);
  }
  static std::uint64_t last_of(const T& item) {
    static_assert(interval_tree_traits<Traits, T>,
                  "Traits must provide static start(const T&) and last(const T&) returning std::uint64_t");
    return Traits::last(item);
  }
  static T* owner_of(const node* n) noexcept { return n != nullptr ? static_cast<T*>(n->owner) : nullptr; }
  static std::uint64_t start_of(const node* n) { return start_of(*owner_of(n)); }
  static std::uint64_t last_of(const node* n) { return last_of(*owner_of(n)); }
  static node* hook(T& item) noexcept { return &(item.*Hook); }
  static const node* hook(const T& item) noexcept { return &(item.*Hook); }

  // Messages are built by appending: GCC 12 warns falsely (-Wrestrict, bug 105651) on
  // `"literal" + std::string` at -O3.
  static void append(std::string& out, std::string_view part) { out.append(part); }
  static void append(std::string& out, std::uint64_t part) { out.append(std::to_string(part)); }
  template <typename... Parts>
  static std::string cat(const Parts&... parts) {
    std::string out;
    (append(out, parts), ...);
    return out;
  }
  static std::string describe(const node* n) { return cat("[", start_of(n), ", ", last_of(n), "]"); }

  template <typename N>
  static N* leftmost(N* n) noexcept {
    while (n->left != nullptr) n = n->left;
    return n;
  }

  static const node* successor(const node* n) noexcept {
    if (n->right != nullptr) return leftmost(n->right);
    const node* from = nullptr;
    do {
      from = n;
      n = n->parent;
    } while (n != nullptr && from == n->right);
    return n;
  }

  /// The augmented value of n from its own key and its children's values.
  static std::uint64_t compute(const node* n) {
    std::uint64_t m = last_of(n);
    if (n->left != nullptr && n->left->subtree_last > m) m = n->left->subtree_last;
    if (n->right != nullptr && n->right->subtree_last > m) m = n->right->subtree_last;
    return m;
  }

  /// The leftmost node overlapping [qs, ql] in the subtree of n, given n->subtree_last >= qs.
  /// Descending left whenever the left subtree reaches qs is safe: if that subtree holds no
  /// overlap, its node reaching qs starts after ql, and so does everything after it.
  template <typename Seen>
  static const node* leftmost_overlap(const node* n, std::uint64_t qs, std::uint64_t ql, Seen& seen) {
    for (;;) {
      if (n->left != nullptr && n->left->subtree_last >= qs) {
        n = n->left;
        continue;
      }
      seen(*static_cast<const T*>(owner_of(n)));
      if (start_of(n) > ql) return nullptr;
      if (last_of(n) >= qs) return n;
      if (n->right == nullptr || n->right->subtree_last < qs) return nullptr;  // unreachable in a valid tree
      n = n->right;
    }
  }

  static void attach(node* z, T& item, node* parent, node** link, std::uint64_t l) noexcept {
    z->parent = parent;
    z->left = nullptr;
    z->right = nullptr;
    z->red = true;
    z->subtree_last = l;
    z->owner = &item;
    *link = z;
  }

  static void reset(node* n) noexcept {
    n->parent = nullptr;
    n->left = nullptr;
    n->right = nullptr;
    n->red = false;
    n->subtree_last = 0;
    n->owner = nullptr;
  }

  static bool is_red(const node* n) noexcept { return n != nullptr && n->red; }

  void replace_child(node* parent, node* old_child, node* new_child) noexcept {
    if (parent == nullptr) root_ = new_child;
    else if (parent->left == old_child) parent->left = new_child;
    else parent->right = new_child;
  }

  // Rotations: the subtree's node set is unchanged, so the node moving up inherits the
  // old top's subtree_last and only the node moving down recomputes its own.
  void rotate_left(node* x) {
    node* const y = x->right;
    x->right = y->left;
    if (y->left != nullptr) y->left->parent = x;
    y->parent = x->parent;
    replace_child(x->parent, x, y);
    y->left = x;
    x->parent = y;
    y->subtree_last = x->subtree_last;
    x->subtree_last = compute(x);
  }

  void rotate_right(node* x) {
    node* const y = x->left;
    x->left = y->right;
    if (y->right != nullptr) y->right->parent = x;
    y->parent = x->parent;
    replace_child(x->parent, x, y);
    y->right = x;
    x->parent = y;
    y->subtree_last = x->subtree_last;
    x->subtree_last = compute(x);
  }

  /// Restores the red-black properties after z was linked red as a leaf.
  void insert_fixup(node* z) {
    while (is_red(z->parent)) {
      node* p = z->parent;
      node* const g = p->parent;  // exists: a red node is never the root
      const bool p_is_left = p == g->left;
      node* const uncle = p_is_left ? g->right : g->left;
      if (is_red(uncle)) {  // recolour and continue from the grandparent
        p->red = false;
        uncle->red = false;
        g->red = true;
        z = g;
        continue;
      }
      if (p_is_left) {
        if (z == p->right) {  // bring z to the outside first
          rotate_left(p);
          z = p;
          p = z->parent;
        }
        rotate_right(g);
      } else {
        if (z == p->left) {
          rotate_right(p);
          z = p;
          p = z->parent;
        }
        rotate_left(g);
      }
      p->red = false;
      g->red = true;
      break;
    }
    root_->red = false;
  }

  /// Restores the red-black properties after a black node was removed: x (possibly null)
  /// below `parent` is one black short.
  void erase_fixup(node* x, node* parent) {
    while (x != root_ && !is_red(x)) {
      if (x == parent->left) {
        node* w = parent->right;  // exists: its side has black height >= 1
        if (is_red(w)) {
          w->red = false;
          parent->red = true;
          rotate_left(parent);
          w = parent->right;
        }
        if (!is_red(w->left) && !is_red(w->right)) {
          w->red = true;
          x = parent;
          parent = x->parent;
          continue;
        }
        if (!is_red(w->right)) {
          w->left->red = false;
          w->red = true;
          rotate_right(w);
          w = parent->right;
        }
        w->red = parent->red;
        parent->red = false;
        w->right->red = false;
        rotate_left(parent);
      } else {
        node* w = parent->left;
        if (is_red(w)) {
          w->red = false;
          parent->red = true;
          rotate_right(parent);
          w = parent->left;
        }
        if (!is_red(w->left) && !is_red(w->right)) {
          w->red = true;
          x = parent;
          parent = x->parent;
          continue;
        }
        if (!is_red(w->left)) {
          w->right->red = false;
          w->red = true;
          rotate_left(w);
          w = parent->left;
        }
        w->red = parent->red;
        parent->red = false;
        w->left->red = false;
        rotate_right(parent);
      }
      x = root_;
    }
    if (x != nullptr) x->red = false;
  }

  /// verify() of the subtree at n: structural checks before descending (so a corrupt tree
  /// cannot loop), order in in-order, then black height and subtree_last on the way up.
  bool check(const node* n, const node* expected_parent, std::size_t depth, check_state& st,
             std::size_t& black_height) const {
    if (n == nullptr) {
      black_height = 1;
      return true;
    }
    if (depth > st.max_depth) {
      st.error = cat("height exceeds 2*log2(size()+1) at depth ", depth);
      return false;
    }
    if (n->owner == nullptr) {
      st.error = "a reachable node is not marked linked (owner is null)";
      return false;
    }
    if (hook(*owner_of(n)) != n) {
      st.error = "a node's owner does not embed it at the tree's hook";
      return false;
    }
    if (n->parent != expected_parent) {
      st.error = cat("node ", describe(n), " has a wrong parent pointer");
      return false;
    }
    if (++st.count > size_) {
      st.error = cat("more nodes reachable than size() = ", size_);
      return false;
    }
    if (n->red && is_red(expected_parent)) {
      st.error = cat("red node ", describe(n), " has a red parent");
      return false;
    }
    if (last_of(n) < start_of(n)) {
      st.error = cat("node ", describe(n), " has last < start");
      return false;
    }
    std::size_t left_bh = 0;
    if (!check(n->left, n, depth + 1, st, left_bh)) return false;
    const std::uint64_t s = start_of(n);
    if (st.has_prev && s < st.prev_start) {
      st.error = cat("in-order node #", st.inorder, " ", describe(n), " starts before its predecessor's start ",
                     st.prev_start);
      return false;
    }
    st.has_prev = true;
    st.prev_start = s;
    ++st.inorder;
    std::size_t right_bh = 0;
    if (!check(n->right, n, depth + 1, st, right_bh)) return false;
    if (left_bh != right_bh) {
      st.error = cat("node ", describe(n), " has black heights ", left_bh, " (left) and ", right_bh, " (right)");
      return false;
    }
    if (const std::uint64_t want = compute(n); n->subtree_last != want) {
      st.error = cat("node ", describe(n), " has subtree_last ", n->subtree_last, ", expected ", want);
      return false;
    }
    black_height = left_bh + (n->red ? 0 : 1);
    return true;
  }

  node* root_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace rmapkit
