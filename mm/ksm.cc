// Kernel: mm/ksm.c (v6.18), the parts that decide which pages merge: mm_slots scanned in
// order, an rmap_item per (mm, address), the stable tree of KSM pages (a red-black tree in
// the kernel's shape, whose searches prune what they pass) with chains of dups under
// max_page_sharing, the unstable tree rebuilt every full scan, checksums that must hold
// for a scan before a page is compared with either tree, ksmd's mlock batch, and
// rmap_walk_ksm() with its second pass for forked children. Content is the folio's
// fingerprint, ordered as memcmp() orders the pages it stands for (ksm_content_cmp()).
#include <algorithm>
#include <vector>

#include "internal.h"
#include "rmap_walk.h"

namespace rmapkit::mm {

namespace {

enum class page_kind { value, unique, other };

page_kind kind_of(std::uint64_t content) {
  if (content <= 0xff) return page_kind::value;
  return (content >> 63) != 0 ? page_kind::unique : page_kind::other;
}

int three_way(std::uint64_t a, std::uint64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

}  // namespace

int ksm_content_cmp(std::uint64_t a, std::uint64_t b) {
  const page_kind ka = kind_of(a), kb = kind_of(b);
  if (ka == page_kind::value && kb == page_kind::value) return three_way(a, b);
  // A page of byte V against the header's first byte, 0x21 (then 0x74, above 0x21).
  if (ka == page_kind::value) return a <= 0x21 ? -1 : 1;
  if (kb == page_kind::value) return b <= 0x21 ? 1 : -1;
  if (ka != kb) return ka == page_kind::unique ? -1 : 1;
  if (ka == page_kind::other) return three_way(a, b);
  // Unique pages: the line, then the page index, each compared as little-endian bytes.
  auto line = [](std::uint64_t c) { return __builtin_bswap64((c >> 32) & 0x7fffffffU); };
  auto index = [](std::uint64_t c) { return __builtin_bswap64(c & 0xffffffffU); };
  if (int r = three_way(line(a), line(b))) return r;
  return three_way(index(a), index(b));
}

void machine::ksm_enter(mm_struct& mm) {
  if (mm.ksm_registered) return;
  mm.ksm_registered = true;
  _ksm->mm_list.push_back(&mm);
}

/// ksmd forgets @mm at once: its rmap_items leave the trees (a scan found no mergeable VMA).
void machine::ksm_forget(mm_struct& mm) {
  if (!mm.ksm_registered) return;
  for (auto it = _ksm->items.lower_bound({&mm, 0}); it != _ksm->items.end() && it->first.first == &mm;) {
    remove_rmap_item_from_tree(it->second);
    it = _ksm->items.erase(it);
  }
  std::erase(_ksm->mm_list, &mm);
  mm.ksm_registered = false;
}

/// __ksm_exit(): @mm exits. Its rmap_items stay where they are, and in the counters,
/// until ksmd's next scan drops them; they leave the unstable tree now, where ksmd would
/// find the mm exiting and drop them on the way.
void machine::ksm_exit(mm_struct& mm) {
  if (!mm.ksm_registered) return;
  for (auto it = _ksm->items.lower_bound({&mm, 0}); it != _ksm->items.end() && it->first.first == &mm;) {
    ksm_rmap_item& item = it->second;
    if (item.unstable) {
      auto u = _ksm->unstable.find(item.oldchecksum);  // its content when it went in
      if (u != _ksm->unstable.end() && u->second == &item) _ksm->unstable.erase(u);
    }
    item.mm = nullptr;  // the mm_struct goes now; nothing looks at it again
    auto next = std::next(it);
    _ksm->exited.push_back(_ksm->items.extract(it));
    it = next;
  }
  std::erase(_ksm->mm_list, &mm);
  mm.ksm_registered = false;
}

// break_ksm(): a KSM page in the range is replaced by a private copy, as a write would.
void machine::unmerge_ksm_pages(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  std::vector<vaddr_t> ksm_ptes;
  vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    if (pte.present() && pte.pfn() != _zero_pfn && folio_of(pte.pfn()).is_ksm()) ksm_ptes.push_back(a);
  });
  for (vaddr_t a : ksm_ptes) {
    wp_page_copy(vma, a, &folio_of(vma.vm_mm->pgd.get(a).pfn()), true);  // break_ksm(): an unshare fault
  }
}

