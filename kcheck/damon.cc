#include "kcheck/damon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "kcheck/procfs.h"

namespace rmapkit::kcheck {

namespace {

/// The action of a scheme that does nothing to pages.
constexpr const char* STAT = "stat";

/// The kdamonds of @schemes, each once: each needs one `commit`.
std::set<std::string> kdamonds_of(const std::vector<damon_guard::paused_scheme>& schemes) {
  std::set<std::string> out;
  for (const auto& s : schemes) out.insert(s.kdamond);
  return out;
}

/// The numbered subdirectories DIR/0 .. DIR/(nr-1), as DIR/nr_FILE counts them.
std::vector<std::string> numbered(const std::string& dir, const char* nr_file) {
  std::vector<std::string> out;
  const std::uint64_t n = read_number(fmt::format("{}/{}", dir, nr_file));
  for (std::uint64_t i = 0; i < n; ++i) out.push_back(fmt::format("{}/{}", dir, i));
  return out;
}

/// Every scheme of every running kdamond whose action is not `stat`.
std::vector<damon_guard::paused_scheme> acting_schemes(const std::string& admin_dir) {
  std::vector<damon_guard::paused_scheme> out;
  const std::string root = admin_dir + "/kdamonds";
  if (!exists(root + "/nr_kdamonds")) return out;  // no DAMON, or no sysfs interface
  for (const auto& kd : numbered(root, "nr_kdamonds")) {
    if (trimmed(read_text(kd + "/state")) != "on") continue;
    for (const auto& ctx : numbered(kd + "/contexts", "nr_contexts"))
      for (const auto& scheme : numbered(ctx + "/schemes", "nr_schemes"))
        if (auto action = trimmed(read_text(scheme + "/action")); action != STAT) out.push_back({kd, scheme, action});
  }
  return out;
}

void write_record(const std::string& path, const std::vector<damon_guard::paused_scheme>& schemes) {
  std::string text;
  for (const auto& s : schemes) text += fmt::format("{}\t{}\t{}\n", s.kdamond, s.scheme, s.action);
  write_record_file(path, text);
}

/// A record's lines, when the record is a regular file of ours and names only schemes
/// under @admin_dir: cleanup runs as root and must not write where anyone else points it.
std::vector<damon_guard::paused_scheme> read_record(const std::string& path, const std::string& admin_dir) {
  std::vector<damon_guard::paused_scheme> out;
  if (!own_regular_file(path)) return out;
  const std::string under = admin_dir + "/kdamonds/";
  auto ours = [&](const std::string& p) { return p.rfind(under, 0) == 0 && p.find("..") == std::string::npos; };
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    damon_guard::paused_scheme s;
    if (std::getline(fields, s.kdamond, '\t') && std::getline(fields, s.scheme, '\t') &&
        std::getline(fields, s.action) && ours(s.kdamond) && ours(s.scheme))
      out.push_back(std::move(s));
  }
  return out;
}

/// Writes the saved actions back where a scheme still does `stat` (someone may have set
/// another action since), commits each kdamond once, and removes the record. Reports what
/// fails on standard error: it runs from destructors and cleanup, which must go on.
void give_back(const std::vector<damon_guard::paused_scheme>& schemes, const std::string& record) {
  for (const auto& s : schemes) {
    const std::string path = s.scheme + "/action";
    std::string now;
    try {
      now = trimmed(read_text(path));
    } catch (const std::exception&) {
      continue;  // the scheme is gone: nothing to give back
    }
    if (now != STAT) continue;
    if (int e = write_value(path, s.action))
      std::fprintf(stderr, "rmapkit: cannot give DAMON back its action %s (%s): %s\n", s.action.c_str(), path.c_str(),
                   std::strerror(e));
  }
  // A kdamond turned off meanwhile refuses `commit`; it reads the restored action when
  // it is turned on again.
  for (const auto& kd : kdamonds_of(schemes)) (void)write_value(kd + "/state", "commit");
  ::unlink(record.c_str());
}

}  // namespace

damon_guard::damon_guard(std::string admin_dir, std::string record_dir)
    : _record(fmt::format("{}/{}{}", record_dir, DAMON_RECORD_PREFIX, ::getpid())) {
  _paused = acting_schemes(admin_dir);
  if (_paused.empty()) return;
  write_record(_record, _paused);
  try {
    for (const auto& s : _paused)
      if (int e = write_value(s.scheme + "/action", STAT))
        throw std::system_error(e, std::generic_category(), fmt::format("cannot set {}/action to stat", s.scheme));
    for (const auto& kd : kdamonds_of(_paused))
      if (int e = write_value(kd + "/state", "commit"))
        throw std::system_error(
            e, std::generic_category(),
            fmt::format("cannot commit {} (DAMON must pause its schemes while the run has swap)", kd));
  } catch (...) {
    give_back(_paused, _record);
    throw;
  }
}

damon_guard::~damon_guard() {
  if (!_paused.empty()) give_back(_paused, _record);
}

void restore_stale_damon(const std::string& record_dir, const std::string& admin_dir) {
  for (const auto& name : list_dir(record_dir)) {
    // A record still named .new was never renamed into place: nothing had changed yet.
    const bool unfinished = name.ends_with(".new");
    const pid_t pid = pid_suffix(unfinished ? name.substr(0, name.size() - 4) : name, DAMON_RECORD_PREFIX);
    if (pid <= 0 || pid_alive(pid)) continue;
    const std::string path = record_dir + "/" + name;
    if (unfinished) ::unlink(path.c_str());
    else give_back(read_record(path, admin_dir), path);
  }
}

}  // namespace rmapkit::kcheck
