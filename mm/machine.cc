// Kernel: none of its own: the machine is the model's whole kernel, and building it is
// boot (start_kernel() -> mm_core_init()): the first frames and the zero page, the state
// of every subsystem (mm/internal.h) and the rmap design. It is its own file, not part of
// page_alloc.cc, because it builds and frees what every file of mm/ owns, not only frames.
#include <cstdint>
#include <memory>

#include "internal.h"

namespace rmapkit::mm {

machine::machine(std::string_view design) : machine(parse_design(design)) {}

machine::machine(const rmap_design_name& design)
    : _ksm(std::make_unique<ksm_state>()),
      _swap(std::make_unique<swap_info_struct>()),
      _lruvec(std::make_unique<lruvec>()),
      _anon(make_anon_rmap(design.anon, *this)),
      _file(make_file_rmap(design.file, *this)) {
  if (design.ksm == "ksm-flat") _ksm->max_page_sharing = SIZE_MAX;
  _frames.grow();  // pfn 0 is never a frame
  _frames.grow();
  _zero_pfn = pfn_t{1};
  auto& zero = _frames[1];
  zero.pfn = _zero_pfn;
  zero.set(folio_flag::in_use);
  zero.refcount = 1;  // reserved, never freed
  zero.set(folio_flag::uptodate);
}

machine::~machine() = default;

std::string machine::design_name() const {
  return rmap_design_name{_anon->name(), _file->name(), _ksm->max_page_sharing == SIZE_MAX ? "ksm-flat" : "ksm-chains"}
      .full();
}

}  // namespace rmapkit::mm
