// Kernel counterpart: none; this is the scenario language of docs/scenario-format.md.
#include "rmapkit/scenario/parser.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace rmapkit::scenario {

std::string diag::str() const {
  // A diag not tied to a line (the file itself is missing or unreadable) has line 0.
  if (line == 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}: {}", file, line, message);
}

const char* to_string(prot p) {
  switch (p) {
    case prot::rw: return "rw";
    case prot::r: return "r";
    case prot::none: return "none";
    case prot::rx: return "rx";
    case prot::rwx: return "rwx";
  }
  return "?";
}

const char* to_string(advice a) {
  switch (a) {
    case advice::dontneed: return "dontneed";
    case advice::mergeable: return "mergeable";
    case advice::unmergeable: return "unmergeable";
    case advice::pageout: return "pageout";
    case advice::dontfork: return "dontfork";
    case advice::dofork: return "dofork";
    case advice::wipeonfork: return "wipeonfork";
    case advice::keeponfork: return "keeponfork";
    case advice::dontdump: return "dontdump";
    case advice::dodump: return "dodump";
    case advice::sequential: return "sequential";
    case advice::random: return "random";
    case advice::normal: return "normal";
    case advice::free: return "free";
    case advice::cold: return "cold";
    case advice::willneed: return "willneed";
    case advice::remove: return "remove";
    case advice::collapse: return "collapse";
  }
  return "?";
}

const char* to_string(clear_refs_type t) {
  switch (t) {
    case clear_refs_type::all: return "all";
    case clear_refs_type::anon: return "anon";
    case clear_refs_type::file: return "file";
  }
  return "?";
}

std::string thp_sizes_text(std::uint16_t orders) {
  std::string out;
  for (const auto& sz : THP_SIZES)
    if (orders & (1U << sz.order)) out += (out.empty() ? "" : ",") + std::string(sz.name);
  return out.empty() ? "none" : out;
}

namespace {

/// A malformed line: the message becomes the diag of that line.
struct syntax_error {
  std::string message;
};

/// @tok as an error message quotes it: whole if short, else its first bytes and its size,
/// so that a huge token does not flood the terminal.
std::string echo(std::string_view tok) {
  constexpr std::size_t shown = 40;
  if (tok.size() <= shown) return std::string(tok);
  std::size_t n = shown;
  while (n > 0 && (static_cast<unsigned char>(tok[n]) & 0xC0U) == 0x80U) --n;  // not inside a UTF-8 character
  return fmt::format("{}…({} bytes)", tok.substr(0, n), tok.size());
}

bool is_name(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(s[0])) return false;
  for (char c : s.substr(1))
    if (!alpha(c) && !digit(c)) return false;
  return true;
}

std::string_view expect_name(std::string_view tok, std::string_view what) {
  if (!is_name(tok)) throw syntax_error{fmt::format("bad {} name '{}'", what, echo(tok))};
  return tok;
}

std::uint64_t parse_number(std::string_view s, std::string_view what) {
  int base = 10;
  std::string_view digits = s;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    digits = s.substr(2);
  }
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec == std::errc::result_out_of_range)
    throw syntax_error{fmt::format("bad number '{}' for {}", echo(s), what)};
  if (ec != std::errc{} || ptr != digits.data() + digits.size())
    throw syntax_error{fmt::format("bad number '{}' for {}", echo(s), what)};
  return v;
}

std::vector<std::string_view> tokenize(std::string_view line) {
  if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
  std::vector<std::string_view> toks;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) toks.push_back(line.substr(i, j - i));
    i = j;
  }
  return toks;
}