// ---- trees ----------------------------------------------------------------------------------

/// The KSM folio of a stable node, or null when it is gone (freed or reused): then the
/// node is stale and leaves the tree (ksm_get_folio() failing).
folio* machine::ksm_get_folio(ksm_stable_node* node) {
  if (node->kpfn.value >= _frames.size()) return nullptr;
  folio& f = folio_of(node->kpfn);
  if (!f.in_use() || !f.is_ksm() || f.ksm_node() != node) return nullptr;
  return &f;
}

/// Takes @e out of the stable tree and frees it (rb_erase(), then free_stable_node() or
/// free_stable_node_chain()).
void machine::erase_stable_entry(ksm_tree_entry& e) {
  _ksm->tree.remove(e);
  _ksm->stable.erase(e.content);
}

/// Takes a stale or unmapped node out of the stable tree, with its rmap_items. A lone
/// node leaves the tree; a dup leaves its chain, and the chain stays, even empty, until
/// a walk meets it and finds no live dup (visit_stable_entry() frees it then).
void machine::remove_node_from_stable_tree(ksm_stable_node* node) {
  for (auto* item : node->hlist) {
    item->head = nullptr;
    item->anon_vma->ksm_refs--;
    put_anon_vma(item->anon_vma);
    item->anon_vma = nullptr;
  }
  node->hlist.clear();
  ksm_tree_entry& e = *_ksm->stable.at(node->content);
  e.dups.remove_if([node](const auto& d) { return d.get() == node; });
  if (!e.chain) erase_stable_entry(e);
}

void machine::remove_rmap_item_from_tree(ksm_rmap_item& item) {
  if (item.head && !ksm_get_folio(item.head)) {
    // The KSM page is gone: the whole node goes, this item with it (ksm_get_folio()
    // finding it stale).
    remove_node_from_stable_tree(item.head);
  } else if (item.head) {
    auto& h = item.head->hlist;
    h.erase(std::find(h.begin(), h.end(), &item));
    item.anon_vma->ksm_refs--;
    put_anon_vma(item.anon_vma);
    item.anon_vma = nullptr;
    item.head = nullptr;
  }
  item.unstable = false;
}

namespace {

/// Whether @node can take @more mappings under @max_page_sharing. A node with no
/// rmap_item left takes none (its KSM page may live on in forked children, unrecorded).
bool sharing_candidate(const ksm_stable_node& node, std::size_t max_page_sharing, std::size_t more = 0) {
  return !node.hlist.empty() && node.hlist.size() + more < max_page_sharing;
}

}  // namespace

/// stable_node_dup(): the dup of @chain a walk goes on with, and that takes a new
/// mapping if it has room. Dups are looked at in list order; a stale one met on the way
/// leaves the chain. The first live dup is taken, then replaced by a dup with room, and
/// in a prune pass by a fuller dup with room; outside a prune pass the walk stops at the
/// first dup with room. With no candidate the whole list is walked. The dup taken moves
/// to the head if it has room for one more after this one, and a chain left with it
/// alone collapses into a lone node, full or not. Null: no live dup is left.
ksm_stable_node* machine::stable_node_dup(ksm_tree_entry& chain, bool prune) {
  ksm_stable_node* found = nullptr;
  for (auto it = chain.dups.begin(); it != chain.dups.end();) {
    ksm_stable_node* dup = (it++)->get();  // the node may leave the list below
    if (!ksm_get_folio(dup)) {
      remove_node_from_stable_tree(dup);
      continue;
    }
    const auto limit = _ksm->max_page_sharing;
    const bool better = !found || (sharing_candidate(*dup, limit) &&
                                   (!sharing_candidate(*found, limit) || dup->hlist.size() > found->hlist.size()));
    if (!better) continue;
    found = dup;
    if (!prune && sharing_candidate(*found, _ksm->max_page_sharing)) break;
  }
  if (!found) return nullptr;
  if (chain.dups.size() == 1) {
    chain.chain = false;
  } else if (chain.dups.front().get() != found && sharing_candidate(*found, _ksm->max_page_sharing, 1)) {
    auto at = std::find_if(chain.dups.begin(), chain.dups.end(), [found](const auto& d) { return d.get() == found; });
    chain.dups.splice(chain.dups.begin(), chain.dups, at);
  }
  return found;
}

