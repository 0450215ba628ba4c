// The random scenario generator. It proposes statements from a light shadow of the
// scenario (live processes, their regions and sizes, files) and keeps a proposal only
// when it resolves after the statements kept before it (statement_checker), so every
// rule of the format is respected by construction rather than re-implemented here, in
// time linear in the statements. The shadow also steers clear of the refusals only the
// running memory manager decides (docs/scenario-format.md, "Resolution"): it resizes
// only regions no statement has split, and reclaims only before the first ksm.
#include "rmapkit/scenario/generate.h"

#include <map>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::scenario {

namespace {

struct region_info {
  std::uint64_t pages;
  bool anon_private;
  bool anon_shared;
  /// A statement changed the flags of part of it: it may be several VMAs, which the
  /// kernel need not merge again (a forked copy never is), so mremap may refuse it.
  bool split = false;
  /// Version 2: made `huge`, private anonymous and rw, and not reshaped since (mprotect,
  /// munmap, advice, mlock): `madvise collapse` of all of it, right after a write of all
  /// of it, is what the kernel accepts.
  bool collapsible = false;
};

/// A range of a region as written, and whether it covers the whole region.
struct range_text {
  std::string text;
  bool whole;
};

/// Regions one process may have made or inherited: each fork copies them all, so the
/// bound keeps long scenarios linear. Far above what the default 60 statements reach.
constexpr std::size_t MAX_PROCESS_REGIONS = 64;

class generator {
  struct kind {
    unsigned weight;
    void (generator::*fn)(const std::string&);
  };

 public:
  explicit generator(const random_options& o) : _o(o), _rng(o.seed), _checker("gen") {
    if (_o.ksm_heavy) _o.ksm = true;
    if (const auto& w = _o.weights) {
      // In the order of the built-in tables, so that equal weights make equal scenarios.
      _profile_kinds = {{w->touch, &generator::touch},
                        {w->mmap, &generator::mmap},
                        {w->fork, &generator::fork},
                        {w->exit, &generator::exit},
                        {w->munmap, &generator::munmap},
                        {w->mprotect, &generator::mprotect},
                        {w->mremap, &generator::mremap},
                        {w->madvise, &generator::madvise},
                        {w->mlock, &generator::mlock},
                        {w->check, &generator::check},
                        {w->spawn, &generator::spawn},
                        {w->machine_wide, &generator::machine_wide},
                        {w->clear_refs, &generator::clear_refs}};
    }
  }

  std::string run() {
    _text = fmt::format(
        "# generated: rmapkit gen random {}--seed {} --statements {} --processes {} --pages {}{}{}{}{}{}{}{}{}\n",
        _o.profile.empty() ? "" : fmt::format("--profile {} ", _o.profile), _o.seed, _o.statements, _o.max_processes,
        _o.max_region_pages, _o.pageout ? "" : " --no-pageout",
        _o.ksm_heavy ? " --ksm-heavy" : (_o.ksm ? " --ksm" : ""), _o.reclaim ? " --reclaim" : "",
        _o.smaps ? " --smaps" : "", _o.neighbours ? " --neighbours" : "", _o.thp ? " --thp" : "",
        _o.thp_anon ? " --thp-anon " + thp_sizes_text(*_o.thp_anon) : std::string(),
        _o.thp_shmem ? " --thp-shmem " + thp_sizes_text(*_o.thp_shmem) : std::string());
    if (_o.thp) accept(thp_line(), [] {});
    if (_o.smaps) accept("report smaps", [] {});
    accept("spawn P0", [&] { _procs["P0"] = {}; });
    for (int f = 0; f < 2; ++f) {
      auto name = fmt::format("F{}", f);
      auto pages = pick(4, 40);
      accept(fmt::format("file {} pages={}", name, pages), [&] { _files[name] = pages; });
    }
    unsigned attempts = 0;
    while (_count < _o.statements && attempts++ < _o.statements * 50) propose();
    check({});
    return _text;
  }

 private:
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(_rng);
  }
  bool chance(unsigned percent) { return pick(0, 99) < percent; }
  template <typename M>
  const typename M::key_type& any_key(const M& m) {
    auto it = m.begin();
    std::advance(it, static_cast<long>(pick(0, m.size() - 1)));
    return it->first;
  }

