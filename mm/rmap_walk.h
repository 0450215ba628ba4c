// Internal to the mm library (not installed): the one implementation of what an rmap
// walk does with each candidate VMA, the protocol of struct rmap_walk_control
// (include/linux/rmap.h). Every walk goes through it: rmap_walk_anon() and
// rmap_walk_file() (rmap.cc), rmap_walk_ksm() (ksm.cc) and every historical design's
// walk (designs/). The walks differ only in how they find candidates; a candidate is
// then handled identically, so the design lab compares candidate sets, never protocols.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

/// Traces a step that walk_stats does not count (where the walk starts, a lock, a query).
/// @make builds the step, and is called only while tracing: a step passed by value was
/// built before the branch that skips it (GCC stores its fields first), and those stores,
/// a dozen per step, three steps per mapping, were a quarter of an untraced walk.
template <std::invocable Make>
inline void rmap_trace(const machine& m, Make&& make) {
  if (m.tracing()) [[unlikely]]
    m.trace(make());
}

/// The walk reads one rmap entry (an AVC, a list node, a chain entry): counted, and traced.
inline void rmap_entry(machine& m, const char* name, const void* entry, const vm_area_struct* vma = nullptr) {
  m.stats().entries++;
  rmap_trace(m, [&] { return walk_step{.what = walk_step::kind::entry, .name = name, .object = entry, .vma = vma}; });
}

/// A kernel lock held from here to the end of the scope: traced as the step the walk
/// shows (when @function names the kernel function that takes it) and, while the machine
/// counts locks, charged with the work done under it (machine::lock_released()).
class rmap_lock {
 public:
  rmap_lock(machine& m, rmap_lock_class c, const void* instance, const char* function = nullptr)
      : rmap_lock(m, c, reinterpret_cast<std::uintptr_t>(instance), function, instance) {}
  rmap_lock(machine& m, rmap_lock_class c, std::uintptr_t instance, const char* function = nullptr,
            const void* shown = nullptr)
      : _m(m), _c(c), _instance(instance), _start(m.lock_accounting() ? m.lock_work() : 0) {
    if (function)
      rmap_trace(m, [&] { return walk_step{.what = walk_step::kind::lock, .name = function, .object = shown}; });
  }
  ~rmap_lock() {
    if (_m.lock_accounting()) _m.lock_released(_c, _instance, _m.lock_work() - _start);
  }
  rmap_lock(const rmap_lock&) = delete;
  rmap_lock& operator=(const rmap_lock&) = delete;

 private:
  machine& _m;
  rmap_lock_class _c;
  std::uintptr_t _instance;
  std::uint64_t _start;
};

namespace detail {

/// rmap_one() on a candidate at @addr, after invalid_vma().
[[nodiscard]] inline bool rmap_visit_at(machine& m, folio& f, vm_area_struct& vma, vaddr_t addr,
                                        const rmap_walk_control& rwc) {
  if (rwc.invalid_vma && rwc.invalid_vma(vma)) {
    rmap_trace(
        m, [&] { return walk_step{.what = walk_step::kind::skip, .name = "invalid_vma", .vma = &vma, .addr = addr}; });
    return true;
  }
  m.stats().vmas_visited++;
  const bool go_on = rwc.rmap_one(f, vma, addr);
  rmap_trace(m, [&] { return walk_step{.what = walk_step::kind::rmap_one, .vma = &vma, .addr = addr, .ok = go_on}; });
  if (!go_on) return false;
  if (rwc.done && rwc.done(f)) {
    rmap_trace(m, [&] { return walk_step{.what = walk_step::kind::done, .vma = &vma}; });
    return false;
  }
  return true;
}

}  // namespace detail

/// Handles one candidate VMA already known to map @f's page at @addr (KSM's
/// rmap_item->address, a PTE a chain recorded): skip it if the walker's invalid_vma()
/// says so, else count it and call rmap_one(). False when the walk must stop: rmap_one()
/// asked to, or done() says the walk has nothing left to do.
[[nodiscard]] inline bool rmap_visit(machine& m, folio& f, vm_area_struct& vma, vaddr_t addr,
                                     const rmap_walk_control& rwc) {
  rmap_trace(
      m, [&] { return walk_step{.what = walk_step::kind::candidate, .vma = &vma, .addr = addr, .computed = false}; });
  return detail::rmap_visit_at(m, f, vma, addr, rwc);
}

/// How a walk found its candidate VMAs, which decides what a candidate whose range
/// does not cover the page means.
enum class rmap_candidates {
  /// An interval-tree query on the page's offset: every hit covers it, so one that does
  /// not is a corrupted tree (std::logic_error).
  cover_the_page,
  /// A list of every VMA that ever shared the anon_vma (2.6.7's family list, 2.6.34's
  /// AVC list): a VMA whose range misses the page is skipped cheaply, as those kernels
  /// skipped it after vma_address().
  may_miss_the_page,
};

/// Handles one candidate VMA at vma_address() of @f's page, then as the form above.
[[nodiscard]] inline bool rmap_visit(machine& m, folio& f, vm_area_struct& vma, rmap_candidates from,
                                     const rmap_walk_control& rwc) {
  const vaddr_t addr = machine::vma_address_or_none(vma, f.index, f.nr_pages());
  if (addr == machine::NO_ADDRESS) {
    if (from == rmap_candidates::cover_the_page) throw std::logic_error("rmap walk: interval tree hit outside the VMA");
    rmap_trace(m, [&] {
      return walk_step{.what = walk_step::kind::skip, .name = "vma_address", .vma = &vma, .computed = true};
    });
    return true;
  }
  rmap_trace(
      m, [&] { return walk_step{.what = walk_step::kind::candidate, .vma = &vma, .addr = addr, .computed = true}; });
  return detail::rmap_visit_at(m, f, vma, addr, rwc);
}

}  // namespace rmapkit::mm
