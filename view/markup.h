// Internal to the view library: text made safe inside HTML and Graphviz's HTML-like
// labels (the same four characters matter in both).
#pragma once

#include <string>
#include <string_view>

namespace rmapkit::view::detail {

/// @s with &, <, > and " as entities.
inline std::string escape_html(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace rmapkit::view::detail
