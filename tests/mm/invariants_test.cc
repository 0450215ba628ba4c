// check_invariants() fires: every check of mm/debug.cc, one test each, on a sound machine
// whose state a test breaks in exactly one place (through the objects' public fields, as
// only a test may), then puts back, so that the fixture's teardown still finds a sound
// machine with nothing left. A checker that never fires would pass every other test.
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;
using testing::B;

constexpr int RW = PROT_READ_ | PROT_WRITE_;

class Invariants : public testing::machine_test {
 protected:
  /// Breaks the machine with @corrupt, requires check_invariants() to report a violation
  /// containing @expected, then undoes the damage with @restore.
  void expect_caught(std::string_view expected, const std::function<void()>& corrupt,
                     const std::function<void()>& restore) {
    ASSERT_EQ(m.check_invariants(), "") << "the state must be sound before it is broken";
    corrupt();
    const std::string got = m.check_invariants();
    restore();
    EXPECT_NE(got.find(expected), std::string::npos) << "expected \"" << expected << "\", got \"" << got << "\"";
    EXPECT_EQ(m.check_invariants(), "") << "the state was not put back";
  }

  /// The same for one field set to @bad, and back.
  template <typename T>
  void expect_caught_if(T& field, T bad, std::string_view expected) {
    const T good = field;
    expect_caught(
        expected, [&] { field = bad; }, [&] { field = good; });
  }

  static vm_area_struct& vma(const mm_struct& mm, vaddr_t a) { return *machine::find_vma(mm, a); }
  folio& folio_at(const mm_struct& mm, vaddr_t a) { return m.folio_of(mm.pgd.get(a).pfn()); }
  static anon_vma_chain& first_avc(const vm_area_struct& v) {
    anon_vma_chain* first = nullptr;
    v.anon_vma_chain.for_each([&](anon_vma_chain& avc) {
      if (!first) first = &avc;
    });
    return *first;
  }

  /// P with two written anon pages at A.
  mm_struct* anon_process(const char* name = "P", vaddr_t at = A) {
    auto* p = m.mm_alloc(name);
    EXPECT_EQ(m.do_mmap(*p, at, 2, RW, false, nullptr, pgoff_t{}), 0);
    EXPECT_EQ(m.access(*p, at, true, 1), 0);
    EXPECT_EQ(m.access(*p, page_addr(at, 1), true, 2), 0);
    return p;
  }

  /// A memfd of @pages pages, put by the fixture's teardown.
  address_space* memfd(const char* name, std::uint64_t pages) {
    files.push_back(m.memfd_create(name, pages, files.size() + 1));
    return files.back();
  }

  /// The pfns of LRU list @l in link order, from the head.
  std::vector<std::uint32_t> lru_chain(lru_list l) {
    std::vector<std::uint32_t> chain;
    std::uint32_t head = 0;
    for (pfn_t p : m.lru_folios(l))
      if (m.folio_of(p).lru_prev == 0) head = static_cast<std::uint32_t>(p.value);
    for (std::uint32_t p = head; p; p = m.folio_of(pfn_t{p}).lru_next) chain.push_back(p);
    return chain;
  }

  static std::uint16_t with(std::uint16_t flags, folio_flag f, bool on) {
    folio copy;
    copy.flags = flags;
    copy.assign(f, on);
    return copy.flags;
  }
};

// ---- check_vmas, check_avcs -------------------------------------------------------------

TEST_F(Invariants, MmapCacheOfAnotherMm) {
  auto* p = anon_process();
  auto* q = anon_process("Q", B);
  expect_caught_if(p->mmap_cache, static_cast<const vm_area_struct*>(&vma(*q, B)),
                   "mm P: mmap_cache points at a VMA it does not have");
}

TEST_F(Invariants, EmptyRange) {
  auto* p = anon_process();
  expect_caught_if(vma(*p, A).vm_end, A, "empty or inverted range");
}

TEST_F(Invariants, AnonVmaWithoutItsChain) {
  auto* p = anon_process();
  expect_caught_if(vma(*p, A).anon_vma, static_cast<anon_vma*>(nullptr), "anon_vma and its chain disagree");
}

TEST_F(Invariants, AvcPointingAtAnotherVma) {
  auto* p = anon_process();
  auto* c = m.dup_mm(*p, "C");
  expect_caught_if(first_avc(vma(*p, A)).vma, &vma(*c, A), "an AVC on its chain points at another VMA");
}

