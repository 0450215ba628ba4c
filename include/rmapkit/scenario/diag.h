// Diagnostics for bad scenarios: `FILE:LINE: reason`, exit status 2
// (docs/scenario-format.md, "Errors and exit status").
#pragma once

#include <stdexcept>
#include <string>

namespace rmapkit::scenario {

/// One error in a scenario, located at a line of a file.
struct diag {
  std::string file;
  int line = 0;
  std::string message;

  /// `FILE:LINE: message`, or `FILE: message` for line 0.
  [[nodiscard]] std::string str() const;
};

/// Exit status of a run whose scenario is wrong or was refused.
inline constexpr int EXIT_SCENARIO_ERROR = 2;

/// Thrown by a back end when a statement fails while it runs (the kernel refused it,
/// or a rule that only the running state can decide was broken). Caught at the back end's
/// boundary and turned into a diag; never escapes the library.
class statement_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rmapkit::scenario
