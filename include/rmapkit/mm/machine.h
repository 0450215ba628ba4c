// machine: one simulated kernel instance: its frames, slab caches, files, address
// spaces, swap device and counters. Every mm operation is a member, named after the
// kernel function it models; system-call entry points return 0 or a negative errno,
// as the kernel does. The state of each subsystem (swap device, LRU lists, KSM) is
// defined in mm/internal.h, private to the model; this header only names it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/mm/file_rmap.h"
#include "rmapkit/mm/mm_types.h"
#include "rmapkit/mm/slab.h"

namespace rmapkit::mm {

inline constexpr int PROT_NONE_ = 0, PROT_READ_ = 1, PROT_WRITE_ = 2, PROT_EXEC_ = 4;

/// What do_mmap() does with mappings already in its range: MAP_FIXED_NOREPLACE refuses
/// them (-EEXIST), MAP_FIXED unmaps them first.
enum class map_fixed : std::uint8_t { noreplace, replace };

/// do_mmap()'s MAP_* flags beyond MAP_SHARED.
struct mmap_flags {
  map_fixed how = map_fixed::noreplace;
  /// MAP_NORESERVE: VM_NORESERVE, so never VM_ACCOUNT (the kernel honours it unless
  /// vm.overcommit_memory is 2, which the model does not model).
  bool noreserve = false;
  /// VM_NOHUGEPAGE from the start. On for scenarios (the kernel runner madvises NOHUGEPAGE
  /// after each mmap); a replayed mmap has it only with MAP_STACK, as the kernel gives it.
  bool nohugepage = true;
};

enum class madv {
  dontneed,
  mergeable,
  unmergeable,
  pageout,
  dontfork,
  dofork,
  wipeonfork,
  keeponfork,
  dontdump,
  dodump,
  sequential,
  random,
  normal,
  free,
  cold,
  hugepage,    ///< VM_HUGEPAGE, and no VM_NOHUGEPAGE: anonymous faults may take large folios
  nohugepage,  ///< VM_NOHUGEPAGE, and no VM_HUGEPAGE
  willneed,    ///< swapped pages of the range read into the swap cache (no PTE changes)
  remove,      ///< a hole punched in the file behind a shared mapping
  collapse,    ///< MADV_COLLAPSE: each aligned 2 MiB block of anonymous memory copied into a PMD-mapped THP
};

/// What a write to /proc/PID/clear_refs clears (fs/proc/task_mmu.c: CLEAR_REFS_ALL = 1,
/// CLEAR_REFS_ANON = 2, CLEAR_REFS_MAPPED = 3).
enum class clear_refs_type : std::uint8_t { all = 1, anon = 2, mapped = 3 };

/// struct mem_size_stats (fs/proc/task_mmu.c): what /proc/PID/smaps sums over one VMA. Sizes
/// are bytes; the pss fields are bytes << PSS_SHIFT, so that a page shared by three keeps
/// its fraction until the sum is printed.
struct mem_size_stats {
  static constexpr unsigned PSS_SHIFT = 12;
  std::uint64_t resident = 0, shared_clean = 0, shared_dirty = 0, private_clean = 0, private_dirty = 0, referenced = 0,
                anonymous = 0, lazyfree = 0, anonymous_thp = 0, swap = 0, ksm = 0;
  std::uint64_t pss = 0, pss_anon = 0, pss_file = 0, pss_shmem = 0, pss_dirty = 0, pss_locked = 0, swap_pss = 0;
};

/// struct rmap_walk_control (include/linux/rmap.h).
struct rmap_walk_control {
  /// Called for each VMA that may map the folio, at vma_address(); false stops the walk.
  std::function<bool(folio&, vm_area_struct&, vaddr_t)> rmap_one;
  /// Checked after each rmap_one: true stops the walk (e.g. folio_not_mapped).
  std::function<bool(folio&)> done;
  /// Skips a VMA before rmap_one.
  std::function<bool(vm_area_struct&)> invalid_vma;
};

/// Work counters of rmap walks, for the design lab and the benchmarks.
struct walk_stats {
  std::uint64_t walks = 0;
  std::uint64_t vmas_visited = 0;   ///< rmap_one calls
  std::uint64_t ptes_examined = 0;  ///< page_vma_mapped_walk lookups
  std::uint64_t misses = 0;         ///< lookups that did not find the folio (a large one: per page)
  std::uint64_t entries = 0;        ///< rmap entries examined: AVCs, list nodes, chain entries
  std::uint64_t upkeep = 0;         ///< entries read to add or remove a mapping (chain searches, duplicate checks)
};

/// The kernel locks that rmap work takes, by era, as the design lab counts them
/// (machine::lock_stats()): which lock each design's walks, faults, forks and exits take.
enum class rmap_lock_class : std::uint8_t {
  anon_vma_root_rwsem,  ///< anon_vma->root->rwsem: one lock per fork family (2.6.35 on; a mutex until 3.8)
  anon_vma_lock,        ///< anon_vma->lock: each anon_vma's own spinlock (2.6.7 to 2.6.34)
  i_mmap_rwsem,         ///< mapping->i_mmap_rwsem (3.16 on; i_mmap_mutex from 3.0)
  i_mmap_lock,          ///< mapping->i_mmap_lock, a spinlock (2.6.x)
  pte_chain_lock,       ///< 2.5's per-page bit spinlock over page->pte
  pcache_lock,          ///< LegoOS's per-frame rmap lock
  ptl,                  ///< the page-table lock of the PTE page a walk looks into
};
inline constexpr std::size_t RMAP_LOCK_CLASSES = 7;
/// The lock's kernel name ("anon_vma->root->rwsem", ...).
[[nodiscard]] const char* to_string(rmap_lock_class c);

/// One lock class over a run. Work is rmap work done while a lock of the class was held:
/// entries read, VMAs visited, PTEs examined and entries read to add or remove a mapping
/// (walk_stats); a hold that only links an object counts an acquisition and no work.
struct lock_count {
  std::uint64_t acquisitions = 0;
  std::uint64_t work = 0;
  std::uint64_t longest = 0;               ///< the most work under one hold
  std::uint64_t hottest_work = 0;          ///< the most work under one lock of the class (one instance)
  std::uint64_t hottest_acquisitions = 0;  ///< how often that lock was taken: its holders queue on it
};

/// One step of an rmap walk, as `rmapkit walk` shows it. Walks report their steps where
/// they count walk_stats (an entry, a visit, a PTE examined), so that a trace and the
/// counters agree by construction.
struct walk_step {
  enum class kind : std::uint8_t {
    start,      ///< the object the walk starts from (@name, @object): folio->mapping, page->pte, ...
    lock,       ///< a lock the walk takes (@name: the kernel's function; @object: what it locks)
    query,      ///< a tree query on @object for the page offsets [@first, @last]
    source,     ///< an object the walk reads that walk_stats does not count (a KSM rmap_item)
    entry,      ///< an rmap entry read (walk_stats::entries): an AVC, a list node, a chain entry
    candidate,  ///< a candidate VMA at @addr: vma_address() of the page when @computed, else the entry's
    skip,       ///< a candidate passed over: invalid_vma() (@name "invalid_vma") or outside the VMA
    pte,        ///< page_vma_mapped_walk() at @addr found @pte (walk_stats::ptes_examined)
    rmap_one,   ///< rmap_one() returned @ok: false stops the walk (walk_stats::vmas_visited)
    done,       ///< rwc.done() says nothing is left to do: the walk stops
  };
  kind what = kind::start;
  const char* name = "";  ///< the kernel's name for the object, entry or lock
  const void* object = nullptr;
  const vm_area_struct* vma = nullptr;
  const mm_struct* mm = nullptr;  ///< for a source or entry that names an mm (KSM, PTE chains)
  std::uint64_t first = 0, last = 0;
  vaddr_t addr{};
  pte_t pte{};
  bool computed = false;
  bool ok = false;
};

/// Receives the steps of every rmap walk while it is set (machine::set_walk_tracer).
using walk_tracer = std::function<void(const walk_step&)>;

/// Events counted as /proc/vmstat counts them (include/linux/vm_event_item.h).
enum class vm_event : std::uint8_t {
  pgfault,
  pgmajfault,
  pswpin,
  pswpout,
  pgscan_direct,
  pgsteal_direct,
  pgscan_anon,
  pgscan_file,
  pgsteal_anon,
  pgsteal_file,
  pgactivate,
  pgdeactivate,
  pgrefill,
  pgrotated,
  pgmigrate_success,
  pgmigrate_fail,
  cow_ksm,
  unevictable_pgs_culled,
  unevictable_pgs_mlocked,
  unevictable_pgs_munlocked,
  unevictable_pgs_rescued,
  pglazyfree,
  pglazyfreed,
};
inline constexpr std::size_t NR_VM_EVENTS = static_cast<std::size_t>(vm_event::pglazyfreed) + 1;

/// Fault-around window in pages (fault_around_bytes = 64 KiB; cannot be changed on the kernel).
inline constexpr std::uint64_t FAULT_AROUND_PAGES = 16;

// Subsystem state, defined in mm/internal.h and changed only by the files that own it: the
// swap device (its slots: swapfile.cc; its cache: swap_state.cc; what the slots hold:
// page_io.cc), the LRU lists (swap.cc), KSM's trees (ksm.cc).
struct swap_info_struct;
struct lruvec;
struct ksm_state;
struct ksm_tree_entry;

class machine final : private pte_observer {
 public:
  /// A machine whose reverse map is the design called @design: an anonymous design
  /// (anon_rmap.h), optionally +FILE for a file design (file_rmap.h): "linux-2.6.7+prio-tree".
  explicit machine(std::string_view design = "linux-6");
  ~machine();
  machine(const machine&) = delete;
  machine& operator=(const machine&) = delete;

