// `rmapkit show --format dot` and `walk --format dot`: the state as a Graphviz digraph,
// drawn top to bottom the way the kernel's rmap is usually drawn (each mm's VMAs in a row
// with their AVCs under them, the anon_vma forest below, the folios at the bottom
// pointing up at folio->mapping). A walk is the same picture of its `before` state with
// the walk's arrows drawn over it. Every node and edge comes from the state's vectors in
// their order, so the same state gives the same bytes.
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "markup.h"
#include "rmapkit/view/dot.h"

namespace rmapkit::view {

namespace {

using out_t = fmt::memory_buffer;

// How many folios are drawn for one object they point at (one anon_vma, stable node or
// file) and in all; PTE rows in one folio; rmap_items under one stable node; rb_root or
// i_mmap rows in one box; design objects of one type. The rest are counted in a "+N
// more" row or box, so that a large state keeps to its structure. A walk's picture
// numbers at most a few steps on one arrow, draws a few PTEs that miss, and lists the
// first and the last steps of a long walk in its legend.
constexpr std::size_t max_steps_shown = 6, max_misses = 4, legend_head = 40, legend_tail = 10;
constexpr std::size_t max_folios = 4, max_folios_total = 24, max_ptes = 4, max_items = 6, max_rows = 8,
                      max_objects = 12;

// Fills by kind of object, and the walk's colours: its path, a PTE that maps the frame,
// a miss or a skip.
constexpr std::string_view fill_vma = "#fff4c2", fill_avc = "#e6e6e6", fill_anon_vma = "#d6e6ff",
                           fill_folio = "#ffe0c2", fill_file = "#d5f2d5", fill_ksm = "#ecdcf8", fill_object = "#f2f2f2",
                           fill_more = "#ffffff";
constexpr std::string_view colour_path = "#1f5fbf", colour_hit = "#1a8f3c", colour_miss = "#c8281e";
constexpr std::string_view row_hit = "#bfe8c8", row_miss = "#f6c4c0";

/// Text for an HTML-like label.
std::string esc(std::string_view s) { return detail::escape_html(s); }

/// A quoted DOT id.
std::string q(std::string_view id) {
  std::string out = "\"";
  for (char c : id) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

std::string av_id(std::uint64_t id) { return fmt::format("av{}", id); }
std::string avc_node(const std::string& vma, std::uint64_t av) { return fmt::format("avc:{}:av{}", vma, av); }
std::string file_node(const std::string& name) { return "file:" + name; }
std::string stable_node_id(std::uint64_t id) { return fmt::format("s{}", id); }
std::string rmap_item_node(const std::string& proc, vaddr_t a) {
  return fmt::format("rmap_item:{}:{:#x}", proc, a.value);
}
std::string folio_node(std::uint64_t id) { return fmt::format("frame{}", id); }
std::string object_node(const std::string& id) { return "obj:" + id; }

/// One row of a label: already escaped HTML, with an optional port and background.
struct row {
  std::string html;
  std::string port;
  std::string bg;
};

/// A box: a bold title over left-aligned rows, in a filled box whose border the walk
/// colours. One row a line, so that a diff of two pictures reads like a diff of the text.
std::string box(std::string_view title, const std::vector<row>& rows) {
  std::string s = R"(<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">)";
  s += fmt::format("<TR><TD><B>{}</B></TD></TR>", title);
  for (const auto& r : rows) {
    s += "\n      <TR><TD ALIGN=\"LEFT\"";
    if (!r.port.empty()) s += fmt::format(" PORT=\"{}\"", r.port);
    if (!r.bg.empty()) s += fmt::format(" BGCOLOR=\"{}\"", r.bg);
    s += ">" + r.html + "</TD></TR>";
  }
  return s + (rows.empty() ? "</TABLE>>" : "\n    </TABLE>>");
}

/// One end of an edge: a node, or a row of it.
struct end {
  std::string node, port;
  [[nodiscard]] std::string dot() const { return port.empty() ? q(node) : q(node) + ":" + port; }
  [[nodiscard]] bool empty() const { return node.empty(); }
  bool operator==(const end&) const = default;
};

/// What a walk draws over the state.
struct overlay {
  std::map<std::string, std::string> node_colour;  // node id -> colour
  std::map<std::string, std::string> row_colour;   // "node:port" -> row background
  struct arrow {
    end from, to;
    std::string colour, style;
    std::vector<std::size_t> steps;
  };
  std::vector<arrow> arrows;
  std::vector<std::pair<std::string, std::string>> extra_nodes;  // node id -> label (PTEs off the picture)
  std::map<std::string, std::vector<std::size_t>> node_steps;    // steps that stay on a node (start, lock, query)

