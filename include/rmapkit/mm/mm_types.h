// The objects of the memory manager as far as the reverse map lives in them, with the
// kernel's names and fields (include/linux/mm_types.h, include/linux/rmap.h). Links
// between objects are intrusive, as in the kernel; objects are owned by their
// slab_cache in the machine (mm/machine.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "rmapkit/interval_tree.h"
#include "rmapkit/mm/list.h"
#include "rmapkit/mm/pgtable.h"
#include "rmapkit/types.h"

namespace rmapkit::mm {

struct anon_vma;
struct anon_vma_chain;
struct address_space;
struct mm_struct;
struct vm_area_struct;
struct ksm_stable_node;

// ---- vm_flags -------------------------------------------------------------------------

/// VMA flags, with the kernel's bit values (include/linux/mm.h).
enum class vm_flag : std::uint64_t {
  read = 0x1,
  write = 0x2,
  exec = 0x4,
  shared = 0x8,
  mayread = 0x10,
  maywrite = 0x20,
  mayexec = 0x40,
  mayshare = 0x80,
  locked = 0x2000,
  seq_read = 0x8000,    ///< MADV_SEQUENTIAL: the mapping's accesses say nothing of reuse
  rand_read = 0x10000,  ///< MADV_RANDOM: nor do these
  dontcopy = 0x20000,
  account = 0x100000,
  noreserve = 0x200000,  ///< MAP_NORESERVE: never charged, so never VM_ACCOUNT
  wipeonfork = 0x2000000,
  dontdump = 0x4000000,
  softdirty = 0x8000000,
  hugepage = 0x20000000,  ///< MADV_HUGEPAGE
  nohugepage = 0x40000000,
  mergeable = 0x80000000,
};

/// A set of vm_flag.
class vm_flags_t {
 public:
  constexpr vm_flags_t() = default;
  constexpr vm_flags_t(vm_flag f) : _v(static_cast<std::uint64_t>(f)) {}  // NOLINT: a flag is a one-flag set
  constexpr explicit vm_flags_t(std::uint64_t v) : _v(v) {}
  [[nodiscard]] constexpr bool has(vm_flag f) const { return (_v & static_cast<std::uint64_t>(f)) != 0; }
  constexpr vm_flags_t& set(vm_flag f) {
    _v |= static_cast<std::uint64_t>(f);
    return *this;
  }
  constexpr vm_flags_t& clear(vm_flag f) {
    _v &= ~static_cast<std::uint64_t>(f);
    return *this;
  }
  constexpr vm_flags_t& assign(vm_flag f, bool on) { return on ? set(f) : clear(f); }
  [[nodiscard]] constexpr std::uint64_t value() const { return _v; }
  constexpr bool operator==(const vm_flags_t&) const = default;
  friend constexpr vm_flags_t operator|(vm_flags_t a, vm_flags_t b) { return vm_flags_t{a._v | b._v}; }

 private:
  std::uint64_t _v = 0;
};

constexpr vm_flags_t operator|(vm_flag a, vm_flag b) { return vm_flags_t{a} | vm_flags_t{b}; }

// ---- folio ----------------------------------------------------------------------------

/// Folio flags (page-flags.h); only those rmap, reclaim and the report need.
enum class folio_flag : std::uint16_t {
  locked = 1U << 0,
  referenced = 1U << 1,
  uptodate = 1U << 2,
  dirty = 1U << 3,
  lru = 1U << 4,
  active = 1U << 5,
  swapbacked = 1U << 6,
  swapcache = 1U << 7,
  mlocked = 1U << 8,
  anon_exclusive = 1U << 9,  ///< PG_anon_exclusive: mapped by exactly one PTE, may be written without COW
  unevictable = 1U << 10,    ///< on the unevictable LRU list
  in_use = 1U << 11,         ///< allocated (not on the free list)
};

/// The LRU lists of the (single) lruvec (include/linux/mmzone.h enum lru_list).
enum class lru_list : std::uint8_t { inactive_anon, active_anon, inactive_file, active_file, unevictable };
inline constexpr std::size_t NR_LRU_LISTS = 5;

/// `folio->mapping`: as in the kernel, one word whose low bits say what it points at (an
/// anon folio at an anon_vma, a KSM folio at its stable node, a page-cache folio at its
/// file), behind a type-safe interface. One word, not a std::variant's two, keeps a folio
/// within the 64 bytes of a struct page.
class folio_mapping {
 public:
  constexpr folio_mapping() = default;
  constexpr folio_mapping(std::nullptr_t) {}                 // NOLINT: no mapping
  folio_mapping(anon_vma* p) : _v(tagged(p, ANON)) {}        // NOLINT: implicit, like the pointer it holds
  folio_mapping(address_space* p) : _v(tagged(p, FILE)) {}   // NOLINT
  folio_mapping(ksm_stable_node* p) : _v(tagged(p, KSM)) {}  // NOLINT