  /// Appends @stmt when it resolves after the statements kept so far; @update then
  /// follows it in the shadow.
  template <typename F>
  bool accept(const std::string& stmt, F&& update) {
    auto sc = parse(stmt, "gen");
    if (!sc || sc->statements.size() != 1 || !_checker.add(sc->statements.front())) return false;
    _text += stmt;
    _text += '\n';
    ++_count;
    update();
    return true;
  }

  /// `thp anon=... shmem=...`: each anonymous size in 30 % of the scenarios, 64k and 2m in
  /// 60 %; each shmem size at half those rates.
  std::string thp_line() {
    if (_o.thp_anon || _o.thp_shmem)
      return fmt::format("thp anon={} shmem={}", thp_sizes_text(_o.thp_anon.value_or(0)),
                         thp_sizes_text(_o.thp_shmem.value_or(0)));
    auto sizes = [&](unsigned common) {
      std::string out;
      for (const auto& sz : THP_SIZES) {
        const bool favoured = sz.order == 4 || sz.order == PMD_ORDER;
        if (chance(favoured ? common : common / 2)) out += (out.empty() ? "" : ",") + std::string(sz.name);
      }
      return out.empty() ? std::string("none") : out;
    };
    auto anon = sizes(60);
    return fmt::format("thp anon={} shmem={}", anon, sizes(30));
  }

  range_text range(const std::string& region, std::uint64_t pages) {
    auto r = pick(0, 9);
    if (r < 3) return {region, true};
    auto first = pick(0, pages - 1);
    if (r < 6) return {fmt::format("{}[{}]", region, first), pages == 1};
    auto last = pick(first + 1, pages);
    return {fmt::format("{}[{}:{}]", region, first, last), first == 0 && last == pages};
  }

  /// Marks region @rname of @p split unless @rg covers all of it; either way it has been
  /// reshaped, and collapse may no longer be accepted.
  void note_split(const std::string& p, const std::string& rname, const range_text& rg) {
    if (!rg.whole) _procs[p][rname].split = true;
    _procs[p][rname].collapsible = false;
  }

  void propose() {
    const auto& proc = any_key(_procs);
    auto& regions = _procs[proc];
    auto p = proc;  // proposals below may add processes, which moves nothing in a std::map
    static const kind usual[] = {
        {24, &generator::touch}, {8, &generator::mmap},     {8, &generator::fork},   {3, &generator::exit},
        {5, &generator::munmap}, {6, &generator::mprotect}, {5, &generator::mremap}, {9, &generator::madvise},
        {4, &generator::mlock},  {5, &generator::check},    {2, &generator::spawn},  {3, &generator::machine_wide},
    };
    // KSM-heavy: more scans between the changes, fewer VMA reshapes that only break merges.
    static const kind ksm_heavy[] = {
        {24, &generator::touch}, {6, &generator::mmap},     {6, &generator::fork},   {3, &generator::exit},
        {4, &generator::munmap}, {2, &generator::mprotect}, {2, &generator::mremap}, {12, &generator::madvise},
        {2, &generator::mlock},  {4, &generator::check},    {1, &generator::spawn},  {12, &generator::machine_wide},
    };
    std::span<const kind> kinds = _o.ksm_heavy ? std::span<const kind>(ksm_heavy) : std::span<const kind>(usual);
    // With smaps, the same mix and clear_refs after it: every other kind keeps its share.
    std::vector<kind> with_clear_refs;
    if ((_o.smaps || _o.thp) && !_o.weights) {
      with_clear_refs.assign(kinds.begin(), kinds.end());
      if (_o.smaps) with_clear_refs.push_back({3, &generator::clear_refs});
      if (_o.thp) with_clear_refs.push_back({4, &generator::shrink});
      kinds = with_clear_refs;
    }
    if (_o.weights) kinds = _profile_kinds;
    unsigned total = 0;
    for (const auto& k : kinds) total += k.weight;
    if (total == 0) return;
    auto r = pick(0, total - 1);
    for (const auto& k : kinds) {
      if (r < k.weight) {
        if (regions.empty() && k.fn != &generator::fork && k.fn != &generator::spawn && k.fn != &generator::check &&
            k.fn != &generator::exit && k.fn != &generator::machine_wide && k.fn != &generator::clear_refs &&
            k.fn != &generator::shrink) {
          mmap(p);
          return;
        }
        (this->*k.fn)(p);
        return;
      }
      r -= k.weight;
    }
  }