/// What a walk of the stable tree does at each node it passes, whatever content it looks
/// for (chain_prune() in a search, chain() in an insert): it needs a live KSM page of the
/// node to compare with, and a chain's dups are pruned and chosen from on the way. A
/// stale lone node, or a chain with no live dup, leaves the tree, and the walk starts
/// again from the root (`restart`). Otherwise `dup` is the lone node or the dup taken,
/// which takes a page of this content only if sharing_candidate().
machine::ksm_visit machine::visit_stable_entry(ksm_tree_entry& e, bool prune) {
  if (!e.chain) {
    ksm_stable_node* lone = e.dups.front().get();
    if (ksm_get_folio(lone)) return {false, lone};
    remove_node_from_stable_tree(lone);
    return {true, nullptr};
  }
  if (ksm_stable_node* dup = stable_node_dup(e, prune)) return {false, dup};
  erase_stable_entry(e);  // free_stable_node_chain()
  return {true, nullptr};
}

/// stable_tree_search() for @content: the stable node that takes a page of that content,
/// or null when there is none or every dup is full (the page then goes to the unstable
/// tree, and a merge there adds a dup). The walk down the tree visits every node on its
/// way (visit_stable_entry()): in a `ksm prune` every one of them is a prune pass.
ksm_stable_node* machine::stable_tree_search(std::uint64_t content) {
  ksm_tree_entry* e = _ksm->tree.root_item();
  while (e) {
    const auto v = visit_stable_entry(*e, _ksm->prune);
    if (v.restart) {
      e = _ksm->tree.root_item();
      continue;
    }
    // Equal content: every dup full means the page waits for a partner in the
    // unstable tree, and a merge there adds a dup.
    const int cmp = ksm_content_cmp(content, e->content);
    if (cmp == 0) return sharing_candidate(*v.dup, _ksm->max_page_sharing) ? v.dup : nullptr;
    e = _ksm->tree.child_of(*e, cmp > 0);
  }
  return nullptr;
}

/// stable_tree_insert(): turns @f into the KSM page of a new stable node (its PTE is
/// write_protect_page()d by the caller). The walk down visits the nodes on its way as
/// the search does (never as a prune pass). Where a node of equal content is in the
/// tree, the new node is a dup at the head of its chain, a lone node becoming a chain
/// first; otherwise it is a new lone node where the walk ended.
ksm_stable_node* machine::stable_tree_insert(folio& f) {
  auto node = std::make_unique<ksm_stable_node>();
  node->kpfn = f.pfn;
  node->content = f.content;
  ksm_stable_node* raw = node.get();
  ksm_tree_entry* e = _ksm->tree.root_item();
  ksm_tree_entry* parent = nullptr;
  bool right = false;
  while (e) {
    if (visit_stable_entry(*e, false).restart) {
      e = _ksm->tree.root_item();
      parent = nullptr;
      continue;
    }
    const int cmp = ksm_content_cmp(f.content, e->content);
    if (cmp == 0) break;
    parent = e;
    right = cmp > 0;
    e = _ksm->tree.child_of(*e, right);
  }
  if (e) {
    e->chain = true;
    e->dups.push_front(std::move(node));
  } else {
    auto entry = std::make_unique<ksm_tree_entry>();
    entry->content = f.content;
    entry->dups.push_front(std::move(node));
    _ksm->tree.insert_at(*entry, parent, right);  // where the walk ended
    _ksm->stable.emplace(f.content, std::move(entry));
  }
  f.mapping = raw;
  f.clear(folio_flag::anon_exclusive);
  return raw;
}

void machine::stable_tree_append(ksm_rmap_item& item, ksm_stable_node* node, vm_area_struct& vma) {
  item.head = node;
  item.unstable = false;
  item.anon_vma = vma.anon_vma;
  item.anon_vma->refcount++;  // an rmap_item pins its anon_vma (KSM walks it later)
  item.anon_vma->ksm_refs++;
  node->hlist.push_back(&item);
}

/// write_protect_page(): the PTE at @addr becomes read-only and clean before a merge,
/// so that no write can change the page behind KSM's back. A dirty PTE's state moves to
/// the folio: a page in the swap cache that was written since it was read back differs
/// from its slot, and reclaim must write it out, not drop it.
void machine::write_protect_page(vm_area_struct& vma, vaddr_t addr) {
  pte_t pte = vma.vm_mm->pgd.get(addr);
  if (pte.dirty()) folio_of(pte.pfn()).set(folio_flag::dirty);
  vma.vm_mm->pgd.set(addr, pte.wrprotect().mkclean());
}

