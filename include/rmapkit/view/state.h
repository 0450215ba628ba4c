// The model's reverse map as data, for `rmapkit show` and everything that draws it (text,
// DOT, JSON, the HTML page): a snapshot of one moment of a scenario, with every object
// named by a stable id, so that outputs can be golden-tested and diffed across designs.
//
// Ids: frames and swap slots are numbered as a bare `check` at the same moment would
// number them (live processes by name, their regions by name, pages by address), then
// the page cache's frames (files in order of first appearance), then frames that only
// the swap cache holds, by pfn. VMAs are vma1, vma2, ... in the same order; anon_vmas are
// numbered in allocation order (av1 is the oldest alive); KSM stable nodes in stable-tree
// order; a design's own objects by type in the order it lists them.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rmapkit/model/session.h"
#include "rmapkit/types.h"

namespace rmapkit::view {

/// Bad input to a view (an unknown process, a free frame, --at past the end): the message
/// names what and why. The CLI prints it and exits 2.
struct view_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What `show` looks at; every field set narrows it (all of them together: the
/// intersection).
struct filter {
  std::optional<std::string> pid;         ///< one process, by name
  std::optional<std::uint64_t> frame;     ///< one frame, by id
  std::optional<std::uint64_t> anon_vma;  ///< one anon_vma, by id (avN)
  std::optional<std::string> file;        ///< one file, by name
  [[nodiscard]] bool any() const { return pid || frame || anon_vma || file; }
};

/// A PTE: which process maps a page where.
struct pte_ref {
  std::string process, region;
  std::uint64_t index = 0;  ///< page index in the region
  vaddr_t addr;
  std::string vma;  ///< the VMA's id
  bool write = false, young = false, dirty = false;
};

struct vma_view {
  std::string id;  ///< vmaN
  std::string process, region;
  std::uint64_t first = 0, end = 0;  ///< page indexes in the region, end exclusive
  vaddr_t vm_start, vm_end;
  std::string perms;                  ///< as /proc/PID/maps: rw-p
  std::vector<std::string> vm_flags;  ///< as smaps' VmFlags: rd wr mr mw me ac ...
  std::uint64_t vm_pgoff = 0;
  std::string file;                           ///< the file's name; empty for private anonymous memory
  std::optional<std::uint64_t> anon_vma;      ///< vma->anon_vma (linux-6)
  std::vector<std::uint64_t> anon_vma_chain;  ///< the anon_vmas its AVCs link, list order (newest first)
};

struct mm_view {
  std::string process;
  std::vector<vma_view> vmas;
};

/// One AVC in an anon_vma's interval tree: the pgoff range it was inserted with.
struct avc_view {
  std::uint64_t first = 0, last = 0;
  std::string vma;
};

struct anon_vma_view {
  std::uint64_t id = 0, root = 0, parent = 0;
  int refcount = 0;
  unsigned num_children = 0, num_active_vmas = 0;
  int ksm_refs = 0;
  std::vector<avc_view> rb_root;  ///< in tree order
};

/// A VMA in a file's i_mmap tree.
struct i_mmap_view {
  std::uint64_t first = 0, last = 0;
  std::string vma;
};

struct file_view {
  std::string name;
  bool shmem = false, anon_shared = false;
  std::uint64_t pages = 0;
  std::vector<i_mmap_view> i_mmap;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> i_pages;  ///< index -> frame id
  std::vector<std::pair<std::uint64_t, std::uint64_t>> swapped;  ///< index -> swap id (shmem)
};

struct rmap_item_view {
  std::string process;
  vaddr_t address;
  std::optional<std::uint64_t> anon_vma;
  std::optional<std::uint64_t> stable_node;  ///< set while on the stable tree
  bool unstable = false;                     ///< in this scan's unstable tree
};

struct stable_node_view {
  std::uint64_t id = 0;
  std::uint64_t frame = 0;  ///< kpfn, as a frame id
  /// Dups of one chain share a chain number (nodes of equal content); 0: not in a chain.
  std::uint64_t chain = 0;
  std::vector<std::pair<std::string, vaddr_t>> hlist;  ///< its rmap_items: (process, address)
};

struct ksm_view {
  std::vector<std::string> mm_slots;  ///< processes KSM scans, in scan order
  std::vector<stable_node_view> stable;
  std::vector<rmap_item_view> rmap_items;
  std::vector<std::pair<std::string, vaddr_t>> unstable;
  [[nodiscard]] bool empty() const { return mm_slots.empty() && stable.empty() && rmap_items.empty(); }
};

/// The large folio a frame belongs to (version 2): its head's frame, when a check numbers
/// it (a head mapped nowhere is not), the folio's order and the frame's place in it.
struct large_folio_ref {
  std::optional<std::uint64_t> head;
  unsigned order = 0;
  std::uint64_t sub = 0;
};

/// A frame: for a page of a large folio, what belongs to the folio (mapping, index,
/// refcount, flags but AnonExclusive, LRU, swap) is its folio's, the index the page's own.
struct folio_view {
  std::uint64_t id = 0;
  std::uint64_t pfn = 0;
  std::optional<large_folio_ref> large;
  std::string mapping;                       ///< "anon", "ksm", "file" or "none"
  std::optional<std::uint64_t> anon_vma;     ///< folio->mapping when anon (linux-6)
  std::optional<std::uint64_t> stable_node;  ///< when KSM
  std::string file;                          ///< when file
  std::uint64_t index = 0;                   ///< folio->index
  int mapcount = 0, refcount = 0;
  std::vector<std::string> flags;     ///< PG_ names without the prefix
  std::optional<std::uint64_t> swap;  ///< folio->swap, as a swap id, while in the swap cache
  std::string lru;                    ///< its LRU list, or empty
  std::vector<pte_ref> mapped_by;     ///< the PTEs that map it
};

/// One object of a design's own reverse map (anon_rmap::dump()).
struct design_object_view {
  std::string id;  ///< TYPE#N
  std::string type;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::pair<std::string, std::string>> links;  ///< field -> an id (vmaN, frame N, PTE, TYPE#N)
};

/// The state after some statement of a scenario.
struct state {
  std::string file;
  std::size_t position = 0;  ///< statements run
  int line = 0;              ///< line of the last statement run (0: none ran)
  std::string statement;     ///< its text
  std::string design;
  struct filter filter;
  std::vector<mm_view> mms;
  std::vector<anon_vma_view> anon_vmas;  ///< linux-6 only; oldest first
  std::vector<file_view> files;
  ksm_view ksm;
  std::vector<folio_view> folios;  ///< by id
  std::vector<design_object_view> design_objects;
};

/// The state of @s now, narrowed by @f. view_error when a filter names nothing
/// (an unknown process or file, a frame that is free or does not exist).
[[nodiscard]] state snapshot(const model::session& s, const filter& f = {});

/// `rmapkit show`'s text: the kernel's words, one object a line (docs/show-and-walk.md).
[[nodiscard]] std::string format_text(const state& st);

/// The statement count `--at` means: a statement number (1-based: after it ran), or
/// `line:L` (after the statement on line L), or `end`. view_error for a number past the
/// end or a line with no statement.
[[nodiscard]] std::size_t parse_at(const scenario::program& prog, const std::string& at);

}  // namespace rmapkit::view
