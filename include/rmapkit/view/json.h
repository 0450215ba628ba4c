// `show --json` and `walk --json`: one JSON document each, in the envelope every rmapkit
// JSON document has ("format": "rmapkit", "version", "kind"), with the kernel's field
// names. The schema is docs/json/; docs/json.md describes the format.
#pragma once

#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "rmapkit/scenario/diag.h"
#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace rmapkit::view {

/// The `show` document: the state's fields when @st is set (the command succeeded), and
/// "errors" always (empty on success).
[[nodiscard]] nlohmann::json show_document(const state* st, std::span<const scenario::diag> errors);
/// The `walk` document, likewise.
[[nodiscard]] nlohmann::json walk_document(const walk_view* w, std::span<const scenario::diag> errors);

/// The documents of a successful `show` and `walk`, as printed.
[[nodiscard]] std::string format_json(const state& st);
[[nodiscard]] std::string format_json(const walk_view& w);

}  // namespace rmapkit::view