/// ksmd's CPU's mlock folio batch (mm/mlock.c): KSM's munlocks of a replaced page, and its
/// mlock of a KSM page not yet mlocked, in a VM_LOCKED VMA go through it. Each folio in
/// it holds a reference until the batch fills (FOLIO_BATCH_SIZE, 31) and is processed, or
/// until the lru_add_drain_all() at the start of every full scan; meanwhile its extra
/// reference makes write_protect_page() refuse it. So a page that a forked sharer still
/// maps, freshly munlocked by a merge, is not merged through that sharer until the next
/// full scan: whether it is depends on its place in the batch, which the kernel shows.
void machine::ksm_mlock_batch_add(const folio& f) {
  _ksm->mlock_batch.push_back(f.pfn.value);
  if (_ksm->mlock_batch.size() == FOLIO_BATCH_SIZE) _ksm->mlock_batch.clear();
}

bool machine::ksm_mlock_batch_holds(const folio& f) const {
  return std::find(_ksm->mlock_batch.begin(), _ksm->mlock_batch.end(), f.pfn.value) != _ksm->mlock_batch.end();
}

/// replace_page(): the PTE at @addr maps @kpage, read-only, instead of its old page.
/// False when the old page cannot be write-protected (a reference in the mlock batch).
bool machine::replace_page(vm_area_struct& vma, vaddr_t addr, folio& kpage) {
  pte_t old = vma.vm_mm->pgd.get(addr);
  folio& page = folio_of(old.pfn());
  if (ksm_mlock_batch_holds(page)) return false;
  write_protect_page(vma, addr);
  folio_get(kpage);
  kpage.mapcount++;
  vma.vm_mm->pgd.set(addr, pte_t::mk_present(kpage.pfn, false).mkyoung());
  const bool kpage_mlocked = kpage.test(folio_flag::mlocked);
  mlock_vma_folio(kpage, vma);
  folio_remove_rmap_pte(page);
  munlock_vma_folio(page, vma);
  if (vma.vm_flags.has(vm_flag::locked)) {
    // The old page is munlocked twice, each time through the batch: by the rmap removal
    // of replace_page(), then by try_to_merge_one_page(), which then mlocks the KSM page
    // if it is not mlocked yet. (Seen on the kernel: the 239 merges of 240 equal pages in
    // one mlocked VMA make 478 adds, 15 batches of 31 and 13 left over: the old pages of
    // the last 7 merges stay held, and a fork's mappings of them merge a scan later.)
    ksm_mlock_batch_add(page);
    ksm_mlock_batch_add(page);
    if (!kpage_mlocked) ksm_mlock_batch_add(kpage);
  }
  if (!page.mapped()) folio_free_swap(page);
  folio_put(page);
  return true;
}

// ---- the scan -------------------------------------------------------------------------------

