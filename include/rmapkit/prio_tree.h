// A radix priority search tree over closed intervals [start, last]: the structure that
// indexed a file's mappings (address_space->i_mmap) from Linux 2.6.7 to 3.6, before the
// augmented interval tree (interval_tree.h) replaced it. Written from the published
// design (McCreight's priority search tree, in the radix form the 2004 "objrmap
// complexity fix" used), not from the kernel's lib/prio_tree.c.
//
// Shape. A binary tree that is at once
//   * a heap on `last`: no node has a larger `last` than its parent (ties: the smaller
//     start is the larger priority, so the order is total), so a subtree whose root ends
//     before a query starts holds nothing for it and is pruned;
//   * a radix tree on `start`: at depth d < bits a node lies on the path its start's bit
//     (bits - 1 - d) chooses (0 left, 1 right), so the subtree below a node covers a fixed
//     range of starts and one that begins after the query's end is pruned. Past depth
//     `bits` every start on the path is the same, and the bits of the size (last - start),
//     from the top of a 64-bit word, choose instead;
//   * intervals equal to one in the tree hang off that node in a list, in insertion order
//     (the kernel's vm_set: fork puts a child's copy right after its parent's).
// `bits` is the smallest width that holds every `last` ever inserted since the tree was
// last empty; when an interval needs more, the tree grows at the top: the new interval
// (the largest `last` of all) becomes the root and the old tree moves down one level per
// new bit along the left spine (every old start has zeros in the new top bits), the old
// tree's largest intervals taken out to fill the new levels in between.
//
// Complexity (n intervals in the tree, k reported). insert and remove visit one
// root-to-leaf path: O(depth), with depth at most 2·bits + (intervals sharing one start
// and one size, which go to lists). A stabbing query visits O(depth + k) nodes. Nodes are
// the caller's (prio_tree_node, embedded or held where it likes, at a fixed address
// while linked); the tree allocates nothing.
//
// Every operation takes an optional `seen` callback, called once for each node the
// operation looks at (a tree node whose keys it compares, a list member a query reads):
// the design lab counts these as the work of a walk or of keeping the tree.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace rmapkit {

template <typename T>
struct prio_tree_node {
  T* item = nullptr;
  std::uint64_t start = 0, last = 0;
  prio_tree_node* parent = nullptr;  ///< in the tree: the parent; in a list: the tree node it hangs off
  prio_tree_node* left = nullptr;
  prio_tree_node* right = nullptr;
  prio_tree_node* next = nullptr;  ///< the next equal interval (the tree node heads the list)
  prio_tree_node* prev = nullptr;  ///< the previous one; null for the tree node itself
  bool linked = false;
  [[nodiscard]] bool in_list() const { return linked && prev != nullptr; }
};

/// Ignores the nodes an operation looks at.
struct prio_tree_unseen {
  template <typename N>
  void operator()(const N&) const {}
};

template <typename T>
class prio_tree {
 public:
  using node = prio_tree_node<T>;

  prio_tree() = default;
  prio_tree(const prio_tree&) = delete;
  prio_tree& operator=(const prio_tree&) = delete;

  [[nodiscard]] bool empty() const { return _root == nullptr; }
  [[nodiscard]] std::size_t size() const { return _size; }
  [[nodiscard]] unsigned bits() const { return _bits; }
  [[nodiscard]] const node* root() const { return _root; }

  /// Links @n, whose item, start and last are set; a linked node is left alone.
  template <typename Seen = prio_tree_unseen>
  void insert(node& n, Seen&& seen = {}) {
    if (n.linked || n.last < n.start) return;
    reset(n);
    n.linked = true;
    ++_size;
    if (n.last > max_index(_bits)) grow(n, seen);
    else place(n, seen);
  }

  /// Links @n right after @prev, which must be linked with the same interval (fork's copy
  /// of a VMA follows its parent's); otherwise as insert().
  template <typename Seen = prio_tree_unseen>
  void insert_after(node& n, node& prev, Seen&& seen = {}) {
    if (n.linked) return;
    if (!prev.linked || prev.start != n.start || prev.last != n.last) return insert(n, seen);
    reset(n);
    n.linked = true;
    ++_size;
    seen(prev);
    list_link(n, prev);
  }

