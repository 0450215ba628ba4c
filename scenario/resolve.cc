// Resolves a parsed scenario: a shadow of the scenario-level state (names, regions,
// holes, protections, mlock and fork advice per page) decides every rule of the format
// that does not need the memory manager itself, before anything runs.
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "rmapkit/scenario/program.h"

namespace rmapkit::scenario {

namespace {

struct rule_error {
  std::string message;
};

/// What the scenario itself decides about one page of a region.
struct page_state {
  bool mapped = true;
  enum prot prot = prot::rw;
  bool locked = false;      // VM_LOCKED: not inherited by fork
  bool dontfork = false;    // VM_DONTCOPY
  bool wipeonfork = false;  // VM_WIPEONFORK
  // What the page maps: a region's pages differ only after `mmap R[i:j]` mapped into it.
  map_kind kind = map_kind::anon_private;
  std::optional<file_id> file;
  std::uint64_t offset0 = 0;  // of a file page: its file page minus its region index (mod 2^64)
  bool noreserve = false;     // VM_NORESERVE
  bool huge = false;          // VM_HUGEPAGE (version 2), else VM_NOHUGEPAGE: the two never merge

  bool operator==(const page_state&) const = default;
  /// The file page this page maps, at region index @i.
  [[nodiscard]] std::uint64_t file_page(std::uint64_t i) const { return offset0 + i; }
};

/// A hole: every hole is this state, so that neighbouring holes are one run.
constexpr page_state HOLE{false,        prot::none, false, false, false, map_kind::anon_private,
                          std::nullopt, 0,          false, false};

/// The pages of a region as runs of equal state, neighbouring runs unequal: a region of
/// 262,143 pages that no statement splits is one entry, not 262,143. So each mapped run is
/// one VMA as the scenario's history shows it.
class page_runs {
 public:
  page_runs(std::uint64_t size, const page_state& s) : _size(size) { _runs.emplace(0, s); }

  [[nodiscard]] std::uint64_t size() const { return _size; }
  [[nodiscard]] const page_state& at(std::uint64_t i) const { return std::prev(_runs.upper_bound(i))->second; }
  [[nodiscard]] bool one_run() const { return _runs.size() == 1; }

  /// The first page of [first, last) whose state fails @ok, or nothing.
  template <typename Ok>
  [[nodiscard]] std::optional<std::uint64_t> find_bad(std::uint64_t first, std::uint64_t last, Ok ok) const {
    if (first >= last) return std::nullopt;
    for (auto it = std::prev(_runs.upper_bound(first)); it != _runs.end() && it->first < last; ++it)
      if (!ok(it->second)) return std::max(it->first, first);
    return std::nullopt;
  }

  /// Applies @f to the state of every page of [first, last).
  template <typename F>
  void update(std::uint64_t first, std::uint64_t last, F f) {
    if (first >= last) return;
    split(first);
    split(last);
    for (auto it = _runs.find(first); it != _runs.end() && it->first < last; ++it) f(it->second);
    merge(first, last);
  }

  /// Shrinks, or grows with pages of state @fill.
  void resize(std::uint64_t size, const page_state& fill) {
    if (size < _size) _runs.erase(_runs.lower_bound(size), _runs.end());
    if (size > _size) _runs.emplace(_size, fill);
    const auto old = _size;
    _size = size;
    if (size > old) merge(old, old);
  }

  /// Mapped runs (VMAs) that a change of pages [first, last) can split, join or remove:
  /// those overlapping the range and the page on each side of it.
  [[nodiscard]] std::uint64_t vmas_near(std::uint64_t first, std::uint64_t last) const {
    const std::uint64_t lo = first > 0 ? first - 1 : 0, hi = std::min(last + 1, _size);
    std::uint64_t n = 0;
    for (auto it = std::prev(_runs.upper_bound(lo)); it != _runs.end() && it->first < hi; ++it)
      if (it->second.mapped) ++n;
    return n;
  }