  // ---- objects ------------------------------------------------------------------------
  mm_struct* mm_alloc(std::string name);
  /// A memfd of @pages pages, each filled with content fingerprinted by (@key, index).
  address_space* memfd_create(std::string name, std::uint64_t pages, std::uint64_t key);
  /// Drops the scenario's reference to a file (its VMAs keep theirs).
  void file_put(address_space* f);

  // ---- system calls: 0 or -errno ----------------------------------------------------------
  /// The new VMA merges with its neighbours where the kernel would (vma_merge_new_range()).
  int do_mmap(mm_struct& mm, vaddr_t addr, std::uint64_t pages, int prot, bool shared, address_space* file,
              pgoff_t pgoff, mmap_flags flags = {});
  int do_munmap(mm_struct& mm, vaddr_t addr, std::uint64_t pages);
  int do_mprotect(mm_struct& mm, vaddr_t addr, std::uint64_t pages, int prot);
  int do_mremap_resize(mm_struct& mm, vaddr_t addr, std::uint64_t old_pages, std::uint64_t new_pages);
  int do_mremap_move(mm_struct& mm, vaddr_t addr, std::uint64_t pages, vaddr_t new_addr);
  int do_madvise(mm_struct& mm, vaddr_t addr, std::uint64_t pages, madv advice);
  int do_mlock(mm_struct& mm, vaddr_t addr, std::uint64_t pages, bool lock);
  /// mlockall(): @current locks every VMA there is (populated as mlock() does), @future every
  /// VMA made from now on (mm->def_flags); munlockall() is both false.
  void do_mlockall(mm_struct& mm, bool current, bool future);
  /// fork(): a new mm that is a copy of @parent (dup_mmap).
  mm_struct* dup_mm(mm_struct& parent, std::string name);
  /// exit(): tears the address space down (exit_mmap) and frees the mm.
  void exit_mm(mm_struct* mm);
  /// A user access to one byte of the page at @addr: faults as needed. A write replaces
  /// the page's content with @content. -EFAULT when the access faults.
  int access(mm_struct& mm, vaddr_t addr, bool write, std::uint64_t content = 0);

  // ---- /proc/PID (task_mmu.cc) -------------------------------------------------------------
  /// What /proc/PID/smaps sums for @vma (smap_gather_stats()).
  [[nodiscard]] mem_size_stats smap_gather_stats(const vm_area_struct& vma) const;
  /// A write of @type to /proc/PID/clear_refs: the accessed bits of the mm's present PTEs and
  /// the referenced (and idle-young) state of their folios are cleared.
  void clear_refs(mm_struct& mm, clear_refs_type type);

  // ---- faults (memory.c) ----------------------------------------------------------------
  int handle_mm_fault(vm_area_struct& vma, vaddr_t addr, bool write);

