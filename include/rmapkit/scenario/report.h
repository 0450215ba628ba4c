// The report a `check` prints (docs/scenario-format.md, "The report"). Back ends fill it with their raw
// identities (a pfn, a swap entry); format() numbers frames and swap slots by first
// appearance, so reports from the model and from the kernel can be compared as text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rmapkit::scenario {

/// Page flags, in the order the report prints them.
enum class page_flag : std::uint8_t {
  anon = 1U << 0,       ///< KPF_ANON: anonymous page, KSM pages included
  ksm = 1U << 1,        ///< KPF_KSM
  excl = 1U << 2,       ///< PG_anon_exclusive (kpageflags bit 34 on anon pages)
  swapcache = 1U << 3,  ///< KPF_SWAPCACHE
};

constexpr std::uint8_t operator|(page_flag a, page_flag b) {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr std::uint8_t operator|(std::uint8_t a, page_flag b) {
  return static_cast<std::uint8_t>(a | static_cast<std::uint8_t>(b));
}
constexpr bool has(std::uint8_t set, page_flag f) { return (set & static_cast<std::uint8_t>(f)) != 0; }

/// The page's LRU and dirty state from /proc/kpageflags (`report flags`), in the order the
/// report prints them: the order of their KPF_ bits.
enum class page_life : std::uint8_t {
  referenced = 1U << 0,   ///< KPF_REFERENCED (PG_referenced)
  dirty = 1U << 1,        ///< KPF_DIRTY (PG_dirty: the page's, not its PTEs')
  lru = 1U << 2,          ///< KPF_LRU: on an LRU list
  active = 1U << 3,       ///< KPF_ACTIVE
  unevictable = 1U << 4,  ///< KPF_UNEVICTABLE
  mlocked = 1U << 5,      ///< KPF_MLOCKED
};
inline constexpr std::array<std::pair<page_life, std::string_view>, 6> PAGE_LIFE_NAMES = {{
    {page_life::referenced, "referenced"},
    {page_life::dirty, "dirty"},
    {page_life::lru, "lru"},
    {page_life::active, "active"},
    {page_life::unevictable, "unevictable"},
    {page_life::mlocked, "mlocked"},
}};
constexpr std::uint8_t bit(page_life f) { return static_cast<std::uint8_t>(f); }

/// The per-VMA fields of /proc/PID/smaps that the reverse map decides, in the kernel's
/// order (fs/proc/task_mmu.c, __show_smap()). Size, the page sizes, THPeligible and VmFlags
/// are left out: the `vma` line says them already, or they are not rmap's.
inline constexpr std::array<std::string_view, 15> SMAPS_FIELDS = {
    "Rss",       "Pss", "Pss_Dirty", "Shared_Clean",  "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
    "Anonymous", "KSM", "LazyFree",  "AnonHugePages", "Swap",         "SwapPss",       "Locked"};
/// One VMA's smaps figures in kB, indexed as SMAPS_FIELDS.
using smaps_values = std::array<std::uint64_t, SMAPS_FIELDS.size()>;

struct report_vma {
  std::uint64_t start = 0, end = 0;   ///< page indexes relative to the region base, end exclusive
  std::string perms;                  ///< as /proc/PID/maps prints them: "rw-p"
  std::string kind;                   ///< "anon", "shmem" or "file:F@K"
  std::optional<smaps_values> smaps;  ///< when the check asks for them
};

/// The large folio a page belongs to (version 2): printed `folio=F order=O sub=I`.
struct report_folio {
  std::uint64_t id = 0;   ///< raw identity (the head's pfn); renumbered by first appearance when printed
  unsigned order = 0;     ///< 1 or more: order-0 folios print nothing
  std::uint64_t sub = 0;  ///< the page's index inside the folio
};

struct report_page {
  enum class state : std::uint8_t { frame, zero, swap };
  std::uint64_t index = 0;  ///< page index in the region
  enum state state = state::frame;
  std::uint64_t id = 0;               ///< raw frame (pfn) or swap entry identity; renumbered when printed
  std::uint64_t count = 0;            ///< map count, frames only
  std::uint8_t flags = 0;             ///< page_flag set, frames only
  std::optional<std::uint8_t> life;   ///< page_life set, frames only, when the check asks for it
  bool pmd = false;                   ///< mapped by a PMD in this process (frames and the huge zero folio)
  std::optional<report_folio> folio;  ///< frames of a folio of order 1 or more only
};

struct report_region {
  std::string process;
  std::string region;
  std::vector<report_vma> vmas;    ///< ascending
  std::vector<report_page> pages;  ///< ascending by index
};

struct report_block {
  std::string label;
  std::vector<report_region> regions;  ///< processes by name, then regions by name
};

/// A smaps field line as the kernel prints it: "Rss:                  32 kB".
[[nodiscard]] std::string format_smaps_field(std::string_view name, std::uint64_t kb);

/// The text of one block, `check LABEL` through `end`, each line ending in '\n'.
[[nodiscard]] std::string format(const report_block& block);

/// /sys/kernel/mm/ksm after a `ksm` statement. Not part of the report (the
/// kernel's counters are machine-wide): both back ends print them on request, one line
/// per `ksm`, so that tests can compare the model's KSM with the kernel's.
struct ksm_counters {
  std::uint64_t pages_shared = 0, pages_sharing = 0, pages_unshared = 0, pages_volatile = 0, stable_node_chains = 0,
                stable_node_dups = 0;
  bool operator==(const ksm_counters&) const = default;
};

/// "ksm line L: pages_shared=N pages_sharing=N pages_unshared=N pages_volatile=N stable_node_chains=N
/// stable_node_dups=N"
[[nodiscard]] std::string format(int line, const ksm_counters& k);

/// anon_vma and anon_vma_chain objects a run allocated and freed (the kernel's kmem
/// tracepoints; the model's linux-6 counters).
struct kmem_counts {
  std::uint64_t anon_vma_alloc = 0, anon_vma_free = 0, avc_alloc = 0, avc_free = 0;
  bool operator==(const kmem_counts&) const = default;
  kmem_counts operator-(const kmem_counts& b) const {
    return {anon_vma_alloc - b.anon_vma_alloc, anon_vma_free - b.anon_vma_free, avc_alloc - b.avc_alloc,
            avc_free - b.avc_free};
  }
};

/// "kmem: anon_vma allocated=N freed=N anon_vma_chain allocated=N freed=N"
[[nodiscard]] std::string format(const kmem_counts& k);

}  // namespace rmapkit::scenario