  /// Unlinks @n (a no-op when it is not linked).
  template <typename Seen = prio_tree_unseen>
  void remove(node& n, Seen&& seen = {}) {
    if (!n.linked) return;
    --_size;
    if (n.in_list()) {
      n.prev->next = n.next;
      if (n.next) n.next->prev = n.prev;
    } else if (node* heir = n.next) {
      // An equal interval takes its place: the tree's shape does not change.
      heir->prev = nullptr;
      take_place(*heir, n);
      for (node* d = heir->next; d; d = d->next) d->parent = heir;
    } else {
      erase(n, seen);
    }
    reset(n);
    if (_root == nullptr) _bits = 1;
  }

  /// Calls f(T&) on every interval that overlaps [qs, ql], depth first, each list
  /// after its tree node; f returns false to stop. False when f stopped the query.
  template <typename F, typename Seen = prio_tree_unseen>
  bool for_each_overlap(std::uint64_t qs, std::uint64_t ql, F&& f, Seen&& seen = {}) const {
    if (_root == nullptr) return true;
    return query(_root, 0, 0, qs, ql, f, seen);
  }

  /// Calls f(const node&, depth) on every tree node (not list members), depth first.
  template <typename F>
  void for_each_node(F&& f) const {
    if (_root) visit(_root, 0, f);
  }

  /// What is wrong with the tree, or empty: the heap order, each node on its radix path,
  /// parent links, lists of equal intervals, the count and the width.
  [[nodiscard]] std::string verify() const {
    std::size_t count = 0;
    std::string bad;
    if (_root && _root->parent) return "the root has a parent";
    if (_root) check(_root, 0, 0, count, bad);
    if (bad.empty() && count != _size)
      bad = "holds " + std::to_string(count) + " intervals, counted " + std::to_string(_size);
    return bad;
  }

 private:
  static constexpr unsigned WORD = 64;

  static std::uint64_t max_index(unsigned bits) { return bits >= WORD ? ~0ULL : (1ULL << bits) - 1; }
  static unsigned width_of(std::uint64_t v) {
    unsigned b = 1;
    while (b < WORD && max_index(b) < v) ++b;
    return b;
  }
  static void reset(node& n) {
    n.parent = n.left = n.right = n.next = n.prev = nullptr;
    n.linked = false;
  }
  static bool same(const node& a, const node& b) { return a.start == b.start && a.last == b.last; }
  /// Heap order: the larger last first; of equal lasts, the smaller start.
  static bool above(const node& a, const node& b) { return a.last > b.last || (a.last == b.last && a.start < b.start); }
  /// The branch @n takes below depth @d: a bit of its start, then of its size.
  [[nodiscard]] bool goes_right(const node& n, unsigned d) const {
    if (d < _bits) return (n.start >> (_bits - 1 - d)) & 1;
    const unsigned s = d - _bits;
    return s < WORD && (((n.last - n.start) >> (WORD - 1 - s)) & 1);
  }

  static void list_link(node& n, node& after) {
    n.parent = after.in_list() ? after.parent : &after;
    n.prev = &after;
    n.next = after.next;
    if (after.next) after.next->prev = &n;
    after.next = &n;
  }

  /// @n takes @old's place in the tree (parent, children); @old is left detached.
  void take_place(node& n, node& old) {
    n.parent = old.parent;
    n.left = old.left;
    n.right = old.right;
    if (n.left) n.left->parent = &n;
    if (n.right) n.right->parent = &n;
    if (!old.parent) _root = &n;
    else if (old.parent->left == &old) old.parent->left = &n;
    else old.parent->right = &n;
  }

  /// Descends from the root; a node of higher priority takes the place it passes and the
  /// one it displaces goes on down (with its list of equals).
  template <typename Seen>
  void place(node& n, Seen& seen) {
    node* cur = &n;
    node* parent = nullptr;
    node** link = &_root;
    unsigned d = 0;
    while (*link) {
      node& here = **link;
      seen(here);
      if (same(here, *cur)) {
        node* tail = &here;
        while (tail->next) tail = tail->next;
        list_link(*cur, *tail);
        return;
      }
      if (above(*cur, here)) {
        take_place(*cur, here);
        here.parent = here.left = here.right = nullptr;
        parent = cur;
        cur = &here;
      } else {
        parent = &here;
      }
      link = goes_right(*cur, d) ? &parent->right : &parent->left;
      ++d;
    }
    cur->parent = parent;
    *link = cur;
  }

  /// The vacancy @n leaves is filled by its child of higher priority, whose own vacancy
  /// is filled the same way, down to a leaf.
  template <typename Seen>
  void erase(node& n, Seen& seen) {
    node* hole = &n;
    for (;;) {
      node* l = hole->left;
      node* r = hole->right;
      if (l) seen(*l);
      if (r) seen(*r);
      node* up = (l && r) ? (above(*l, *r) ? l : r) : (l ? l : r);
      if (!up) break;
      swap_down(*hole, *up);
    }
    if (!hole->parent) _root = nullptr;
    else if (hole->parent->left == hole) hole->parent->left = nullptr;
    else hole->parent->right = nullptr;
  }