  template <typename T>
  [[nodiscard]] T* get_if() const {
    return tag() == tag_of<T>() ? reinterpret_cast<T*>(_v & ~TAG_MASK) : nullptr;
  }
  template <typename T>
  [[nodiscard]] bool holds() const {
    return tag() == tag_of<T>();
  }
  [[nodiscard]] bool empty() const { return _v == 0; }
  bool operator==(const folio_mapping&) const = default;

 private:
  static constexpr std::uintptr_t NONE = 0, ANON = 1, FILE = 2, KSM = 3, TAG_MASK = 3;
  template <typename T>
  static constexpr std::uintptr_t tag_of() {
    if constexpr (std::is_same_v<T, anon_vma>) return ANON;
    else if constexpr (std::is_same_v<T, address_space>) return FILE;
    else return KSM;
  }
  template <typename T>
  static std::uintptr_t tagged(T* p, std::uintptr_t tag) {
    const auto v = reinterpret_cast<std::uintptr_t>(p);
    return v ? v | tag : 0;  // objects are at least 4-byte aligned: the low bits are free
  }
  [[nodiscard]] std::uintptr_t tag() const { return _v & TAG_MASK; }
  std::uintptr_t _v = NONE;
};

/// One 4 KiB frame: the model's struct page. A folio is one frame (order 0) or a naturally
/// aligned run of 2^order frames (a large folio). Every frame of a large folio carries the
/// folio's order, so its head is its pfn rounded down; what belongs to the folio as a whole
/// (mapping, index, refcount, flags but AnonExclusive, LRU links, swap) is kept on the head
/// only, what belongs to each page (mapcount, content, AnonExclusive) on each frame, as the
/// kernel splits struct page and struct folio. machine::page_folio() finds the head.
struct folio {
  pfn_t pfn;
  folio_mapping mapping;
  pgoff_t index;              ///< page-cache index, or linear_page_index() at the first anon map
  std::uint64_t content = 0;  ///< fingerprint of the page's bytes (what KSM compares)
  swp_entry_t swap;           ///< its swap slot while in the swap cache (folio->swap)
  int mapcount = 0;           ///< PTEs mapping the page (the kernel stores this biased by -1)
  int refcount = 0;           ///< references: one per mapping, one for the page cache, ...
  std::uint16_t flags = 0;    ///< folio_flag set
  /// PTEs of VM_LOCKED VMAs mapping it (the kernel's folio->mlock_count, kept exact here:
  /// every map and unmap in a locked VMA is counted, so no rmap walk is needed to munlock).
  std::uint16_t mlock_count = 0;
  /// folio->lru: neighbours on its LRU list, as pfns (0: none). Frames live in one array,
  /// so a 32-bit index is the intrusive link at half the size of two pointers.
  std::uint32_t lru_prev = 0, lru_next = 0;
  std::uint8_t order = 0;  ///< of the folio this frame belongs to: 0, or 2..9 (16 KiB to 2 MiB)

