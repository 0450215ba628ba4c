// The JSON form of what rmapkit prints (`--json`; docs/json.md, schema
// docs/json/rmapkit-v1.schema.json): the envelope every document starts with, and the
// scenario layer's parts of a document (reports, KSM and kmem counters, errors, lint).
// Each back end and the lab build their own documents from these (model/json.h,
// kcheck/json.h, lab/json.h).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmapkit/scenario/diag.h"
#include "rmapkit/scenario/program.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::scenario {

/// The JSON format's version ("version" in every document). Within a version fields are
/// only added; removing or changing one bumps it (docs/json.md).
inline constexpr int JSON_FORMAT_VERSION = 1;

/// A document and the exit status of the command that printed it (the status it has
/// without --json), and the signal that interrupted a kernel run (or 0).
struct json_outcome {
  nlohmann::json document;
  int exit_code = 0;
  int signal = 0;
};

/// `{"format": "rmapkit", "version": 1, "kind": KIND}`: what every document starts with.
[[nodiscard]] nlohmann::json envelope(std::string_view kind);

/// The text of @doc as rmapkit prints it: indented by two spaces, ending in '\n'; bytes
/// that are not UTF-8 (a scenario's own text) are replaced by U+FFFD.
[[nodiscard]] std::string dump(const nlohmann::json& doc);

/// A report block: frames and swap slots numbered by first appearance, as format() prints
/// them, so that the JSON and the text of one block say the same.
[[nodiscard]] nlohmann::json to_json(const report_block& block);

/// `{"file", "line", "reason"}`; line 0 when the error is not at a line.
[[nodiscard]] nlohmann::json to_json(const diag& d);
[[nodiscard]] nlohmann::json to_json(std::span<const diag> diags);

/// The KSM counters after the `ksm` at @line, with their sysfs names.
[[nodiscard]] nlohmann::json to_json(int line, const ksm_counters& k);

/// `{"anon_vma": {"allocated", "freed"}, "anon_vma_chain": {"allocated", "freed"}}`.
[[nodiscard]] nlohmann::json to_json(const kmem_counts& k);

/// The errors a back end or the lab wrote as text (lines of `FILE:LINE: reason`,
/// `FILE: reason`, or a line of its own such as "rmapkit kernel: not root"), as diags of
/// @file: a line that does not start with @file is its reason whole, at line 0.
[[nodiscard]] std::vector<diag> parse_diags(std::string_view text, std::string_view file);

/// The document of a command that could not start (its scenario does not parse or
/// resolve, the kernel is unavailable): kind "error", the command's name, the scenario
/// and the errors.
[[nodiscard]] nlohmann::json error_document(std::string_view command, std::string_view file,
                                            std::span<const diag> errors);

/// `rmapkit lint`'s document: the scenario's counts when it resolved (@prog), else its
/// error.
[[nodiscard]] nlohmann::json lint_document(std::string_view file, const program* prog, std::span<const diag> errors);

}  // namespace rmapkit::scenario