  /// Hit beats miss beats path: a VMA where a PTE was found stays green.
  void mark(const std::string& node, std::string_view colour) {
    auto [it, fresh] = node_colour.emplace(node, colour);
    if (fresh || it->second == colour_hit) return;
    if (colour == colour_hit || (colour == colour_miss && it->second == colour_path)) it->second = colour;
  }
  void add(const end& from, const end& to, std::string_view colour, std::size_t step, std::string_view style = "") {
    if (from.empty() || to.empty() || from == to) return;
    for (auto& a : arrows)
      if (a.from == from && a.to == to && a.colour == colour && a.style == style) {
        a.steps.push_back(step);
        return;
      }
    arrows.push_back({from, to, std::string(colour), std::string(style), {step}});
  }
};

class painter {
 public:
  painter(const state& st, const overlay* ov) : _st(st), _ov(ov) { index(); }

  void draw(std::string_view title) {
    auto it = std::back_inserter(_out);
    fmt::format_to(it, "digraph rmap {{\n");
    fmt::format_to(it,
                   "  graph [rankdir={}, newrank=true, nodesep=0.3, ranksep=0.5, fontname=\"Helvetica\", "
                   "fontsize=12, labelloc=t, labeljust=l, label=<{}>];\n",
                   bottom_up() ? "BT" : "TB", title);
    fmt::format_to(it,
                   "  node [shape=box, style=\"filled,rounded\", fontname=\"Helvetica\", fontsize=10, margin=0.06];\n");
    fmt::format_to(it, "  edge [fontname=\"Helvetica\", fontsize=9, arrowsize=0.7, color=\"#555555\"];\n");
    mms();
    anon_vmas();
    files();
    ksm();
    folios();
    design_objects();
  }
  /// A design's own objects lead from the page up to the VMAs: drawn bottom up, the mms
  /// stay on top as in the linux-6 picture.
  [[nodiscard]] bool bottom_up() const { return !_st.design_objects.empty(); }
  [[nodiscard]] std::string str() const { return fmt::to_string(_out) + "}\n"; }

  /// Where the PTE of @vma at @addr is drawn: a row of the folio that it maps, or its
  /// "+N more PTEs" row; none when no folio drawn has it.
  [[nodiscard]] end pte_end(std::string_view vma, std::uint64_t addr) const {
    return find_pte([&](const pte_ref& p) { return p.vma == vma && p.addr.value == addr; });
  }
  [[nodiscard]] end pte_end_of(std::string_view process, std::uint64_t addr) const {
    return find_pte([&](const pte_ref& p) { return p.process == process && p.addr.value == addr; });
  }
  [[nodiscard]] bool has_node(const std::string& id) const { return _nodes.count(id) != 0; }

  /// The walk's arrows over the picture, and the legend at the bottom.
  void draw_overlay(const overlay& ov, const std::string& legend) {
    auto it = std::back_inserter(_out);
    fmt::format_to(it, "  {{ rank={}; \"legend\" [label={}, fillcolor=\"#ffffff\", style=\"rounded\"]; }}\n",
                   bottom_up() ? "source" : "sink", legend);
    for (const auto& [id, label] : ov.extra_nodes)
      fmt::format_to(it, "  {} [label=<{}>, fillcolor=\"{}\", color=\"{}\", penwidth=2];\n", q(id), label, row_miss,
                     colour_miss);
    for (const auto& a : ov.arrows) {
      std::vector<std::string> nums;
      // A long walk through one arrow (a KSM page mapped hundreds of times) keeps its
      // first steps and says how many.
      for (std::size_t i = 0; i < a.steps.size() && i < max_steps_shown; ++i)
        nums.push_back(std::to_string(a.steps[i]));
      if (a.steps.size() > max_steps_shown) nums.push_back(fmt::format("... ({} steps)", a.steps.size()));
      fmt::format_to(it,
                     "  {} -> {} [color=\"{}\", fontcolor=\"{}\", penwidth=2.2, constraint=false, label=\" {} \"{}];\n",
                     a.from.dot(), a.to.dot(), a.colour, a.colour, fmt::join(nums, ","),
                     a.style.empty() ? std::string() : ", style=" + a.style);
    }
  }

