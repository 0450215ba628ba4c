// x86-64 4-level page tables (pgd -> pud -> pmd -> pte), 512 entries per level, and the
// PTE encoding the model uses: present frames with their bits, swap entries with the
// exclusive marker (include/linux/pgtable.h, arch/x86/include/asm/pgtable_types.h).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "rmapkit/types.h"

namespace rmapkit::mm {

/// A swap entry: (type, offset); the model has one swap device, type 0.
struct swp_entry_t {
  std::uint64_t val = 0;
  constexpr bool operator==(const swp_entry_t&) const = default;
};

/// One page-table entry.
class pte_t {
 public:
  constexpr pte_t() = default;

  static constexpr pte_t mk_present(pfn_t pfn, bool write) {
    return pte_t{(pfn.value << SHIFT) | PRESENT | (write ? WRITE : 0)};
  }
  /// A swap PTE; @exclusive carries PageAnonExclusive through the swap (the kernel's
  /// _PAGE_SWP_EXCLUSIVE), so that swap-in can restore it.
  static constexpr pte_t mk_swap(swp_entry_t e, bool exclusive) {
    return pte_t{(e.val << SHIFT) | SWAP | (exclusive ? SWP_EXCLUSIVE : 0)};
  }

  /// A migration entry (try_to_migrate()): not present, names the old frame, and keeps
  /// whether the mapping was writable, or readable but exclusive, young and dirty.
  static constexpr pte_t mk_migration(pfn_t old, bool write, bool exclusive, bool young, bool dirty) {
    return pte_t{(old.value << SHIFT) | MIGRATION | (write ? WRITE : 0) | (exclusive ? SWP_EXCLUSIVE : 0) |
                 (young ? YOUNG : 0) | (dirty ? DIRTY : 0)};
  }

  [[nodiscard]] constexpr bool none() const { return _v == 0; }
  [[nodiscard]] constexpr bool is_migration() const { return (_v & MIGRATION) != 0; }
  [[nodiscard]] constexpr bool present() const { return (_v & PRESENT) != 0; }
  [[nodiscard]] constexpr bool is_swap() const { return (_v & SWAP) != 0; }
  [[nodiscard]] constexpr pfn_t pfn() const { return pfn_t{_v >> SHIFT}; }
  [[nodiscard]] constexpr swp_entry_t swap_entry() const { return swp_entry_t{_v >> SHIFT}; }
  [[nodiscard]] constexpr bool write() const { return (_v & WRITE) != 0; }
  [[nodiscard]] constexpr bool young() const { return (_v & YOUNG) != 0; }
  [[nodiscard]] constexpr bool dirty() const { return (_v & DIRTY) != 0; }
  [[nodiscard]] constexpr bool swp_exclusive() const { return (_v & SWP_EXCLUSIVE) != 0; }

  [[nodiscard]] constexpr pte_t mkwrite() const { return pte_t{_v | WRITE}; }
  [[nodiscard]] constexpr pte_t wrprotect() const { return pte_t{_v & ~WRITE}; }
  [[nodiscard]] constexpr pte_t mkyoung() const { return pte_t{_v | YOUNG}; }
  [[nodiscard]] constexpr pte_t mkold() const { return pte_t{_v & ~YOUNG}; }
  [[nodiscard]] constexpr pte_t mkdirty() const { return pte_t{_v | DIRTY}; }
  [[nodiscard]] constexpr pte_t mkclean() const { return pte_t{_v & ~DIRTY}; }
  [[nodiscard]] constexpr pte_t swp_clear_exclusive() const { return pte_t{_v & ~SWP_EXCLUSIVE}; }

  [[nodiscard]] constexpr std::uint64_t raw() const { return _v; }
  constexpr bool operator==(const pte_t&) const = default;

 private:
  constexpr explicit pte_t(std::uint64_t v) : _v(v) {}
  static constexpr std::uint64_t PRESENT = 1U << 0, WRITE = 1U << 1, YOUNG = 1U << 2, DIRTY = 1U << 3, SWAP = 1U << 4,
                                 SWP_EXCLUSIVE = 1U << 5, MIGRATION = 1U << 6;
  static constexpr unsigned SHIFT = 12;
  std::uint64_t _v = 0;
};

inline constexpr unsigned PTRS_PER_TABLE = 512;
inline constexpr unsigned PMD_SHIFT = 21;
inline constexpr std::uint64_t PMD_SIZE = std::uint64_t{1} << PMD_SHIFT;
/// The order of a folio a PMD maps (2 MiB).
inline constexpr unsigned PMD_ORDER = PMD_SHIFT - 12;
inline constexpr std::uint64_t HPAGE_PMD_NR = std::uint64_t{1} << PMD_ORDER;
/// The huge zero folio's "pfn" in a PMD entry. pfn 0 is never a frame: the model gives
/// the huge zero folio no frames, since nothing ever writes, counts or frees its pages
/// (kpagecount shows 0 on each), and a PMD that maps it needs only to say so.
inline constexpr pfn_t HUGE_ZERO_PFN{0};

struct mm_struct;
class page_table;

/// Told of every PTE and huge PMD write (designs that keep per-PTE reverse maps, like PTE
/// chains).
class pte_observer {
 public:
  virtual void pte_set(mm_struct& mm, vaddr_t addr, pte_t old, pte_t now) = 0;
  virtual void pmd_set(mm_struct& mm, vaddr_t addr, pte_t old, pte_t now) = 0;

