// `show --json` and `walk --json`: one JSON document each, in the envelope every rmapkit
// JSON document has ("format": "rmapkit", "version", "kind"), with the kernel's field
// names. The schema is docs/json/; docs/json.md describes the format.
#pragma once

#include <string>

#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace rmapkit::view {

[[nodiscard]] std::string format_json(const state& st);
[[nodiscard]] std::string format_json(const walk_view& w);

}  // namespace rmapkit::view