 private:
  // The ids every picture can point at, to leave out arrows to what is not drawn.
  void index() {
    for (const auto& m : _st.mms)
      for (const auto& v : m.vmas) _nodes.insert(v.id);
    for (const auto& a : _st.anon_vmas) _nodes.insert(av_id(a.id));
    for (const auto& f : _st.files) _nodes.insert(file_node(f.name));
    for (const auto& n : _st.ksm.stable) _nodes.insert(stable_node_id(n.id));
    std::map<std::uint64_t, std::size_t> per_stable;
    for (const auto& r : _st.ksm.rmap_items)
      if (!r.stable_node || per_stable[*r.stable_node]++ < max_items)
        _nodes.insert(rmap_item_node(r.process, r.address));
    for (const auto& [sn, count] : per_stable)
      if (count > max_items) _nodes.insert("more:" + stable_node_id(sn));
    std::map<std::string, std::size_t> per_target;
    for (const auto& f : _st.folios)
      if (per_target[target_of(f)]++ < max_folios && _drawn_folios.size() < max_folios_total) {
        _drawn_folios.insert(f.id);
        _nodes.insert(folio_node(f.id));
      }
    std::map<std::string, std::size_t> per_type;
    for (const auto& o : _st.design_objects)
      if (per_type[o.type]++ < max_objects) _nodes.insert(object_node(o.id));
  }

  template <typename Match>
  [[nodiscard]] end find_pte(const Match& match) const {
    for (const auto& f : _st.folios)
      if (_drawn_folios.count(f.id))
        for (std::size_t i = 0; i < f.mapped_by.size(); ++i)
          if (match(f.mapped_by[i]))
            return {folio_node(f.id), i < max_ptes ? fmt::format("pte{}", i) : std::string("more")};
    return {};
  }

  /// The node a folio's mapping points at ("" when it points at none drawn).
  [[nodiscard]] std::string target_of(const folio_view& f) const {
    if (f.anon_vma) return av_id(*f.anon_vma);
    if (f.stable_node) return stable_node_id(*f.stable_node);
    if (!f.file.empty()) return file_node(f.file);
    return "";
  }

  /// Node attributes: fill, and the walk's border when it went there.
  std::string attrs(const std::string& id, std::string_view fill) const {
    std::string a = fmt::format("fillcolor=\"{}\"", fill);
    if (_ov)
      if (auto it = _ov->node_colour.find(id); it != _ov->node_colour.end()) {
        a += fmt::format(", color=\"{}\", penwidth=3", it->second);
        if (auto st = _ov->node_steps.find(id); st != _ov->node_steps.end())
          a += fmt::format(", xlabel=<<FONT COLOR=\"{}\">{}</FONT>>", colour_path, fmt::join(st->second, ","));
      }
    return a;
  }
  std::string row_bg(const std::string& node, const std::string& port) const {
    if (!_ov) return "";
    auto it = _ov->row_colour.find(node + ":" + port);
    return it == _ov->row_colour.end() ? std::string() : it->second;
  }

  void node(const std::string& id, const std::string& label, std::string_view fill, std::string_view indent = "  ") {
    fmt::format_to(std::back_inserter(_out), "{}{} [label={}, {}];\n", indent, q(id), label, attrs(id, fill));
  }
  void edge(const std::string& from, const std::string& to, std::string_view extra) {
    fmt::format_to(std::back_inserter(_out), "  {} -> {} [{}];\n", q(from), q(to), extra);
  }
  /// An anon_vma the picture does not hold (a filter left it out), so the chain stays whole.
  void stub(const std::string& id) {
    if (_nodes.count(id) || !_stubs.insert(id).second) return;
    fmt::format_to(std::back_inserter(_out),
                   "  {} [label=\"{}\", style=\"dashed,rounded\", color=\"#999999\", fontcolor=\"#777777\"];\n", q(id),
                   id.starts_with("file:") ? id.substr(5) : id);
  }

  // Each mm a cluster: its VMAs in a row, the AVCs of each VMA's anon_vma_chain in a row
  // under them.
  void mms() {
    auto it = std::back_inserter(_out);
    std::size_t n = 0;
    for (const auto& m : _st.mms) {
      fmt::format_to(
          it,
          "  subgraph cluster_mm{} {{\n    label=<<B>mm {}</B>>; style=\"rounded\"; color=\"#888888\"; labelloc={};\n",
          n++, esc(m.process), bottom_up() ? "b" : "t");
      fmt::format_to(it, "    {{ rank=same;");
      for (const auto& v : m.vmas) fmt::format_to(it, " {};", q(v.id));
      fmt::format_to(it, " }}\n");
      for (const auto& v : m.vmas) node(v.id, vma_label(v), fill_vma, "    ");
      for (const auto& v : m.vmas)
        for (auto av : v.anon_vma_chain) node(avc_node(v.id, av), box("anon_vma_chain", {}), fill_avc, "    ");
      fmt::format_to(it, "  }}\n");
      for (const auto& v : m.vmas) chain(v);
    }
  }