  // ---- the reverse map (rmap.c) -----------------------------------------------------------
  void rmap_walk(folio& f, const rmap_walk_control& rwc);
  /// Number of VMAs in which the folio was referenced (young PTEs, cleared on the way);
  /// VM_LOCKED of a mapping VMA is reported in @vm_flags.
  int folio_referenced(folio& f, vm_flags_t* vm_flags = nullptr);
  /// Unmaps the folio from every PTE (anon folios must be in the swap cache: their PTEs
  /// become swap entries). Stops at a VM_LOCKED VMA, unless @ignore_mlock (TTU_IGNORE_MLOCK,
  /// which only the split of a large page-cache folio asks for). True when the folio is
  /// unmapped.
  bool try_to_unmap(folio& f, bool ignore_mlock = false);
  /// Migrates a folio to a new frame (try_to_migrate(), the copy, remove_migration_ptes()):
  /// every mapping moves to the new frame with its write, AnonExclusive, young and dirty
  /// state; the page cache, the swap cache and KSM follow. Returns the new frame, or
  /// nothing when a mapping cannot be migrated.
  std::optional<pfn_t> migrate_folio(pfn_t pfn);
  /// Frees every unmapped swap-cache folio whose slot nothing refers to any more (what
  /// reclaim or swapoff does to them eventually; a COW break of a swap-cache page leaves
  /// one behind, as in the kernel).
  void drop_swap_cache();
  /// What ksmd's next scan does first: drops the rmap_items of the mms that exited since
  /// (at teardown, what ksmd would do eventually).
  void ksm_drop_exited();
  void restore_migration_ptes(folio& src, folio& dst);
  /// Migrates every mapped frame (as offlining all memory would).
  void migrate_all();
  /// add_to_swap(): gives an anon folio a swap slot and puts it in the swap cache.
  bool add_to_swap(folio& f);
  /// Reclaims everything reclaimable (the scenario's `reclaim`): LRU passes until one
  /// changes nothing (see vmscan.cc).
  void shrink_all();
  /// The scenario's `shrink`: reclaim of the file lists (lazily freed folios) and the
  /// deferred-split shrinker, passes until one changes nothing (see vmscan.cc).
  void shrink_memcg_file();
  /// One pass of reclaim over the lruvec (shrink_lruvec() at the lowest priority): every
  /// active list is aged onto its inactive list, every inactive folio goes through
  /// shrink_folio_list(). Returns whether anything changed.
  bool shrink_lruvec();
  /// lru_add_drain(): the CPU's folio batches are drained (the kernel runner does it before
  /// every statement; the model runner too).
  void lru_add_drain();
  /// The scenario's `ksm`: KSM scans until nothing changes for three full scans.
  void ksm_run_to_fixpoint(bool prune = false);
  /// One full scan by ksmd: every registered mm in scan order, then the unstable tree
  /// rebuilt and stale stable nodes dropped. Whether any KSM counter changed.
  bool ksm_scan_once();
  /// /sys/kernel/mm/ksm counters.
  struct ksm_stats {
    std::uint64_t pages_shared = 0, pages_sharing = 0, pages_unshared = 0, pages_volatile = 0, stable_node_chains = 0,
                  stable_node_dups = 0, full_scans = 0;
    bool operator==(const ksm_stats&) const = default;
  };
  [[nodiscard]] ksm_stats ksm_counters() const;
  /// Write-protects and cleans every shared mapping of a file folio; returns the count.
  int folio_mkclean(folio& f);
  /// The address of @pgoff in @vma, if inside it (vma_address()).
  static std::optional<vaddr_t> vma_address(const vm_area_struct& vma, pgoff_t pgoff) {
    return vma_address(vma, pgoff, 1);
  }
  /// The first address in @vma of a folio of @nr pages at @pgoff, if any of it is inside.
  static std::optional<vaddr_t> vma_address(const vm_area_struct& vma, pgoff_t pgoff, std::uint64_t nr) {
    const vaddr_t a = vma_address_or_none(vma, pgoff, nr);
    if (a == NO_ADDRESS) return std::nullopt;
    return a;
  }
  /// vma_address() for the walks: NO_ADDRESS when outside. Every walk computes it once per
  /// candidate, and a std::optional<vaddr_t> built there costs a store-forwarding stall
  /// (GCC writes its flag byte and reads the pair back whole): a third of a one-mapping walk.
  static constexpr vaddr_t NO_ADDRESS{~std::uint64_t{0}};
  static vaddr_t vma_address_or_none(const vm_area_struct& vma, pgoff_t pgoff, std::uint64_t nr) {
    // A folio that starts before the VMA (a VMA split inside it) is met at the VMA's start.
    if (pgoff.value < vma.vm_pgoff.value) return pgoff.value + nr - 1 < vma.vm_pgoff.value ? NO_ADDRESS : vma.vm_start;
    const vaddr_t addr = page_addr(vma.vm_start, pgoff.value - vma.vm_pgoff.value);
    return addr < vma.vm_end ? addr : NO_ADDRESS;
  }
  /// Whether @vma maps @f at @addr (page_vma_mapped_walk for an order-0 folio).
  bool page_vma_mapped(const folio& f, const vm_area_struct& vma, vaddr_t addr);
  /// page_vma_mapped_walk() of a large folio in @vma: each PTE that maps a page of it (with
  /// false), or the PMD that maps it whole (true). Every lookup is a PTE examined, and one
  /// that finds no page of the folio a miss.
  std::vector<std::pair<vaddr_t, bool>> large_folio_mappings(const folio& head, const vm_area_struct& vma);

  /// Every rmap walk reports its steps to @t until it is reset (`rmapkit walk`); an empty
  /// tracer costs a walk one test per step.
  void set_walk_tracer(walk_tracer t) { _tracer = std::move(t); }
  [[nodiscard]] bool tracing() const { return static_cast<bool>(_tracer); }
  void trace(const walk_step& s) const {
    if (_tracer) _tracer(s);
  }

  // ---- large folios (huge_memory.cc) ------------------------------------------------------
  /// The anonymous folio sizes a fault may allocate in a VM_HUGEPAGE mapping, as a set of
  /// orders (bit k: 2^k pages), the scenario's `thp anon=` (THP "madvise" for each).
  void set_thp_anon_orders(std::uint16_t orders) { _thp_anon_orders = orders; }
  [[nodiscard]] std::uint16_t thp_anon_orders() const { return _thp_anon_orders; }
  /// The shmem folio sizes a fault on a hole may allocate in a VM_HUGEPAGE mapping (memfd or
  /// MAP_SHARED|MAP_ANONYMOUS), the scenario's `thp shmem=` (each size's shmem_enabled "advise").
  void set_thp_shmem_orders(std::uint16_t orders) { _thp_shmem_orders = orders; }
  /// A large folio's own state; it must be one (@head is its head).
  [[nodiscard]] const large_folio_state& large_state(const folio& head) const;
  /// Folios waiting for a deferred split, in queue order (their heads).
  [[nodiscard]] const std::vector<pfn_t>& deferred_split_queue() const { return _deferred_split; }
  /// The deferred-split shrinker (deferred_split_scan(), the scenario's `shrink`): every
  /// queued folio is split to order 0 where it can be. Returns how many were.
  std::uint64_t deferred_split_scan();

