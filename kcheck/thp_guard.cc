// The THP knobs of a version 2 run (docs/scenario-format.md, "Version 2"); the recipe is
// the one that made every large-folio behaviour repeatable on the project kernel.
#include "kcheck/thp_guard.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kcheck/host_guards.h"
#include "kcheck/procfs.h"

namespace rmapkit::kcheck {

namespace sc = rmapkit::scenario;

namespace {

/// `hugepages-64kB` for order 4.
std::string size_dir(unsigned order) { return fmt::format("hugepages-{}kB", (std::uint64_t{4} << order)); }

/// The order of a `hugepages-NkB` directory, or -1.
int order_of_dir(const std::string& name) {
  for (unsigned o = 1; o <= 12; ++o)
    if (name == size_dir(o)) return static_cast<int>(o);
  return -1;
}

/// A selector knob shows its choices with the current one in brackets: "always [madvise] never".
std::string current_value(const std::string& text) {
  auto open = text.find('[');
  auto close = text.find(']', open);
  if (open != std::string::npos && close != std::string::npos) return text.substr(open + 1, close - open - 1);
  return trimmed(text);
}

/// Only knob names and values of the shapes a run writes are ever read back from a record.
bool recordable_knob(const std::string& k) {
  if (k == "enabled" || k == "defrag" || k == "use_zero_page" || k == "shmem_enabled" || k == "anon_beside_full" ||
      k == "shrink_underused")
    return true;
  auto slash = k.find('/');
  if (slash == std::string::npos || order_of_dir(k.substr(0, slash)) < 0) return false;
  auto leaf = k.substr(slash + 1);
  return leaf == "enabled" || leaf == "shmem_enabled";
}
bool recordable_value(const std::string& v) {
  return !v.empty() && v.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_+") == std::string::npos;
}

std::vector<std::pair<std::string, std::string>> read_record(const std::string& path) {
  return read_record_lines(path, [](const std::string& knob, const std::string& value) {
    return recordable_knob(knob) && recordable_value(value);
  });
}

/// Writes @saved back under @dir in reverse order of setting; the knobs it could not write.
std::vector<std::string> write_back(const std::string& dir,
                                    const std::vector<std::pair<std::string, std::string>>& saved) {
  std::vector<std::string> failed;
  for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
    const auto path = dir + "/" + it->first;
    if (!exists(path) || current_value(read_text(path)) == it->second) continue;  // gone with its kernel, or as it was
    if (int e = write_value(path, it->second))
      failed.push_back(fmt::format("{}={} ({})", it->first, it->second, std::strerror(e)));
  }
  return failed;
}

std::string sizes_or_none(std::uint16_t orders) { return sc::thp_sizes_text(orders); }

}  // namespace

thp_offer thp_offered(const std::string& thp_dir) {
  thp_offer out;
  for (const auto& name : list_dir(thp_dir)) {
    const int o = order_of_dir(name);
    if (o < 0) continue;
    const auto bit = static_cast<std::uint16_t>(1U << o);
    if (exists(thp_dir + "/" + name + "/enabled")) out.anon_orders = static_cast<std::uint16_t>(out.anon_orders | bit);
    if (exists(thp_dir + "/" + name + "/shmem_enabled"))
      out.shmem_orders = static_cast<std::uint16_t>(out.shmem_orders | bit);
  }
  return out;
}

std::string thp_unavailable(const sc::op_thp& want, const thp_offer& have) {
  std::vector<std::string> missing;
  for (const auto& sz : sc::THP_SIZES) {
    const auto bit = 1U << sz.order;
    if ((want.anon_orders & bit) && !(have.anon_orders & bit)) missing.push_back(fmt::format("anonymous {}", sz.name));
    if ((want.shmem_orders & bit) && !(have.shmem_orders & bit)) missing.push_back(fmt::format("shmem {}", sz.name));
  }
  if (missing.empty()) return {};
  // The format's sizes only: shmem's 8k is the kernel's, not the language's.
  constexpr std::uint16_t format_sizes = 0x3fc;
  return fmt::format("thp: this kernel has no {} folios; it offers anon={} shmem={}", fmt::join(missing, ", "),
                     sizes_or_none(have.anon_orders & format_sizes), sizes_or_none(have.shmem_orders & format_sizes));
}