 private:
  /// A run starts at @pos (unless @pos is the end).
  void split(std::uint64_t pos) {
    if (pos >= _size) return;
    auto it = std::prev(_runs.upper_bound(pos));
    if (it->first != pos) _runs.emplace_hint(std::next(it), pos, it->second);
  }

  /// Joins equal neighbours among the runs from the one before @first to the one at @last.
  void merge(std::uint64_t first, std::uint64_t last) {
    auto it = std::prev(_runs.upper_bound(first > 0 ? first - 1 : 0));
    for (auto next = std::next(it); next != _runs.end() && next->first <= last; next = std::next(it)) {
      if (next->second == it->second) _runs.erase(next);
      else it = next;
    }
  }

  std::map<std::uint64_t, page_state> _runs;  // first page of a run -> its state; a run ends where the next starts
  std::uint64_t _size;
};

struct region_state {
  map_kind kind = map_kind::anon_private;  // as created; pages mapped into it later may differ
  std::uint64_t slot = 0;
  page_runs pages{1, HOLE};
};

struct process_state {
  proc_id id = 0;
  bool alive = true;
  std::map<std::string, region_state> regions;  // never shrinks: region names are not reused
  std::uint64_t pages = 0;                      // in all its regions, holes included
  std::uint64_t vmas = 0;                       // as the scenario's history shows them: the kernel may keep more apart
};

std::string range_text(const range_ref& r) {
  if (!r.first) return r.region;
  if (!r.last) return fmt::format("{}[{}]", r.region, *r.first);
  return fmt::format("{}[{}:{}]", r.region, *r.first, *r.last);
}

bool readable(const page_state& pg) { return pg.prot != prot::none; }

bool is_file(map_kind k) { return k == map_kind::file_private || k == map_kind::file_shared; }

class resolver {
 public:
  explicit resolver(const scenario& sc) { _prog.file = sc.file; }

  tl::expected<program, diag> run(const scenario& sc) {
    for (const auto& st : sc.statements) {
      try {
        auto body = std::visit([&](const auto& s) { return step(s); }, st.body);
        _prog.ops.push_back(op{st.line, std::move(body), st.text});
      } catch (const rule_error& e) {
        return tl::make_unexpected(diag{sc.file, st.line, e.message});
      }
    }
    return std::move(_prog);
  }

  /// Resolves @st after the statements before it, keeping only the state (statement_checker).
  void check(const statement& st) {
    std::visit([&](const auto& s) { static_cast<void>(step(s)); }, st.body);
  }

 private:
  // ---- names ------------------------------------------------------------------------

  void claim_global_name(const std::string& name) {
    if (_procs.count(name) || _files.count(name)) throw rule_error{fmt::format("name {} is already used", name)};
  }

  process_state& live_process(const std::string& name) {
    auto it = _procs.find(name);
    if (it == _procs.end()) throw rule_error{fmt::format("unknown process {}", name)};
    if (!it->second.alive) throw rule_error{fmt::format("process {} has exited", name)};
    return it->second;
  }

  region_state& region_of(process_state& p, const std::string& proc, const std::string& region) {
    auto it = p.regions.find(region);
    if (it == p.regions.end()) throw rule_error{fmt::format("unknown region {} in process {}", region, proc)};
    return it->second;
  }

  std::uint64_t next_slot() {
    if (_slots >= MAX_SLOTS) throw rule_error{fmt::format("too many regions (at most {} slots)", MAX_SLOTS)};
    _prog.slot_count = _slots + 1;
    return _slots++;
  }

  // ---- ranges -----------------------------------------------------------------------

  struct resolved_range {
    region_state* region;
    std::uint64_t first, last;
  };