TEST_F(Invariants, AvcOfAFreedAnonVma) {
  auto* p = anon_process();
  anon_vma not_allocated;
  expect_caught_if(first_avc(vma(*p, A)).anon_vma, &not_allocated, "an AVC points at a freed anon_vma");
}

TEST_F(Invariants, ChainMixingFamilies) {
  auto* p = anon_process();
  auto* q = anon_process("Q", B);
  expect_caught_if(first_avc(vma(*p, A)).anon_vma, vma(*q, B).anon_vma, "its chain mixes anon_vma roots");
}

TEST_F(Invariants, StaleIntervalTreeKeyOfAnAvc) {
  auto* p = anon_process();
  auto& avc = first_avc(vma(*p, A));
  expect_caught_if(avc.cached_last, avc.cached_last + 1, "an AVC's interval-tree key is stale");
}

TEST_F(Invariants, OwnAnonVmaNotOnTheChain) {
  auto* p = anon_process();
  auto* c = m.dup_mm(*p, "C");
  // P's chain holds only P's anon_vma; C's is of the same family but not on it.
  expect_caught_if(vma(*p, A).anon_vma, vma(*c, A).anon_vma, "no AVC for its own anon_vma");
}

TEST_F(Invariants, RootNotLastOnTheChain) {
  auto* p = anon_process();
  auto* c = m.dup_mm(*p, "C");
  auto& v = vma(*c, A);  // chain: C's anon_vma, then P's (the root)
  ASSERT_EQ(v.anon_vma_chain.size(), 2U);
  auto& first = first_avc(v);
  auto& last = *v.anon_vma_chain.last();
  auto swap = [&] { std::swap(first.anon_vma, last.anon_vma); };
  expect_caught("the root is not last on its chain", swap, swap);
}

TEST_F(Invariants, TwoVmasOfOneAnonVmaWithDifferentChains) {
  auto* p = anon_process();
  auto* c = m.dup_mm(*p, "C");
  // C's chain (C's, P's) names P's anon_vma, whose own VMA's chain is P's alone.
  expect_caught_if(vma(*c, A).anon_vma, vma(*p, A).anon_vma,
                   "two VMAs with one anon_vma have different chains (CVE-2022-42703)");
}

TEST_F(Invariants, FileVmaMissingFromIMmap) {
  auto* f = memfd("F", 2);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, RW, false, f, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 3), 0);  // a COW copy: the VMA gets an anon_vma
  auto& v = vma(*p, A);
  expect_caught(
      "file VMA missing from i_mmap", [&] { f->i_mmap.remove(v); }, [&] { f->i_mmap.insert(v); });
}

// ---- check_anon_vmas ------------------------------------------------------------------------

TEST_F(Invariants, RootThatIsNotARoot) {
  // An anon_vma on no chain (its VMA is gone, KSM's rmap_items still pin it), so that no
  // chain check sees its root first.
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 2, madv::mergeable), 0);
  ASSERT_EQ(m.access(*p, A, true, 5), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 1), true, 5), 0);
  m.ksm_run_to_fixpoint();
  anon_vma* pinned = vma(*p, A).anon_vma;
  ASSERT_EQ(m.do_munmap(*p, A, 2), 0);
  ASSERT_TRUE(pinned->rb_root.empty());
  ASSERT_GT(pinned->ksm_refs, 0);
  auto* q = anon_process("Q", B);
  auto* qc = m.dup_mm(*q, "QC");
  anon_vma* child = vma(*qc, B).anon_vma;  // its root is Q's
  // The pinned anon_vma now names a child as its root; the child's refcount takes the
  // reference every anon_vma holds on its root, so that only the root is wrong.
  expect_caught(
      "its root is not a root",
      [&] {
        pinned->root = child;
        child->refcount++;
      },
      [&] {
        pinned->root = pinned;
        child->refcount--;
      });
}

TEST_F(Invariants, ParentOfAnotherFamily) {
  auto* p = anon_process();
  auto* c = m.dup_mm(*p, "C");
  auto* q = anon_process("Q", B);
  anon_vma* pav = vma(*p, A).anon_vma;
  anon_vma* cav = vma(*c, A).anon_vma;
  anon_vma* qav = vma(*q, B).anon_vma;
  // C's anon_vma moves to Q's as its parent, the children counts following it.
  expect_caught(
      "parent and root disagree",
      [&] {
        cav->parent = qav;
        pav->num_children--;
        qav->num_children++;
      },
      [&] {
        cav->parent = pav;
        pav->num_children++;
        qav->num_children--;
      });
}