  /// @up, a child of @hole, moves one level up into @hole's place (its start shares the
  /// path to there), and @hole takes @up's old place.
  void swap_down(node& hole, node& up) {
    node* p = hole.parent;
    const bool up_is_left = hole.left == &up;
    node* other = up_is_left ? hole.right : hole.left;
    node* ul = up.left;
    node* ur = up.right;
    up.parent = p;
    if (!p) _root = &up;
    else if (p->left == &hole) p->left = &up;
    else p->right = &up;
    up.left = up_is_left ? &hole : other;
    up.right = up_is_left ? other : &hole;
    if (other) other->parent = &up;
    hole.parent = &up;
    hole.left = ul;
    hole.right = ur;
    if (ul) ul->parent = &hole;
    if (ur) ur->parent = &hole;
  }

  /// The tree widens to hold @n: one new level per new bit at the top. @n (the largest
  /// last) becomes the root; the old tree's largest intervals fill the levels between.
  template <typename Seen>
  void grow(node& n, Seen& seen) {
    const unsigned wider = width_of(n.last);
    const unsigned levels = wider - _bits;
    _bits = wider;
    node* top = &n;
    node* bottom = top;
    for (unsigned i = 1; i < levels && _root; ++i) {
      node* filler = _root;  // with its list of equals, which stays with it
      seen(*filler);
      erase(*filler, seen);
      filler->parent = bottom;
      bottom->left = filler;
      bottom = filler;
    }
    if (_root) {
      bottom->left = _root;
      _root->parent = bottom;
    }
    _root = top;
    n.parent = nullptr;
  }

  template <typename F, typename Seen>
  bool query(const node* n, unsigned d, std::uint64_t base, std::uint64_t qs, std::uint64_t ql, F& f,
             Seen& seen) const {
    seen(*n);
    if (n->last < qs) return true;  // heap: nothing below ends later
    if (n->start <= ql) {
      for (const node* e = n; e; e = e->next) {
        if (e != n) seen(*e);  // a list member read
        if (!f(*e->item)) return false;
      }
    }
    // Below depth d the starts on the left run from base, on the right from base + half.
    const std::uint64_t half = d < _bits ? 1ULL << (_bits - 1 - d) : 0;
    if (n->left && base <= ql && !query(n->left, d + 1, base, qs, ql, f, seen)) return false;
    if (n->right && base + half <= ql && !query(n->right, d + 1, base + half, qs, ql, f, seen)) return false;
    return true;
  }

  template <typename F>
  static void visit(const node* n, unsigned d, F& f) {
    f(*n, d);
    if (n->left) visit(n->left, d + 1, f);
    if (n->right) visit(n->right, d + 1, f);
  }

  void check(const node* n, unsigned d, std::uint64_t path, std::size_t& count, std::string& bad) const {
    if (!bad.empty()) return;
    auto fail = [&](const std::string& why) {
      bad = "[" + std::to_string(n->start) + ", " + std::to_string(n->last) + "] " + why;
    };
    if (!n->linked || n->prev) return fail("is in the tree but not linked as a tree node");
    if (n->last > max_index(_bits)) return fail("ends past the tree's width of " + std::to_string(_bits) + " bits");
    // The radix path: the start's top d bits (while d < bits) are the path taken.
    const unsigned used = d < _bits ? d : _bits;
    if (used > 0 && (n->start >> (_bits - used)) != path)
      return fail("is off its radix path at depth " + std::to_string(d));
    ++count;
    for (const node* e = n->next; e; e = e->next) {
      ++count;
      if (!same(*e, *n) || e->parent != n || !e->linked || (e->prev->next != e))
        return fail("has a broken list of equal intervals");
    }
    for (const node* c : {n->left, n->right}) {
      if (!c) continue;
      if (c->parent != n) return fail("has a child whose parent is not it");
      if (above(*c, *n)) return fail("is below a child of higher priority");
    }
    // The path holds the radix bits only: below depth `bits` the size chooses.
    if (n->left) check(n->left, d + 1, d < _bits ? path << 1 : path, count, bad);
    if (n->right) check(n->right, d + 1, d < _bits ? (path << 1) | 1 : path, count, bad);
  }

  node* _root = nullptr;
  std::size_t _size = 0;
  unsigned _bits = 1;
};

}  // namespace rmapkit
