// render_html(): runs a scenario in a session, one statement at a time, and after each
// statement stores what the page shows there: the state's picture, the frames with their
// walks, the reports. The page's script and style (view/html/page.js, page.css) are
// embedded at build time; the data goes in as one JSON document, gzipped and base64'd.
//
// Size: most statements change a few frames and no structure, and most walks are the
// same from one statement to the next, so pictures, frame tables and walks are stored
// once each and the moments index them; below them, the lines of pictures and the steps
// of walks are stored once each too; gzip then takes the repetition left. The picture
// leaves out the folios, so Graphviz draws a new one only when the structures change
// (docs/html-page.md has the sizes).
#include "rmapkit/view/html.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "html_assets.h"  // generated: page_js, page_css (view/CMakeLists.txt)
#include "markup.h"
#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/model/session.h"
#include "rmapkit/view/dot.h"
#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace rmapkit::view {

namespace {

using nlohmann::json;

using detail::escape_html;

// The picture of a moment: the state drawn by Graphviz (view/dot.h) above the state in
// words. picture_source() says what two moments must share to share a picture, and
// draw() turns a new source into an HTML fragment, once. The titles (which statement)
// are left out: the page says that itself, and equal states then give equal pictures.

/// The DOT of @st with an empty graph label (its title line names the statement).
std::string untitled_dot(const state& st) {
  state structure = st;
  structure.folios.clear();
  std::string dot = format_dot(structure);
  const auto graph = dot.find("\n  graph [");
  const auto eol = graph == std::string::npos ? graph : dot.find('\n', graph + 1);
  const auto label = graph == std::string::npos ? graph : dot.rfind("label=<", eol);
  if (label != std::string::npos && label > graph) dot.replace(label, eol - label, "label=<>];");
  return dot;
}

std::string untitled_text(const state& st) {
  std::string text = format_text(st);
  if (auto nl = text.find('\n'); text.starts_with('#') && nl != std::string::npos) text.erase(0, nl + 1);
  return text;
}

/// The SVG drawn from @dot for the page: its XML prolog, DOCTYPE and comments left out
/// (an inline <svg> needs none of them); empty when Graphviz's dot is not installed.
std::string inline_svg(const std::string& dot, bool& have_dot) {
  if (!have_dot) return {};
  std::string svg;
  try {
    svg = render_svg(dot);
  } catch (const view_error&) {
    have_dot = false;  // no dot program: the page shows the state in words alone
    return {};
  }
  if (auto at = svg.find("<svg"); at != std::string::npos) svg.erase(0, at);
  for (std::size_t c; (c = svg.find("<!--")) != std::string::npos;) {
    const auto end = svg.find("-->", c);
    svg.erase(c, end == std::string::npos ? std::string::npos : end + 3 - c);
  }
  return svg;
}

/// Values stored once each, by content; the moments refer to them by index.
class interned {
 public:
  std::size_t add(json value) {
    std::string key = value.dump();
    return add(std::move(key), [&] { return std::move(value); });
  }
  /// The value made by @make the first time @key comes.
  template <typename Make>
  std::size_t add(std::string key, Make make) {
    auto [it, fresh] = _index.try_emplace(std::move(key), _values.size());
    if (fresh) _values.push_back(make());
    return it->second;
  }
  [[nodiscard]] std::size_t size() const { return _values.size(); }
  [[nodiscard]] json take() { return json(std::move(_values)); }

 private:
  std::unordered_map<std::string, std::size_t> _index;
  json::array_t _values;
};

std::string mapper(const pte_ref& p) { return fmt::format("{}:{}:{}", p.process, p.region, p.index); }

/// What the page stores after one statement.
class collector {
 public:
  explicit collector(const html_options& opts) : _opts(opts) {}

  void moment(model::session& s, int line, std::string report, bool error) {
    const state st = snapshot(s);
    std::string dot = _opts.pictures ? untitled_dot(st) : std::string();
    std::string text = untitled_text(st);
    const std::size_t pic = _pictures.add(dot + '\0' + text, [&] { return lines_of(draw(dot, text)); });
    const std::size_t table = _tables.add(frames(s, st));
    json m = json::array({line, pic, table});
    if (!report.empty()) m.push_back(json::array({std::move(report), error}));
    _moments.push_back(std::move(m));
  }

  json data(const scenario::program& prog, const html_options& opts, html_summary& sum) {
    sum.pictures = _pictures.size();
    sum.tables = _tables.size();
    sum.walks = _walks.size();
    sum.svg = _opts.pictures && _have_dot;
    return {{"file", prog.file},      {"design", opts.design},        {"source", source_lines(prog, opts)},
            {"moments", _moments},    {"pictures", _pictures.take()}, {"tables", _tables.take()},
            {"walks", _walks.take()}, {"steps", _steps.take()},       {"lines", _lines.take()}};
  }

 private:
  /// Each frame: [id, what maps it ("anon", "file", ...), map count, its walk (or -1),
  /// the pages that map it].
  json frames(model::session& s, const state& st) {
    json rows = json::array();
    for (const auto& f : st.folios) {
      json maps = json::array();
      for (const auto& p : f.mapped_by) maps.push_back(mapper(p));
      rows.push_back(json::array({f.id, f.mapping, f.mapcount, walk_of(s, f.id), std::move(maps)}));
    }
    return rows;
  }

