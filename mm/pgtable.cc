// Kernel: mm/memory.c (__pte_alloc and friends), mm/pgtable-generic.c, free_pgtables().
#include "rmapkit/mm/pgtable.h"

#include <algorithm>

namespace rmapkit::mm {

page_table::pte_table* page_table::lookup(vaddr_t addr) const {
  const std::uint64_t key = addr.value >> PMD_SHIFT;
  if (key == _cached_pmd) return _cached;
  if (!_pgd) return nullptr;
  const auto* pud = _pgd->e[index(addr, 39)];
  if (!pud) return nullptr;
  const auto* pmd = pud->e[index(addr, 30)];
  if (!pmd) return nullptr;
  pte_table* pte = pmd->e[index(addr, 21)];
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

page_table::pmd_table* page_table::find_pmd_dir(vaddr_t addr) const {
  if (!_pgd) return nullptr;
  auto* pud = _pgd->e[index(addr, 39)];
  return pud ? pud->e[index(addr, 30)] : nullptr;
}

page_table::pmd_table& page_table::pmd_dir(vaddr_t addr) {
  if (!_pgd) _pgd = std::make_unique<pgd_table>();
  return _pgd->ensure(index(addr, 39), _tables).ensure(index(addr, 30), _tables);
}

page_table::pte_table& page_table::pte_table_at(vaddr_t addr) { return pmd_dir(addr).ensure(index(addr, 21), _tables); }

void page_table::set_slow(vaddr_t addr, pte_t val) {
  pte_table* table = lookup(addr);
  if (!table) {
    if (val.none()) return;  // nothing to clear where no table is
    table = &pte_table_at(addr);
    _cached_pmd = addr.value >> PMD_SHIFT;
    _cached = table;
  }
  store(*table, addr, val);
}

std::uint64_t page_table::move_range(vaddr_t start, vaddr_t end, vaddr_t to) {
  forget_cached();  // tables change hands below; the cache must not outlive them
  std::uint64_t whole = 0;
  for (std::uint64_t a = start.value; a < end.value;) {
    const std::uint64_t next = std::min(((a >> PMD_SHIFT) + 1) << PMD_SHIFT, end.value);
    const vaddr_t dst{to.value + (a - start.value)};
    pmd_table* dir = find_pmd_dir(vaddr_t{a});
    pte_table* src = dir ? dir->e[index(vaddr_t{a}, 21)] : nullptr;
    if (src && src->used > 0) {
      if (next - a == PMD_SIZE && move_table(vaddr_t{a}, dst)) ++whole;
      else move_entries(*src, vaddr_t{a}, vaddr_t{next}, dst);
    }
    a = next;
  }
  forget_cached();
  return whole;
}

// move_normal_pmd(): a whole table to a 2 MiB-aligned destination with no table of its own
// in use. Not under an observer: a PTE-chain design follows every entry to its new address,
// as Linux 2.5's move_one_page() did.
bool page_table::move_table(vaddr_t from, vaddr_t to) {
  if (_observer || (to.value & (PMD_SIZE - 1)) != 0) return false;
  if (pmd_table* d = find_pmd_dir(to); d && d->e[index(to, 21)] && d->e[index(to, 21)]->used > 0) return false;
  pmd_table& dst_dir = pmd_dir(to);  // may allocate; the source directory below is looked up after
  const unsigned di = index(to, 21);
  if (dst_dir.e[di]) {
    dst_dir.drop(di);  // an empty table at the destination gives way
    --_tables;
  }
  dst_dir.adopt(di, find_pmd_dir(from)->take(index(from, 21)));
  return true;
}

void page_table::move_entries(pte_table& src, vaddr_t from, vaddr_t from_end, vaddr_t to) {
  // The destination may straddle two tables: look each up once, not once per entry.
  std::uint64_t dst_pmd = ~std::uint64_t{0};
  pte_table* dst = nullptr;
  for (std::uint64_t a = from.value; a < from_end.value && src.used > 0; a += PAGE_SIZE) {
    const pte_t e = src.e[index(vaddr_t{a}, 12)];
    if (e.none()) continue;
    const vaddr_t d{to.value + (a - from.value)};
    if ((d.value >> PMD_SHIFT) != dst_pmd) {
      dst = &pte_table_at(d);
      dst_pmd = d.value >> PMD_SHIFT;
    }
    store(src, vaddr_t{a}, pte_t{});
    store(*dst, d, e);
  }
}

void page_table::free_empty(vaddr_t start, vaddr_t end) {
  forget_cached();
  if (!_pgd) return;
  std::uint64_t a = start.value & ~(PMD_SIZE - 1);
  for (; a < end.value; a += PMD_SIZE) {
    const vaddr_t at{a};
    auto* pud = _pgd->e[index(at, 39)];
    if (!pud) continue;
    auto* pmd = pud->e[index(at, 30)];
    if (!pmd) continue;
    if (const auto* pte = pmd->e[index(at, 21)]; pte && pte->used == 0) {
      pmd->drop(index(at, 21));
      --_tables;
    }
    if (pmd->used == 0) {
      pud->drop(index(at, 30));
      --_tables;
    }
    if (pud->used == 0) {
      _pgd->drop(index(at, 39));
      --_tables;
    }
  }
}

}  // namespace rmapkit::mm