TEST_F(Invariants, BrokenAnonVmaIntervalTree) {
  auto* p = anon_process();
  auto& avc = first_avc(vma(*p, A));
  expect_caught_if(avc.rb.subtree_last, avc.rb.subtree_last + 1, ": interval tree: ");
}

TEST_F(Invariants, NumActiveVmas) {
  auto* p = anon_process();
  auto* av = vma(*p, A).anon_vma;
  expect_caught_if(av->num_active_vmas, av->num_active_vmas + 1, ": num_active_vmas 2 but 1 VMAs use it");
}

TEST_F(Invariants, NumChildren) {
  auto* p = anon_process();
  auto* av = vma(*p, A).anon_vma;
  expect_caught_if(av->num_children, av->num_children + 1, ": num_children 2 but 1 children");
}

TEST_F(Invariants, AnonVmaRefcount) {
  auto* p = anon_process();
  auto* av = vma(*p, A).anon_vma;
  expect_caught_if(av->refcount, av->refcount + 1, ": refcount 2 but 1 expected");
}

// ---- check_ptes, check_pte, check_found_by_walk ------------------------------------------

TEST_F(Invariants, WritableZeroPage) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, false), 0);  // a read maps the zero page
  const pte_t pte = p->pgd.get(A);
  ASSERT_EQ(pte.pfn(), m.zero_pfn());
  expect_caught(
      "writable zero page", [&] { p->pgd.set(A, pte.mkwrite()); }, [&] { p->pgd.set(A, pte); });
}

TEST_F(Invariants, PteOfAFreeFrame) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::in_use, false), ": maps a free frame");
}

TEST_F(Invariants, WritablePteOfASharedAnonPage) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::anon_exclusive, false),
                   ": writable anon PTE of a page that is not AnonExclusive");
}

class InvariantsKsm : public Invariants {
 protected:
  /// P with two equal pages at A, merged into one KSM page.
  mm_struct* merged() {
    auto* p = m.mm_alloc("P");
    EXPECT_EQ(m.do_mmap(*p, A, 2, RW, false, nullptr, pgoff_t{}), 0);
    EXPECT_EQ(m.do_madvise(*p, A, 2, madv::mergeable), 0);
    EXPECT_EQ(m.access(*p, A, true, 5), 0);
    EXPECT_EQ(m.access(*p, page_addr(A, 1), true, 5), 0);
    m.ksm_run_to_fixpoint();
    EXPECT_TRUE(folio_at(*p, A).is_ksm());
    return p;
  }
};

TEST_F(InvariantsKsm, StaleStableNode) {
  auto* p = merged();
  auto* node = folio_at(*p, A).ksm_node();
  expect_caught_if(node->kpfn, pfn_t{0}, ": KSM page of a stale stable node");
}

TEST_F(InvariantsKsm, WritableKsmPage) {
  auto* p = merged();
  auto& f = folio_at(*p, A);
  const pte_t pte = p->pgd.get(A);
  const auto flags = f.flags;
  // AnonExclusive too, or the general check of writable anon PTEs would catch it first.
  expect_caught(
      ": writable KSM page",
      [&] {
        p->pgd.set(A, pte.mkwrite());
        f.set(folio_flag::anon_exclusive);
      },
      [&] {
        p->pgd.set(A, pte);
        f.flags = flags;
      });
}

TEST_F(Invariants, FolioIndexAgainstVmaAddress) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.index, pgoff_t{f.index.value + 1}, ": folio->index does not match vma_address()");
}

TEST_F(Invariants, FolioOfAFreedAnonVma) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  anon_vma not_allocated;
  expect_caught_if(f.mapping, folio_mapping(&not_allocated), ": folio->mapping is a freed anon_vma");
}

TEST_F(Invariants, FolioOfAnotherFamily) {
  auto* p = anon_process();
  auto* q = anon_process("Q", B);
  auto& f = folio_at(*p, A);
  expect_caught_if(f.mapping, folio_mapping(vma(*q, B).anon_vma), ": folio's anon_vma is of another family");
}

