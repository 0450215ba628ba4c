// Lexer and parser for `.rmap` scenarios (docs/scenario-format.md, "Lexical rules" and
// "Statements"). Parsing checks form only; names and rules are checked by resolve().
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "rmapkit/scenario/ast.h"
#include "rmapkit/scenario/diag.h"

namespace rmapkit::scenario {

/// Parses @text; errors are located in @file_name. Stops at the first malformed line.
[[nodiscard]] tl::expected<scenario, diag> parse(std::string_view text, std::string file_name);

/// Reads and parses a file; `-` reads standard input.
[[nodiscard]] tl::expected<scenario, diag> parse_file(const std::string& path);

}  // namespace rmapkit::scenario