// Kernel: cmp_and_merge_page().
void machine::cmp_and_merge_page(vm_area_struct& vma, vaddr_t addr, ksm_rmap_item& item) {
  pte_t pte = vma.vm_mm->pgd.get(addr);
  folio& page = folio_of(pte.pfn());
  if (page.is_ksm()) {
    auto* node = page.ksm_node();
    if (item.head == node) return;
    // A KSM page reached through a new rmap_item (a forked child's PTE): record it.
    remove_rmap_item_from_tree(item);
    stable_tree_append(item, node, vma);
    return;
  }
  remove_rmap_item_from_tree(item);
  // The checksum comes first (as in 6.18): a page new to ksmd, or changed since its last
  // visit, merges with nothing in this pass, not even with a stable page of equal content.
  if (!item.checksum_valid || item.oldchecksum != page.content) {
    item.oldchecksum = page.content;
    item.checksum_valid = true;
    return;
  }
  // The page's PTE is write-protected for the merge: no longer exclusive.
  if (ksm_stable_node* node = stable_tree_search(page.content)) {
    folio* kpage = ksm_get_folio(node);
    if (ksm_split_for_merge(vma, addr) && replace_page(vma, addr, *kpage)) stable_tree_append(item, node, vma);
    return;
  }
  auto it = _ksm->unstable.find(page.content);
  if (it == _ksm->unstable.end()) {
    _ksm->unstable.emplace(page.content, &item);
    item.unstable = true;
    return;
  }
  // Merge with the unstable tree's page: this page becomes the KSM page and the tree
  // page's PTE is replaced by it (try_to_merge_two_pages()). A page shared by fork meets
  // itself here: KSM does not substitute a KSM page for a forked page, and moves on.
  ksm_rmap_item& tree_item = *it->second;
  auto* tree_vma = find_vma(*tree_item.mm, tree_item.address);
  pte_t tree_pte = tree_item.mm->pgd.get(tree_item.address);
  // get_mergeable_page(): the tree page must still be an anonymous page there (a split may
  // have mapped it, all zeroes, to the zero page).
  if (!tree_vma || !tree_pte.present() || is_zero_pfn(tree_pte.pfn())) return;
  if (tree_pte.pfn() == page.pfn) return;
  // Two pages of one large folio: the split each merge asks for fails, the folio holding
  // a reference for each; cmp_and_merge_page() splits it once both are put, and merges
  // nothing this time.
  if (folio_of(page.pfn).is_large() && page_folio(page.pfn).pfn == page_folio(tree_pte.pfn()).pfn) {
    split_large_folio(page_folio(page.pfn));
    return;
  }
  if (!ksm_split_for_merge(vma, addr)) return;
  if (ksm_mlock_batch_holds(page)) return;  // write_protect_page() refuses it
  write_protect_page(vma, addr);
  if (!ksm_split_for_merge(*tree_vma, tree_item.address) || ksm_mlock_batch_holds(folio_of(tree_pte.pfn()))) {
    // The tree page cannot be merged (its folio did not split, the split mapped it to the
    // zero page, or the mlock batch holds it): this page, already a KSM page with this one
    // PTE, is copied back by break_cow().
    (void)wp_page_copy(vma, addr, &page, true);
    return;
  }
  _ksm->unstable.erase(it);
  tree_item.unstable = false;
  // A page that becomes a KSM page is marked accessed (seen on Linux 6.18: a fork's old
  // PTE to it counts in smaps' Referenced where one to the page before did not, and one
  // to a page that was referenced already does not: that second access activated it).
  folio_mark_accessed(page);
  // And dirty, so that reclaim writes it out rather than dropping it as a clean page
  // (an unmerge's copies are clean: seen as smaps' Shared_Dirty of a KSM page made of them).
  page.set(folio_flag::dirty);
  ksm_stable_node* node = stable_tree_insert(page);
  replace_page(*tree_vma, tree_item.address, page);
  stable_tree_append(tree_item, node, *tree_vma);
  stable_tree_append(item, node, vma);
}

/// try_to_merge_one_page()'s split_huge_page(): a page of a large folio merges only as an
/// order-0 page. False when the page at @addr cannot merge: its folio did not split, or the
/// split mapped the page, all zeroes, to the zero page (write_protect_page() then misses it).
bool machine::ksm_split_for_merge(vm_area_struct& vma, vaddr_t addr) {
  const pte_t pte = vma.vm_mm->pgd.get(addr);
  if (!folio_of(pte.pfn()).is_large()) return true;
  if (!split_large_folio(page_folio(pte.pfn()))) return false;
  const pte_t now = vma.vm_mm->pgd.get(addr);
  return now.present() && now.pfn() == pte.pfn();
}