 protected:
  ~pte_observer() = default;
};

/// Freed page-table pages kept for the next allocation, per thread (the quicklists of
/// 2.6-era kernels): a table is freed only once empty, so it is still all zeroes and is
/// handed out again without the 4 KiB clear a fresh one needs. Fork of a process with
/// hundreds of VMAs allocates two tables per VMA; the clear was most of its cost.
template <typename T>
class table_quicklist {
 public:
  static std::unique_ptr<T> get() {
    if (gone()) return std::make_unique<T>();
    auto& q = list();
    if (q.empty()) return std::make_unique<T>();
    auto t = std::move(q.back());
    q.pop_back();
    return t;
  }
  /// Keeps @t, which must be empty (all zeroes), or frees it when the list is full or
  /// already gone (a table freed while its thread's statics are destroyed).
  static void put(std::unique_ptr<T> t) {
    if (gone()) return;
    auto& q = list();
    if (q.size() < LIMIT) q.push_back(std::move(t));
  }

 private:
  static constexpr std::size_t LIMIT = 1024;  // 4 MiB per table type and thread
  struct holder {
    std::vector<std::unique_ptr<T>> q;
    holder() = default;
    holder(const holder&) = delete;
    holder& operator=(const holder&) = delete;
    ~holder() { gone() = true; }
  };
  static std::vector<std::unique_ptr<T>>& list() {
    thread_local holder h;
    return h.q;
  }
  static bool& gone() {
    thread_local bool g = false;  // trivially destructible: readable to the thread's end
    return g;
  }
};

/// The four levels. Tables are allocated on first use and freed by free_pgtables().
class page_table {
 public:
  /// Every later set() is reported to @o, as a write to @mm's page table.
  void observe(pte_observer* o, mm_struct* mm) {
    _observer = o;
    _owner = mm;
  }
  /// The PTE at @addr; none when no table covers it.
  [[nodiscard]] pte_t get(vaddr_t addr) const;
  /// Sets the PTE at @addr, allocating tables on the way.
  void set(vaddr_t addr, pte_t pte);
  /// Calls f(vaddr_t, pte_t) for every non-none PTE in [start, end), ascending, skipping
  /// whole absent tables. f may set PTEs of the range it was given.
  template <typename F>
  void for_each(vaddr_t start, vaddr_t end, F&& f) const;
  /// Frees tables left with no entry in [start, end) (the kernel's free_pgtables()).
  void free_empty(vaddr_t start, vaddr_t end);
  /// Moves every entry of [start, end) to the same offset from @to, none left behind (the
  /// kernel's move_page_tables()). Where a whole PTE table moves to an empty 2 MiB slot and
  /// no observer wants each entry, the table itself changes hands (move_normal_pmd()).
  /// Returns how many tables moved whole.
  std::uint64_t move_range(vaddr_t start, vaddr_t end, vaddr_t to);
  /// Page-table pages allocated (for metadata accounting).
  [[nodiscard]] std::uint64_t table_pages() const { return _tables; }

