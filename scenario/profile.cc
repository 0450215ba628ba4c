// Generator profiles: JSON documents (comments allowed) that set gen random's options.
#include "rmapkit/scenario/profile.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"

namespace rmapkit::scenario {

namespace {

struct builtin {
  std::string_view name;
  std::string_view text;
};

// scenario/profiles/NAME.json, written in by CMake (scenario/CMakeLists.txt).
constexpr builtin BUILTIN_PROFILES[] = {
#include "builtin_profiles.inc"
};

/// A profile error: what was read, the key, and why.
struct profile_error {
  std::string message;
};

[[noreturn]] void fail(std::string_view key, const std::string& why) {
  throw profile_error{fmt::format("\"{}\": {}", key, why)};
}

/// Reads unsigned @key of @j into @out, within [@lo, @hi].
void read_count(const nlohmann::json& j, std::string_view key, unsigned& out, unsigned lo, unsigned hi) {
  if (!j.is_number_unsigned() || j.get<std::uint64_t>() < lo || j.get<std::uint64_t>() > hi)
    fail(key, fmt::format("must be a whole number from {} to {}", lo, hi));
  out = j.get<unsigned>();
}

void read_bool(const nlohmann::json& j, std::string_view key, bool& out) {
  if (!j.is_boolean()) fail(key, "must be true or false");
  out = j.get<bool>();
}

/// Reads object @j of weights named by @fields into their members; an unknown name is an
/// error, a missing one weighs 0, and all of them 0 is an error.
template <typename Weights>
Weights read_weights(const nlohmann::json& j, std::string_view key,
                     const std::map<std::string, unsigned Weights::*, std::less<>>& fields) {
  if (!j.is_object()) fail(key, "must be an object of weights");
  Weights w{};
  unsigned total = 0;
  for (const auto& [name, value] : j.items()) {
    auto f = fields.find(name);
    if (f == fields.end()) {
      std::string known;
      for (const auto& [n, _] : fields) known += (known.empty() ? "" : ", ") + n;
      fail(fmt::format("{}.{}", key, name), fmt::format("not a weight of {} (they are: {})", key, known));
    }
    read_count(value, fmt::format("{}.{}", key, name), w.*(f->second), 0, 1000000);
    total += w.*(f->second);
  }
  if (total == 0) fail(key, "every weight is 0: nothing could be generated");
  return w;
}

const std::map<std::string, unsigned statement_weights::*, std::less<>> STATEMENT_FIELDS = {
    {"touch", &statement_weights::touch},
    {"mmap", &statement_weights::mmap},
    {"fork", &statement_weights::fork},
    {"exit", &statement_weights::exit},
    {"munmap", &statement_weights::munmap},
    {"mprotect", &statement_weights::mprotect},
    {"mremap", &statement_weights::mremap},
    {"madvise", &statement_weights::madvise},
    {"mlock", &statement_weights::mlock},
    {"check", &statement_weights::check},
    {"spawn", &statement_weights::spawn},
    {"machine_wide", &statement_weights::machine_wide},
    {"clear_refs", &statement_weights::clear_refs},
};

const std::map<std::string, unsigned mmap_weights::*, std::less<>> MMAP_FIELDS = {
    {"anon_private", &mmap_weights::anon_private},
    {"anon_shared", &mmap_weights::anon_shared},
    {"file", &mmap_weights::file},
};

/// Sets the member of @p that @key names from @value.
void read_key(generator_profile& p, const std::string& key, const nlohmann::json& value) {
  auto& o = p.options;
  if (key == "name") {
    if (!value.is_string() || value.get<std::string>().empty()) fail(key, "must be a non-empty string");
    p.name = value.get<std::string>();
  } else if (key == "description") {
    if (!value.is_string()) fail(key, "must be a string");
    p.description = value.get<std::string>();
  } else if (key == "statements") {
    read_count(value, key, o.statements, 1, 10000000);
  } else if (key == "processes") {
    read_count(value, key, o.max_processes, 1, 64);
  } else if (key == "pages") {
    read_count(value, key, o.max_region_pages, 1, 4096);
  } else if (key == "pageout") {
    read_bool(value, key, o.pageout);
  } else if (key == "ksm") {
    read_bool(value, key, o.ksm);
  } else if (key == "ksm_heavy") {
    read_bool(value, key, o.ksm_heavy);
  } else if (key == "reclaim") {
    read_bool(value, key, o.reclaim);
  } else if (key == "smaps") {
    read_bool(value, key, o.smaps);
  } else if (key == "neighbours") {
    read_bool(value, key, o.neighbours);
  } else if (key == "thp") {
    read_bool(value, key, o.thp);
  } else if (key == "thp_anon" || key == "thp_shmem") {
    if (!value.is_string()) fail(key, "not a string of sizes (\"64k,2m\", \"none\")");
    auto orders = thp_sizes_of(value.get<std::string>());
    if (!orders) fail(key, orders.error());
    (key == "thp_anon" ? o.thp_anon : o.thp_shmem) = *orders;
    o.thp = true;
  } else if (key == "collapse") {
    read_bool(value, key, o.collapse);
  } else if (key == "weights") {
    o.weights = read_weights<statement_weights>(value, key, STATEMENT_FIELDS);
  } else if (key == "mmap") {
    o.mmap_kinds = read_weights<mmap_weights>(value, key, MMAP_FIELDS);
  } else {
    fail(key,
         "not a profile key (they are: name, description, statements, processes, pages, pageout, ksm, "
         "ksm_heavy, reclaim, smaps, neighbours, thp, thp_anon, thp_shmem, collapse, weights, mmap)");
  }
}

}  // namespace

std::vector<std::string> builtin_profile_names() {
  std::vector<std::string> names;
  for (const auto& b : BUILTIN_PROFILES) names.emplace_back(b.name);
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string_view> builtin_profile_text(std::string_view name) {
  for (const auto& b : BUILTIN_PROFILES)
    if (b.name == name) return b.text;
  return std::nullopt;
}

tl::expected<generator_profile, std::string> parse_profile(std::string_view text, std::string_view where) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (j.is_discarded()) return tl::make_unexpected(fmt::format("{}: not a JSON document", where));
  if (!j.is_object()) return tl::make_unexpected(fmt::format("{}: a profile is a JSON object", where));
  generator_profile p;
  try {
    for (const auto& [key, value] : j.items()) read_key(p, key, value);
  } catch (const profile_error& e) {
    return tl::make_unexpected(fmt::format("{}: {}", where, e.message));
  }
  return p;
}

tl::expected<generator_profile, std::string> find_profile(std::string_view name_or_path) {
  const bool path = name_or_path.find('/') != std::string_view::npos || name_or_path.ends_with(".json");
  if (auto text = path ? std::nullopt : builtin_profile_text(name_or_path)) {
    auto p = parse_profile(*text, fmt::format("profile {}", name_or_path));
    if (p) p->name = name_or_path;
    if (p) p->options.profile = p->name;
    return p;
  }
  std::ifstream in{std::string(name_or_path)};
  if (!in) {
    if (path) return tl::make_unexpected(fmt::format("{}: cannot read the profile file", name_or_path));
    std::string names;
    for (const auto& n : builtin_profile_names()) names += (names.empty() ? "" : ", ") + n;
    return tl::make_unexpected(
        fmt::format("no profile named {} (built in: {}; or give a path to a profile file)", name_or_path, names));
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto p = parse_profile(text.str(), name_or_path);
  if (p && p->name.empty()) p->name = std::filesystem::path(name_or_path).stem().string();
  if (p) p->options.profile = name_or_path;  // what --profile takes to make the same again
  return p;
}

}  // namespace rmapkit::scenario
