// Minimising a failing scenario (`rmapkit fuzz`, docs/fuzzing.md): delta debugging over its
// statements, then over the values in them, down to a scenario that still fails the same way
// and from which no statement can be taken and no value made simpler.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace rmapkit::lab {

struct minimize_options {
  /// Candidates tried at most; the smallest found so far is returned when it is reached.
  std::size_t max_tests = 4000;
  /// Wall time at most, with the same outcome.
  std::chrono::seconds time_limit{900};
};

struct minimize_result {
  std::string text;            ///< the smallest scenario found: statements only, no comments
  std::size_t statements = 0;  ///< its statements
  std::size_t tests = 0;       ///< candidates tried
  bool exhausted = false;      ///< stopped by max_tests or time_limit, not by a minimum
};

/// Whether candidate scenario text still fails the way the original did. It is called with
/// texts that need not resolve: those must give false.
using still_fails_fn = std::function<bool(const std::string& text)>;

/// Shrinks @text, which fails, by @still_fails. Steps: cut after the first `check` that
/// fails; delta debugging (complements of ever smaller chunks) over the statements; each
/// statement alone; then each value (a range to its whole region or one page, pages= and
/// value= and offset= toward 0 or 1, prot= dropped, `ksm prune` to `ksm`, a fork to a
/// spawn); statements again, and values again, until neither changes anything.
/// The result is 1-minimal: taking away any one statement makes it pass.
[[nodiscard]] minimize_result minimize(const std::string& text, const still_fails_fn& still_fails,
                                       const minimize_options& opts = {});

}  // namespace rmapkit::lab