/// One mm's turn in a full scan: its mergeable anonymous pages in address order, each
/// through cmp_and_merge_page(). As in get_next_rmap_item(), an rmap_item whose address
/// the scan passes without a page there is removed on the way, before the pages after
/// it are compared (its removal may make room in a dup), and the rest at the end
/// (remove_trailing_rmap_items()). Returns whether the mm has a VM_MERGEABLE VMA.
bool machine::ksm_scan_mm(mm_struct& mm) {
  auto& items = _ksm->items;
  auto cursor = items.lower_bound({&mm, 0});
  auto drop_below = [&](std::uint64_t address) {
    while (cursor != items.end() && cursor->first.first == &mm && cursor->first.second < address) {
      remove_rmap_item_from_tree(cursor->second);
      cursor = items.erase(cursor);
    }
  };
  bool any_mergeable = false;
  for (auto& entry : mm.mm_mt) {
    vm_area_struct* vma = entry.second;  // a plain variable: clang 14 (clang-tidy) cannot capture a binding
    if (!vma->vm_flags.has(vm_flag::mergeable)) continue;
    any_mergeable = true;
    if (!vma->anon_vma) continue;
    // The addresses first: a merge may split a large folio (a PMD to PTEs, zero-filled
    // pages to the zero page), so each page is looked up again when its turn comes.
    std::vector<vaddr_t> mapped;
    mm.pgd.for_each_mapped(vma->vm_start, vma->vm_end, [&](vaddr_t a, pte_t, bool) { mapped.push_back(a); });
    for (const vaddr_t a : mapped) {
      const pte_t pte = mm.pgd.get(a);
      if (!pte.present() || is_zero_pfn(pte.pfn())) continue;
      if (!page_folio(pte.pfn()).is_anon()) continue;  // page-cache pages of a private file mapping
      drop_below(a.value);
      if (cursor == items.end() || cursor->first != std::pair{&mm, a.value})
        cursor = items.emplace_hint(cursor, std::pair{&mm, a.value}, ksm_rmap_item{});
      auto& item = cursor->second;
      ++cursor;
      item.mm = &mm;
      item.address = a;
      cmp_and_merge_page(*vma, a, item);
    }
  }
  drop_below(~0ULL);
  return any_mergeable;
}

void machine::ksm_drop_exited() {
  for (auto& exited : _ksm->exited) remove_rmap_item_from_tree(exited.mapped());
  _ksm->exited.clear();
}

bool machine::ksm_scan_once() {
  auto before = ksm_counters();
  _ksm->mlock_batch.clear();  // lru_add_drain_all(): every CPU's batches are drained
  ksm_drop_exited();
  for (auto* mm : std::vector<mm_struct*>(_ksm->mm_list)) {
    // A whole pass over the mm found no VM_MERGEABLE VMA: ksmd forgets the mm (as at exit,
    // MMF_VM_MERGEABLE cleared), and a later MADV_MERGEABLE registers it again, at the end
    // of the scan order.
    if (!ksm_scan_mm(*mm)) ksm_forget(*mm);
  }
  // The unstable tree is rebuilt from scratch by every full scan. Its items still count
  // as pages_unshared until the next scan visits them (they carry the scan's seqnr).
  // Stale stable nodes stay until something looks at them, as in the kernel: no sweep.
  _ksm->unstable.clear();
  auto after = ksm_counters();
  _ksm->full_scans++;
  return after != before;
}

/// The stable tree: a valid red-black tree holding every entry, in memcmp order of the
/// pages, with one node per lone entry and a dup list per chain (the kernel's
/// VM_BUG_ON()s on stable_node chains).
std::string machine::check_ksm_tree() const {
  if (auto e = _ksm->tree.verify(); !e.empty()) return "KSM stable tree: " + e;
  if (_ksm->tree.size() != _ksm->stable.size()) return "KSM stable tree: an entry is not linked in the tree";
  const ksm_tree_entry* prev = nullptr;
  std::string bad;
  _ksm->tree.for_each([&](const ksm_tree_entry& e) {
    if (bad.empty() && prev && ksm_content_cmp(prev->content, e.content) >= 0)
      bad = "KSM stable tree: entries out of memcmp order";
    if (bad.empty() && !e.chain && e.dups.size() != 1) bad = "KSM stable tree: a lone node without exactly one page";
    prev = &e;
  });
  return bad;
}

machine::ksm_stats machine::ksm_counters() const {
  ksm_stats s;
  for (const auto& [content, e] : _ksm->stable) {
    for (const auto& node : e->dups) {
      if (node->hlist.empty()) continue;
      s.pages_shared++;
      s.pages_sharing += node->hlist.size() - 1;
    }
    if (!e->chain) continue;
    s.stable_node_chains++;
    s.stable_node_dups += e->dups.size();
  }
  // pages_unshared: in the unstable tree; pages_volatile: every other rmap_item (its
  // checksum changed, or it met its own page through fork).
  for (const auto& [key, item] : _ksm->items) s.pages_unshared += item.unstable ? 1 : 0;
  for (const auto& exited : _ksm->exited) s.pages_unshared += exited.mapped().unstable ? 1U : 0U;
  s.pages_volatile = _ksm->items.size() + _ksm->exited.size() - s.pages_shared - s.pages_sharing - s.pages_unshared;
  s.full_scans = _ksm->full_scans;
  return s;
}