  /// The picture (an SVG, when there is one) above the state in words, folded when there
  /// is a picture.
  std::string draw(const std::string& dot, const std::string& text) {
    std::string svg;
    if (!dot.empty()) {
      auto [it, fresh] = _svgs.try_emplace(dot);
      if (fresh) it->second = inline_svg(dot, _have_dot);
      svg = it->second;
    }
    std::string words = "<pre class=\"state\">" + escape_html(text) + "</pre>";
    if (svg.empty()) return words;
    return "<div class=\"svg\">" + svg + "</div>\n<details><summary>The state in words</summary>\n" + words +
           "\n</details>";
  }

  /// A picture as indexes into the lines stored once each: the pictures of two moments
  /// share most of their lines (an SVG's nodes where the layout stays, the text's
  /// objects), and a picture is larger than the 32 KiB gzip looks back.
  json lines_of(const std::string& fragment) {
    json out = json::array();
    std::size_t at = 0;
    for (std::size_t nl; (nl = fragment.find('\n', at)) != std::string::npos; at = nl + 1)
      out.push_back(_lines.add(fragment.substr(at, nl - at)));
    out.push_back(_lines.add(fragment.substr(at)));
    return out;
  }

  /// A walk as the page shows it: its steps, each an index into the steps stored once
  /// ([kind, words]: walks of one anon_vma share most of theirs), what it returned, its counts.
  json walk_json(const walk_view& w) {
    json steps = json::array();
    for (const auto& st : w.steps) steps.push_back(_steps.add(json::array({st.kind, st.text})));
    const auto& c = w.counts;
    return {{"s", std::move(steps)},
            {"r", w.result},
            {"c", {c.walks, c.entries, c.vmas_visited, c.ptes_examined, c.misses}}};
  }

  /// --op none finds the mappings and changes nothing but the walk counters.
  long walk_of(model::session& s, std::uint64_t frame) {
    walk_target target;
    target.frame = frame;
    try {
      return static_cast<long>(_walks.add(walk_json(trace_walk(s, target, walk_op::none))));
    } catch (const view_error&) {
      return -1;  // no walk to show: only the swap cache holds the frame, or it is a page of a large folio
    }
  }

  static json source_lines(const scenario::program& prog, const html_options& opts) {
    json lines = json::array();
    if (!opts.source.empty()) {
      std::istringstream in(opts.source);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
      return lines;
    }
    for (const auto& o : prog.ops) {  // no text: each statement on its own line
      while (static_cast<int>(lines.size()) < o.line - 1) lines.push_back("");
      lines.push_back(o.text);
    }
    return lines;
  }

  json::array_t _moments;
  interned _pictures, _tables, _walks, _steps, _lines;
  const html_options& _opts;
  std::unordered_map<std::string, std::string>
      _svgs;  // by DOT: the states of two moments may differ where the picture does not
  bool _have_dot = true;
};

std::string gzip(std::string_view in) {
  z_stream z{};
  constexpr int gzip_window = 15 + 16;  // windowBits 15, plus 16: a gzip header, as DecompressionStream wants
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, gzip_window, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib: deflateInit2 failed");
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));  // NOLINT: zlib's API is not const
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());  // NOLINT
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib: deflate did not finish");
  out.resize(z.total_out);
  return out;
}

std::string base64(std::string_view in) {
  static constexpr std::string_view abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t v = 0;
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    for (std::size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<std::uint8_t>(in[i + k]) : 0U);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? abc[(v >> (18 - 6 * k)) & 0x3fU] : '=';
  }
  return out;
}

/// JSON inside a <script> element: "</" would end it.
std::string script_safe(std::string s) {
  for (std::size_t at = 0; (at = s.find("</", at)) != std::string::npos; at += 3) s.replace(at, 2, "<\\/");
  return s;
}

std::string page(const std::string& title, const std::string& data_element) {
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + escape_html(title) + "</title>\n<style>\n";
  out += detail::page_css;
  out += "</style>\n</head>\n<body>\n";
  out += detail::page_html;
  out += data_element;
  out += "<script>\n";
  out += detail::page_js;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

}  // namespace

std::string render_html(const scenario::program& prog, const html_options& opts, html_summary* summary) {
  try {
    (void)mm::parse_design(opts.design);
  } catch (const std::invalid_argument& e) {
    throw view_error(e.what());
  }
  model::run_options ro;
  ro.design = opts.design;
  ro.check_invariants = opts.check_invariants;
  model::session s(prog, ro);
  collector c(opts);
  html_summary sum;
  c.moment(s, 0, {}, false);
  while (!s.done()) {
    const int line = prog.ops[s.position()].line;
    std::ostringstream out, err;
    const int status = s.step(out, err);
    c.moment(s, line, out.str() + err.str(), status != 0);
    sum.statements++;
    if (status != 0) sum.status = status;
  }
  const std::string data = c.data(prog, opts, sum).dump();
  sum.data_bytes = data.size();
  std::string element = opts.compress
                            ? "<script type=\"application/gzip+base64\" id=\"data\">" + base64(gzip(data)) +
                                  "</script>\n"
                            : "<script type=\"application/json\" id=\"data\">" + script_safe(data) + "</script>\n";
  std::string html = page("rmapkit: " + prog.file, element);
  sum.page_bytes = html.size();
  if (summary) *summary = sum;
  return html;
}

}  // namespace rmapkit::view