  resolved_range range(process_state& p, const std::string& proc, const range_ref& r, bool holes_ok,
                       std::string_view verb) {
    auto& reg = region_of(p, proc, r.region);
    std::uint64_t size = reg.pages.size();
    std::uint64_t first = r.first.value_or(0);
    // first >= size first: R[18446744073709551615] must not wrap round to an empty range.
    std::uint64_t last = r.first ? (first >= size ? size + 1 : r.last.value_or(first + 1)) : size;
    if (last > size) {
      throw rule_error{fmt::format("{}: {} {} outside region {} ({} pages)", verb, r.last ? "range" : "page",
                                   range_text(r), r.region, size)};
    }
    if (!holes_ok) {
      if (auto i = reg.pages.find_bad(first, last, [](const page_state& s) { return s.mapped; }))
        throw rule_error{fmt::format("{}: {}[{}] is a hole (not mapped)", verb, r.region, *i)};
    }
    return {&reg, first, last};
  }

  static page_span span_of(const resolved_range& rr) {
    return page_span{page_addr(slot_start(rr.region->slot), rr.first), rr.last - rr.first, rr.first};
  }

  static void check_region_size(std::uint64_t pages, std::string_view verb, const std::string& region) {
    if (pages == 0) throw rule_error{fmt::format("{}: region {} needs at least one page", verb, region)};
    if (pages > MAX_REGION_PAGES)
      throw rule_error{fmt::format("{}: region {} of {} pages is larger than its slot (at most {} pages)", verb, region,
                                   pages, MAX_REGION_PAGES)};
  }

  // ---- counts the kernel bounds ----------------------------------------------------

  /// After @name joined _alive.
  void process_born(std::string_view verb, const std::string& name) {
    const std::uint64_t live = _alive.size();
    if (live > MAX_LIVE_PROCESSES)
      throw rule_error{
          fmt::format("{}: {} would be process {} alive at once (at most {}): fork fails with EAGAIN "
                      "beyond the kernel's pid_max",
                      verb, name, live, MAX_LIVE_PROCESSES)};
    _prog.live_process_peak = std::max(_prog.live_process_peak, live);
  }

  void mapped_change(std::uint64_t added, std::uint64_t removed) {
    _mapped = _mapped + added - removed;
    _prog.mapped_peak = std::max(_prog.mapped_peak, _mapped);
  }

  /// VMAs that a change of the pages of @rr can split, join or remove.
  static std::uint64_t vmas_around(const resolved_range& rr) { return rr.region->pages.vmas_near(rr.first, rr.last); }

  void add_vmas(process_state& p, const std::string& proc, std::uint64_t after, std::uint64_t before) {
    p.vmas = p.vmas + after - before;
    if (p.vmas > MAX_PROCESS_VMAS)
      throw rule_error{
          fmt::format("process {} would have {} VMAs (at most {}): the kernel refuses more than "
                      "vm.max_map_count (ENOMEM)",
                      proc, p.vmas, MAX_PROCESS_VMAS)};
  }

  // ---- statements -------------------------------------------------------------------

  op_body step(const st_spawn& s) {
    claim_global_name(s.proc);
    auto id = static_cast<proc_id>(_prog.process_names.size());
    _prog.process_names.push_back(s.proc);
    _alive.insert(&*_procs.emplace(s.proc, process_state{id, true, {}}).first);
    process_born("spawn", s.proc);
    return op_spawn{id};
  }

  op_body step(const st_file& s) {
    claim_global_name(s.file);
    if (s.file.size() > MAX_FILE_NAME_BYTES)
      throw rule_error{
          fmt::format("file: a name of {} bytes is too long (at most {}): the kernel refuses a memfd name "
                      "over 249 bytes (EINVAL), and the kernel runner adds 6",
                      s.file.size(), MAX_FILE_NAME_BYTES)};
    if (s.pages == 0) throw rule_error{fmt::format("file: {} needs at least one page", s.file)};
    if (s.pages > MAX_FILE_PAGES)
      throw rule_error{fmt::format("file: {} of {} pages is too large (at most {})", s.file, s.pages, MAX_FILE_PAGES)};
    auto id = static_cast<file_id>(_prog.file_names.size());
    _prog.file_names.push_back(s.file);
    _file_pages.push_back(s.pages);
    _files.emplace(s.file, id);
    _prog.page_bound += s.pages;
    mapped_change(s.pages, 0);
    return op_file{id, s.pages};
  }

