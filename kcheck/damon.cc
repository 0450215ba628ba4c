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
/// A kdamond's running state, and a record line's word for a kdamond turned off.
constexpr const char* ON = "on";

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

/// Every kdamond whose state is `on`.
std::vector<std::string> running_kdamonds(const std::string& admin_dir) {
  std::vector<std::string> out;
  const std::string root = admin_dir + "/kdamonds";
  if (!exists(root + "/nr_kdamonds")) return out;  // no DAMON, or no sysfs interface
  for (const auto& kd : numbered(root, "nr_kdamonds"))
    if (trimmed(read_text(kd + "/state")) == ON) out.push_back(kd);
  return out;
}

/// Every scheme of every running kdamond whose action is not `stat`.
std::vector<damon_guard::paused_scheme> acting_schemes(const std::string& admin_dir) {
  std::vector<damon_guard::paused_scheme> out;
  for (const auto& kd : running_kdamonds(admin_dir))
    for (const auto& ctx : numbered(kd + "/contexts", "nr_contexts"))
      for (const auto& scheme : numbered(ctx + "/schemes", "nr_schemes"))
        if (auto action = trimmed(read_text(scheme + "/action")); action != STAT) out.push_back({kd, scheme, action});
  return out;
}

void write_record(const std::string& path, const damon_guard::held& held) {
  std::string text;
  for (const auto& s : held.schemes) text += fmt::format("{}\t{}\t{}\n", s.kdamond, s.scheme, s.action);
  for (const auto& kd : held.kdamonds) text += fmt::format("{}\t{}\n", kd, ON);
  write_record_file(path, text);
}

/// A record's lines, when the record is a regular file of ours and names only kdamonds and
/// schemes under @admin_dir: cleanup runs as root and must not write where anyone else
/// points it.
damon_guard::held read_record(const std::string& path, const std::string& admin_dir) {
  damon_guard::held out;
  if (!own_regular_file(path)) return out;
  const std::string under = admin_dir + "/kdamonds/";
  auto ours = [&](const std::string& p) { return p.rfind(under, 0) == 0 && p.find("..") == std::string::npos; };
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::istringstream split(line);
    for (std::string f; std::getline(split, f, '\t');) fields.push_back(std::move(f));
    if (fields.size() == 3 && ours(fields[0]) && ours(fields[1]))
      out.schemes.push_back({std::move(fields[0]), std::move(fields[1]), std::move(fields[2])});
    else if (fields.size() == 2 && fields[1] == ON && ours(fields[0])) out.kdamonds.push_back(std::move(fields[0]));
  }
  return out;
}

/// Writes the saved actions back where a scheme still does `stat` (someone may have set
/// another action since).
void give_back_actions(const std::vector<damon_guard::paused_scheme>& schemes) {
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
}

/// Turns back on the kdamonds that are still off (someone may have turned one on since).
void restart(const std::vector<std::string>& kdamonds) {
  for (const auto& kd : kdamonds) {
    const std::string path = kd + "/state";
    try {
      if (trimmed(read_text(path)) != "off") continue;
    } catch (const std::exception&) {
      continue;  // the kdamond is gone
    }
    if (int e = write_value(path, ON))
      std::fprintf(stderr, "rmapkit: cannot turn DAMON's %s back on: %s\n", kd.c_str(), std::strerror(e));
  }
}

/// Gives back what @held says was changed, and removes the record. Reports what fails on
/// standard error: it runs from destructors and cleanup, which must go on.
void give_back(const damon_guard::held& held, const std::string& record) {
  give_back_actions(held.schemes);
  // A kdamond turned on reads every parameter, the actions given back included.
  restart(held.kdamonds);
  // A kdamond turned off meanwhile refuses `commit`; it reads the restored action when
  // it is turned on again.
  for (const auto& kd : kdamonds_of(held.schemes)) (void)write_value(kd + "/state", "commit");
  ::unlink(record.c_str());
}

void pause_actions(const std::vector<damon_guard::paused_scheme>& schemes) {
  for (const auto& s : schemes)
    if (int e = write_value(s.scheme + "/action", STAT))
      throw std::system_error(e, std::generic_category(), fmt::format("cannot set {}/action to stat", s.scheme));
  for (const auto& kd : kdamonds_of(schemes))
    if (int e = write_value(kd + "/state", "commit"))
      throw std::system_error(
          e, std::generic_category(),
          fmt::format("cannot commit {} (DAMON must pause its schemes while the run has swap)", kd));
}

void stop(const std::vector<std::string>& kdamonds) {
  for (const auto& kd : kdamonds)
    if (int e = write_value(kd + "/state", "off"))
      throw std::system_error(
          e, std::generic_category(),
          fmt::format("cannot turn {} off (DAMON must not sample accessed bits while a run prints smaps figures)", kd));
}

}  // namespace

damon_guard::damon_guard(damon_hold hold, std::string admin_dir, std::string record_dir)
    : _record(fmt::format("{}/{}{}", record_dir, DAMON_RECORD_PREFIX, ::getpid())) {
  if (hold == damon_hold::monitoring) _held.kdamonds = running_kdamonds(admin_dir);
  else _held.schemes = acting_schemes(admin_dir);
  if (_held.empty()) return;
  write_record(_record, _held);
  try {
    if (hold == damon_hold::monitoring) stop(_held.kdamonds);
    else pause_actions(_held.schemes);
  } catch (...) {
    give_back(_held, _record);
    throw;
  }
}

damon_guard::~damon_guard() {
  if (!_held.empty()) give_back(_held, _record);
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
