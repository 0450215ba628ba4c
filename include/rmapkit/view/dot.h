// Pictures of the reverse map: Graphviz DOT for `rmapkit show --format dot` and `walk
// --format dot`, and SVG drawn from it by Graphviz's dot program (--format svg). The
// pictures draw what the text prints (docs/show-and-walk.md), laid out as Linux's rmap is
// usually drawn: each process's VMAs in a row, their anon_vma_chain lists below them, the
// anon_vma forest below those, and the folios at the bottom pointing up at what
// folio->mapping names. The output depends only on the state's vectors, in their order:
// the same input gives the same bytes.
#pragma once

#include <string>

#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace rmapkit::view {

/// The state as a DOT digraph: a cluster per mm with its VMAs; AVC boxes chaining each
/// VMA to its anon_vmas; anon_vmas with their parent and root arrows and their interval
/// tree's contents; address_spaces with i_mmap and the VMAs it holds; KSM stable nodes
/// with their rmap_items; folios pointing at their anon_vma, stable node or file, with
/// the PTEs that map them; a design's own objects (anon_rmap::dump) with their links.
/// At most a few folios are drawn per object they point at, the rest summed in a
/// "+N more" box, so a large state stays readable.
[[nodiscard]] std::string format_dot(const state& st);

/// The walk's `before` state with the walk's path drawn over it: the object it starts
/// from, the entries it reads, the candidate VMAs and the PTEs it examines, each arrow
/// numbered with the steps it stands for (listed in a legend); a PTE that maps the frame
/// in green, a miss or a skipped VMA in red.
[[nodiscard]] std::string format_dot(const walk_view& w);

/// Runs Graphviz's `dot -Tsvg` on @dot and returns the SVG. view_error when the dot
/// program is missing ("--format svg needs Graphviz's dot program (apt-get install
/// graphviz)") or fails (with what it printed).
[[nodiscard]] std::string render_svg(const std::string& dot);

}  // namespace rmapkit::view
