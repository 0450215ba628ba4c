// Lexer and parser for `.rmap` scenarios (docs/scenario-format.md, "Lexical rules" and
// "Statements"). Parsing checks form only; names and rules are checked by resolve().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "rmapkit/scenario/ast.h"
#include "rmapkit/scenario/diag.h"

namespace rmapkit::scenario {

/// The largest scenario read (docs/scenario-format.md, "Lexical rules"): a bound on what
/// `lint /dev/zero` or a runaway generator can make rmapkit hold in memory.
inline constexpr std::size_t MAX_SCENARIO_BYTES = std::size_t{64} << 20;
/// The longest line (comment included); the longest statement is under 200 bytes.
inline constexpr std::size_t MAX_LINE_BYTES = 4096;

/// Parses @text; errors are located in @file_name. Stops at the first malformed line.
[[nodiscard]] tl::expected<scenario, diag> parse(std::string_view text, std::string file_name);
/// The set of large folio orders "64k,2m" or "none" names (a `thp` line's SIZES); the
/// reason when it names none (an unknown or repeated size), as the parser words it.
[[nodiscard]] tl::expected<std::uint16_t, std::string> thp_sizes_of(std::string_view text);

/// Reads and parses a file; `-` reads standard input.
[[nodiscard]] tl::expected<scenario, diag> parse_file(const std::string& path);

/// The text of a scenario file (`-`: standard input), refused when it is a directory, is
/// larger than MAX_SCENARIO_BYTES or holds a NUL byte; the diag names @path at line 0.
[[nodiscard]] tl::expected<std::string, diag> read_scenario_text(const std::string& path);

}  // namespace rmapkit::scenario