  // ---- lookups ----------------------------------------------------------------------------
  /// The frame at @pfn: the folio for an order-0 page, one page of it for a large folio.
  folio& folio_of(pfn_t pfn) { return _frames.at(pfn.value); }
  const folio& folio_of(pfn_t pfn) const { return _frames.at(pfn.value); }
  /// The folio the page at @pfn belongs to: its head frame (page_folio()).
  folio& page_folio(pfn_t pfn) { return folio_of(folio_of(pfn).head_pfn()); }
  const folio& page_folio(pfn_t pfn) const { return folio_of(folio_of(pfn).head_pfn()); }
  /// Whether any page of the folio whose head is @head is mapped (folio_mapped()).
  [[nodiscard]] bool folio_mapped(const folio& head) const {
    return head.is_large() ? large_state(head).mapcount > 0 : head.mapped();
  }
  /// folio_mapcount(): a large folio's mappings (PTEs and PMDs), an order-0 folio's PTEs.
  [[nodiscard]] int folio_mapcount(const folio& head) const {
    return head.is_large() ? large_state(head).mapcount : head.mapcount;
  }
  /// folio_precise_page_mapcount(): the page's PTE mappings plus its folio's PMD mappings
  /// (what /proc/kpagecount reads).
  [[nodiscard]] int precise_page_mapcount(const folio& page) const {
    if (!page.is_large()) return page.mapcount;
    return page.mapcount + large_state(folio_of(page.head_pfn())).entire_mapcount;
  }
  [[nodiscard]] pfn_t zero_pfn() const { return _zero_pfn; }
  /// is_zero_pfn() || is_huge_zero_pfn(): the small zero page, or the huge zero folio a
  /// PMD maps (which has no frames in the model).
  [[nodiscard]] bool is_zero_pfn(pfn_t pfn) const { return pfn == _zero_pfn || pfn == HUGE_ZERO_PFN; }
  /// The VMA containing addr. The mmap_cache hit is inline: a PTE design's walk asks once
  /// per mapping, and each process's one VMA over the page is the one it asked for last.
  static vm_area_struct* find_vma(const mm_struct& mm, vaddr_t addr) {
    if (const auto* c = mm.mmap_cache; c && c->vm_start <= addr && addr < c->vm_end) [[likely]]
      return const_cast<vm_area_struct*>(c);
    return find_vma_in_tree(mm, addr);
  }
  [[nodiscard]] std::uint64_t swap_count(swp_entry_t e) const;
  [[nodiscard]] bool swap_slot_in_use(swp_entry_t e) const;
  /// Folios on LRU list @l, most recently added first (the scan takes them from the back).
  [[nodiscard]] std::vector<pfn_t> lru_folios(lru_list l) const;
  [[nodiscard]] std::uint64_t lru_size(lru_list l) const;
  /// /proc/vmstat-style event counters by their vmstat names (those that happened).
  [[nodiscard]] std::map<std::string, std::uint64_t> vmstat() const;
  /// One event counter, by its index: cheap enough to read around every access.
  [[nodiscard]] std::uint64_t event_count(vm_event e) const { return _events[static_cast<std::size_t>(e)]; }

  // ---- checking and accounting ----------------------------------------------------------
  /// The first broken invariant of the machine's state, described; empty when all hold
  /// (the list: docs/architecture.md#invariants).
  [[nodiscard]] std::string check_invariants() const;
  [[nodiscard]] std::string check_folio_lru(const folio& f, bool dirty_pte, unsigned locked_ptes) const;
  [[nodiscard]] std::string check_lru_lists() const;
  /// Objects still allocated: after every mm exited and every file was put, all zero.
  struct live_objects {
    std::size_t mms, vmas, anon_vmas, avcs, files, folios;
    std::size_t design;  ///< objects of the rmap designs (for linux-6: its anon_vmas and AVCs again; a
                         ///< file design's index entries)
    [[nodiscard]] std::size_t total() const { return mms + vmas + anon_vmas + avcs + files + folios + design; }
  };
  [[nodiscard]] live_objects live() const;
  /// Bytes of the frame table (struct pages): mapped directly, not from the heap.
  [[nodiscard]] std::uint64_t frame_table_bytes() const { return _frames.bytes(); }
  /// Anonymous 4 KiB frames in use (KSM included, every page of a large folio) and their
  /// mappings: each PTE, and each PMD once for every page it maps.
  struct anon_footprint_t {
    std::uint64_t frames = 0, mappings = 0;
  };
  [[nodiscard]] anon_footprint_t anon_footprint() const;
  walk_stats& stats() { return _walk; }
  /// Lock counting (off by default: it costs a hash lookup per hold). `rmapkit compare`
  /// turns it on; lock_stats() is indexed by rmap_lock_class.
  void set_lock_accounting(bool on) { _lock_accounting = on; }
  [[nodiscard]] bool lock_accounting() const { return _lock_accounting; }
  [[nodiscard]] const std::array<lock_count, RMAP_LOCK_CLASSES>& lock_stats() const { return _locks; }
  /// The work counter a lock hold charges (walk_stats, summed).
  [[nodiscard]] std::uint64_t lock_work() const {
    return _walk.entries + _walk.vmas_visited + _walk.ptes_examined + _walk.upkeep;
  }
  /// A hold of the lock @instance of class @c ended, with @work done under it.
  void lock_released(rmap_lock_class c, std::uintptr_t instance, std::uint64_t work);
  /// The anonymous reverse-map design in use (linux-6: anon_vma, AVCs, interval trees).
  [[nodiscard]] const anon_rmap& anon_rmap_design() const { return *_anon; }
  /// The file reverse-map design in use (interval-tree: the machine's own i_mmap).
  [[nodiscard]] const file_rmap& file_rmap_design() const { return *_file; }
  /// The design's canonical name: ANON, or ANON+FILE when the file design is not the default.
  [[nodiscard]] std::string design_name() const;
  /// The live mms in creation order.
  const std::vector<mm_struct*>& mms() const {
    compact_mms();
    return _mms;
  }