  std::string vma_label(const vma_view& v) const {
    std::vector<row> rows{{fmt::format("vm_start = {:#x}", v.vm_start.value), {}, {}},
                          {fmt::format("vm_end = {:#x}", v.vm_end.value), {}, {}},
                          {fmt::format("vm_pgoff = {:#x}", v.vm_pgoff), {}, {}},
                          {fmt::format("{} {}[{}:{}]", v.perms, esc(v.region), v.first, v.end), {}, {}}};
    if (!v.file.empty()) rows.push_back({"vm_file = " + esc(v.file), {}, {}});
    if (v.anon_vma) rows.push_back({"anon_vma = " + av_id(*v.anon_vma), {}, {}});
    return box(fmt::format("vm_area_struct {}", v.id), rows);
  }

  // vma -> first AVC -> next AVC (same_vma, list order), each AVC -> its anon_vma.
  void chain(const vma_view& v) {
    std::string prev = v.id;
    for (auto av : v.anon_vma_chain) {
      const std::string avc = avc_node(v.id, av);
      edge(prev, avc, prev == v.id ? "label=\"anon_vma_chain\"" : "label=\"same_vma\"");
      prev = avc;
    }
    for (auto av : v.anon_vma_chain) {
      stub(av_id(av));
      edge(avc_node(v.id, av), av_id(av), "label=\"anon_vma\"");
    }
  }

  // The forest: each anon_vma under its parent, with a root arrow when the root is
  // another; its interval tree's AVCs as rows.
  void anon_vmas() {
    for (const auto& a : _st.anon_vmas) {
      std::vector<row> rows{
          {fmt::format("root = {} &#183; parent = {}", av_id(a.root), av_id(a.parent)), {}, {}},
          {fmt::format("refcount = {}", a.refcount), {}, {}},
          {fmt::format("num_children = {} &#183; num_active_vmas = {}", a.num_children, a.num_active_vmas), {}, {}}};
      if (a.ksm_refs) rows.push_back({fmt::format("KSM rmap_items = {}", a.ksm_refs), {}, {}});
      rows.push_back({"<I>rb_root</I>:", {}, {}});
      for (std::size_t i = 0; i < a.rb_root.size() && i < max_rows; ++i)
        rows.push_back(
            {fmt::format("  [{:#x}, {:#x}] &#8594; {}", a.rb_root[i].first, a.rb_root[i].last, a.rb_root[i].vma),
             {},
             {}});
      more_rows(rows, a.rb_root.size(), max_rows, "AVCs");
      node(av_id(a.id), box(fmt::format("anon_vma {}", av_id(a.id)), rows), fill_anon_vma);
    }
    for (const auto& a : _st.anon_vmas) {
      // Drawn parent -> child with the arrowhead at the parent: the forest hangs down.
      if (a.parent && a.parent != a.id) {
        stub(av_id(a.parent));
        edge(av_id(a.parent), av_id(a.id), "dir=back, label=\"parent\"");
      }
      if (a.root && a.root != a.id && a.root != a.parent) {
        stub(av_id(a.root));
        edge(av_id(a.root), av_id(a.id), "dir=back, style=dashed, label=\"root\"");
      }
    }
  }

  static void more_rows(std::vector<row>& rows, std::size_t have, std::size_t shown, std::string_view what) {
    if (have > shown) rows.push_back({fmt::format("<I>+{} more {}</I>", have - shown, what), {}, {}});
  }

  // Each address_space with its i_mmap rows; the VMAs it holds point down at it.
  void files() {
    for (const auto& f : _st.files) {
      std::vector<row> rows{{f.anon_shared ? "shmem (MAP_SHARED|MAP_ANONYMOUS)" : (f.shmem ? "shmem" : "file"), {}, {}},
                            {fmt::format("pages = {} &#183; nrpages = {}", f.pages, f.i_pages.size()), {}, {}},
                            {"<I>i_mmap</I>:", {}, {}}};
      for (std::size_t i = 0; i < f.i_mmap.size() && i < max_rows; ++i)
        rows.push_back(
            {fmt::format("  [{:#x}, {:#x}] &#8594; {}", f.i_mmap[i].first, f.i_mmap[i].last, f.i_mmap[i].vma), {}, {}});
      more_rows(rows, f.i_mmap.size(), max_rows, "VMAs");
      if (!f.swapped.empty()) rows.push_back({fmt::format("swapped = {}", f.swapped.size()), {}, {}});
      node(file_node(f.name), box("address_space " + esc(f.name), rows), fill_file);
      for (const auto& v : f.i_mmap)
        if (_nodes.count(v.vma)) edge(v.vma, file_node(f.name), "dir=back, style=dashed, label=\"i_mmap\"");
    }
  }