  /// The file a `mmap` maps, checked against its size, or nothing for anonymous memory.
  std::optional<file_id> mapped_file(const st_mmap& s, std::uint64_t pages) {
    if (!is_file(s.kind)) return std::nullopt;
    auto it = _files.find(s.file);
    if (it == _files.end()) throw rule_error{fmt::format("mmap: unknown file {}", s.file)};
    auto fpages = _file_pages[it->second];
    // The kernel maps a file up to the largest file offset, 2^63 - 1 bytes, and refuses a
    // mapping that ends beyond it (or whose end wraps round) with EOVERFLOW.
    if (s.offset >= MAX_FILE_OFFSET_PAGES || pages >= MAX_FILE_OFFSET_PAGES - s.offset)
      throw rule_error{
          fmt::format("mmap: offset={} pages={} ends beyond the largest file offset ({} pages): the "
                      "kernel refuses it (EOVERFLOW)",
                      s.offset, pages, MAX_FILE_OFFSET_PAGES - 1)};
    if (s.offset + pages > fpages)
      throw rule_error{
          fmt::format("mmap: offset={} pages={} reaches beyond file {} ({} pages)", s.offset, pages, s.file, fpages)};
    return it->second;
  }

  /// The state of the pages of a fresh mapping of @s that starts at region page @first.
  static page_state mapped_page(const st_mmap& s, std::optional<file_id> fid, std::uint64_t first) {
    return page_state{true, s.prot, false, false, false, s.kind, fid, fid ? s.offset - first : 0, s.noreserve, s.huge};
  }

  /// The op of @s: @pages pages from page @index of the region whose base is @base.
  static op_mmap mmap_op(proc_id proc, vaddr_t base, const st_mmap& s, std::optional<file_id> fid, std::uint64_t index,
                         std::uint64_t pages) {
    op_mmap o{proc, base, s.kind, fid, pages, s.offset, s.prot, s.region};
    o.index = index;
    o.fixed = s.into.has_value();
    o.noreserve = s.noreserve;
    o.huge = s.huge;
    return o;
  }

  /// Version 2 rules of an mmap: `huge` needs the `thp` line, which must come first.
  void check_thp_mmap(const st_mmap& s) const {
    if (s.huge && !_prog.thp)
      throw rule_error{"mmap: 'huge' needs a `thp` line before the first mmap (scenario format version 2)"};
  }

  /// Frames a touch of [first, last) of @rr may allocate: with large folios a one-page
  /// fault in a `huge` mapping allocates up to a PMD's worth, never beyond the region.
  std::uint64_t touch_bound(const resolved_range& rr) const {
    const std::uint64_t pages = rr.last - rr.first;
    if (!_prog.thp || !rr.region->pages.find_bad(rr.first, rr.last, [](const page_state& pg) { return !pg.huge; }))
      return pages;
    const std::uint64_t pmd = std::uint64_t{1} << PMD_ORDER;
    const std::uint64_t whole = (rr.region->pages.size() + pmd - 1) / pmd * pmd;
    return std::min(whole, pages * pmd);
  }

  op_body step(const st_mmap& s) {
    check_thp_mmap(s);
    if (s.into) return map_into(s);
    auto& p = live_process(s.proc);
    if (p.regions.count(s.region))
      throw rule_error{fmt::format("mmap: region name {} is already used in process {}", s.region, s.proc)};
    check_region_size(s.pages, "mmap", s.region);
    auto fid = mapped_file(s, s.pages);
    region_state reg;
    reg.kind = s.kind;
    reg.slot = next_slot();
    reg.pages = page_runs(s.pages, mapped_page(s, fid, 0));
    auto base = slot_start(reg.slot);
    p.regions.emplace(s.region, std::move(reg));
    p.pages += s.pages;
    mapped_change(s.pages, 0);
    add_vmas(p, s.proc, 1, 0);
    _mapped_any = true;  // only once the mmap resolved: a refused statement changes nothing
    return mmap_op(p.id, base, s, fid, 0, s.pages);
  }