  // ---- PMD leaves (transparent huge pages mapped by one PMD entry) ----
  /// The huge PMD over @addr's 2 MiB, if one maps it.
  [[nodiscard]] std::optional<pte_t> huge_pmd(vaddr_t addr) const;
  /// Installs a huge PMD over @addr's 2 MiB, or removes it (@pmd none). The slot must hold
  /// no PTE table: a PMD fault needs pmd_none(), and a split removes the leaf before it
  /// fills a table. Each leaf has a page-table page deposited with it, as the kernel's
  /// pgtable_trans_huge_deposit() keeps one for the split, so _tables counts one per leaf.
  void set_huge_pmd(vaddr_t addr, pte_t pmd);
  /// Whether a PTE table covers @addr's 2 MiB (empty or not): with one, a fault there is a
  /// PTE fault and cannot install a PMD (CONFIG_PT_RECLAIM frees it only on a whole zap).
  [[nodiscard]] bool has_pte_table(vaddr_t addr) const { return lookup(addr) != nullptr; }
  /// Frees the PTE table over @addr's 2 MiB when it holds no entry (the kernel's
  /// try_to_free_pte() after a MADV_DONTNEED that covered the whole 2 MiB).
  void free_pte_table_if_empty(vaddr_t addr);
  /// Calls f(vaddr_t start, pte_t pmd) for every huge PMD whose 2 MiB meets [start, end).
  template <typename F>
  void for_each_huge(vaddr_t start, vaddr_t end, F&& f) const;
  /// What a reader of the page tables sees (pagemap, smaps, the invariants): f(vaddr_t,
  /// pte_t, bool pmd) for every non-none entry of [start, end) in ascending order, a huge
  /// PMD given as one entry per 4 KiB page (its pfn advanced page by page, except the
  /// huge zero folio's) with pmd set.
  template <typename F>
  void for_each_mapped(vaddr_t start, vaddr_t end, F&& f) const;
  /// The entry a huge PMD gives for the page at @addr.
  [[nodiscard]] static pte_t page_of_huge(pte_t pmd, vaddr_t addr);

 private:
  struct pte_table {
    std::array<pte_t, PTRS_PER_TABLE> e{};
    unsigned used = 0;
  };
  /// A directory owns its children. Its destructor frees the live ones and stops at the
  /// last (used counts them), so a directory emptied range by range, as free_empty() does
  /// at exit, costs nothing to destroy; an array of unique_ptrs would scan all 512 slots
  /// (4 KiB) of every directory, which dominated exit of processes with many VMAs.
  template <typename Child>
  struct dir_table {
    std::array<Child*, PTRS_PER_TABLE> e{};
    unsigned used = 0;

    dir_table() = default;
    dir_table(const dir_table&) = delete;
    dir_table& operator=(const dir_table&) = delete;
    ~dir_table() {
      for (unsigned i = 0; used > 0 && i < PTRS_PER_TABLE; ++i)
        if (e[i]) drop(i);
    }
    /// Child @i, allocated (zeroed, as __GFP_ZERO) when absent; @tables counts allocations.
    Child& ensure(unsigned i, std::uint64_t& tables) {
      if (!e[i]) {
        e[i] = table_quicklist<Child>::get().release();  // owned by this directory until drop()
        ++used;
        ++tables;
      }
      return *e[i];
    }
    /// Frees child @i.
    void drop(unsigned i) {
      std::unique_ptr<Child> gone(std::exchange(e[i], nullptr));
      --used;
      if (gone->used == 0) table_quicklist<Child>::put(std::move(gone));  // empty: all zeroes
    }
    /// Child @i handed over to the caller, its slot left empty.
    std::unique_ptr<Child> take(unsigned i) {
      --used;
      return std::unique_ptr<Child>(std::exchange(e[i], nullptr));
    }
    /// Adopts @c as child @i, an empty slot.
    void adopt(unsigned i, std::unique_ptr<Child> c) {
      e[i] = c.release();
      ++used;
    }
  };
  using pmd_table = dir_table<pte_table>;
  using pud_table = dir_table<pmd_table>;
  using pgd_table = dir_table<pud_table>;

  static constexpr unsigned index(vaddr_t a, unsigned shift) { return static_cast<unsigned>((a.value >> shift) & 511); }

  /// The PTE table at @addr, or null; remembers it for the next call in the same 2 MiB.
  pte_table* lookup(vaddr_t addr) const;
  pte_t get_slow(vaddr_t addr) const;
  void set_slow(vaddr_t addr, pte_t pte);
  /// The PMD directory over @addr, allocating it and the PUD above on the way.
  pmd_table& pmd_dir(vaddr_t addr);
  /// The PMD directory over @addr, or null.
  pmd_table* find_pmd_dir(vaddr_t addr) const;
  /// The PTE table for @addr, allocated when absent.
  pte_table& pte_table_at(vaddr_t addr);
  bool move_table(vaddr_t from, vaddr_t to);
  void move_entries(pte_table& src, vaddr_t from, vaddr_t from_end, vaddr_t to);
  void forget_cached() const {
    _cached_pmd = ~std::uint64_t{0};
    _cached = nullptr;
  }
  void store(pte_table& t, vaddr_t addr, pte_t val) {
    auto& e = t.e[index(addr, 12)];
    t.used = t.used - (e.none() ? 0U : 1U) + (val.none() ? 0U : 1U);
    const pte_t old = e;
    e = val;
    if (_observer) _observer->pte_set(*_owner, addr, old, val);
  }