  // KSM: each stable node with the rmap_items on its hlist, each rmap_item pointing at
  // the anon_vma it was merged from; rmap_items on no stable node apart.
  void ksm() {
    if (_st.ksm.empty()) return;
    auto it = std::back_inserter(_out);
    fmt::format_to(it,
                   "  subgraph cluster_ksm {{\n    label=<<B>KSM</B> mm_slots: {}>; style=\"rounded\"; "
                   "color=\"#888888\"; labelloc=t;\n",
                   esc(fmt::format("{}", fmt::join(_st.ksm.mm_slots, " "))));
    for (const auto& n : _st.ksm.stable) {
      std::vector<row> rows{{n.frame ? fmt::format("kpfn = frame {}", n.frame) : "kpfn stale: page freed", {}, {}}};
      if (n.chain) rows.push_back({fmt::format("dup in chain {}", n.chain), {}, {}});
      rows.push_back({fmt::format("hlist: {} rmap_items", n.hlist.size()), {}, {}});
      node(stable_node_id(n.id), box(fmt::format("stable_node s{}", n.id), rows), fill_ksm, "    ");
    }
    std::map<std::string, std::size_t> shown;  // stable node -> rmap_items drawn
    for (const auto& r : _st.ksm.rmap_items) {
      const std::string sn = r.stable_node ? stable_node_id(*r.stable_node) : std::string();
      if (!sn.empty() && shown[sn]++ >= max_items) continue;
      std::vector<row> rows{{fmt::format("address = {:#x}", r.address.value), {}, {}}};
      if (r.unstable) rows.push_back({"in the unstable tree", {}, {}});
      const std::string id = rmap_item_node(r.process, r.address);
      node(id, box("rmap_item " + esc(r.process), rows), fill_ksm, "    ");
    }
    for (const auto& [sn, count] : shown)
      if (count > max_items)
        node("more:" + sn, box(fmt::format("+{} more rmap_items", count - max_items), {}), fill_more, "    ");
    fmt::format_to(it, "  }}\n");
    for (const auto& [sn, count] : shown)
      if (count > max_items) edge(sn, "more:" + sn, "label=\"hlist\"");
    std::map<std::string, std::size_t> drawn;
    for (const auto& r : _st.ksm.rmap_items) {
      const std::string sn = r.stable_node ? stable_node_id(*r.stable_node) : std::string();
      if (!sn.empty() && drawn[sn]++ >= max_items) continue;
      const std::string id = rmap_item_node(r.process, r.address);
      if (!sn.empty()) edge(sn, id, "label=\"hlist\"");
      if (r.anon_vma) {
        stub(av_id(*r.anon_vma));
        edge(id, av_id(*r.anon_vma), "style=dashed, constraint=false, label=\"anon_vma\"");
      }
    }
  }

  // The folios at the bottom, each pointing up at what folio->mapping names, with the
  // PTEs that map it as rows.
  void folios() {
    std::map<std::string, std::vector<std::uint64_t>> left_out;  // target -> frames not drawn
    std::vector<std::string> order;
    for (const auto& f : _st.folios) {
      const std::string target = target_of(f);
      if (!_drawn_folios.count(f.id)) {
        if (left_out[target].empty()) order.push_back(target);
        left_out[target].push_back(f.id);
        continue;
      }
      const std::string id = folio_node(f.id);
      node(id, box(fmt::format("folio: frame {}", f.id), folio_rows(f, id)), fill_folio);
      if (target.empty()) continue;
      stub(target);
      edge(target, id, "dir=back, label=\"mapping\"");
    }
    // One row at the bottom, in frame order.
    auto it = std::back_inserter(_out);
    fmt::format_to(it, "  {{ rank=same;");
    for (const auto& f : _st.folios)
      if (_drawn_folios.count(f.id)) fmt::format_to(it, " {};", q(folio_node(f.id)));
    fmt::format_to(it, " }}\n");
    std::string prev;
    for (const auto& f : _st.folios) {
      if (!_drawn_folios.count(f.id)) continue;
      if (!prev.empty()) edge(prev, folio_node(f.id), "style=invis");
      prev = folio_node(f.id);
    }
    for (const auto& target : order) {
      const auto& ids = left_out[target];
      const std::string id = "more:" + (target.empty() ? std::string("unmapped") : target);
      node(id,
           box(fmt::format("+{} more folios", ids.size()),
               {{fmt::format("frame {} &#8230; frame {}", ids.front(), ids.back()), {}, {}}}),
           fill_more);
      if (!target.empty()) stub(target);
      if (!target.empty()) edge(target, id, "dir=back, style=dotted, label=\"mapping\"");
    }
  }