/// `key=value` options of one statement, each at most once, every one consumed.
class options {
 public:
  options(std::string_view stmt, const std::vector<std::string_view>& toks, std::size_t from) : _stmt(stmt) {
    for (std::size_t i = from; i < toks.size(); ++i) {
      auto eq = toks[i].find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == toks[i].size())
        throw syntax_error{fmt::format("{}: expected key=value, got '{}'", stmt, echo(toks[i]))};
      auto key = toks[i].substr(0, eq);
      if (!_opts.emplace(key, toks[i].substr(eq + 1)).second)
        throw syntax_error{fmt::format("{}: option '{}' given twice", stmt, echo(key))};
    }
  }

  std::optional<std::string_view> take(std::string_view key) {
    auto it = _opts.find(key);
    if (it == _opts.end()) return std::nullopt;
    auto v = it->second;
    _opts.erase(it);
    return v;
  }

  std::uint64_t take_number(std::string_view key) {
    auto v = take(key);
    if (!v) throw syntax_error{fmt::format("{}: missing option {}=", _stmt, key)};
    return parse_number(*v, key);
  }

  /// Every option must have been taken: anything left is unknown to this statement.
  void finish() const {
    if (!_opts.empty()) throw syntax_error{fmt::format("{}: unknown option '{}'", _stmt, echo(_opts.begin()->first))};
  }

 private:
  std::string_view _stmt;
  std::map<std::string_view, std::string_view, std::less<>> _opts;
};

prot parse_prot(std::string_view s) {
  if (s == "rw") return prot::rw;
  if (s == "r") return prot::r;
  if (s == "none") return prot::none;
  if (s == "rx") return prot::rx;
  if (s == "rwx") return prot::rwx;
  throw syntax_error{fmt::format("bad protection '{}' (rw, r, none, rx or rwx)", echo(s))};
}

advice parse_advice(std::string_view s) {
  static constexpr advice all[] = {advice::dontneed, advice::mergeable, advice::unmergeable, advice::pageout,
                                   advice::dontfork, advice::dofork,    advice::wipeonfork,  advice::keeponfork,
                                   advice::dontdump, advice::dodump,    advice::sequential,  advice::random,
                                   advice::normal,   advice::free,      advice::cold,        advice::willneed,
                                   advice::remove,   advice::collapse};
  for (advice a : all)
    if (s == to_string(a)) return a;
  throw syntax_error{fmt::format("unknown advice '{}'", echo(s))};
}

/// `64k,2m` or `none`: a set of orders (bit o = order o).
std::uint16_t parse_thp_sizes(std::string_view s, std::string_view key) {
  if (s == "none") return 0;
  std::uint16_t orders = 0;
  while (true) {
    auto comma = s.find(',');
    auto name = s.substr(0, comma);
    const auto* sz = std::find_if(std::begin(THP_SIZES), std::end(THP_SIZES),
                                  [&](const thp_size& z) { return name == z.name; });
    if (sz == std::end(THP_SIZES))
      throw syntax_error{fmt::format("thp: unknown size '{}' in {}= (sizes: 16k 32k 64k 128k 256k 512k 1m 2m, or none)",
                                     echo(name), key)};
    if (orders & (1U << sz->order)) throw syntax_error{fmt::format("thp: size {} given twice in {}=", sz->name, key)};
    orders = static_cast<std::uint16_t>(orders | (1U << sz->order));
    if (comma == std::string_view::npos) return orders;
    s = s.substr(comma + 1);
  }
}

range_ref parse_range(std::string_view s) {
  range_ref r;
  auto open = s.find('[');
  if (open == std::string_view::npos) {
    r.region = std::string(expect_name(s, "region"));
    return r;
  }
  if (s.back() != ']') throw syntax_error{fmt::format("bad range '{}'", echo(s))};
  r.region = std::string(expect_name(s.substr(0, open), "region"));
  auto inner = s.substr(open + 1, s.size() - open - 2);
  auto colon = inner.find(':');
  if (colon == std::string_view::npos) {
    r.first = parse_number(inner, "page index");
    return r;
  }
  r.first = parse_number(inner.substr(0, colon), "page index");
  r.last = parse_number(inner.substr(colon + 1), "page index");
  if (*r.last <= *r.first) throw syntax_error{fmt::format("empty range '{}'", echo(s))};
  return r;
}

