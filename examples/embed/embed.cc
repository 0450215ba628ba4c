// Embedding rmapkit: a program builds a simulated kernel (mm::machine), runs a process
// through mmap, writes and fork as a real program would, then asks the reverse map the
// question the kernel asks before it reclaims or migrates a page: who maps this folio?
// Only the installed public headers are used. Build: with CMake (CMakeLists.txt here) or pkg-config (README.md here).
#include <cstdint>

#include <fmt/format.h>

#include <rmapkit/mm/machine.h>
#include <rmapkit/version.h>

using namespace rmapkit;

namespace {

// rmap_walk() calls rmap_one for every VMA that may map the folio (those on its
// anon_vma's interval tree), at the address the folio would have there. A VMA that has
// since copied the page (COW) is visited but no longer maps it: page_vma_mapped() says.
int print_mappings(mm::machine& m, const char* what, mm::folio& f) {
  int mappings = 0;
  mm::rmap_walk_control rwc;
  rwc.rmap_one = [&](mm::folio& folio, mm::vm_area_struct& vma, vaddr_t addr) {
    bool mapped = m.page_vma_mapped(folio, vma, addr);
    fmt::print("  {:<7} VMA [{}, {}) at {}{}\n", vma.vm_mm->name, vma.vm_start, vma.vm_end, addr,
               mapped ? "" : "  (visited: copied on write, maps it no more)");
    mappings += mapped ? 1 : 0;
    return true;  // keep walking
  };
  fmt::print("{} (pfn {}):\n", what, f.pfn);
  m.rmap_walk(f, rwc);
  fmt::print("  {} mappings\n", mappings);
  return mappings;
}

}  // namespace

int main() {
  fmt::print("rmapkit {}\n", RMAPKIT_VERSION);
  mm::machine m;  // the default design, linux-6: anon_vma, anon_vma_chain, interval trees
  const vaddr_t base{0x100000000000};
  mm::mm_struct* parent = m.mm_alloc("parent");
  // mmap(base, 4 pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS): 0 or -errno.
  if (m.do_mmap(*parent, base, 4, mm::PROT_READ_ | mm::PROT_WRITE_, false, nullptr, pgoff_t{}) != 0) return 1;
  // Write every page (the last argument is the page's new content): each write fault
  // allocates a frame and adds it to the VMA's anon_vma.
  for (std::uint64_t i = 0; i < 4; ++i) m.access(*parent, page_addr(base, i), true, 100 + i);
  // fork() twice: the children share every page, write-protected for copy-on-write.
  mm::mm_struct* child1 = m.dup_mm(*parent, "child1");
  mm::mm_struct* child2 = m.dup_mm(*parent, "child2");
  // child2 writes page 1: the write fault copies it; parent and child1 keep the original.
  m.access(*child2, page_addr(base, 1), true, 201);

  auto folio_at = [&](mm::mm_struct& mm, std::uint64_t page) -> mm::folio& {
    return m.folio_of(mm.pgd.get(page_addr(base, page)).pfn());
  };
  int shared = print_mappings(m, "page 0", folio_at(*parent, 0));
  int cowed = print_mappings(m, "page 1", folio_at(*parent, 1));
  // folio_referenced() is reclaim's question: in how many VMAs was the page used lately
  // (a young PTE)? Only the parent's: fork gives the children old PTEs. It clears the
  // young bits it reads, so asking again at once gives 0.
  int young = m.folio_referenced(folio_at(*parent, 0));
  fmt::print("page 0 referenced in {} VMA, then in {}\n", young, m.folio_referenced(folio_at(*parent, 0)));

  for (auto* mm : {child2, child1, parent}) m.exit_mm(mm);
  return shared == 3 && cowed == 2 ? 0 : 1;
}