  // ---- introspection: read-only views for `rmapkit show` and embedders ---------------------
  /// Frames the machine has (pfns 1 .. nr_frames() - 1; pfn 0 is never used).
  [[nodiscard]] std::uint64_t nr_frames() const { return _frames.size(); }
  /// Every live anon_vma, in no particular order (their `id` is their allocation order).
  void for_each_anon_vma(const std::function<void(const anon_vma&)>& f) const { _anon_vmas.for_each(f); }
  /// Every open file (page cache object), in no particular order.
  void for_each_file(const std::function<void(const address_space&)>& f) const { _files.for_each(f); }
  /// The LRU list a folio is on, if it is on one.
  [[nodiscard]] static std::optional<lru_list> lru_of(const folio& f) {
    if (!f.test(folio_flag::lru)) return std::nullopt;
    return folio_lru_list(f);
  }
  /// KSM's structures as they are: the stable tree's nodes by content (nodes of equal
  /// content are the dups of one chain), every rmap_item by (mm, address), and the
  /// unstable tree's items by content.
  struct ksm_view {
    std::vector<const ksm_stable_node*> stable;  ///< by content, a chain's dups in list order
    std::vector<std::uint64_t> stable_chain;     ///< of each node: its chain (1, 2, ...), or 0 when lone
    std::vector<const ksm_rmap_item*> rmap_items;
    std::vector<const ksm_rmap_item*> unstable;
    std::vector<const mm_struct*> mm_slots;  ///< in scan order
    std::uint64_t full_scans = 0;
  };
  [[nodiscard]] ksm_view ksm_snapshot() const;

 private:
  static vm_area_struct* find_vma_in_tree(const mm_struct& mm, vaddr_t addr);  ///< find_vma() past mmap_cache