TEST_F(Invariants, AnonPageMappedTwiceInOneMm) {
  // P's region split in two VMAs of one anon_vma; the upper one is moved onto the lower
  // one's offsets (its AVC re-keyed as the kernel would), and its PTE maps the lower
  // one's page: every check but this one holds.
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  ASSERT_EQ(m.do_mprotect(*p, page_addr(A, 1), 1, PROT_READ_), 0);
  auto& lower = vma(*p, A);
  auto& upper = vma(*p, page_addr(A, 1));
  ASSERT_NE(&lower, &upper);
  ASSERT_EQ(upper.anon_vma, lower.anon_vma);
  auto& avc = first_avc(upper);
  const pfn_t page = p->pgd.get(A).pfn();
  auto move_upper = [&](pgoff_t pgoff) {
    upper.anon_vma->rb_root.remove(avc);
    upper.vm_pgoff = pgoff;
    avc.cached_start = avc.cached_last = pgoff.value;
    upper.anon_vma->rb_root.insert(avc);
  };
  const pgoff_t was = upper.vm_pgoff;
  expect_caught(
      ": an anon page mapped twice in one mm",
      [&] {
        move_upper(lower.vm_pgoff);
        p->pgd.set(upper.vm_start, pte_t::mk_present(page, false));
      },
      [&] {
        p->pgd.set(upper.vm_start, pte_t{});
        move_upper(was);
      });
}

TEST_F(Invariants, PageCacheFolioOfAnotherFile) {
  auto* f = memfd("F", 1);
  auto* g = memfd("G", 1);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_, true, f, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, false), 0);
  auto& page = folio_at(*p, A);
  expect_caught_if(page.mapping, folio_mapping(g), ": page-cache folio of another file");
}

TEST_F(Invariants, PteTheRmapWalkDoesNotFind) {
  auto* p = anon_process();
  auto* c = m.dup_mm(*p, "C");
  auto& cv = vma(*c, A);
  anon_vma* root = vma(*p, A).anon_vma;
  anon_vma_chain* in_root = cv.anon_vma_chain.last();  // C's VMA in P's anon_vma tree
  ASSERT_EQ(in_root->anon_vma, root);
  expect_caught(
      ": not found by an rmap walk of its folio", [&] { root->rb_root.remove(*in_root); },
      [&] { root->rb_root.insert(*in_root); });
}

// ---- check_folios, check_folio_lru ----------------------------------------------------------

TEST_F(Invariants, Mapcount) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.mapcount, f.mapcount + 1, ": mapcount 2 but 1 PTEs map it");
}

TEST_F(Invariants, AnonExclusiveButShared) {
  auto* p = anon_process();
  m.dup_mm(*p, "C");
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::anon_exclusive, true), ": AnonExclusive but mapped 2 times");
}

TEST_F(Invariants, FolioRefcount) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.refcount, f.refcount + 1, ": refcount 2 but 1 references");
}

TEST_F(Invariants, InUseButOnNoLruList) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::lru, false), ": in use but on no LRU list");
}

TEST_F(Invariants, MlockCount) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.mlock_count, std::uint16_t{1}, ": mlock_count 1 but 0 PTEs of VM_LOCKED VMAs map it");
}

TEST_F(Invariants, LockedButNotMlocked) {
  auto* p = anon_process();
  ASSERT_EQ(m.do_mlock(*p, A, 2, true), 0);
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::mlocked, false), ": mapped by a VM_LOCKED VMA but not mlocked");
}

TEST_F(Invariants, MlockedButNotLocked) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::mlocked, true), ": mlocked but no VM_LOCKED VMA maps it");
}

TEST_F(Invariants, UnevictableButNotMlocked) {
  auto* p = anon_process();
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::unevictable, true),
                   ": on the unevictable list iff mlocked: broken");
}

TEST_F(Invariants, ActiveAndUnevictable) {
  auto* p = anon_process();
  ASSERT_EQ(m.do_mlock(*p, A, 2, true), 0);
  auto& f = folio_at(*p, A);
  expect_caught_if(f.flags, with(f.flags, folio_flag::active, true), ": both active and unevictable");
}

TEST_F(Invariants, CleanSwapCacheFolioUnlikeItsSlot) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  const pfn_t pfn = p->pgd.get(A).pfn();
  ASSERT_EQ(m.do_madvise(*p, A, 1, madv::pageout), 0);  // written to its slot, kept in the swap cache
  auto& f = m.folio_of(pfn);
  ASSERT_TRUE(f.in_use() && f.test(folio_flag::swapcache) && !f.test(folio_flag::dirty));
  expect_caught_if(f.content, f.content + 1, ": clean in the swap cache, but its content differs from its slot's");
}

// ---- check_lru_lists: a shmem file's three page-cache folios, on the inactive anon list ----