machine::ksm_view machine::ksm_snapshot() const {
  ksm_view v;
  std::uint64_t chains = 0;
  for (const auto& [content, e] : _ksm->stable) {
    chains += e->chain ? 1U : 0U;
    for (const auto& node : e->dups) {
      v.stable.push_back(node.get());
      v.stable_chain.push_back(e->chain ? chains : 0);
    }
  }
  for (const auto& [key, item] : _ksm->items) v.rmap_items.push_back(&item);
  // Keyed by mm address in the tree; listed by mm serial, so that a dump is reproducible.
  std::stable_sort(v.rmap_items.begin(), v.rmap_items.end(), [](const ksm_rmap_item* a, const ksm_rmap_item* b) {
    return std::pair(a->mm->id, a->address.value) < std::pair(b->mm->id, b->address.value);
  });
  for (const auto& [content, item] : _ksm->unstable) v.unstable.push_back(item);
  v.mm_slots.assign(_ksm->mm_list.begin(), _ksm->mm_list.end());
  v.full_scans = _ksm->full_scans;
  return v;
}

// The `ksm` statement: scan until nothing changes for three full scans, as the kernel
// runner waits for ksmd's counters to settle; nothing when no VMA is mergeable. With @prune every search is a prune
// pass (the runner sets stable_node_chains_prune_millisecs to 0); without, none is (it sets a day: the interval never
// elapses within a run).
void machine::ksm_run_to_fixpoint(bool prune) {
  // No mergeable VMA anywhere: the kernel runner does not start ksmd (its full_scans would
  // never move), and exited mms' rmap_items stay counted.
  const bool any = std::any_of(_ksm->mm_list.begin(), _ksm->mm_list.end(), [](const mm_struct* mm) {
    return std::any_of(mm->mm_mt.begin(), mm->mm_mt.end(),
                       [](const auto& e) { return e.second->vm_flags.has(vm_flag::mergeable); });
  });
  if (!any) return;
  _ksm->prune = prune;
  int stable = 0;
  while (stable < 3) stable = ksm_scan_once() ? 0 : stable + 1;
  _ksm->prune = false;
}

// Kernel: rmap_walk_ksm(). Pass 0 visits the mappings each rmap_item recorded; pass 1
// the other mms of its anon_vma at the same address: children forked after the merge.
void machine::rmap_walk_ksm(folio& f, const rmap_walk_control& rwc) {
  auto* node = f.ksm_node();
  rmap_trace(*this,
             [&] { return walk_step{.what = walk_step::kind::start, .name = "ksm_stable_node", .object = node}; });
  for (int pass = 0; pass < 2; ++pass) {
    for (auto* item : std::vector<ksm_rmap_item*>(node->hlist)) {
      anon_vma* av = item->anon_vma;
      rmap_trace(*this, [&] {
        return walk_step{.what = walk_step::kind::source,
                         .name = pass == 0 ? "ksm_rmap_item" : "ksm_rmap_item (second pass: other mms)",
                         .object = item,
                         .mm = item->mm,
                         .addr = item->address};
      });
      const rmap_lock lock(*this, rmap_lock_class::anon_vma_root_rwsem, av->root, "anon_vma_lock_read");
      rmap_trace(*this, [&] {
        return walk_step{.what = walk_step::kind::query, .name = "anon_vma->rb_root", .object = av, .last = ~0ULL};
      });
      for (auto* avc = av->rb_root.iter_first(0, ~0ULL); avc; avc = av->rb_root.iter_next(*avc, 0, ~0ULL)) {
        vm_area_struct& vma = *avc->vma;
        if (item->address < vma.vm_start || item->address >= vma.vm_end) {
          rmap_trace(*this, [&] {
            return walk_step{.what = walk_step::kind::skip,
                             .name = "rmap_item->address outside the VMA",
                             .vma = &vma,
                             .addr = item->address};
          });
          continue;
        }
        if ((vma.vm_mm == item->mm) != (pass == 0)) continue;  // the other pass visits it
        if (!rmap_visit(*this, f, vma, item->address, rwc)) return;
      }
    }
  }
}

}  // namespace rmapkit::mm