  /// `mmap R[i:j] ...`: MAP_FIXED over pages [i, j) of R, which may lie beyond R's end (R
  /// then grows to j pages, with holes between).
  op_body map_into(const st_mmap& s) {
    auto& p = live_process(s.proc);
    auto& reg = region_of(p, s.proc, s.region);
    const std::uint64_t first = *s.into->first, last = s.into->last.value_or(first + 1);
    // first >= MAX_REGION_PAGES first: R[18446744073709551615] must not wrap round.
    if (first >= MAX_REGION_PAGES || last > MAX_REGION_PAGES)
      throw rule_error{fmt::format("mmap: {} reaches beyond the slot of region {} (at most {} pages)",
                                   range_text(*s.into), s.region, MAX_REGION_PAGES)};
    auto fid = mapped_file(s, last - first);
    const auto old_size = reg.pages.size();
    if (last > old_size) {
      reg.pages.resize(last, HOLE);
      p.pages += last - old_size;
      mapped_change(last - old_size, 0);
    }
    const resolved_range rr{&reg, first, last};
    auto before = vmas_around(rr);
    const page_state fresh = mapped_page(s, fid, first);
    reg.pages.update(first, last, [&](page_state& pg) { pg = fresh; });
    add_vmas(p, s.proc, vmas_around(rr), before);
    _mapped_any = true;
    return mmap_op(p.id, slot_start(reg.slot), s, fid, first, last - first);
  }

  op_body step(const st_read& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, false, "read");
    if (auto i = rr.region->pages.find_bad(rr.first, rr.last, readable))
      throw rule_error{
          fmt::format("read: {}[{}] is prot=none: the access faults (the kernel refuses it)", s.range.region, *i)};
    _prog.page_bound += touch_bound(rr);
    return op_read{p.id, span_of(rr)};
  }

  op_body step(const st_write& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, false, "write");
    if (auto i = rr.region->pages.find_bad(rr.first, rr.last, [](const page_state& pg) { return writable(pg.prot); }))
      throw rule_error{fmt::format("write: {}[{}] is prot={}: the access faults (the kernel refuses it)",
                                   s.range.region, *i, to_string(rr.region->pages.at(*i).prot))};
    _prog.page_bound += touch_bound(rr);
    return op_write{p.id, span_of(rr), s.value};
  }

  op_body step(const st_fork& s) {
    auto& parent = live_process(s.proc);
    claim_global_name(s.child);
    auto id = static_cast<proc_id>(_prog.process_names.size());
    _prog.process_names.push_back(s.child);
    process_state child{id, true, parent.regions, parent.pages, 0};
    for (auto& [name, reg] : child.regions) {
      reg.pages.update(0, reg.pages.size(), [](page_state& pg) {
        if (pg.dontfork) pg = HOLE;  // dup_mmap skips VM_DONTCOPY VMAs
        pg.locked = false;           // VM_LOCKED is not inherited
      });
      child.vmas += reg.pages.vmas_near(0, reg.pages.size());
    }
    auto parent_id = parent.id;  // emplace below may not invalidate, but keep it simple
    mapped_change(child.pages, 0);
    _alive.insert(&*_procs.emplace(s.child, std::move(child)).first);
    process_born("fork", s.child);
    return op_fork{parent_id, id};
  }

  op_body step(const st_exit& s) {
    auto& p = live_process(s.proc);
    p.alive = false;
    _alive.erase(&*_procs.find(s.proc));
    mapped_change(0, p.pages);
    p.regions.clear();  // no statement can name them again
    return op_exit{p.id};
  }