void want_args(std::string_view stmt, const std::vector<std::string_view>& toks, std::size_t from, std::size_t n) {
  if (toks.size() - from < n) throw syntax_error{fmt::format("{}: missing argument", stmt)};
  if (toks.size() - from > n) throw syntax_error{fmt::format("{}: unexpected '{}'", stmt, echo(toks[from + n]))};
}

statement_body parse_mmap(std::string proc, const std::vector<std::string_view>& t, std::size_t i) {
  // P: mmap R anon private|shared ...   or   P: mmap R file F private|shared ...
  // R may be a range R[i] or R[i:j] of an existing region: a MAP_FIXED mapping into it.
  if (t.size() - i < 3) throw syntax_error{"mmap: missing argument"};
  st_mmap m;
  m.proc = std::move(proc);
  if (t[i].find('[') != std::string_view::npos) {
    m.into = parse_range(t[i]);
    m.region = m.into->region;
  } else {
    m.region = std::string(expect_name(t[i], "region"));
  }
  std::size_t next;
  bool file = false;
  if (t[i + 1] == "anon") {
    next = i + 2;
  } else if (t[i + 1] == "file") {
    if (t.size() - i < 4) throw syntax_error{"mmap: missing argument"};
    m.file = std::string(expect_name(t[i + 2], "file"));
    file = true;
    next = i + 3;
  } else {
    throw syntax_error{fmt::format("mmap: expected 'anon' or 'file', got '{}'", echo(t[i + 1]))};
  }
  bool shared;
  if (t[next] == "private") shared = false;
  else if (t[next] == "shared") shared = true;
  else throw syntax_error{fmt::format("mmap: expected 'private' or 'shared', got '{}'", echo(t[next]))};
  m.kind = file ? (shared ? map_kind::file_shared : map_kind::file_private)
                : (shared ? map_kind::anon_shared : map_kind::anon_private);
  // Flag words among the key=value options: `noreserve` (MAP_NORESERVE), `huge`
  // (MADV_HUGEPAGE, version 2).
  std::vector<std::string_view> rest;
  for (std::size_t k = next + 1; k < t.size(); ++k) {
    bool* flag = t[k] == "noreserve" ? &m.noreserve : t[k] == "huge" ? &m.huge : nullptr;
    if (!flag) {
      rest.push_back(t[k]);
      continue;
    }
    if (*flag) throw syntax_error{fmt::format("mmap: '{}' given twice", t[k])};
    *flag = true;
  }
  options o("mmap", rest, 0);
  if (!m.into) m.pages = o.take_number("pages");
  else if (o.take("pages")) throw syntax_error{"mmap: a range R[i:j] gives the size; pages= is not allowed with it"};
  if (file) {
    if (auto off = o.take("offset")) m.offset = parse_number(*off, "offset");
  }
  if (auto p = o.take("prot")) m.prot = parse_prot(*p);
  o.finish();
  return m;
}

