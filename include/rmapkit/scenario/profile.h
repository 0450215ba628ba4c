// Generator profiles (docs/fuzzing.md, "Profiles"): a named set of gen random's options —
// sizes, which machine-wide statements, and the statement and region mix — written as a
// JSON document, so that a campaign can aim at one hard place and users can add their own.
// The built-in ones are the files of scenario/profiles/, compiled in.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "rmapkit/scenario/generate.h"

namespace rmapkit::scenario {

struct generator_profile {
  std::string name;
  std::string description;
  random_options options;  ///< options.profile is name
};

/// The built-in profiles' names, sorted.
[[nodiscard]] std::vector<std::string> builtin_profile_names();

/// The JSON text of built-in profile @name, as its file has it; nothing when there is none.
[[nodiscard]] std::optional<std::string_view> builtin_profile_text(std::string_view name);

/// Reads profile @text; @where names it in errors ("profile NAME" or a path). An unknown
/// key, a value of the wrong type or out of range, or a mix whose weights are all zero is
/// an error naming the key and the reason.
[[nodiscard]] tl::expected<generator_profile, std::string> parse_profile(std::string_view text, std::string_view where);

/// A built-in profile by name, or else a profile file at that path (a name with a '/' or
/// ending in .json is always a path). The error names what was looked for.
[[nodiscard]] tl::expected<generator_profile, std::string> find_profile(std::string_view name_or_path);

}  // namespace rmapkit::scenario