  op_body step(const st_munmap& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, true, "munmap");
    auto before = vmas_around(rr);
    rr.region->pages.update(rr.first, rr.last, [](page_state& pg) { pg = HOLE; });
    add_vmas(p, s.proc, vmas_around(rr), before);
    return op_munmap{p.id, span_of(rr)};
  }

  op_body step(const st_mprotect& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, false, "mprotect");
    auto before = vmas_around(rr);
    rr.region->pages.update(rr.first, rr.last, [&](page_state& pg) { pg.prot = s.prot; });
    add_vmas(p, s.proc, vmas_around(rr), before);
    return op_mprotect{p.id, span_of(rr), s.prot};
  }

  op_body step(const st_mremap_resize& s) {
    auto& p = live_process(s.proc);
    auto& reg = region_of(p, s.proc, s.region);
    const auto first = reg.pages.at(0);
    if ((first.mapped ? first.kind : reg.kind) == map_kind::anon_shared)
      throw rule_error{
          fmt::format("mremap: region {} is shared anonymous memory: only private anonymous and file "
                      "regions can be resized",
                      s.region)};
    check_region_size(s.pages, "mremap", s.region);
    if (!reg.pages.one_run() || !first.mapped)
      throw rule_error{
          fmt::format("mremap: region {} is not one VMA covering pages 0 to {}", s.region, reg.pages.size() - 1)};
    if (first.file && first.file_page(0) + s.pages > _file_pages[*first.file])
      throw rule_error{fmt::format("mremap: region {} would reach beyond file {} ({} pages)", s.region,
                                   _prog.file_names[*first.file], _file_pages[*first.file])};
    auto old_pages = reg.pages.size();
    if (s.pages > old_pages) {
      _prog.page_bound += s.pages - old_pages;  // an mlocked VMA is populated as it grows
    }
    reg.pages.resize(s.pages, first);
    p.pages = p.pages - old_pages + s.pages;
    mapped_change(s.pages, old_pages);  // one VMA before and after: the VMA count stays
    return op_mremap_resize{p.id, slot_start(reg.slot), old_pages, s.pages};
  }

  op_body step(const st_mremap_move& s) {
    auto& p = live_process(s.proc);
    auto& reg = region_of(p, s.proc, s.region);
    bool any = reg.pages.find_bad(0, reg.pages.size(), [](const page_state& pg) { return !pg.mapped; }).has_value();
    if (!any) throw rule_error{fmt::format("mremap: region {} has no VMA left to move", s.region)};
    auto old_base = slot_start(reg.slot);
    reg.slot = next_slot();
    return op_mremap_move{p.id, old_base, slot_start(reg.slot), reg.pages.size()};
  }

  op_body step(const st_madvise& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, false, "madvise");
    auto& pages = rr.region->pages;
    switch (s.advice) {
      case advice::dontneed:
      case advice::pageout:
      case advice::free:
      case advice::cold:
      case advice::remove:
        if (auto i = pages.find_bad(rr.first, rr.last, [](const page_state& pg) { return !pg.locked; }))
          throw rule_error{fmt::format("madvise {}: {}[{}] is mlocked: the kernel refuses it (EINVAL)",
                                       to_string(s.advice), s.range.region, *i)};
        break;
      default: break;
    }
    switch (s.advice) {
      case advice::wipeonfork:
      case advice::free:
        if (pages.find_bad(rr.first, rr.last, [](const page_state& pg) { return pg.kind == map_kind::anon_private; }))
          throw rule_error{
              fmt::format("madvise {}: region {} is not private anonymous memory: the kernel "
                          "refuses it (EINVAL)",
                          to_string(s.advice), s.range.region)};
        break;
      case advice::remove:
        if (auto i = pages.find_bad(rr.first, rr.last, [](const page_state& pg) {
              return pg.kind == map_kind::file_shared || pg.kind == map_kind::anon_shared;
            }))
          throw rule_error{fmt::format(
              "madvise remove: {}[{}] is not a shared mapping: the kernel refuses it ({})", s.range.region, *i,
              pages.at(*i).kind == map_kind::anon_private ? "EINVAL: no file" : "EACCES: a private mapping")};
        break;
      default: break;
    }
    if (s.advice == advice::collapse) {
      if (!_prog.thp) throw rule_error{"madvise collapse: needs a `thp` line (scenario format version 2)"};
      // A new 2 MiB folio for each aligned block, the old pages freed only when unshared.
      _prog.page_bound += rr.last - rr.first + (std::uint64_t{1} << PMD_ORDER);
    }
    auto before = vmas_around(rr);
    pages.update(rr.first, rr.last, [&](page_state& pg) {
      if (s.advice == advice::dontfork) pg.dontfork = true;
      if (s.advice == advice::dofork) pg.dontfork = false;
      if (s.advice == advice::wipeonfork) pg.wipeonfork = true;
      if (s.advice == advice::keeponfork) pg.wipeonfork = false;
    });
    add_vmas(p, s.proc, vmas_around(rr), before);
    if (s.advice == advice::mergeable || s.advice == advice::pageout) _prog.needs_machine_lock = true;
    if (s.advice == advice::pageout) _prog.needs_swap = true;
    return op_madvise{p.id, span_of(rr), s.advice};
  }

  op_body step(const st_mlock& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, false, "mlock");
    if (auto i = rr.region->pages.find_bad(rr.first, rr.last, readable))
      throw rule_error{fmt::format("mlock: {}[{}] is prot=none: the kernel fails such an mlock halfway (ENOMEM)",
                                   s.range.region, *i)};
    auto before = vmas_around(rr);
    rr.region->pages.update(rr.first, rr.last, [](page_state& pg) { pg.locked = true; });
    add_vmas(p, s.proc, vmas_around(rr), before);
    _prog.page_bound += touch_bound(rr);  // mlock populates
    return op_mlock{p.id, span_of(rr)};
  }

  op_body step(const st_munlock& s) {
    auto& p = live_process(s.proc);
    auto rr = range(p, s.proc, s.range, false, "munlock");
    auto before = vmas_around(rr);
    rr.region->pages.update(rr.first, rr.last, [](page_state& pg) { pg.locked = false; });
    add_vmas(p, s.proc, vmas_around(rr), before);
    return op_munlock{p.id, span_of(rr)};
  }

  op_body step(const st_ksm& s) {
    _prog.needs_machine_lock = true;
    _prog.needs_ksm = true;
    return op_ksm{s.prune};
  }

  op_body step(const st_reclaim&) {
    _prog.needs_machine_lock = true;
    _prog.needs_swap = true;
    _prog.needs_reclaim = true;
    return op_reclaim{};
  }

  op_body step(const st_thp& s) {
    if (_prog.thp) throw rule_error{"thp: given twice (one `thp` line a scenario)"};
    if (_mapped_any) throw rule_error{"thp: must come before the first mmap"};
    _prog.thp = op_thp{s.anon_orders, s.shmem_orders};
    _prog.needs_machine_lock = true;  // the THP knobs are machine-wide
    return *_prog.thp;
  }

  op_body step(const st_shrink&) {
    _prog.needs_machine_lock = true;
    _prog.needs_shrink = true;
    return op_shrink{};
  }

  op_body step(const st_clear_refs& s) {
    auto& p = live_process(s.proc);
    return op_clear_refs{p.id, s.type};
  }

  op_body step(const st_report& s) {
    _smaps = _smaps || s.smaps;
    _flags = _flags || s.flags;
    return op_report{s.smaps, s.flags};
  }

  op_body step(const st_check& s) {
    op_check c{s.label, {}, _smaps, _flags};
    for (const auto* entry : _alive) {  // byte order of names
      const auto& [name, p] = *entry;
      check_process cp{name, p.id, {}};
      for (const auto& [rname, reg] : p.regions) cp.regions.push_back(check_region{rname, slot_start(reg.slot)});
      c.processes.push_back(std::move(cp));
    }
    return c;
  }

  program _prog;
  using proc_entry = std::map<std::string, process_state>::value_type;
  struct by_name {
    bool operator()(const proc_entry* a, const proc_entry* b) const { return a->first < b->first; }
  };
  std::map<std::string, process_state> _procs;  // every process ever: names are not reused
  std::set<const proc_entry*, by_name> _alive;  // the living, so that a check does not visit the dead
  std::map<std::string, file_id> _files;
  std::vector<std::uint64_t> _file_pages;
  std::uint64_t _slots = 0;
  std::uint64_t _mapped = 0;  // pages mapped (process_state::pages of the living) and file pages
  bool _smaps = false;        // a `report smaps` came: every later check prints smaps
  bool _flags = false;        // a `report flags` came: every later check prints page flags
  bool _mapped_any = false;   // an mmap came: too late for `thp`
};

}  // namespace