  void touch(const std::string& p) {
    const auto& rname = any_key(_procs[p]);
    auto pages = _procs[p][rname].pages;
    auto rg = range(rname, pages).text;
    if (_o.ksm_heavy) {
      // A few values, so that many pages have equal contents; reads swap KSM pages back in.
      if (chance(25)) accept(fmt::format("{}: read {}", p, rg), [] {});
      else if (chance(85)) accept(fmt::format("{}: write {} value={}", p, rg, pick(0, 2)), [] {});
      else accept(fmt::format("{}: write {}", p, rg), [] {});
      return;
    }
    if (chance(40)) {
      accept(fmt::format("{}: read {}", p, rg), [] {});
    } else if (chance(50)) {
      accept(fmt::format("{}: write {} value={}", p, rg, pick(0, 3)), [] {});
    } else {
      accept(fmt::format("{}: write {}", p, rg), [] {});
    }
  }

  /// ` prot=...` for an mmap, or nothing for the default rw.
  std::string mmap_prot() {
    if (_o.neighbours) {
      static const char* prots[] = {"", "", "", "", "", " prot=r", " prot=none", " prot=rx", " prot=rwx"};
      return prots[pick(0, 8)];
    }
    return pick(0, 9) < 7 ? "" : (chance(50) ? " prot=r" : " prot=none");
  }

  /// ` noreserve` now and then with --neighbours (VM_NORESERVE keeps VMAs apart), else nothing.
  std::string mmap_noreserve() { return _o.neighbours && chance(15) ? " noreserve" : ""; }

  void mmap(const std::string& p) {
    if (_o.neighbours && !_procs[p].empty() && chance(50)) {
      map_into(p);
      return;
    }
    if (_procs[p].size() >= MAX_PROCESS_REGIONS || _slots >= MAX_SLOTS) return;
    auto name = fmt::format("R{}", _regions++);
    auto pages = pick(1, _o.max_region_pages);
    // Hundreds of pages: with a fork or two, more sharers of one content than
    // max_page_sharing (256), so that stable-node chains form.
    if (_o.ksm_heavy && chance(50)) pages = pick(100, 320);
    // Version 2: PMD-sized regions now and then, and most of them `huge`.
    bool huge = false;
    if (_o.thp) {
      if (chance(35)) pages = chance(50) ? 512 * pick(1, 2) : pick(513, 1100);
      huge = chance(75);
    }
    auto prot = mmap_prot() + mmap_noreserve();
    const bool rw = prot.empty();
    if (huge) prot += " huge";
    // KSM-heavy: mostly private anonymous memory, the only kind KSM merges.
    auto k = _o.mmap_kinds ? mmap_kind(*_o.mmap_kinds) : _o.ksm_heavy ? (chance(85) ? 0 : pick(5, 9)) : pick(0, 9);
    if (k < 5) {
      bool made = accept(fmt::format("{}: mmap {} anon private pages={}{}", p, name, pages, prot), [&] {
        _procs[p][name] = {pages, true, false, false, huge && rw};
        ++_slots;
      });
      // Made mergeable and filled with one value at once, most of the time: a content
      // with hundreds of sharers as soon as ksm runs.
      if (made && _o.ksm_heavy && chance(70)) {
        accept(fmt::format("{}: madvise {} mergeable", p, name), [] {});
        if (chance(70)) accept(fmt::format("{}: write {} value={}", p, name, pick(0, 1)), [] {});
      }
    } else if (k < 7) {
      accept(fmt::format("{}: mmap {} anon shared pages={}{}", p, name, pages, prot), [&] {
        _procs[p][name] = {pages, false, true};
        ++_slots;
      });
    } else {
      const auto& f = any_key(_files);
      auto fpages = _files[f];
      pages = std::min<std::uint64_t>(pages, fpages);
      auto off = pick(0, fpages - pages);
      accept(fmt::format("{}: mmap {} file {} {} pages={} offset={}{}", p, name, f, chance(50) ? "private" : "shared",
                         pages, off, prot),
             [&] {
               _procs[p][name] = {pages, false, false};
               ++_slots;
             });
    }
  }

