// Kernel: mm/memory.c (__pte_alloc and friends), mm/pgtable-generic.c, free_pgtables().
#include "rmapkit/mm/pgtable.h"

namespace rmapkit::mm {

pte_t page_table::get(vaddr_t addr) const {
  const auto* pud = _pgd.e[index(addr, 39)].get();
  if (!pud) return {};
  const auto* pmd = pud->e[index(addr, 30)].get();
  if (!pmd) return {};
  const auto* pte = pmd->e[index(addr, 21)].get();
  if (!pte) return {};
  return pte->e[index(addr, 12)];
}

void page_table::set(vaddr_t addr, pte_t val) {
  auto child = [this](auto& dir, unsigned i) -> auto& {
    auto& slot = dir.e[i];
    if (!slot) {
      slot = std::make_unique<typename std::remove_reference_t<decltype(slot)>::element_type>();
      ++dir.used;
      ++_tables;
    }
    return *slot;
  };
  auto& pud = child(_pgd, index(addr, 39));
  auto& pmd = child(pud, index(addr, 30));
  auto& pte = child(pmd, index(addr, 21));
  auto& e = pte.e[index(addr, 12)];
  pte.used = pte.used - (e.none() ? 0U : 1U) + (val.none() ? 0U : 1U);
  const pte_t old = e;
  e = val;
  if (_observer) _observer->pte_set(*_owner, addr, old, val);
}

void page_table::free_empty(vaddr_t start, vaddr_t end) {
  std::uint64_t a = start.value & ~(PMD_SIZE - 1);
  for (; a < end.value; a += PMD_SIZE) {
    auto* pud = _pgd.e[index(vaddr_t{a}, 39)].get();
    if (!pud) continue;
    auto& pmd_slot = pud->e[index(vaddr_t{a}, 30)];
    if (!pmd_slot) continue;
    auto& pte_slot = pmd_slot->e[index(vaddr_t{a}, 21)];
    if (pte_slot && pte_slot->used == 0) {
      pte_slot.reset();
      --pmd_slot->used;
      --_tables;
    }
    if (pmd_slot->used == 0) {
      pmd_slot.reset();
      --pud->used;
      --_tables;
    }
    auto& pud_slot = _pgd.e[index(vaddr_t{a}, 39)];
    if (pud_slot->used == 0) {
      pud_slot.reset();
      --_pgd.used;
      --_tables;
    }
  }
}

}  // namespace rmapkit::mm
