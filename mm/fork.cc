// Kernel: kernel/fork.c (v6.18): mm_alloc() and dup_mm(); the VMA copy, dup_mmap(), is in
// mmap.cc, as in the kernel since it moved there from kernel/fork.c.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

mm_struct* machine::mm_alloc(std::string name) {
  auto* mm = _mm_slab.alloc();
  mm->id = ++_mm_serial;
  mm->name = std::move(name);
  if (_anon->wants_pte_events()) mm->pgd.observe(this, mm);
  mm->mms_index = _mms.size();
  _mms.push_back(mm);
  return mm;
}

void machine::compact_mms() const {
  if (_mms_exited == 0) return;
  std::erase(_mms, nullptr);
  for (std::size_t i = 0; i < _mms.size(); ++i) _mms[i]->mms_index = i;
  _mms_exited = 0;
}

mm_struct* machine::dup_mm(mm_struct& parent, std::string name) {
  mm_struct* child = mm_alloc(std::move(name));
  dup_mmap(*child, parent);
  return child;
}

}  // namespace rmapkit::mm