statement_body parse_process_statement(std::string proc, const std::vector<std::string_view>& t, std::size_t i) {
  if (i >= t.size()) throw syntax_error{fmt::format("missing statement after '{}:'", echo(proc))};
  auto verb = t[i++];
  auto range_then = [&](std::size_t extra) {
    want_args(verb, t, i, 1 + extra);
    return parse_range(t[i]);
  };
  if (verb == "mmap") return parse_mmap(std::move(proc), t, i);
  if (verb == "read") return st_read{std::move(proc), range_then(0)};
  if (verb == "write") {
    if (i >= t.size()) throw syntax_error{"write: missing argument"};
    st_write w{std::move(proc), parse_range(t[i]), std::nullopt};
    options o("write", t, i + 1);
    if (auto v = o.take("value")) {
      auto n = parse_number(*v, "value");
      if (n > 255) throw syntax_error{fmt::format("write: value={} is not a byte (0-255)", n)};
      w.value = static_cast<std::uint8_t>(n);
    }
    o.finish();
    return w;
  }
  if (verb == "fork") {
    want_args(verb, t, i, 1);
    return st_fork{std::move(proc), std::string(expect_name(t[i], "process"))};
  }
  if (verb == "exit") {
    want_args(verb, t, i, 0);
    return st_exit{std::move(proc)};
  }
  if (verb == "munmap") return st_munmap{std::move(proc), range_then(0)};
  if (verb == "mprotect") {
    auto r = range_then(1);
    return st_mprotect{std::move(proc), std::move(r), parse_prot(t[i + 1])};
  }
  if (verb == "mremap") {
    if (i >= t.size()) throw syntax_error{"mremap: missing argument"};
    std::string region(expect_name(t[i], "region"));
    if (i + 1 < t.size() && t[i + 1] == "move") {
      want_args(verb, t, i, 2);
      return st_mremap_move{std::move(proc), std::move(region)};
    }
    options o("mremap", t, i + 1);
    auto pages = o.take_number("pages");
    o.finish();
    return st_mremap_resize{std::move(proc), std::move(region), pages};
  }
  if (verb == "madvise") {
    auto r = range_then(1);
    return st_madvise{std::move(proc), std::move(r), parse_advice(t[i + 1])};
  }
  if (verb == "mlock") return st_mlock{std::move(proc), range_then(0)};
  if (verb == "munlock") return st_munlock{std::move(proc), range_then(0)};
  if (verb == "clear_refs") {
    if (i + 1 < t.size()) throw syntax_error{fmt::format("clear_refs: unexpected '{}' after the type", echo(t[i + 1]))};
    st_clear_refs c{std::move(proc), clear_refs_type::all};
    if (i < t.size()) {
      if (t[i] == "anon") c.type = clear_refs_type::anon;
      else if (t[i] == "file") c.type = clear_refs_type::file;
      else if (t[i] != "all")
        throw syntax_error{fmt::format("clear_refs: expected 'all', 'anon' or 'file', got '{}'", echo(t[i]))};
    }
    return c;
  }
  throw syntax_error{fmt::format("unknown statement '{}'", echo(verb))};
}

statement_body parse_statement(const std::vector<std::string_view>& t) {
  auto head = t[0];
  // Process statements: "P: verb ..." (the colon may also stand alone: "P : verb").
  if (head.back() == ':' || (t.size() > 1 && t[1] == ":")) {
    std::size_t i = head.back() == ':' ? 1 : 2;
    auto name = head.back() == ':' ? head.substr(0, head.size() - 1) : head;
    return parse_process_statement(std::string(expect_name(name, "process")), t, i);
  }
  if (head == "spawn") {
    want_args(head, t, 1, 1);
    return st_spawn{std::string(expect_name(t[1], "process"))};
  }
  if (head == "file") {
    if (t.size() < 2) throw syntax_error{"file: missing argument"};
    st_file f{std::string(expect_name(t[1], "file")), 0};
    options o("file", t, 2);
    f.pages = o.take_number("pages");
    o.finish();
    return f;
  }
  if (head == "ksm") {
    const bool prune = t.size() > 1 && t[1] == "prune";
    const std::size_t words = prune ? 2 : 1;
    if (t.size() > words)
      throw syntax_error{fmt::format("ksm: unexpected '{}' (only 'prune' may follow)", echo(t[words]))};
    return st_ksm{prune};
  }
  if (head == "reclaim") {
    want_args(head, t, 1, 0);
    return st_reclaim{};
  }
  if (head == "thp") {
    options o("thp", t, 1);
    auto anon = o.take("anon");
    if (!anon) throw syntax_error{"thp: missing option anon= (sizes such as 64k,2m, or none)"};
    st_thp th{parse_thp_sizes(*anon, "anon"), 0};
    if (auto shmem = o.take("shmem")) th.shmem_orders = parse_thp_sizes(*shmem, "shmem");
    o.finish();
    return th;
  }
  if (head == "shrink") {
    want_args(head, t, 1, 0);
    return st_shrink{};
  }
  if (head == "report") {
    if (t.size() < 2) throw syntax_error{"report: missing argument (what to report: 'smaps', 'flags')"};
    st_report r;
    for (std::size_t i = 1; i < t.size(); ++i) {
      if (t[i] != "smaps" && t[i] != "flags")
        throw syntax_error{fmt::format("report: expected 'smaps' or 'flags', got '{}'", echo(t[i]))};
      bool& on = t[i] == "smaps" ? r.smaps : r.flags;
      if (on) throw syntax_error{fmt::format("report: '{}' given twice", echo(t[i]))};
      on = true;
    }
    return r;
  }
  if (head == "check") {
    if (t.size() > 2) throw syntax_error{fmt::format("check: the label is one name, got '{}' after it", echo(t[2]))};
    return st_check{t.size() == 2 ? std::string(expect_name(t[1], "label")) : std::string()};
  }
  throw syntax_error{fmt::format("unknown statement '{}'", echo(head))};
}