tl::expected<program, diag> resolve(const scenario& sc) { return resolver(sc).run(sc); }

namespace {

/// Turns on what @what says in every check of @prog.
void report_everywhere(program& prog, bool op_check::*what) {
  for (auto& o : prog.ops)
    if (auto* c = std::get_if<op_check>(&o.body)) c->*what = true;
}

}  // namespace

void report_smaps_everywhere(program& prog) { report_everywhere(prog, &op_check::smaps); }
void report_flags_everywhere(program& prog) { report_everywhere(prog, &op_check::flags); }

// statement_checker: a resolver whose ops are dropped; a step checks everything before it
// changes anything, so a refused statement leaves the state as it was.
struct statement_checker::impl {
  resolver r;
  std::string file;
};

statement_checker::statement_checker(std::string file)
    : _impl(std::make_unique<impl>(impl{resolver(scenario{file, {}}), file})) {}
statement_checker::~statement_checker() = default;

tl::expected<void, diag> statement_checker::add(const statement& st) {
  try {
    _impl->r.check(st);
    return {};
  } catch (const rule_error& e) {
    return tl::make_unexpected(diag{_impl->file, st.line, e.message});
  }
}

std::string_view statement_kind(const op& o) {
  return std::visit(
      [](const auto& b) -> std::string_view {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, op_spawn>) return "spawn";
        else if constexpr (std::is_same_v<T, op_file>) return "file";
        else if constexpr (std::is_same_v<T, op_mmap>) return "mmap";
        else if constexpr (std::is_same_v<T, op_read>) return "read";
        else if constexpr (std::is_same_v<T, op_write>) return "write";
        else if constexpr (std::is_same_v<T, op_fork>) return "fork";
        else if constexpr (std::is_same_v<T, op_exit>) return "exit";
        else if constexpr (std::is_same_v<T, op_munmap>) return "munmap";
        else if constexpr (std::is_same_v<T, op_mprotect>) return "mprotect";
        else if constexpr (std::is_same_v<T, op_mremap_resize>) return "mremap";
        else if constexpr (std::is_same_v<T, op_mremap_move>) return "mremap-move";
        else if constexpr (std::is_same_v<T, op_madvise>) return "madvise";
        else if constexpr (std::is_same_v<T, op_mlock>) return "mlock";
        else if constexpr (std::is_same_v<T, op_munlock>) return "munlock";
        else if constexpr (std::is_same_v<T, op_ksm>) return "ksm";
        else if constexpr (std::is_same_v<T, op_reclaim>) return "reclaim";
        else if constexpr (std::is_same_v<T, op_clear_refs>) return "clear_refs";
        else if constexpr (std::is_same_v<T, op_report>) return "report";
        else if constexpr (std::is_same_v<T, op_thp>) return "thp";
        else if constexpr (std::is_same_v<T, op_shrink>) return "shrink";
        else return "check";
      },
      o.body);
}

}  // namespace rmapkit::scenario
