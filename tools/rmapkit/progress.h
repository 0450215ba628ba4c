// A progress bar for long runs: statements done, rate, time left, drawn on standard error
// when it is a terminal, and never otherwise (a pipe or a file gets only the output). It
// appears only once a run has taken a second (RMAPKIT_PROGRESS_AFTER seconds), so short runs
// look as they always did.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <streambuf>
#include <string>

namespace rmapkit::tool {

class progress_bar {
 public:
  /// A bar for @total statements of the step called @what ("model", "kernel"), drawn on
  /// @tty when @enabled (is_terminal_stderr()).
  progress_bar(std::string what, std::size_t total, std::ostream& tty, bool enabled);
  ~progress_bar();
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;

  /// Statement @done (0-based) is about to run: redraws at most ten times a second.
  void update(std::size_t done);
  /// The same, for a command whose total is known only as it runs.
  void update(std::size_t done, std::size_t total) {
    _total = total;
    update(done);
  }
  /// Erases the bar, so that text written next starts on a clean line.
  void clear();

  /// The bar's text for @done of @total after @elapsed (a test looks at it).
  [[nodiscard]] static std::string line(const std::string& what, std::size_t done, std::size_t total,
                                        std::chrono::duration<double> elapsed);

 private:
  using clock = std::chrono::steady_clock;
  std::string _what;
  std::size_t _total;
  std::ostream& _tty;
  bool _enabled;
  bool _shown = false;
  bool _started = false;
  std::chrono::duration<double> _first_draw;
  clock::time_point _start{};
  clock::time_point _last_draw{};
};

/// How long a run goes before its bar appears: RMAPKIT_PROGRESS_AFTER seconds (0: from the
/// first statement), one second when it is unset. Throws std::invalid_argument, naming the
/// variable, when it is not a number of seconds.
[[nodiscard]] std::chrono::duration<double> first_draw_delay();

/// A stream buffer that erases @bar before it passes text on to @target: the reports and
/// errors written while a bar is on screen start at the beginning of a clean line.
class clearing_buf : public std::streambuf {
 public:
  clearing_buf(std::streambuf* target, progress_bar& bar) : _target(target), _bar(bar) {}

 protected:
  int_type overflow(int_type c) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override { return _target->pubsync(); }

 private:
  std::streambuf* _target;
  progress_bar& _bar;
};

/// Standard error is a terminal that can draw a bar (not TERM=dumb).
[[nodiscard]] bool is_terminal_stderr();

/// A bar on standard error (when it is a terminal) and the two streams a run writes to
/// instead of std::cout and std::cerr, which erase the bar first.
class progress_scope {
 public:
  progress_scope(std::string what, std::size_t total);
  progress_scope(const progress_scope&) = delete;
  progress_scope& operator=(const progress_scope&) = delete;

  std::ostream& out() { return _out; }
  std::ostream& err() { return _err; }
  /// For run_options::before_statement.
  [[nodiscard]] auto before_statement() {
    return [this](std::size_t done) { _bar.update(done); };
  }

 private:
  progress_bar _bar;
  clearing_buf _out_buf, _err_buf;
  std::ostream _out, _err;
};

}  // namespace rmapkit::tool