  [[nodiscard]] bool test(folio_flag f) const { return (flags & static_cast<std::uint16_t>(f)) != 0; }
  void set(folio_flag f) { flags = static_cast<std::uint16_t>(flags | static_cast<std::uint16_t>(f)); }
  void clear(folio_flag f) { flags = static_cast<std::uint16_t>(flags & ~static_cast<std::uint16_t>(f)); }
  void assign(folio_flag f, bool on) { on ? set(f) : clear(f); }

  [[nodiscard]] bool is_ksm() const { return mapping.holds<ksm_stable_node>(); }
  /// folio_test_anon(): anonymous, KSM pages included.
  [[nodiscard]] bool is_anon() const { return mapping.holds<anon_vma>() || is_ksm(); }
  [[nodiscard]] anon_vma* anon() const { return mapping.get_if<anon_vma>(); }
  [[nodiscard]] address_space* file() const { return mapping.get_if<address_space>(); }
  [[nodiscard]] ksm_stable_node* ksm_node() const { return mapping.get_if<ksm_stable_node>(); }
  [[nodiscard]] bool mapped() const { return mapcount > 0; }
  [[nodiscard]] bool in_use() const { return test(folio_flag::in_use); }
  [[nodiscard]] bool is_large() const { return order > 0; }
  [[nodiscard]] std::uint64_t nr_pages() const { return std::uint64_t{1} << order; }
  /// The pfn of this frame's folio's head.
  [[nodiscard]] pfn_t head_pfn() const { return pfn_t{pfn.value & ~(nr_pages() - 1)}; }
};

static_assert(sizeof(folio) == 64, "a folio is the model's struct page: 64 bytes, as the kernel's");

/// What a large folio keeps beyond its pages (the kernel keeps it in its first tail pages):
/// how often it is mapped in all, and by which mms (CONFIG_MM_ID). Two mms are tracked, each
/// with how many of the folio's mappings are its own; that is what lets a write fault reuse
/// a folio that only its own mm maps, without an rmap walk.
struct large_folio_state {
  int mapcount = 0;                      ///< PTEs and PMDs mapping it (folio_large_mapcount())
  int entire_mapcount = 0;               ///< of mapcount, the PMDs: each maps every page
  std::array<std::uint64_t, 2> mm_id{};  ///< the tracked mms' ids; 0: the slot is free
  std::array<int, 2> mm_mapcount{};      ///< of mapcount, those in each tracked mm
  /// Some mm other than one tracked slot's may map it (folio_maybe_mapped_shared()): set
  /// when a second mm starts to map it, cleared only when one slot holds every mapping again.
  bool maybe_shared = false;
  /// A page of it is mapped nowhere while others are: it is on the deferred-split queue.
  bool partially_mapped = false;
};

/// The frames by pfn: chunks of 4,096 folios that never move, so a folio& stays valid as
/// memory grows (as struct pages do in the kernel's vmemmap), and a lookup is a shift and a
/// mask. Chunks are mapped straight from the kernel (256 KiB each): through malloc each
/// would carry a header and cost 65 pages instead of 64, 1 byte more per frame.
class frame_table {
  struct chunk_unmap {
    void operator()(folio* p) const;
  };
  using chunk = std::unique_ptr<folio[], chunk_unmap>;

 public:
  folio& operator[](std::uint64_t pfn) { return _chunks[pfn >> SHIFT][pfn & MASK]; }
  const folio& operator[](std::uint64_t pfn) const { return _chunks[pfn >> SHIFT][pfn & MASK]; }
  folio& at(std::uint64_t pfn) { return pfn < _size ? (*this)[pfn] : out_of_range(pfn); }
  const folio& at(std::uint64_t pfn) const { return pfn < _size ? (*this)[pfn] : out_of_range(pfn); }
  [[nodiscard]] std::uint64_t size() const { return _size; }
  /// One more frame at the end, default-initialised.
  folio& grow() {
    if ((_size & MASK) == 0) _chunks.push_back(map_chunk());
    return (*this)[_size++];
  }
  /// Memory the table holds: its chunks and the array of chunk pointers.
  [[nodiscard]] std::uint64_t bytes() const {
    return _chunks.size() * CHUNK * sizeof(folio) + _chunks.capacity() * sizeof(chunk);
  }

