// Minimising a failing scenario: Zeller's delta debugging over statements (complements
// only: a scenario's later statements need its earlier ones, so a lone chunk rarely
// resolves), then a pass per statement and per value.
#include "rmapkit/lab/minimize.h"

#include <algorithm>
#include <regex>
#include <sstream>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace rmapkit::lab {

namespace {

using lines = std::vector<std::string>;

/// The statements of @text: its lines without comments and blank lines (a comment changes
/// nothing, and the minimised case gets a header of its own).
lines statements_of(const std::string& text) {
  lines out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    out.push_back(line);
  }
  return out;
}

std::string join(const lines& ls) {
  std::string s;
  for (const auto& l : ls) s += l + '\n';
  return s;
}

bool is_check(const std::string& line) { return line.starts_with("check"); }

/// Candidates tried, against the budget.
class tester {
 public:
  tester(const still_fails_fn& f, const minimize_options& o)
      : _f(f), _max(o.max_tests), _deadline(std::chrono::steady_clock::now() + o.time_limit) {}

  /// Whether @ls still fails; false without trying once the budget is spent.
  bool fails(const lines& ls) {
    if (spent()) return false;
    ++_tests;
    return _f(join(ls));
  }
  bool spent() {
    if (_tests >= _max || std::chrono::steady_clock::now() > _deadline) _exhausted = true;
    return _exhausted;
  }
  std::size_t tests() const { return _tests; }
  bool exhausted() const { return _exhausted; }

 private:
  const still_fails_fn& _f;
  std::size_t _max;
  std::chrono::steady_clock::time_point _deadline;
  std::size_t _tests = 0;
  bool _exhausted = false;
};

/// The shortest prefix that ends at a `check` and still fails: what follows the first
/// failing check cannot matter to it.
void cut_after_failing_check(lines& ls, tester& t) {
  for (std::size_t i = 0; i + 1 < ls.size(); ++i) {
    if (!is_check(ls[i])) continue;
    lines prefix(ls.begin(), ls.begin() + static_cast<long>(i) + 1);
    if (t.fails(prefix)) {
      ls = std::move(prefix);
      return;
    }
  }
}

/// @ls without its chunk [@from, @to).
lines without(const lines& ls, std::size_t from, std::size_t to) {
  lines out(ls.begin(), ls.begin() + static_cast<long>(from));
  out.insert(out.end(), ls.begin() + static_cast<long>(to), ls.end());
  return out;
}

/// Delta debugging by complements: split into n chunks, drop the first chunk whose removal
/// still fails (then n-1 chunks), or else split finer, until chunks are single statements.
void ddmin(lines& ls, tester& t) {
  std::size_t n = 2;
  while (ls.size() >= 2 && !t.spent()) {
    const std::size_t chunk = (ls.size() + n - 1) / n;
    bool reduced = false;
    for (std::size_t from = 0; from < ls.size(); from += chunk) {
      auto rest = without(ls, from, std::min(ls.size(), from + chunk));
      if (t.fails(rest)) {
        ls = std::move(rest);
        n = std::max<std::size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (reduced) continue;
    if (n >= ls.size()) break;
    n = std::min(ls.size(), n * 2);
  }
}

/// Drops single statements, last first (later statements depend on earlier ones), until
/// none can go.
bool drop_each(lines& ls, tester& t) {
  bool changed = false;
  for (bool again = true; again && !t.spent();) {
    again = false;
    for (std::size_t i = ls.size(); i-- > 0;) {
      auto rest = without(ls, i, i + 1);
      if (t.fails(rest)) {
        ls = std::move(rest);
        again = changed = true;
      }
    }
  }
  return changed;
}

/// Simpler forms of statement @line, the simplest first.
lines simpler(const std::string& line) {
  static const std::regex span(R"((\w+)\[(\d+)(?::(\d+))?\])");
  static const std::regex number(R"(\b(pages|value|offset)=(\d+))");
  static const std::regex prot(R"( prot=\w+)");
  lines out;
  auto add = [&](std::string s) {
    if (s != line && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  };
  for (std::sregex_iterator m(line.begin(), line.end(), span), end; m != end; ++m) {
    auto head = line.substr(0, static_cast<std::size_t>(m->position()));
    auto tail = line.substr(static_cast<std::size_t>(m->position() + m->length()));
    add(head + (*m)[1].str() + tail);                              // the whole region
    add(head + (*m)[1].str() + "[0]" + tail);                      // its first page
    add(head + (*m)[1].str() + "[" + (*m)[2].str() + "]" + tail);  // the range's first page
  }
  for (std::sregex_iterator m(line.begin(), line.end(), number), end; m != end; ++m) {
    auto head = line.substr(0, static_cast<std::size_t>(m->position()));
    auto tail = line.substr(static_cast<std::size_t>(m->position() + m->length()));
    const auto key = (*m)[1].str();
    const auto value = std::stoull((*m)[2].str());
    const std::uint64_t least = key == "pages" ? 1 : 0;
    if (value > least) add(fmt::format("{}{}={}{}", head, key, least, tail));
    if (value / 2 > least) add(fmt::format("{}{}={}{}", head, key, value / 2, tail));
    if (value > least + 1) add(fmt::format("{}{}={}{}", head, key, value - 1, tail));
  }
  add(std::regex_replace(line, prot, ""));
  if (line == "ksm prune") add("ksm");
  // A child that need not inherit anything: its parent may then go.
  static const std::regex fork(R"(^\s*\w+: fork (\w+)\s*$)");
  if (std::smatch m; std::regex_match(line, m, fork)) add("spawn " + m[1].str());
  return out;
}

/// Replaces statements by simpler forms while the scenario still fails.
bool simplify_values(lines& ls, tester& t) {
  bool changed = false;
  for (std::size_t i = 0; i < ls.size() && !t.spent(); ++i) {
    for (bool again = true; again && !t.spent();) {
      again = false;
      for (const auto& form : simpler(ls[i])) {
        auto candidate = ls;
        candidate[i] = form;
        if (t.fails(candidate)) {
          ls = std::move(candidate);
          again = changed = true;
          break;
        }
      }
    }
  }
  return changed;
}

}  // namespace

minimize_result minimize(const std::string& text, const still_fails_fn& still_fails, const minimize_options& opts) {
  tester t(still_fails, opts);
  auto ls = statements_of(text);
  cut_after_failing_check(ls, t);
  ddmin(ls, t);
  drop_each(ls, t);
  // A simpler value may let a statement go, and a statement gone may let a value shrink.
  for (bool progress = true; progress && !t.spent();) {
    progress = simplify_values(ls, t);
    progress = drop_each(ls, t) || progress;
  }
  return {join(ls), ls.size(), t.tests(), t.exhausted()};
}

}  // namespace rmapkit::lab