  /// `mmap R[i:j]` into one of @p's regions: a few pages from anywhere in it to just past
  /// its end, mostly private anonymous memory (which joins its neighbours), else shared
  /// anonymous memory or a file at an offset that may or may not follow on.
  void map_into(const std::string& p) {
    const auto rname = any_key(_procs[p]);
    auto& reg = _procs[p][rname];
    const auto first = pick(0, reg.pages + 2);
    const auto last = first + pick(1, 6);
    auto rg = fmt::format("{}[{}:{}]", rname, first, last);
    auto prot = mmap_prot() + mmap_noreserve();
    auto k = pick(0, 9);
    std::string what = "anon private";
    if (k == 6) {
      what = "anon shared";
    } else if (k >= 7) {
      const auto& f = any_key(_files);
      const auto fpages = _files[f];
      if (last - first <= fpages)
        what = fmt::format("file {} {} offset={}", f, chance(50) ? "private" : "shared",
                           pick(0, fpages - (last - first)));
    }
    accept(fmt::format("{}: mmap {} {}{}", p, rg, what, prot), [&] {
      reg.pages = std::max(reg.pages, last);
      reg.split = true;
      reg.collapsible = false;
    });
  }

  /// A draw from @w on the scale of mmap()'s own pick(0, 9): 0 anon private, 5 anon shared, 7 file.
  std::uint64_t mmap_kind(const mmap_weights& w) {
    auto total = w.anon_private + w.anon_shared + w.file;
    if (total == 0) return 0;
    auto r = pick(0, total - 1);
    return r < w.anon_private ? 0 : r < w.anon_private + w.anon_shared ? 5 : 7;
  }

  void fork(const std::string& p) {
    if (live() >= _o.max_processes) return;
    auto child = fmt::format("P{}", _procs_made++ + 1);
    accept(fmt::format("{}: fork {}", p, child), [&] { _procs[child] = _procs[p]; });
  }

  void spawn(const std::string&) {
    if (live() >= _o.max_processes) return;
    auto name = fmt::format("P{}", _procs_made++ + 1);
    accept(fmt::format("spawn {}", name), [&] { _procs[name] = {}; });
  }

  void exit(const std::string& p) {
    if (live() <= 1) return;
    accept(fmt::format("{}: exit", p), [&] { _procs.erase(p); });
  }

  void munmap(const std::string& p) {
    const auto& rname = any_key(_procs[p]);
    auto rg = range(rname, _procs[p][rname].pages);
    accept(fmt::format("{}: munmap {}", p, rg.text), [&] { note_split(p, rname, rg); });
  }

  void mprotect(const std::string& p) {
    const auto& rname = any_key(_procs[p]);
    static const char* prots[] = {"rw", "r", "none", "rx", "rwx"};
    const char* prot = prots[pick(0, _o.neighbours ? 4 : 2)];  // before the range: the order of the draws is fixed
    auto rg = range(rname, _procs[p][rname].pages);
    accept(fmt::format("{}: mprotect {} {}", p, rg.text, prot), [&] { note_split(p, rname, rg); });
  }

  void mremap(const std::string& p) {
    auto rname = any_key(_procs[p]);
    if (chance(50)) {
      if (_slots < MAX_SLOTS) accept(fmt::format("{}: mremap {} move", p, rname), [&] { ++_slots; });
      return;
    }
    auto pages = pick(1, _o.max_region_pages + 8);
    if (_procs[p][rname].split) return;
    accept(fmt::format("{}: mremap {} pages={}", p, rname, pages), [&] { _procs[p][rname].pages = pages; });
  }