thp_counters read_thp_counters(const std::string& thp_dir) {
  static constexpr const char* vmstat_names[] = {"thp_fault_fallback", "pgscan_kswapd",     "pgscan_direct",
                                                 "drop_slab",          "pgmigrate_success", "compact_migrate_scanned",
                                                 "thp_migration_split"};
  thp_counters out;
  std::istringstream vm(read_text("/proc/vmstat"));
  std::string name;
  std::uint64_t value = 0;
  while (vm >> name >> value)
    if (std::find_if(std::begin(vmstat_names), std::end(vmstat_names), [&](const char* n) { return name == n; }) !=
        std::end(vmstat_names))
      out[name] = value;
  if (exists(thp_dir + "/khugepaged/pages_collapsed"))
    out["khugepaged/pages_collapsed"] = read_number(thp_dir + "/khugepaged/pages_collapsed");
  std::uint64_t fallback = 0;
  for (const auto& dir : list_dir(thp_dir))
    if (order_of_dir(dir) >= 0 && exists(thp_dir + "/" + dir + "/stats/anon_fault_fallback"))
      fallback += read_number(thp_dir + "/" + dir + "/stats/anon_fault_fallback");
  out["anon_fault_fallback"] = fallback;
  return out;
}

std::vector<std::string> moved(const thp_counters& before, const thp_counters& after,
                               const std::vector<std::string>& ignore) {
  std::vector<std::string> out;
  for (const auto& [name, v] : after) {
    if (std::find(ignore.begin(), ignore.end(), name) != ignore.end()) continue;
    auto it = before.find(name);
    if (it == before.end() || v == it->second) continue;
    // Counters only grow; one that went down was reset (a write to it): say so as it is.
    if (v > it->second) out.push_back(fmt::format("{} +{}", name, v - it->second));
    else out.push_back(fmt::format("{} -{}", name, it->second - v));
  }
  return out;
}

thp_guard::thp_guard(const sc::op_thp& sizes, std::string thp_dir, std::string record_dir)
    : _dir(std::move(thp_dir)), _record(fmt::format("{}/{}{}", record_dir, THP_RECORD_PREFIX, ::getpid())) {
  if (!exists(_dir + "/enabled"))
    throw sc::statement_error(fmt::format("thp: this kernel has no transparent huge pages ({} is missing)", _dir));
  if (auto why = thp_unavailable(sizes, thp_offered(_dir)); !why.empty()) throw sc::statement_error(why);
  try {
    set("enabled", "madvise");
    set("defrag", "madvise");  // direct compaction for MADV_HUGEPAGE regions: no fallback
    set("use_zero_page", "1");
    // Vendor and newer knobs, where they exist: a 64k folio only beside a full block, and
    // the deferred-split shrinker splitting underused PMD folios, both change the rule.
    if (exists(_dir + "/anon_beside_full")) set("anon_beside_full", "0");
    if (exists(_dir + "/shrink_underused")) set("shrink_underused", "0");
    const auto offer = thp_offered(_dir);
    for (unsigned o = 1; o <= sc::PMD_ORDER; ++o) {
      const auto bit = 1U << o;
      if (offer.anon_orders & bit) set(size_dir(o) + "/enabled", (sizes.anon_orders & bit) ? "madvise" : "never");
      if (offer.shmem_orders & bit)
        set(size_dir(o) + "/shmem_enabled", (sizes.shmem_orders & bit) ? "advise" : "never");
    }
    // The top-level shmem knob is the PMD size's policy for sizes left at `inherit`.
    set("shmem_enabled", (sizes.shmem_orders & (1U << sc::PMD_ORDER)) ? "advise" : "never");
  } catch (...) {
    restore();
    throw;
  }
}

void thp_guard::set(const std::string& knob, const std::string& value) {
  const auto path = _dir + "/" + knob;
  const auto now = current_value(read_text(path));
  if (now == value) return;  // an unneeded write can wake khugepaged (start_stop_khugepaged)
  if (!_saved.count(knob)) {
    _saved[knob] = now;
    _order.push_back(knob);
    std::string text;
    for (const auto& k : _order) text += k + "=" + _saved[k] + "\n";
    write_record_file(_record, text);
  }
  if (int e = write_value(path, value))
    throw std::system_error(e, std::generic_category(), fmt::format("cannot write {} to {}", value, path));
}

thp_guard::~thp_guard() { restore(); }

void thp_guard::restore() noexcept {
  std::vector<std::pair<std::string, std::string>> saved;
  for (const auto& k : _order) saved.emplace_back(k, _saved[k]);
  std::vector<std::string> failed;
  try {
    failed = write_back(_dir, saved);
  } catch (const std::exception& e) {
    failed.push_back(e.what());
  }
  for (const auto& f : failed) std::fprintf(stderr, "rmapkit: cannot restore THP's %s\n", f.c_str());
  if (failed.empty()) ::unlink(_record.c_str());  // else the next run tries again
}

bool stale_thp_exists(const std::string& record_dir) {
  for (const auto& name : list_dir(record_dir))
    if (pid_t pid = pid_suffix(name, THP_RECORD_PREFIX); pid > 0 && !pid_alive(pid)) return true;
  return false;
}

void restore_stale_thp(const std::string& thp_dir, const std::string& record_dir) {
  restore_stale_knobs(record_dir, THP_RECORD_PREFIX, thp_dir, "THP",
                      [&](const std::string& record) { return write_back(thp_dir, read_record(record)); });
}

}  // namespace rmapkit::kcheck