  explicit machine(const rmap_design_name& design);
  friend class linux6_anon_rmap;
  friend class interval_tree_file_rmap;
  // frames (page_alloc)
  /// A new folio of 2^@order frames, naturally aligned; its head, with the caller's reference.
  folio& alloc_folio(unsigned order = 0);
  /// Puts a frame on the free list.
  void free_frame(folio& f);
  // large folios (huge_memory.cc)
  large_folio_state& mutable_large_state(folio& head);
  /// The largest enabled order whose naturally aligned block around @addr lies inside
  /// @vma with every PTE empty; 0 when none does or the VMA is not VM_HUGEPAGE.
  unsigned anon_fault_order(const vm_area_struct& vma, vaddr_t addr) const;
  /// @n more mappings of a large folio, in @mm (folio_add_large_mapcount()).
  void large_mapcount_add(folio& head, const mm_struct& mm, int n);
  /// @n fewer mappings of a large folio, in @mm (folio_sub_large_mapcount()).
  void large_mapcount_sub(folio& head, const mm_struct& mm, int n);
  /// Whether a write fault of @vma may reuse a PTE-mapped large anon folio (every mapping
  /// its mm's, every reference a mapping's, more than one page mapped).
  bool can_reuse_large_anon_folio(folio& head, const vm_area_struct& vma);
  /// A page of @head went unmapped while others stay mapped: queue it for a deferred split.
  void deferred_split_folio(folio& head);
  // PMD-mapped THP (huge_memory.cc)
  [[nodiscard]] bool pmd_fault_suitable(const vm_area_struct& vma, vaddr_t addr) const;
  int do_huge_pmd_anonymous_page(vm_area_struct& vma, vaddr_t addr, bool write);
  void assign_pmd_anon_exclusive(folio& head, bool on);
  void map_anon_folio_pmd(vm_area_struct& vma, vaddr_t haddr);
  int do_huge_pmd_wp_page(vm_area_struct& vma, vaddr_t addr, pte_t pmd);
  bool touch_huge_pmd(mm_struct& mm, vaddr_t addr, bool write);
  void split_huge_pmd(vm_area_struct& vma, vaddr_t addr);
  void split_huge_pmds_of(folio& head);
  void zap_huge_pmds(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  void copy_huge_pmds(vm_area_struct& dst, vm_area_struct& src);
  void folio_remove_rmap_pmd(folio& head, const vm_area_struct& vma);
  bool large_folio_referenced_one(folio& head, vm_area_struct& vma, int& mapcount, int& referenced, vm_flags_t& flags);
  /// try_to_unmap_one() of a lazily freed large folio in @vma; false when the walk stops.
  bool try_to_unmap_lazyfree_large(folio& head, vm_area_struct& vma);
  void free_pgtables(mm_struct& mm, vaddr_t start, vaddr_t end);
  // khugepaged.cc
  int madvise_collapse(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  int collapse_huge_page(vm_area_struct& vma, vaddr_t h);
  std::vector<unsigned> split_remap(folio& head);
  /// Splits a large anon folio to order 0; false when something beyond its mappings and
  /// the caller's @caller_pins holds it.
  bool split_large_folio(folio& head, int caller_pins = 0);
  /// The split of a shmem folio: unmapped everywhere, its pages stay in the page cache.
  /// Tails go to @isolated_tails (each with an isolation reference) when one is given, else
  /// to the LRU.
  bool split_file_folio(folio& head, int caller_pins, std::vector<pfn_t>* isolated_tails = nullptr);
  /// A punched hole's non-uniform split: @at becomes a page of its own, the rest the largest
  /// folios a buddy split gives.
  bool split_file_folio_at(folio& head, pfn_t at);
  void unmap_mapping_range(address_space& as, std::uint64_t first, std::uint64_t last);
  void truncate_whole_folios(address_space& as, std::uint64_t first, std::uint64_t last);
  folio* cut_by_hole(address_space& as, std::uint64_t index, std::uint64_t first, std::uint64_t last);
  void truncate_partial_folio(folio& f, std::uint64_t first, std::uint64_t last);
  struct folio_piece {
    pfn_t pfn;
    unsigned order;
  };
  bool cut_file_folio(folio& head, int caller_pins, const std::vector<folio_piece>& pieces,
                      std::vector<pfn_t>* isolated_tails);
  bool try_to_unmap_file_large(folio& head, vm_area_struct& vma, bool ignore_mlock);
  void unmap_large_ptes(folio& head, vm_area_struct& vma, const std::vector<std::pair<vaddr_t, bool>>& maps);
  void vma_adjust_trans_huge(vm_area_struct& vma, vaddr_t addr);
  void folio_get(folio& f) { ++f.refcount; }
  /// Drops a reference; the last frees the folio. Zap and exit drop one per PTE, and nearly
  /// every one leaves others (a shared page's, the page cache's): that case is inline.
  void folio_put(folio& f) {
    if (f.refcount > 1 && !f.is_large() && f.pfn != _zero_pfn) {
      --f.refcount;
      return;
    }
    folio_put_refs(f, 1);
  }
  /// folio_put_refs(): drops @nr references at once (a batch of PTEs of one large folio).
  void folio_put_refs(folio& f, int nr);
  // page cache (filemap)
  /// The page at @index of @as's page cache (a large folio's page there), or a new
  /// order-0 page when @create.
  folio* filemap_get_folio(address_space& as, pgoff_t index, bool create);
  /// Adds a new folio to the page cache at @index, one entry per page; the cache holds a
  /// reference per page (shmem_add_to_page_cache()).
  void filemap_add_folio(address_space& as, folio& f, pgoff_t index);
  /// Takes an unmapped folio (its head) out of its file's page cache (__remove_mapping()).
  void filemap_remove_folio(folio& f);
  // VMAs (vma.c, mmap.c)
  vm_area_struct* vm_area_alloc(mm_struct& mm);
  vm_area_struct* vm_area_dup(const vm_area_struct& src);
  void vm_area_free(vm_area_struct* vma);
  void vma_link(vm_area_struct* vma);
  void vma_unlink_file(vm_area_struct& vma);
  void vma_link_file(vm_area_struct& vma);
  void vma_set_range(vm_area_struct& vma, vaddr_t start, vaddr_t end, pgoff_t pgoff);
  vm_area_struct* split_vma(vm_area_struct& vma, vaddr_t addr, bool new_below);
  vm_area_struct* vma_modify_flags(vm_area_struct* vma, vaddr_t start, vaddr_t end, vm_flags_t flags);
  vm_area_struct* vma_merge_existing(vm_area_struct* vma);
  vm_area_struct* vma_shift_boundary(vm_area_struct& vma, vaddr_t start, vaddr_t end, vm_flags_t flags);
  /// One side of a merge: a VMA, or a range of one with the flags it is about to get.
  struct merge_side {
    vaddr_t start, end;
    const address_space* file;
    vm_flags_t flags;
    pgoff_t pgoff;
    const vm_area_struct* vma;  ///< whose anon_vma and chain the side has
  };
  static merge_side side_of(const vm_area_struct& v) {
    return {v.vm_start, v.vm_end, v.vm_file, v.vm_flags, v.vm_pgoff, &v};
  }
  bool can_merge(const merge_side& a, const merge_side& b) const;
  bool can_merge(const vm_area_struct& a, const vm_area_struct& b) const;
  void remove_vma(vm_area_struct* vma);
  /// remove_vma() of a VMA no longer in its mm's tree (exit drops the tree whole).
  void free_vma(vm_area_struct* vma);
  int munmap_range(mm_struct& mm, vaddr_t start, vaddr_t end);
  void dup_mmap(mm_struct& mm, mm_struct& oldmm);
  static vm_area_struct* vma_prev(const mm_struct& mm, const vm_area_struct& vma);
  static vm_area_struct* vma_next(const mm_struct& mm, const vm_area_struct& vma);
  // anon_vma (rmap.c)
  anon_vma* anon_vma_alloc();
  void free_anon_vma(anon_vma* av);
  anon_vma_chain* anon_vma_chain_alloc();
  void anon_vma_chain_free(anon_vma_chain* avc);
  void clone_anon_vma_chain(vm_area_struct& dst, vm_area_struct& src);
  void put_anon_vma(anon_vma* av);
  void anon_vma_chain_link(vm_area_struct& vma, anon_vma_chain* avc, anon_vma* av);
  int anon_vma_prepare(vm_area_struct& vma);
  anon_vma* find_mergeable_anon_vma(vm_area_struct& vma);
  void anon_vma_clone(vm_area_struct& dst, vm_area_struct& src);
  void anon_vma_fork(vm_area_struct& vma, vm_area_struct& pvma);
  void unlink_anon_vmas(vm_area_struct& vma);
  void anon_vma_interval_tree_update(vm_area_struct& vma, bool remove);
  // folio rmap (rmap.c)
  void folio_add_new_anon_rmap(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive);
  void folio_add_anon_rmap_pte(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive);
  /// Kernel: folio_try_dup_anon_rmap_ptes() / folio_dup_file_rmap_ptes() at fork, for an
  /// order-0 folio (copy_page_range() batches a large folio's PTEs itself). Nothing in the
  /// model pins pages, so sharing always succeeds; a shared page is no longer exclusive.
  /// Inline, as folio_remove_rmap_pte(): fork and exit call them once per PTE.
  void folio_dup_rmap_pte(folio& f) {
    f.mapcount++;
    f.clear(folio_flag::anon_exclusive);
  }
  void folio_add_file_rmap_pte(folio& f);
  /// @nr pages from @page on, all of folio @head, lose one mapping each in @vma's mm
  /// (folio_remove_rmap_ptes(): one batch, so partial mapping is judged after all of them).
  void folio_remove_rmap_ptes(folio& head, folio& page, unsigned nr, const vm_area_struct& vma);
  /// Kernel: folio_remove_rmap_ptes() for an order-0 folio. folio->mapping stays: it is
  /// reset only when the folio is freed.
  void folio_remove_rmap_pte(folio& f) {
    if (f.is_large()) [[unlikely]]
      rmap_bug("folio_remove_rmap_pte: a page of a large folio");
    if (--f.mapcount <= 0) {
      if (f.mapcount < 0) [[unlikely]]
        rmap_bug("folio_remove_rmap_pte: mapcount underflow");
      f.clear(folio_flag::anon_exclusive);
    }
  }
  /// Throws std::logic_error(@what): out of line, so the inline rmap paths stay small.
  [[noreturn]] static void rmap_bug(const char* what);
  void folio_move_anon_rmap(folio& f, vm_area_struct& vma);
  void rmap_walk_anon(folio& f, const rmap_walk_control& rwc);
  void rmap_walk_file(folio& f, const rmap_walk_control& rwc);
  // memory.c
  int do_anonymous_page(vm_area_struct& vma, vaddr_t addr, bool write);
  void map_new_anon_folio(vm_area_struct& vma, vaddr_t addr, std::uint64_t content, bool unshare = false,
                          unsigned order = 0);
  int do_read_fault(vm_area_struct& vma, vaddr_t addr);
  int do_cow_fault(vm_area_struct& vma, vaddr_t addr);
  int do_shared_fault(vm_area_struct& vma, vaddr_t addr);
  int do_wp_page(vm_area_struct& vma, vaddr_t addr, pte_t pte);
  int wp_page_copy(vm_area_struct& vma, vaddr_t addr, folio* old, bool unshare = false);
  void do_fault_around(vm_area_struct& vma, vaddr_t addr);
  void map_file_ptes(vm_area_struct& vma, vaddr_t addr, folio& page, unsigned nr, bool writable, bool dirty);
  void map_unmapped_pages(vm_area_struct& vma, vaddr_t start, folio& head, std::uint64_t first, std::uint64_t last);
  int finish_fault(vm_area_struct& vma, vaddr_t addr, folio& page, bool write);
  bool do_set_pmd(vm_area_struct& vma, vaddr_t addr, folio& head, bool write);
  void zap_pte_range(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  void copy_page_range(vm_area_struct& dst, vm_area_struct& src);
  void populate_vma_page_range(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  int do_swap_page(vm_area_struct& vma, vaddr_t addr, pte_t pte, bool write);
  bool can_reuse_anon_folio(folio& f);
  /// The shmem/file page at @index: from the page cache, back from swap, or a new zeroed page.
  /// A hole faulted from @vma at @addr may get a large folio (shmem_alloc_and_add_folio()).
  folio* shmem_get_folio(address_space& as, pgoff_t index, const vm_area_struct* vma = nullptr, vaddr_t addr = {});
  [[nodiscard]] unsigned shmem_fault_order(const address_space& as, const vm_area_struct& vma, vaddr_t addr) const;
  /// shmem_writeout(): a shmem page leaves its file for the swap cache (pageout of shmem).
  void shmem_writeout(address_space& as, folio& f);
  // swap (swapfile.c, swap_state.c)
  void swap_duplicate(swp_entry_t e);
  /// Drops one PTE's or shmem's reference to a slot.
  void swap_free(swp_entry_t e);
  /// A PTE's swap entry goes (zap): when nothing refers to the slot any more, an unmapped
  /// swap-cache folio goes with it (free_swap_and_cache()).
  void free_swap_and_cache(swp_entry_t e);
  /// Takes a folio out of the swap cache; the slot goes when nothing else refers to it.
  void delete_from_swap_cache(folio& f);
  void free_swap_slot(std::uint64_t slot);
  void workingset_eviction(const folio& f);
  void workingset_refault(folio& f, swp_entry_t e);
  /// After a `reclaim`: every shadow left so far is farther than the workingset.
  void workingset_forget_shadows();
  /// folio_free_swap(): leaves the swap cache when no PTE or shmem refers to the slot.
  bool folio_free_swap(folio& f);
  /// The swap-cache folio of @e, or a new one read back from the slot (swapin_readahead()).
  folio& swapin(swp_entry_t e);
  /// The swap-cache folio of @e, if there is one (swap_cache_get_folio()).
  folio* swap_cache_get_folio(swp_entry_t e);
  /// swap_read_folio(): @f gets what @e's slot holds.
  void swap_read_folio(folio& f, swp_entry_t e);
  /// swap_writeout(): @f's content goes to its slot; writeback completes at once.
  void swap_writeout(folio& f);
  /// Migration: @e's slot in the swap cache names @now instead (__swap_cache_replace_folio()).
  void swap_cache_replace_folio(swp_entry_t e, folio& now);
  void count(vm_event e, std::uint64_t n = 1) { _events[static_cast<std::size_t>(e)] += n; }
  // task_mmu.cc
  void smaps_account(mem_size_stats& mss, const folio& page, const folio& f, bool young, bool dirty, bool locked) const;
  [[nodiscard]] std::uint64_t shmem_partial_swap_usage(const address_space& as, std::uint64_t first,
                                                       std::uint64_t end) const;
  // PTE writes, for designs that track PTEs
  void pte_set(mm_struct& mm, vaddr_t addr, pte_t old, pte_t now) override;
  void pmd_set(mm_struct& mm, vaddr_t addr, pte_t old, pte_t now) override;
  // LRU lists (swap.c, vmscan.c)
  static lru_list folio_lru_list(const folio& f);
  void lruvec_add_folio(folio& f, bool tail = false);
  void lruvec_del_folio(folio& f);
  /// folio_isolate_lru(): off its LRU list, with the isolation's reference.
  void folio_isolate_lru(folio& f);
  /// folio_mark_accessed(): referenced on a first access, active on a second.
  void folio_mark_accessed(folio& f);
  /// A new folio joins the LRU (folio_add_lru_vma()): mlocked at once in a VM_LOCKED VMA.
  void folio_add_lru(folio& f, const vm_area_struct* vma);
  /// Sets or clears a flag that decides the folio's list (active, unevictable), moving it
  /// to the head (or @tail) of its new list if it is on one.
  void folio_set_lru_flag(folio& f, folio_flag flag, bool on, bool tail = false);
  // reclaim (vmscan.c)
  enum class folioref : int;         // defined in vmscan.cc
  enum class reclaim_outcome : int;  // defined in vmscan.cc
  folioref folio_check_references(folio& f);
  reclaim_outcome shrink_folio(folio& f, bool ignore_references, std::vector<pfn_t>& list);
  void folio_putback(folio& f, reclaim_outcome r);
  bool shrink_inactive_list(lru_list l);
  bool shrink_active_list(lru_list l);
  /// pageout() for a dirty unmapped folio: anon (and KSM) to its swap slot, shmem to swap
  /// inside its file. The folio stays in the swap cache, clean, until a later pass frees it.
  void pageout(folio& f);
  /// MADV_COLD (@pageout false) or MADV_PAGEOUT.
  void madvise_cold_or_pageout(vm_area_struct& vma, vaddr_t start, vaddr_t end, bool pageout);
  void madvise_dontneed(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  void madvise_split_large_folios(vm_area_struct& vma, vaddr_t start, vaddr_t end, bool pageout);
  void isolate_whole_for_pageout(folio& head, std::vector<pfn_t>& isolated);
  void madvise_free(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  /// MADV_FREE's test of a folio the range maps whole by @nr entries; cleans it.
  bool lazyfree_cleanable(folio& f, std::uint64_t nr);
  /// The runs of a range's PTEs over one large folio each, with whether the run is whole.
  [[nodiscard]] std::vector<std::pair<const folio*, bool>> large_folio_runs(const page_table& pgd, vaddr_t start,
                                                                            vaddr_t end) const;
  /// mprotect's batches of a large folio's PTEs: each gets the batch's accessed and dirty bits.
  void merge_young_dirty_of_batches(mm_struct& mm, vaddr_t start, vaddr_t end);
  void madvise_willneed(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  void madvise_remove(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  /// folio_mark_lazyfree(): an anonymous folio moves to the inactive file list, not
  /// swap-backed any more, its referenced and active flags cleared.
  void folio_mark_lazyfree(folio& f);
  /// reclaim_pages(): shrink_folio_list() over folios MADV_PAGEOUT isolated, references ignored.
  void reclaim_pages(const std::vector<pfn_t>& isolated);
  // mlock (mlock.c): PG_mlocked follows "some VM_LOCKED VMA maps the folio" exactly
  static constexpr std::size_t FOLIO_BATCH_SIZE = 31;  // PAGEVEC_SIZE: a per-CPU batch drains when full
  void mlock_batch_add(const folio& f, bool newly_mlocked);
  /// When @f was first mlocked since the mlock batch last drained (the kernel has not made
  /// it unevictable yet), whether it was active then; nothing otherwise.
  [[nodiscard]] std::optional<bool> mlock_pending(const folio& f) const;
  struct pending_mlock {
    pfn_t pfn;
    bool was_active;
  };
  std::size_t _mlock_batch_size = 0;            // folios in the scenario CPU's mlock batch
  std::vector<pending_mlock> _mlock_batch_new;  // of them, those first mlocked there
  void mlock_folio(folio& f);
  /// A VM_LOCKED mapping of @f went away: back to the evictable lists if it was the last.
  void munlock_folio(folio& f);
  void mlock_vma_folio(folio& f, const vm_area_struct& vma) {
    if (vma.vm_flags.has(vm_flag::locked)) mlock_folio(f);
  }
  void munlock_vma_folio(folio& f, const vm_area_struct& vma) {
    if (vma.vm_flags.has(vm_flag::locked)) munlock_folio(f);
  }
  /// mlock_vma_pages_range(): after VM_LOCKED of [start, end) changed, its folios follow.
  void mlock_vma_pages_range(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  // ksm.c
  void ksm_enter(mm_struct& mm);
  void ksm_exit(mm_struct& mm);
  void ksm_forget(mm_struct& mm);
  [[nodiscard]] std::string check_ksm_tree() const;
  void ksm_mlock_batch_add(const folio& f);
  [[nodiscard]] bool ksm_mlock_batch_holds(const folio& f) const;
  void unmerge_ksm_pages(vm_area_struct& vma, vaddr_t start, vaddr_t end);
  folio* ksm_get_folio(ksm_stable_node* node);
  void remove_node_from_stable_tree(ksm_stable_node* node);
  void remove_rmap_item_from_tree(ksm_rmap_item& item);
  ksm_stable_node* stable_tree_search(std::uint64_t content);
  ksm_stable_node* stable_node_dup(ksm_tree_entry& chain, bool prune);
  bool ksm_scan_mm(mm_struct& mm);
  struct ksm_visit {
    bool restart;
    ksm_stable_node* dup;
  };
  ksm_visit visit_stable_entry(ksm_tree_entry& e, bool prune);
  void erase_stable_entry(ksm_tree_entry& e);
  void stable_tree_append(ksm_rmap_item& item, ksm_stable_node* node, vm_area_struct& vma);
  ksm_stable_node* stable_tree_insert(folio& f);
  void write_protect_page(vm_area_struct& vma, vaddr_t addr);
  bool replace_page(vm_area_struct& vma, vaddr_t addr, folio& kpage);
  bool ksm_split_for_merge(vm_area_struct& vma, vaddr_t addr);
  void cmp_and_merge_page(vm_area_struct& vma, vaddr_t addr, ksm_rmap_item& item);
  void rmap_walk_ksm(folio& f, const rmap_walk_control& rwc);
  // invariant checks (debug.cc), in the order check_invariants() runs them
  struct pte_census;  // what the page tables refer to, counted on the way
  [[nodiscard]] std::string check_vmas(const std::vector<const vm_area_struct*>& vmas) const;
  [[nodiscard]] std::string check_anon_vmas(const std::vector<const vm_area_struct*>& vmas) const;
  [[nodiscard]] std::string check_ptes(const std::vector<const vm_area_struct*>& vmas, pte_census& census) const;
  [[nodiscard]] std::string check_pte(const vm_area_struct& v, vaddr_t a, pte_t pte, const folio& page, const folio& f,
                                      std::set<std::uint64_t>& seen_in_mm) const;
  [[nodiscard]] std::string check_huge_pmd(const vm_area_struct& v, vaddr_t h, pte_t pmd, pte_census& census,
                                           std::set<std::uint64_t>& seen_in_mm) const;
  [[nodiscard]] std::string check_folios(const pte_census& census) const;
  [[nodiscard]] std::string check_large_folio(const folio& head, const pte_census& census) const;
  [[nodiscard]] std::string check_files() const;
  [[nodiscard]] std::string check_swap(pte_census& census) const;

  std::unique_ptr<ksm_state> _ksm;

  frame_table _frames;  // by pfn; pfn 0 is never used
  /// Free frames, reused LIFO like the buddy allocator's hot pages, linked through their
  /// folio::lru_next (0 ends the list: pfn 0 is never a frame).
  std::uint32_t _free_head = 0;
  pfn_t _zero_pfn;
  slab_cache<vm_area_struct> _vmas;
  slab_cache<anon_vma> _anon_vmas;
  slab_cache<anon_vma_chain> _avcs;
  slab_cache<address_space> _files;
  slab_cache<mm_struct> _mm_slab;
  // exit_mm() leaves a null behind and compact_mms() closes the gaps once half are gone: a
  // million processes that exit in creation order must not shift the list a million times.
  mutable std::vector<mm_struct*> _mms;
  mutable std::size_t _mms_exited = 0;  // nulls in _mms
  void compact_mms() const;
  std::unique_ptr<swap_info_struct> _swap;            // the one swap device and its swap cache
  std::array<std::uint64_t, NR_VM_EVENTS> _events{};  // by vm_event: an index, not a name lookup, per event
  std::unique_ptr<lruvec> _lruvec;                    // the one lruvec: one node, no memcg hierarchy
  std::uint64_t _anon_vma_serial = 0, _mm_serial = 0;
  walk_stats _walk;
  walk_tracer _tracer;
  bool _lock_accounting = false;
  std::array<lock_count, RMAP_LOCK_CLASSES> _locks{};
  struct lock_instance {
    std::uint64_t acquisitions = 0, work = 0;
  };
  std::array<std::unordered_map<std::uintptr_t, lock_instance>, RMAP_LOCK_CLASSES> _lock_instances;
  // Sizes: the objsize column of /proc/slabinfo for these caches on Linux 6.18.
  object_counter _anon_vma_count{"anon_vma", 104};
  object_counter _avc_count{"anon_vma_chain", 64};
  std::unique_ptr<anon_rmap> _anon;
  std::unique_ptr<file_rmap> _file;
  std::uint16_t _thp_anon_orders = 0;
  std::uint16_t _thp_shmem_orders = 0;
  std::unordered_map<std::uint64_t, large_folio_state> _large;  // by head pfn: every large folio's own state
  std::vector<pfn_t> _deferred_split;                           // heads, in queue order
};

/// linear_page_index(): the object page offset of @addr in @vma.
inline pgoff_t linear_page_index(const vm_area_struct& vma, vaddr_t addr) {
  return pgoff_t{vma.vm_pgoff.value + pages_between(vma.vm_start, addr)};
}

}  // namespace rmapkit::mm