  std::vector<row> folio_rows(const folio_view& f, const std::string& id) const {
    std::string mapping = f.mapping;
    if (f.anon_vma) mapping += " " + av_id(*f.anon_vma);
    if (f.stable_node) mapping += " " + stable_node_id(*f.stable_node);
    if (!f.file.empty()) mapping += " " + esc(f.file);
    std::vector<row> rows{{"mapping = " + mapping, {}, {}},
                          {fmt::format("index = {:#x}", f.index), {}, {}},
                          {fmt::format("mapcount = {} &#183; refcount = {}", f.mapcount, f.refcount), {}, {}}};
    if (f.swap) rows.push_back({fmt::format("swap = {}", *f.swap), {}, {}});
    for (std::size_t i = 0; i < f.mapped_by.size() && i < max_ptes; ++i) {
      const auto& p = f.mapped_by[i];
      std::string port = fmt::format("pte{}", i);
      rows.push_back({fmt::format("pte {} {}[{}] {:#x} {} {}{}{}", esc(p.process), esc(p.region), p.index, p.addr.value,
                                  p.vma, p.write ? "rw" : "ro", p.young ? " young" : "", p.dirty ? " dirty" : ""),
                      port, row_bg(id, port)});
    }
    if (f.mapped_by.size() > max_ptes)
      rows.push_back({fmt::format("<I>+{} more PTEs</I>", f.mapped_by.size() - max_ptes), "more", row_bg(id, "more")});
    return rows;
  }

  // A design's own objects, each a box of its fields, and its links as arrows to the
  // VMAs, folios, PTEs (a folio's row) and objects they name.
  void design_objects() {
    if (_st.design_objects.empty()) return;
    std::map<std::string, std::size_t> per_type;
    std::vector<std::string> types;
    for (const auto& o : _st.design_objects) {
      if (per_type[o.type]++ == 0) types.push_back(o.type);
      if (per_type[o.type] > max_objects) continue;
      std::vector<row> rows;
      for (const auto& [k, v] : o.fields) rows.push_back({esc(k) + " = " + esc(v), {}, {}});
      node(object_node(o.id), box(esc(o.id), rows), fill_object);
    }
    for (const auto& t : types)
      if (per_type[t] > max_objects)
        node("more:" + t, box(fmt::format("+{} more {}", per_type[t] - max_objects, esc(t)), {}), fill_more);
    for (const auto& o : _st.design_objects) {
      if (!_nodes.count(object_node(o.id))) continue;
      for (const auto& [field, target] : o.links) {
        const end to = link_end(target);
        if (to.empty()) continue;
        // A link to a folio is drawn from the folio with the arrowhead at it: the
        // picture of a design reads bottom up (rankdir=BT), from the page to the VMAs.
        if (to.node.starts_with("frame"))
          fmt::format_to(std::back_inserter(_out), "  {} -> {} [dir=back, label=\"{}\"];\n", to.dot(),
                         q(object_node(o.id)), esc(field));
        else
          fmt::format_to(std::back_inserter(_out), "  {} -> {} [label=\"{}\"];\n", q(object_node(o.id)), to.dot(),
                         esc(field));
      }
    }
  }

  /// Where a design object's link points: a VMA, a folio, a PTE row, another object.
  end link_end(const std::string& target) {
    if (target.starts_with("frame ")) {
      const std::string id = "frame" + target.substr(6);
      return _nodes.count(id) ? end{id, {}} : end{};
    }
    if (target.starts_with("pte(")) {
      // "pte(P 0x...)"
      const auto sp = target.find(' ');
      const std::string proc = target.substr(4, sp - 4);
      const std::uint64_t addr = std::stoull(target.substr(sp + 1, target.size() - sp - 2), nullptr, 16);
      if (end e = pte_end_of(proc, addr); !e.empty()) return e;
      const std::string id = "pte:" + target;
      if (_nodes.insert(id).second)
        fmt::format_to(std::back_inserter(_out), "  {} [label=<{}>, fillcolor=\"{}\"];\n", q(id), esc(target),
                       fill_more);
      return {id, {}};
    }
    if (_nodes.count(target)) return {target, {}};  // vmaN
    if (_nodes.count(object_node(target))) return {object_node(target), {}};
    return {};
  }

