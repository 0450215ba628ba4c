#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

namespace rmapkit::tool {

namespace {

constexpr auto REDRAW = std::chrono::milliseconds(100);
constexpr std::size_t BAR_WIDTH = 30;

/// "12.3k" for 12345.
std::string short_count(double n) {
  if (n >= 1e6) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 1e4) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

/// "1:02:03", "2:03" or "3 s".
std::string short_time(double seconds) {
  const auto s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  if (s >= 60) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{} s", s);
}

}  // namespace

progress_bar::progress_bar(std::string what, std::size_t total, std::ostream& tty, bool enabled)
    : _what(std::move(what)), _total(total), _tty(tty), _enabled(enabled), _first_draw(first_draw_delay()) {}

progress_bar::~progress_bar() { clear(); }

std::string progress_bar::line(const std::string& what, std::size_t done, std::size_t total,
                               std::chrono::duration<double> elapsed) {
  const double fraction = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const auto filled = std::min(BAR_WIDTH, static_cast<std::size_t>(fraction * BAR_WIDTH));
  const double rate = elapsed.count() > 0 ? static_cast<double>(done) / elapsed.count() : 0.0;
  const std::string left = rate > 0 ? short_time(static_cast<double>(total - std::min(done, total)) / rate) + " left"
                                    : "";
  return fmt::format("{}: [{}{}] {}/{} statements ({:.0f}%), {}/s, {}", what, std::string(filled, '#'),
                     std::string(BAR_WIDTH - filled, '.'), done, total, 100 * fraction, short_count(rate), left);
}

void progress_bar::update(std::size_t done) {
  if (!_enabled || _total == 0) return;
  const auto now = clock::now();
  if (!_started) {  // timed from the first statement, not from construction
    _started = true;
    _start = now;
  }
  // _last_draw starts at steady_clock's epoch (boot, on Linux), so REDRAW never holds back the
  // first draw.
  if (now - _start < _first_draw || now - _last_draw < REDRAW) return;
  _last_draw = now;
  _tty << '\r' << line(_what, done, _total, now - _start) << "\x1b[K" << std::flush;
  _shown = true;
}

void progress_bar::clear() {
  if (!_shown) return;
  _shown = false;
  _tty << "\r\x1b[K" << std::flush;
}

clearing_buf::int_type clearing_buf::overflow(int_type c) {
  _bar.clear();
  if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
  return _target->sputc(traits_type::to_char_type(c));
}

std::streamsize clearing_buf::xsputn(const char* s, std::streamsize n) {
  _bar.clear();
  return _target->sputn(s, n);
}

progress_scope::progress_scope(std::string what, std::size_t total)
    : _bar(std::move(what), total, std::cerr, is_terminal_stderr()),
      _out_buf(std::cout.rdbuf(), _bar),
      _err_buf(std::cerr.rdbuf(), _bar),
      _out(&_out_buf),
      _err(&_err_buf) {}

std::chrono::duration<double> first_draw_delay() {
  const char* text = std::getenv("RMAPKIT_PROGRESS_AFTER");
  if (!text) return std::chrono::seconds(1);
  double seconds = 0;
  const std::string_view value(text);
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !std::isfinite(seconds) ||
      seconds < 0)
    throw std::invalid_argument(
        fmt::format("RMAPKIT_PROGRESS_AFTER={}: not a number of seconds (0 or more, such as 0, 1 or 2.5)", value));
  return std::chrono::duration<double>(seconds);
}

bool is_terminal_stderr() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) == 1 && !(term && std::string_view(term) == "dumb");
}

}  // namespace rmapkit::tool