  void madvise(const std::string& p) {
    const auto& rname = any_key(_procs[p]);
    const auto& reg = _procs[p][rname];
    // Version 2: collapse of a whole region that can take it, a third of the time. The
    // kernel refuses (EINVAL) a 2 MiB block with no page mapped in it, so the process
    // writes the whole region first.
    const bool pmd_sizes = !_o.thp_anon || ((*_o.thp_anon >> PMD_ORDER) & 1U) != 0;
    if (_o.thp && _o.collapse && pmd_sizes && reg.collapsible && reg.pages >= 512 && chance(35)) {
      if (accept(fmt::format("{}: write {}", p, rname), [] {}))
        accept(fmt::format("{}: madvise {} collapse", p, rname), [] {});
      return;
    }
    std::vector<const char*> advice = {"dontneed", "dontfork", "dofork", "wipeonfork", "keeponfork"};
    if (_o.pageout) advice.push_back("pageout");
    // Version 2: a hole punched in a shared mapping, which splits a large folio it cuts.
    if (_o.thp) advice.push_back("remove");
    // Flags that only split and merge VMAs or decide recency, and the page advice FREE and COLD.
    static constexpr const char* flag_advice[] = {"dontdump", "dodump", "sequential", "random",
                                                  "normal",   "free",   "cold"};
    if (_o.neighbours)
      for (const char* a : flag_advice) advice.push_back(a);
    if (_o.ksm) {
      advice.push_back("mergeable");
      advice.push_back("mergeable");
      advice.push_back("unmergeable");
    }
    std::string_view what = advice[pick(0, advice.size() - 1)];  // before the range, as in mprotect
    auto rg = range(rname, _procs[p][rname].pages);
    // dontneed, pageout, free, cold and remove act on pages; every other advice is a VMA flag.
    bool flag = what != "dontneed" && what != "pageout" && what != "free" && what != "cold" && what != "remove";
    accept(fmt::format("{}: madvise {} {}", p, rg.text, what), [&] {
      if (flag) note_split(p, rname, rg);
    });
    if (!flag) _procs[p][rname].collapsible = false;  // pages gone or swapped: keep collapse simple
  }

  void mlock(const std::string& p) {
    const auto& rname = any_key(_procs[p]);
    auto rg = range(rname, _procs[p][rname].pages);
    accept(fmt::format("{}: {} {}", p, chance(60) ? "mlock" : "munlock", rg.text), [&] { note_split(p, rname, rg); });
  }

  /// A check breaks no rule, so it is appended without the checker: resolving one costs
  /// time in every process the scenario ever had.
  void check(const std::string&) {
    _text += fmt::format("check c{}\n", _checks++);
    ++_count;
  }

  void shrink(const std::string&) {
    accept("shrink", [] {});
  }

  void clear_refs(const std::string& p) {
    static constexpr const char* types[] = {"", " all", " anon", " file"};
    accept(fmt::format("{}: clear_refs{}", p, types[pick(0, 3)]), [] {});
  }

  void machine_wide(const std::string&) {
    // After a ksm, KSM pages may exist, and the back ends refuse reclaim then.
    if (_o.ksm && chance(_o.ksm_heavy ? 85 : 50)) {
      accept(_o.ksm_heavy && chance(30) ? "ksm prune" : "ksm", [&] { _ksm_ran = true; });
    } else if (_o.reclaim && !_ksm_ran) accept("reclaim", [] {});
  }

  unsigned live() const { return static_cast<unsigned>(_procs.size()); }

  random_options _o;
  std::vector<kind> _profile_kinds;  // the statement mix of _o.weights
  std::mt19937_64 _rng;
  statement_checker _checker;
  bool _ksm_ran = false;
  std::uint64_t _slots = 0;  // slots used: once all are, mmap and mremap move can only fail
  std::string _text;
  unsigned _count = 0, _regions = 0, _checks = 0, _procs_made = 0;
  std::map<std::string, std::map<std::string, region_info>> _procs;
  std::map<std::string, std::uint64_t> _files;
};

}  // namespace

std::string generate_random(const random_options& opts) {
  random_options o = opts;
  if (o.thp_anon || o.thp_shmem) o.thp = true;  // sizes given are sizes of a `thp` line
  return generator(o).run();
}

}  // namespace rmapkit::scenario