 private:
  [[noreturn]] static folio& out_of_range(std::uint64_t pfn);
  static chunk map_chunk();
  static constexpr unsigned SHIFT = 12;
  static constexpr std::uint64_t CHUNK = std::uint64_t{1} << SHIFT, MASK = CHUNK - 1;
  std::vector<chunk> _chunks;
  std::uint64_t _size = 0;
};

// ---- VMA, anon_vma, anon_vma_chain ------------------------------------------------------

struct vma_interval_traits;
struct avc_interval_traits;

/// struct vm_area_struct.
struct vm_area_struct {
  mm_struct* vm_mm = nullptr;
  vaddr_t vm_start, vm_end;  ///< [vm_start, vm_end)
  /// Object page offset of vm_start, in pages: the file's for a file VMA; for private
  /// anonymous memory vm_start >> PAGE_SHIFT at mmap time. A split, or a move (mremap) of
  /// a VMA that has pages, keeps every page's offset: folio->index and vma_address() agree.
  pgoff_t vm_pgoff;
  vm_flags_t vm_flags;
  address_space* vm_file = nullptr;              ///< file or shmem object; null for private anonymous memory
  struct anon_vma* anon_vma = nullptr;           ///< this VMA's own anon_vma: new anon folios go here
  list_head<mm::anon_vma_chain> anon_vma_chain;  ///< AVCs (avc->same_vma), newest first, root last
  interval_tree_node shared_rb;                  ///< node in vm_file->i_mmap