class InvariantsLru : public Invariants {
 protected:
  void SetUp() override {
    memfd("F", 3);
    chain = lru_chain(lru_list::inactive_anon);
    ASSERT_EQ(chain.size(), 3U);
  }
  folio& at(std::size_t i) { return m.folio_of(pfn_t{chain.at(i)}); }
  std::vector<std::uint32_t> chain;
};

TEST_F(InvariantsLru, LongerThanItsCount) {
  expect_caught_if(at(2).lru_next, chain[0], "LRU list 0: longer than its count 3");
}

TEST_F(InvariantsLru, BadPrevLink) {
  expect_caught_if(at(1).lru_prev, chain[2], "LRU list 0: pfn " + std::to_string(chain[1]) + " has a bad prev link");
}

TEST_F(InvariantsLru, FreeFolioOnAList) {
  // Unmapped and not in use: the folio checks skip it, only the list walk meets it.
  expect_caught_if(at(1).flags, with(at(1).flags, folio_flag::in_use, false), " is free or not marked lru");
}

TEST_F(InvariantsLru, FolioOnTheWrongList) {
  expect_caught_if(at(1).flags, with(at(1).flags, folio_flag::active, true), " belongs on another list");
}

TEST_F(InvariantsLru, CountOrTailWrong) {
  expect_caught_if(at(0).lru_next, std::uint32_t{0}, "LRU list 0: count 3 or tail wrong (1 found)");
}

// ---- check_files, check_swap ------------------------------------------------------------------

TEST_F(Invariants, BrokenIMmapIntervalTree) {
  auto* f = memfd("F", 2);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_, true, f, pgoff_t{}), 0);
  auto& v = vma(*p, A);
  expect_caught_if(v.shared_rb.subtree_last, v.shared_rb.subtree_last + 1,
                   "i_mmap of F: node [0, 1] has subtree_last 2, expected 1");
}

TEST_F(Invariants, SwapCountAgainstItsReferences) {
  auto* f = memfd("F", 1);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 1, madv::pageout), 0);
  const pte_t pte = p->pgd.get(A);
  ASSERT_TRUE(pte.is_swap());
  // A shmem page that claims the same slot: one reference the slot's count lacks.
  expect_caught(
      ": count 1 but 2 references", [&] { f->swapped[0] = pte.swap_entry(); }, [&] { f->swapped.erase(0); });
}

// ---- check_large_folio, and the large-folio rows of check_pte and check_folio_lru ----------

class InvariantsLargeFolio : public Invariants {
 protected:
  /// P with a 64k folio at A, written at page 0, and its child C sharing it.
  void SetUp() override {
    m.set_thp_anon_orders(1U << 4);
    p = m.mm_alloc("P");
    ASSERT_EQ(m.do_mmap(*p, A, 16, RW, false, nullptr, pgoff_t{}), 0);
    ASSERT_EQ(m.do_madvise(*p, A, 16, madv::hugepage), 0);
    ASSERT_EQ(m.access(*p, A, true, 1), 0);
    c = m.dup_mm(*p, "C");
  }
  folio& head() { return m.page_folio(p->pgd.get(A).pfn()); }
  large_folio_state& state() { return const_cast<large_folio_state&>(m.large_state(head())); }
  mm_struct* p = nullptr;
  mm_struct* c = nullptr;
};

TEST_F(InvariantsLargeFolio, LargeMapcountAgainstItsPages) {
  expect_caught_if(state().mapcount, 31, "large mapcount 31 but its pages' sum 32");
}

TEST_F(InvariantsLargeFolio, MmSlotCountingMoreThanItsMmMaps) {
  expect_caught_if(state().mm_mapcount[1], 17, "mm slot 1 counts 17 mappings, its mm has 16");
}

TEST_F(InvariantsLargeFolio, NotMaybeSharedWithNoSlotHoldingEveryMapping) {
  expect_caught_if(state().maybe_shared, false, "not maybe-shared, yet no mm slot holds every mapping");
}

TEST_F(InvariantsLargeFolio, PartiallyMappedButNotQueued) {
  expect_caught_if(state().partially_mapped, true, "partially mapped and on the deferred-split queue disagree");
}

