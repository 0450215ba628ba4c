// Kernel: mm/memory.c (__pte_alloc and friends), mm/pgtable-generic.c, free_pgtables().
#include "rmapkit/mm/pgtable.h"

#include <algorithm>
#include <stdexcept>

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

// Under a huge PMD there is no PTE table: the entry is the PMD's, for this page.
pte_t page_table::get_slow(vaddr_t addr) const {
  if (const pte_t* pmd = find_huge(addr.value >> PMD_SHIFT)) return page_of_huge(*pmd, addr);
  if (const pte_table* pte = lookup(addr)) return pte->e[index(addr, 12)];
  return pte_t{};
}

pte_t* page_table::find_huge(std::uint64_t key) const {
  if (_huge.empty()) return nullptr;
  if (key == _huge_cached_key) return _huge_cached;
  auto it = _huge.find(key);
  if (it == _huge.end()) return nullptr;
  _huge_cached_key = key;
  _huge_cached = const_cast<pte_t*>(&it->second);
  return _huge_cached;
}

std::optional<pte_t> page_table::huge_pmd(vaddr_t addr) const {
  if (const pte_t* pmd = find_huge(addr.value >> PMD_SHIFT)) return *pmd;
  return std::nullopt;
}

void page_table::set_huge_pmd(vaddr_t addr, pte_t pmd) {
  const std::uint64_t key = addr.value >> PMD_SHIFT;
  if (pte_t* slot = find_huge(key)) {
    const pte_t old = *slot;
    if (_observer) _observer->pmd_set(*_owner, vaddr_t{key << PMD_SHIFT}, old, pmd);
    if (!pmd.none()) {
      *slot = pmd;
      return;
    }
    _huge_cached_key = ~std::uint64_t{0};
    _huge.erase(key);
    --_tables;  // the deposited table
    if (auto* dir = find_pmd_dir(addr)) --dir->used;
    return;
  }
  if (pmd.none()) return;
  if (lookup(addr)) throw std::logic_error("set_huge_pmd: a PTE table is in the slot");
  if (_observer) _observer->pmd_set(*_owner, vaddr_t{key << PMD_SHIFT}, pte_t{}, pmd);
  _huge.emplace(key, pmd);
  ++pmd_dir(addr).used;  // the leaf keeps its directory, as a table would
  ++_tables;
}

void page_table::free_pte_table_if_empty(vaddr_t addr) {
  pmd_table* dir = find_pmd_dir(addr);
  const unsigned i = index(addr, 21);
  if (!dir || !dir->e[i] || dir->e[i]->used != 0) return;
  forget_cached();
  dir->drop(i);
  --_tables;
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
    if (huge_pmd(addr)) throw std::logic_error("page_table::set: a huge PMD maps this address; split it first");
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
    if (auto pmd = huge_pmd(vaddr_t{a})) {
      // move_huge_pmd(): a whole leaf to an aligned, empty slot; anything else the caller
      // splits first.
      if (next - a != PMD_SIZE || (dst.value & (PMD_SIZE - 1)) != 0 || huge_pmd(dst) || lookup(dst))
        throw std::logic_error("move_range: a huge PMD cannot move whole; split it first");
      set_huge_pmd(vaddr_t{a}, pte_t{});
      set_huge_pmd(dst, *pmd);
      a = next;
      continue;
    }
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
