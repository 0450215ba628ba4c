// Kernel: mm/page_io.c (v6.18): a folio's content to and from its swap slot. The I/O
// completes at once: writeback is never in flight in the model.
#include "internal.h"

namespace rmapkit::mm {

void machine::swap_writeout(folio& f) { _swap->content.at(f.swap.val - 1) = f.content; }

// swap_read_folio(): @f, new in the swap cache for @e, gets what the slot holds.
void machine::swap_read_folio(folio& f, swp_entry_t e) { f.content = _swap->content.at(e.val - 1); }

}  // namespace rmapkit::mm