// A mapped page of another order is caught sooner, at its PTE (its head would be another
// frame); page 5 is unmapped first, so that only the folio's own check sees it.
TEST_F(InvariantsLargeFolio, APageOfAnotherOrder) {
  ASSERT_EQ(m.do_madvise(*p, page_addr(A, 5), 1, madv::dontneed), 0);
  ASSERT_EQ(m.do_madvise(*c, page_addr(A, 5), 1, madv::dontneed), 0);
  expect_caught_if(m.folio_of(pfn_t{head().pfn.value + 5}).order, std::uint8_t{2}, "page 5 is not part of the folio");
}

TEST_F(InvariantsLargeFolio, TailIndexAgainstItsAddress) {
  expect_caught_if(head().index, pgoff_t{head().index.value + 1}, "folio->index does not match vma_address()");
}

TEST_F(InvariantsLargeFolio, MlockedWithoutALockedMapping) {
  folio& f = head();
  expect_caught(
      "mlocked and its mlock_count disagree", [&] { f.set(folio_flag::mlocked); },
      [&] { f.clear(folio_flag::mlocked); });
  expect_caught(
      "mlocked but no VM_LOCKED VMA maps a page of it",
      [&] {
        f.set(folio_flag::mlocked);
        f.set(folio_flag::unevictable);
        f.clear(folio_flag::active);
        f.mlock_count = 1;
      },
      [&] {
        f.clear(folio_flag::mlocked);
        f.clear(folio_flag::unevictable);
        f.mlock_count = 0;
      });
}

// ---- check_huge_pmd, and the PMD rows of check_large_folio -----------------------------

class InvariantsPmd : public Invariants {
 protected:
  /// P with a PMD-mapped THP at A and the huge zero folio at A + 2 MiB, and its child C
  /// sharing both by PMD.
  void SetUp() override {
    m.set_thp_anon_orders(1U << PMD_ORDER);
    p = m.mm_alloc("P");
    ASSERT_EQ(m.do_mmap(*p, A, 1024, RW, false, nullptr, pgoff_t{}), 0);
    ASSERT_EQ(m.do_madvise(*p, A, 1024, madv::hugepage), 0);
    ASSERT_EQ(m.access(*p, A, true, 1), 0);
    ASSERT_EQ(m.access(*p, zero_at(), false), 0);
    ASSERT_TRUE(p->pgd.huge_pmd(A));
    c = m.dup_mm(*p, "C");
  }
  static vaddr_t zero_at() { return vaddr_t{A.value + PMD_SIZE}; }
  folio& head() { return m.folio_of(p->pgd.huge_pmd(A)->pfn()); }
  large_folio_state& state() { return const_cast<large_folio_state&>(m.large_state(head())); }
  /// Sets P's PMD at @at to what @change makes of it, checks that @expected is caught, and
  /// puts it back.
  template <typename F>
  void expect_pmd_caught(vaddr_t at, F change, std::string_view expected) {
    const pte_t good = *p->pgd.huge_pmd(at);
    expect_caught(
        expected, [&] { p->pgd.set_huge_pmd(at, change(good)); }, [&] { p->pgd.set_huge_pmd(at, good); });
  }
  mm_struct* p = nullptr;
  mm_struct* c = nullptr;
};

TEST_F(InvariantsPmd, EntireMapcountAgainstItsPmds) {
  expect_caught_if(state().entire_mapcount, 3, "entire mapcount 3 but 2 PMDs map it");
}

TEST_F(InvariantsPmd, LargeMapcountAgainstItsPagesAndPmds) {
  expect_caught_if(state().mapcount, 3, "large mapcount 3 but its pages' sum 0 and 2 PMDs");
}

TEST_F(InvariantsPmd, WritablePmdOfAFolioThatIsNotExclusive) {
  expect_pmd_caught(
      A, [](pte_t pmd) { return pmd.mkwrite(); }, "writable, but the folio is not AnonExclusive");
}

TEST_F(InvariantsPmd, PmdOfATailPage) {
  expect_pmd_caught(
      A, [](pte_t pmd) { return pte_t::mk_present(pfn_t{pmd.pfn().value + 1}, false); },
      "does not map the head of a PMD-sized anonymous or page-cache folio");
}

TEST_F(InvariantsPmd, WritableHugeZeroFolio) {
  expect_pmd_caught(
      zero_at(), [](pte_t pmd) { return pmd.mkwrite(); }, "writable huge zero folio");
}

TEST_F(InvariantsPmd, FolioIndexAgainstThePmdsAddress) {
  expect_caught_if(head().index, pgoff_t{head().index.value + 512}, "folio->index does not match vma_address()");
}

}  // namespace
}  // namespace rmapkit::mm