std::string too_large() {
  return fmt::format("larger than a scenario may be ({} MiB at most)", MAX_SCENARIO_BYTES >> 20);
}

}  // namespace

tl::expected<scenario, diag> parse(std::string_view text, std::string file_name) {
  scenario sc;
  sc.file = std::move(file_name);
  if (text.size() > MAX_SCENARIO_BYTES) return tl::make_unexpected(diag{sc.file, 0, too_large()});
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no;
    if (line.size() > MAX_LINE_BYTES)
      return tl::make_unexpected(diag{
          sc.file, line_no,
          fmt::format("line of {} bytes is too long (a line may be at most {} bytes)", line.size(), MAX_LINE_BYTES)});
    auto toks = tokenize(line);
    if (!toks.empty()) {
      try {
        std::string as_written;
        for (auto t : toks) as_written += (as_written.empty() ? "" : " ") + std::string(t);
        sc.statements.push_back(statement{line_no, parse_statement(toks), std::move(as_written)});
      } catch (const syntax_error& e) {
        return tl::make_unexpected(diag{sc.file, line_no, e.message});
      }
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return sc;
}

tl::expected<scenario, diag> parse_file(const std::string& path) {
  auto text = read_scenario_text(path);
  if (!text) return tl::make_unexpected(std::move(text).error());
  return parse(*text, path);
}

tl::expected<std::string, diag> read_scenario_text(const std::string& path) {
  auto fail = [&](std::string why) { return tl::make_unexpected(diag{path, 0, std::move(why)}); };
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    // A directory opens, reads as nothing and would pass as an empty scenario.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return fail("is a directory, not a scenario");
    file.open(path, std::ios::binary);
    if (!file) return fail(fmt::format("cannot open: {}", std::strerror(errno)));
    in = &file;
  }
  // Read at most one byte more than the cap: /dev/zero or a runaway pipe stops there.
  std::string text;
  std::array<char, 65536> buf{};
  while (text.size() <= MAX_SCENARIO_BYTES) {
    in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto got = static_cast<std::size_t>(in->gcount());
    if (got == 0) break;
    text.append(buf.data(), std::min(got, MAX_SCENARIO_BYTES + 1 - text.size()));
  }
  if (in->bad()) return fail(fmt::format("cannot read: {}", std::strerror(errno)));
  if (text.size() > MAX_SCENARIO_BYTES) return fail(too_large());
  if (text.find('\0') != std::string::npos) return fail("not a text file (NUL byte)");
  return text;
}

tl::expected<std::uint16_t, std::string> thp_sizes_of(std::string_view text) {
  try {
    return parse_thp_sizes(text, "sizes");
  } catch (const syntax_error& e) {
    return tl::unexpected(e.message);
  }
}

}  // namespace rmapkit::scenario
