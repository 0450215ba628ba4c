// Kernel: mm/memory.c (__pte_alloc and friends), mm/pgtable-generic.c, free_pgtables().
#include "rmapkit/mm/pgtable.h"

namespace rmapkit::mm {

page_table::pte_table* page_table::lookup(vaddr_t addr) const {
  const std::uint64_t key = addr.value >> PMD_SHIFT;
  if (key == _cached_pmd) return _cached;
  if (!_pgd) return nullptr;
  const auto* pud = _pgd->e[index(addr, 39)].get();
  if (!pud) return nullptr;
  const auto* pmd = pud->e[index(addr, 30)].get();
  if (!pmd) return nullptr;
  pte_table* pte = pmd->e[index(addr, 21)].get();
  if (pte) {
    _cached_pmd = key;
    _cached = pte;
  }
  return pte;
}

pte_t page_table::get_slow(vaddr_t addr) const {
  const pte_table* pte = lookup(addr);
  return pte ? pte->e[index(addr, 12)] : pte_t{};
}

void page_table::set_slow(vaddr_t addr, pte_t val) {
  pte_table* table = lookup(addr);
  if (!table) {
    if (val.none()) return;  // nothing to clear where no table is
    auto child = [this](auto& dir, unsigned i) -> auto& {
      auto& slot = dir.e[i];
      if (!slot) {
        slot = std::make_unique<typename std::remove_reference_t<decltype(slot)>::element_type>();
        ++dir.used;
        ++_tables;
      }
      return *slot;
    };
    if (!_pgd) _pgd = std::make_unique<pgd_table>();
    auto& pud = child(*_pgd, index(addr, 39));
    auto& pmd = child(pud, index(addr, 30));
    table = &child(pmd, index(addr, 21));
    _cached_pmd = addr.value >> PMD_SHIFT;
    _cached = table;
  }
  store(*table, addr, val);
}

void page_table::free_empty(vaddr_t start, vaddr_t end) {
  _cached_pmd = ~std::uint64_t{0};
  _cached = nullptr;
  if (!_pgd) return;
  std::uint64_t a = start.value & ~(PMD_SIZE - 1);
  for (; a < end.value; a += PMD_SIZE) {
    auto* pud = _pgd->e[index(vaddr_t{a}, 39)].get();
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
    auto& pud_slot = _pgd->e[index(vaddr_t{a}, 39)];
    if (pud_slot->used == 0) {
      pud_slot.reset();
      --_pgd->used;
      --_tables;
    }
  }
}

}  // namespace rmapkit::mm
