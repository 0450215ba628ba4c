// An intrusive doubly-linked list with list_head semantics: the node lives inside the
// object, as in the kernel (vma->anon_vma_chain, avc->same_vma). Each node knows its
// owner, which replaces the kernel's container_of() without pointer arithmetic.
#pragma once

#include <cstddef>

namespace rmapkit::mm {

template <typename T>
struct list_head {
  list_head* next = this;
  list_head* prev = this;
  T* owner = nullptr;  ///< the object this node is embedded in; null for a list's head

  list_head() = default;
  explicit list_head(T* o) : owner(o) {}
  list_head(const list_head&) = delete;
  list_head& operator=(const list_head&) = delete;

  [[nodiscard]] bool empty() const { return next == this; }
  [[nodiscard]] bool singular() const { return !empty() && next == prev; }
  /// Inserts @n right after this node: at the front of the list this node heads.
  void add(list_head& n) { link(n, this, next); }
  /// Inserts @n right before this node: at the back of the list this node heads.
  void add_tail(list_head& n) { link(n, prev, this); }
  /// Unlinks this node and leaves it pointing at itself.
  void del() {
    prev->next = next;
    next->prev = prev;
    next = prev = this;
  }
  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    for (const list_head* p = next; p != this; p = p->next) ++n;
    return n;
  }
  [[nodiscard]] T* first() const { return empty() ? nullptr : next->owner; }
  [[nodiscard]] T* last() const { return empty() ? nullptr : prev->owner; }

  /// Calls f(T&) for each entry, front to back; f may unlink the entry it is given.
  template <typename F>
  void for_each(F&& f) const {
    for (list_head *p = next, *n = p->next; p != this; p = n, n = p->next) f(*p->owner);
  }
  /// The same, back to front.
  template <typename F>
  void for_each_reverse(F&& f) const {
    for (list_head *p = prev, *n = p->prev; p != this; p = n, n = p->prev) f(*p->owner);
  }

 private:
  static void link(list_head& n, list_head* before, list_head* after) {
    n.prev = before;
    n.next = after;
    before->next = &n;
    after->prev = &n;
  }
};

}  // namespace rmapkit::mm