  const state& _st;
  const overlay* _ov;
  out_t _out;
  std::set<std::string> _nodes, _stubs;
  std::set<std::uint64_t> _drawn_folios;
};

std::string title_of(const std::string& file, std::size_t position, int line, const std::string& statement,
                     const std::string& design) {
  if (position == 0) return esc(fmt::format("{}: before the first statement; design {}", file, design));
  return esc(fmt::format("{}: after statement {} (line {}: {}); design {}", file, position, line, statement, design));
}

std::string filter_words(const filter& f) {
  std::vector<std::string> out;
  if (f.pid) out.push_back("--pid " + *f.pid);
  if (f.frame) out.push_back(fmt::format("--frame {}", *f.frame));
  if (f.anon_vma) out.push_back(fmt::format("--anon-vma {}", *f.anon_vma));
  if (f.file) out.push_back("--file " + *f.file);
  return out.empty() ? std::string() : esc(fmt::format("only: {}", fmt::join(out, " ")));
}

/// The node a step's object names: "anon_vma av1" -> av1, "stable_node s2" -> s2,
/// "address_space F" -> file:F, a design object's id -> obj:ID.
std::string step_node(const painter& p, const std::string& object) {
  if (object.starts_with("anon_vma av")) return object.substr(9);
  if (object.starts_with("stable_node ")) return object.substr(12);
  if (object.starts_with("address_space ")) return file_node(object.substr(14));
  if (p.has_node(object_node(object))) return object_node(object);
  return "";
}

/// The process and address a `source` step names: "...: P at 0x1000".
std::pair<std::string, std::uint64_t> source_of(const walk_step_view& s) {
  const auto at = s.text.rfind(" at 0x");
  const auto colon = s.text.rfind(": ", at);
  if (at == std::string::npos || colon == std::string::npos || !s.addr) return {"", 0};
  return {s.text.substr(colon + 2, at - colon - 2), *s.addr};
}

/// The walk's path over @p's picture of its `before` state.
overlay walk_overlay(const walk_view& w, const painter& p) {
  overlay ov;
  end origin;                  // the object the walk started at
  end at;                      // where the walk is: the object it started from, or the one it queries
  end from;                    // where the current entry comes from: the queried object, or a source
  end entry;                   // the entry being read
  std::size_t entry_step = 0;  // an entry that is its VMA, drawn with the candidate (0: none)
  std::string queried;         // the anon_vma or file being queried (for linux-6 AVCs)
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const auto& s = w.steps[i];
    const std::size_t n = i + 1;
    if (s.kind == "start" || s.kind == "lock" || s.kind == "query") {
      const std::string node = step_node(p, s.object);
      if (node.empty()) continue;
      ov.mark(node, colour_path);
      if (s.kind != "start" && at != end{node, {}}) ov.add(at, {node, {}}, colour_path, n);
      else ov.node_steps[node].push_back(n);
      if (s.kind == "start") at = origin = {node, {}};
      if (s.kind == "query") {
        queried = node;
        from = {node, {}};
      }
    } else if (s.kind == "source") {
      const auto [proc, addr] = source_of(s);
      // A KSM rmap_item (or the stable node's "+N more"), or a PTE (pte-chain, LegoOS).
      end src = p.pte_end_of(proc, addr);
      if (p.has_node(rmap_item_node(proc, vaddr_t{addr}))) src = {rmap_item_node(proc, vaddr_t{addr}), {}};
      else if (p.has_node("more:" + origin.node)) src = {"more:" + origin.node, {}};
      if (src.empty()) continue;
      if (src.port.empty()) ov.mark(src.node, colour_path);
      else ov.row_colour.emplace(src.node + ":" + src.port, row_hit);
      ov.add(origin, src, colour_path, n);  // each source comes from the object the walk started at
      from = src;
      at = src.port.empty() ? src : at;
    } else if (s.kind == "entry") {
      std::string node = step_node(p, s.object);
      if (node.empty() && queried.starts_with("av") && !s.vma.empty())
        node = avc_node(s.vma, std::stoull(queried.substr(2)));
      if (node.empty() || node == s.vma) {
        // The entry is the VMA itself (i_mmap, 2.6.7's list): its arrow is the
        // candidate's or the skip's, coloured as that step turns out.
        entry_step = n;
        continue;
      }
      ov.mark(node, colour_path);
      entry = {node, {}};
      ov.add(from, entry, colour_path, n);
    } else if (s.kind == "candidate" || s.kind == "skip") {
      const bool skip = s.kind == "skip";
      const std::string_view colour = skip ? colour_miss : colour_path;
      const std::string_view style = skip ? "dashed" : "";
      ov.mark(s.vma, colour);
      const end src = entry.empty() ? from : entry;
      if (entry_step) ov.add(src, {s.vma, {}}, colour, entry_step, style);
      ov.add(src, {s.vma, {}}, colour, n, style);
      entry = {};
      entry_step = 0;
    } else if (s.kind == "pte" && s.addr) {
      const bool hit = s.ok.value_or(false);
      end pte = p.pte_end(s.vma, *s.addr);
      if (pte.empty()) {
        // A PTE that does not map the frame: a box of its own, the first few of them.
        pte = {fmt::format("pte:{}:{:#x}", s.vma, *s.addr), {}};
        const bool known = std::any_of(ov.extra_nodes.begin(), ov.extra_nodes.end(),
                                       [&](const auto& e) { return e.first == pte.node; });
        if (!known && ov.extra_nodes.size() >= max_misses) {
          pte = {"pte:more", {}};
          if (ov.extra_nodes.size() == max_misses) ov.extra_nodes.emplace_back(pte.node, "other PTEs: not this frame");
        } else if (!known) {
          ov.extra_nodes.emplace_back(pte.node, esc(fmt::format("PTE {} {:#x}: not this frame", s.vma, *s.addr)));
        }
      } else {
        ov.row_colour[pte.node + ":" + pte.port] = hit ? row_hit : row_miss;
      }
      ov.mark(s.vma, hit ? colour_hit : colour_miss);
      ov.add({s.vma, {}}, pte, hit ? colour_hit : colour_miss, n);
    }
  }
  return ov;
}

/// The legend: the steps, numbered as the arrows are, the result and the counts.
std::string legend(const walk_view& w) {
  std::vector<row> rows;
  for (const auto& p : w.prelude) rows.push_back({esc(p), {}, {}});
  const std::size_t n = w.steps.size();
  for (std::size_t i = 0; i < n; ++i) {
    // A walk of hundreds of steps keeps its first and last ones; the text has them all.
    if (n > legend_head + legend_tail && i >= legend_head && i < n - legend_tail) {
      if (i == legend_head)
        rows.push_back({fmt::format("<I>&#8230; steps {} to {} left out (rmapkit walk prints every step)</I>", i + 1,
                                    n - legend_tail),
                        {},
                        {}});
      continue;
    }
    const auto& s = w.steps[i];
    std::string colour;
    if (s.kind == "skip" || (s.ok && !*s.ok)) colour = std::string(colour_miss);
    else if (s.kind == "pte" && s.ok && *s.ok) colour = std::string(colour_hit);
    std::string text = fmt::format("{}. {}", i + 1, esc(s.text));
    if (!colour.empty()) text = fmt::format("<FONT COLOR=\"{}\">{}</FONT>", colour, text);
    rows.push_back({text, {}, {}});
  }
  rows.push_back({"result: " + esc(w.result), {}, {}});
  rows.push_back({fmt::format("counts: walks={} entries={} vmas_visited={} ptes_examined={} misses={}", w.counts.walks,
                              w.counts.entries, w.counts.vmas_visited, w.counts.ptes_examined, w.counts.misses),
                  {},
                  {}});
  rows.push_back({fmt::format("<FONT COLOR=\"{}\">blue: the walk's path</FONT> &#183; <FONT COLOR=\"{}\">green: a PTE "
                              "that maps the frame</FONT> &#183; <FONT COLOR=\"{}\">red: a miss, a skip, a stop</FONT>",
                              colour_path, colour_hit, colour_miss),
                  {},
                  {}});
  return box(fmt::format("walk frame {} --op {}", w.frame, to_string(w.op)), rows);
}

}  // namespace

std::string format_dot(const state& st) {
  std::string title = title_of(st.file, st.position, st.line, st.statement, st.design);
  if (std::string f = filter_words(st.filter); !f.empty()) title += "<BR ALIGN=\"LEFT\"/>" + f;
  title += "<BR ALIGN=\"LEFT\"/>";
  painter p(st, nullptr);
  p.draw(title);
  return p.str();
}

std::string format_dot(const walk_view& w) {
  const std::string title = title_of(w.file, w.position, w.line, w.statement, w.design) +
                            fmt::format("<BR ALIGN=\"LEFT\"/>walk frame {} --op {}<BR ALIGN=\"LEFT\"/>", w.frame,
                                        to_string(w.op));
  const painter probe(w.before, nullptr);
  const overlay ov = walk_overlay(w, probe);
  painter p(w.before, &ov);
  p.draw(title);
  p.draw_overlay(ov, legend(w));
  return p.str();
}

}  // namespace rmapkit::view