  [[nodiscard]] std::uint64_t pages() const { return pages_between(vm_start, vm_end); }
  /// Last page offset covered, the interval-tree key's end.
  [[nodiscard]] std::uint64_t last_pgoff() const { return vm_pgoff.value + pages() - 1; }
  [[nodiscard]] bool is_anonymous() const { return vm_file == nullptr; }
  [[nodiscard]] bool is_shared() const { return vm_flags.has(vm_flag::mayshare); }
  /// vma_has_recency(): accesses through a mapping advised sequential or random say
  /// nothing of the page's reuse, so neither unmapping a young PTE nor aging counts them.
  [[nodiscard]] bool has_recency() const {
    return !vm_flags.has(vm_flag::seq_read) && !vm_flags.has(vm_flag::rand_read);
  }
};

/// struct anon_vma_chain: one (VMA, anon_vma) edge.
struct anon_vma_chain {
  vm_area_struct* vma = nullptr;
  struct anon_vma* anon_vma = nullptr;
  list_head<anon_vma_chain> same_vma{this};         ///< in vma->anon_vma_chain
  interval_tree_node rb;                            ///< in anon_vma->rb_root
  std::uint64_t cached_start = 0, cached_last = 0;  ///< the key it was inserted with (CONFIG_DEBUG_VM_RB)
};

struct avc_interval_traits {
  static std::uint64_t start(const anon_vma_chain& a) { return a.cached_start; }
  static std::uint64_t last(const anon_vma_chain& a) { return a.cached_last; }
};

/// struct anon_vma.
struct anon_vma {
  anon_vma* root = this;         ///< oldest ancestor: the one whose lock is taken
  anon_vma* parent = this;       ///< the anon_vma of the parent VMA at fork time; self for a root
  int refcount = 1;              ///< existence reference + one per child (on the root) + KSM/migration pins
  unsigned num_children = 0;     ///< child anon_vmas (a root counts itself once)
  unsigned num_active_vmas = 0;  ///< VMAs whose vma->anon_vma is this one
  int ksm_refs = 0;              ///< of refcount: the KSM rmap_items that pin it
  interval_tree<anon_vma_chain, &anon_vma_chain::rb, avc_interval_traits> rb_root;
  std::uint64_t id = 0;  ///< allocation serial, for diagrams and dumps
};

/// The VMA's permissions as /proc/PID/maps prints them: "rw-p", "r--s".
inline std::string maps_perms(const vm_area_struct& v) {
  std::string p = "---p";
  if (v.vm_flags.has(vm_flag::read)) p[0] = 'r';
  if (v.vm_flags.has(vm_flag::write)) p[1] = 'w';
  if (v.vm_flags.has(vm_flag::exec)) p[2] = 'x';
  if (v.vm_flags.has(vm_flag::mayshare)) p[3] = 's';
  return p;
}

struct vma_interval_traits {
  static std::uint64_t start(const vm_area_struct& v) { return v.vm_pgoff.value; }
  static std::uint64_t last(const vm_area_struct& v) { return v.last_pgoff(); }
};

/// struct address_space: a file's page cache and its reverse map (i_mmap). Shared
/// anonymous memory is a shmem file of its own, as in the kernel.
struct address_space {
  std::string name;
  bool shmem = true;         ///< memfd and MAP_SHARED|MAP_ANONYMOUS are shmem
  bool anon_shared = false;  ///< the object behind MAP_SHARED|MAP_ANONYMOUS ("/dev/zero (deleted)")
  std::uint64_t size_pages = 0;
  std::map<std::uint64_t, pfn_t> i_pages;        ///< the page cache: index -> frame
  std::map<std::uint64_t, swp_entry_t> swapped;  ///< shmem pages out on swap: index -> entry
  interval_tree<vm_area_struct, &vm_area_struct::shared_rb, vma_interval_traits> i_mmap;
  int users = 0;  ///< open references: the scenario's file and every VMA mapping it
};

/// Most mappings one KSM page may have before a new copy (a dup of its chain) is started.
inline constexpr std::size_t KSM_MAX_PAGE_SHARING = 256;

struct ksm_rmap_item;

/// struct ksm_stable_node: one KSM page and the rmap_items that map it.
struct ksm_stable_node {
  pfn_t kpfn;
  std::uint64_t content = 0;
  std::vector<ksm_rmap_item*> hlist;
};

/// struct ksm_rmap_item: one (mm, address) that KSM scans.
struct ksm_rmap_item {
  mm_struct* mm = nullptr;
  vaddr_t address;
  struct anon_vma* anon_vma = nullptr;  ///< pinned while in the stable tree
  ksm_stable_node* head = nullptr;      ///< the stable node it is on, if any
  bool unstable = false;                ///< in this scan's unstable tree
  bool checksum_valid = false;
  std::uint64_t oldchecksum = 0;
};

/// struct mm_struct: an address space's VMAs and page tables.
struct mm_struct {
  std::map<std::uint64_t, vm_area_struct*> mm_mt;  ///< VMAs by vm_start (the kernel's maple tree)
  page_table pgd;
  std::uint64_t id = 0;
  std::string name;
  bool ksm_registered = false;  ///< has an mm_slot in KSM (MADV_MERGEABLE was used)
  /// Flags every new VMA gets (mm->def_flags): VM_LOCKED after mlockall(MCL_FUTURE). A fork
  /// child and an exec start without it.
  vm_flags_t def_flags{};
  std::size_t mms_index = 0;  ///< where machine::mms() holds it: exit finds it without a search
  /// The last VMA find_vma() returned (2.6's mm->mmap_cache): walks that go from PTE to
  /// PTE in one mm (PTE chains) mostly find the same VMA again. Dropped when it is freed;
  /// a VMA whose range changes is still checked against its current range.
  mutable const vm_area_struct* mmap_cache = nullptr;

  [[nodiscard]] int map_count() const { return static_cast<int>(mm_mt.size()); }
};

}  // namespace rmapkit::mm