  /// Huge PMDs by (address >> PMD_SHIFT). Kept beside the directories rather than in
  /// their slots: the slots hold table pointers, and THP leaves are few per process.
  std::map<std::uint64_t, pte_t> _huge;
  // The last huge PMD looked up (map nodes do not move): the 512 accesses, gets and touches
  // of one THP find it without a search.
  mutable std::uint64_t _huge_cached_key = ~std::uint64_t{0};
  mutable pte_t* _huge_cached = nullptr;
  pte_t* find_huge(std::uint64_t key) const;
  // Allocated by the first set(): a process that never maps a page costs no 4 KiB table
  // (a million spawned processes). Counted in _tables from the start, as the kernel's pgd is.
  std::unique_ptr<pgd_table> _pgd;
  std::uint64_t _tables = 1;
  pte_observer* _observer = nullptr;
  mm_struct* _owner = nullptr;
  // A one-entry cache of the last PTE table used (what a TLB or the kernel's pte_offset_map
  // loops give it): faults, fork, zap and walks touch neighbouring PTEs one by one, and
  // each would otherwise descend four levels. free_empty() drops it.
  mutable std::uint64_t _cached_pmd = ~std::uint64_t{0};  ///< addr >> PMD_SHIFT of _cached
  mutable pte_table* _cached = nullptr;
};

// The cached fast paths are inline: fork, zap and faults call them once per PTE.
inline pte_t page_table::get(vaddr_t addr) const {
  if ((addr.value >> PMD_SHIFT) == _cached_pmd) return _cached->e[index(addr, 12)];
  return get_slow(addr);
}

inline void page_table::set(vaddr_t addr, pte_t val) {
  if ((addr.value >> PMD_SHIFT) == _cached_pmd) return store(*_cached, addr, val);
  set_slow(addr, val);
}

template <typename F>
void page_table::for_each(vaddr_t start, vaddr_t end, F&& f) const {
  if (!_pgd) return;
  std::uint64_t a = start.value;
  while (a < end.value) {
    const auto* pud = _pgd->e[index(vaddr_t{a}, 39)];
    if (!pud) {
      a = ((a >> 39) + 1) << 39;
      continue;
    }
    const auto* pmd = pud->e[index(vaddr_t{a}, 30)];
    if (!pmd) {
      a = ((a >> 30) + 1) << 30;
      continue;
    }
    const auto* pte = pmd->e[index(vaddr_t{a}, 21)];
    if (!pte || pte->used == 0) {
      a = ((a >> 21) + 1) << 21;
      continue;
    }
    std::uint64_t table_end = ((a >> 21) + 1) << 21;
    for (; a < end.value && a < table_end; a += PAGE_SIZE) {
      pte_t e = pte->e[index(vaddr_t{a}, 12)];
      if (!e.none()) f(vaddr_t{a}, e);
    }
  }
}

inline pte_t page_table::page_of_huge(pte_t pmd, vaddr_t addr) {
  if (pmd.pfn() == HUGE_ZERO_PFN) return pmd;
  const std::uint64_t sub = (addr.value & (PMD_SIZE - 1)) >> 12;
  pte_t pte = pte_t::mk_present(pfn_t{pmd.pfn().value + sub}, pmd.write());
  if (pmd.young()) pte = pte.mkyoung();
  return pmd.dirty() ? pte.mkdirty() : pte;
}

template <typename F>
void page_table::for_each_huge(vaddr_t start, vaddr_t end, F&& f) const {
  if (_huge.empty() || start >= end) return;
  for (auto it = _huge.lower_bound(start.value >> PMD_SHIFT); it != _huge.end() && (it->first << PMD_SHIFT) < end.value;
       ++it)
    f(vaddr_t{it->first << PMD_SHIFT}, it->second);
}

template <typename F>
void page_table::for_each_mapped(vaddr_t start, vaddr_t end, F&& f) const {
  vaddr_t cursor = start;
  for_each_huge(start, end, [&](vaddr_t h, pte_t pmd) {
    const vaddr_t from = std::max(h, start), to{std::min(h.value + PMD_SIZE, end.value)};
    for_each(cursor, from, [&](vaddr_t a, pte_t pte) { f(a, pte, false); });
    for (vaddr_t a = from; a < to; a = vaddr_t{a.value + PAGE_SIZE}) f(a, page_of_huge(pmd, a), true);
    cursor = to;
  });
  for_each(cursor, end, [&](vaddr_t a, pte_t pte) { f(a, pte, false); });
}

}  // namespace rmapkit::mm
