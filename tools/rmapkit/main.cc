// rmapkit: the command-line tool. It parses arguments and prints; the work is done by the
// libraries (model, kcheck, scenario, and the design lab for diff, compare and bench).
//   rmapkit run FILE      run a scenario on the model and print its report
//   rmapkit kernel FILE   run a scenario on the live kernel and print its report
//   rmapkit diff FILE     run both and print a unified diff of the reports
//   rmapkit gen ...       write a scenario (random, or a workload that made rmap history)
//   rmapkit compare FILE  run a scenario (or replay a trace) under every rmap design; print their costs
//   rmapkit bench FILE    time a scenario's statements per kind (bench.cc)
//   rmapkit lint FILE     check a scenario without running it
//   rmapkit show FILE     the model's reverse map after a statement (show.cc)
//   rmapkit walk FILE     one rmap walk of a frame, step by step (show.cc)
//   rmapkit html FILE     a page that steps through the scenario in a browser (html.cc)
//   rmapkit fuzz          a differential campaign, failures minimised (fuzz.cc)
//   rmapkit record CMD    record a command's memory behaviour as a trace (replay.cc)
//   rmapkit replay FILE   replay a trace (.rtrace) on the model, checking its snapshots (replay.cc)
//   rmapkit rtrace ...    make a trace from a scenario; convert a trace between text and binary
// With --json, run, kernel, diff, compare, bench and lint print one JSON document instead
// (docs/json.md), built by the libraries' json.h.
#include <csignal>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench.h"
#include "compare.h"
#include "fuzz.h"
#include "html.h"
#include "progress.h"
#include "replay.h"
#include "rmapkit/kcheck/json.h"
#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/lab/compare.h"
#include "rmapkit/lab/diff.h"
#include "rmapkit/lab/json.h"
#include "rmapkit/model/json.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/json.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/profile.h"
#include "rmapkit/scenario/program.h"
#include "rmapkit/scenario/workloads.h"
#include "rmapkit/version.h"
#include "show.h"

namespace {

namespace sc = rmapkit::scenario;

/// Parses and resolves @path; returns nothing on bad input, whose diag goes to @errors
/// when given (--json), else to standard error.
std::optional<sc::program> load(const std::string& path, std::vector<sc::diag>* errors = nullptr) {
  auto fail = [&](const sc::diag& d) {
    if (errors) errors->push_back(d);
    else std::cerr << d.str() << '\n';
    return std::nullopt;
  };
  auto parsed = sc::parse_file(path);
  if (!parsed) return fail(parsed.error());
  auto prog = sc::resolve(*parsed);
  if (!prog) return fail(prog.error());
  return std::move(*prog);
}

// --json (docs/json.md): every command prints one document on standard output, also when
// it fails, and exits with the status it has without --json.

void add_json_flag(CLI::App& sub, bool& json) {
  sub.add_flag("--json", json, "print one JSON document (docs/json.md), errors included, instead of text");
}

/// Loads @file for @command --json; when it does not load, prints the error document.
std::optional<sc::program> load_json(std::string_view command, const std::string& file) {
  std::vector<sc::diag> errors;
  auto prog = load(file, &errors);
  if (!prog) std::cout << sc::dump(sc::error_document(command, file, errors));
  return prog;
}

/// --smaps: every `check` also prints each VMA's smaps figures (as `report smaps` does).
void add_smaps_flag(CLI::App& sub, bool& smaps) {
  sub.add_flag("--smaps", smaps,
               "every check also prints each VMA's /proc/PID/smaps figures (as 'report smaps' in the scenario does)");
}

/// --smaps and --page-flags: what every `check` adds (as `report smaps flags` does).
struct report_extras {
  bool smaps = false, flags = false;
};

void add_report_flags(CLI::App& sub, report_extras& x) {
  add_smaps_flag(sub, x.smaps);
  sub.add_flag("--page-flags", x.flags,
               "every check also prints each frame's referenced, dirty, lru, active, unevictable and mlocked flags "
               "(as 'report flags' in the scenario does)");
}

/// @prog with --smaps and --page-flags applied.
std::optional<sc::program> with_extras(std::optional<sc::program> prog, const report_extras& x) {
  if (prog && x.smaps) sc::report_smaps_everywhere(*prog);
  if (prog && x.flags) sc::report_flags_everywhere(*prog);
  return prog;
}

/// Dies of @sig, as an interrupted program should, once everything is restored.
void die_of(int sig) {
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

/// --design's check: an anonymous design, optionally +FILE (mm::parse_design()).
CLI::Validator design_names() {
  return CLI::Validator(
      [](std::string& name) -> std::string {
        try {
          (void)rmapkit::mm::parse_design(name);
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "ANON[+FILE]");
}

/// A subcommand: what it does once its arguments are parsed.
struct command {
  const CLI::App* app;
  std::function<int()> action;
};

void add_file(CLI::App& sub, std::string& file, const char* what = "scenario file (.rmap), or - for standard input") {
  sub.add_option("FILE", file, what)->required();
}

/// Where a run that waits for the machine lock says so: standard error, also with --json
/// (the notice is not one of the scenario's errors).
void tell_lock_wait(const std::string& what) { std::cerr << "rmapkit: " << what << '\n' << std::flush; }

/// --no-wait, and the notice of a wait.
void add_lock_options(CLI::App& sub, rmapkit::kcheck::run_options& opts) {
  sub.add_flag("!--no-wait", opts.wait_for_lock,
               "when another run holds the machine lock, exit at once with status 75 instead of waiting");
  opts.on_lock_wait = tell_lock_wait;
}

/// --kmem-counts: the scenario's own share of @run's counts (lab::kernel_scenario_share()),
/// not the runner's agents' allocations; nothing, with the reason on @err, when it cannot
/// be had.
std::optional<sc::kmem_counts> kmem_share(const sc::program& prog, const sc::kmem_counts& run,
                                          const rmapkit::kcheck::run_options& kopts, std::ostream& err) {
  rmapkit::lab::compare_options opts;
  opts.on_lock_wait = kopts.on_lock_wait;
  return rmapkit::lab::kernel_scenario_share(run, prog, opts, err);
}

sc::kmem_counts kmem_of(const nlohmann::json& j) {
  return {j["anon_vma"]["allocated"].get<std::uint64_t>(), j["anon_vma"]["freed"].get<std::uint64_t>(),
          j["anon_vma_chain"]["allocated"].get<std::uint64_t>(), j["anon_vma_chain"]["freed"].get<std::uint64_t>()};
}

int kernel_json(const std::string& file, const rmapkit::kcheck::run_options& opts, const report_extras& extras) {
  auto prog = with_extras(load_json("kernel", file), extras);
  if (!prog) return sc::EXIT_SCENARIO_ERROR;
  auto res = rmapkit::kcheck::run_json(*prog, opts);
  if (res.exit_code == 0 && res.document.contains("kmem")) {
    std::ostringstream why;
    auto share = kmem_share(*prog, kmem_of(res.document["kmem"]), opts, why);
    if (share) {
      res.document["kmem"] = sc::to_json(*share);
    } else {
      res.document.erase("kmem");
      for (const auto& d : sc::parse_diags(why.str(), prog->file)) res.document["errors"].push_back(sc::to_json(d));
      res.exit_code = sc::EXIT_SCENARIO_ERROR;
    }
  }
  std::cout << sc::dump(res.document) << std::flush;
  if (res.signal) die_of(res.signal);
  return res.exit_code;
}

command add_kernel(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::kcheck::run_options opts;
    bool json = false;
    report_extras extras;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("kernel", "Run a scenario on the live kernel (as root) and print its report");
  add_file(*sub, a->file);
  auto* trace = sub->add_flag("--trace", a->opts.trace, "print each statement to standard error before it runs");
  sub->add_flag("--kmem-counts", a->opts.kmem_counts,
                "at the end, print the anon_vma and anon_vma_chain objects the scenario allocated and freed "
                "(kmem tracepoints; a second run of its spawns, forks and exits alone gives the runner's own, "
                "which are subtracted)");
  sub->add_flag("--ksm-counters", a->opts.ksm_counters,
                "after each ksm, print /sys/kernel/mm/ksm's counters to standard error");
  add_report_flags(*sub, a->extras);
  sub->add_option("--swap-dir", a->opts.swap_dir,
                  "directory for the temporary swap file (a file system that supports swap files)")
      ->capture_default_str();
  add_lock_options(*sub, a->opts);
  sub->add_flag("--allow-large", a->opts.allow_large,
                "run a scenario beyond the resource caps (1 GiB of memory, 1024 processes alive at once)");
  add_json_flag(*sub, a->json);
  sub->get_option("--json")->excludes(trace);
  return {sub, [a] {
            if (a->json) return kernel_json(a->file, a->opts, a->extras);
            auto prog = with_extras(load(a->file), a->extras);
            if (!prog) return sc::EXIT_SCENARIO_ERROR;
            rmapkit::tool::progress_scope progress("kernel", prog->ops.size());
            auto opts = a->opts;
            opts.before_statement = progress.before_statement();
            std::optional<sc::kmem_counts> kmem;
            opts.on_kmem_counts = [&](const sc::kmem_counts& k) { kmem = k; };
            auto res = rmapkit::kcheck::run(*prog, progress.out(), progress.err(), opts);
            if (res.signal) die_of(res.signal);
            if (res.exit_code != 0 || !kmem) return res.exit_code;
            const auto share = kmem_share(*prog, *kmem, opts, std::cerr);
            if (!share) return sc::EXIT_SCENARIO_ERROR;
            std::cerr << sc::format(*share);
            return 0;
          }};
}

command add_run(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::model::run_options opts;
    bool json = false;
    report_extras extras;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("run", "Run a scenario on the model and print its report");
  add_file(*sub, a->file);
  sub->add_flag("--check-invariants,!--no-check-invariants", a->opts.check_invariants,
                "check every invariant of the model after every statement (default in debug builds)");
  sub->add_flag("--migrate-everything", a->opts.migrate_everything,
                "migrate every frame after every statement (reports must not change)");
  sub->add_flag("--stats", a->opts.stats, "print the model's event counters (vmstat names) to standard error");
  sub->add_flag("--ksm-counters", a->opts.ksm_counters,
                "after each ksm, print the model's KSM counters to standard error");
  add_report_flags(*sub, a->extras);
  sub->add_option("--design", a->opts.design,
                  "rmap design of the model: ANON[+FILE], as linux-2.6.7+prio-tree (docs/designs.md)")
      ->check(design_names())
      ->capture_default_str();
  add_json_flag(*sub, a->json);
  return {sub, [a] {
            if (a->json) {
              auto prog = with_extras(load_json("run", a->file), a->extras);
              if (!prog) return sc::EXIT_SCENARIO_ERROR;
              auto res = rmapkit::model::run_json(*prog, a->opts);
              std::cout << sc::dump(res.document);
              return res.exit_code;
            }
            auto prog = with_extras(load(a->file), a->extras);
            if (!prog) return sc::EXIT_SCENARIO_ERROR;
            rmapkit::tool::progress_scope progress("model", prog->ops.size());
            auto opts = a->opts;
            opts.before_statement = progress.before_statement();
            return rmapkit::model::run(*prog, progress.out(), progress.err(), opts);
          }};
}

/// lab::diff() with a bar for each back end while it runs (standard error, a terminal).
rmapkit::lab::diff_result diff_with_progress(const sc::program& prog, rmapkit::model::run_options mopts,
                                             rmapkit::kcheck::run_options kopts) {
  const bool tty = rmapkit::tool::is_terminal_stderr();
  rmapkit::tool::progress_bar model("model", prog.ops.size(), std::cerr, tty);
  rmapkit::tool::progress_bar kernel("kernel", prog.ops.size(), std::cerr, tty);
  mopts.before_statement = [&](std::size_t done) { model.update(done); };
  kopts.before_statement = [&](std::size_t done) {
    model.clear();
    kernel.update(done);
  };
  auto res = rmapkit::lab::diff(prog, mopts, kopts);
  model.clear();
  kernel.clear();
  return res;
}

int print_diff(const sc::program& prog, const rmapkit::model::run_options& mopts,
               const rmapkit::kcheck::run_options& kopts, bool json) {
  auto refuse = [&](const sc::diag& d) {
    if (json) std::cout << sc::dump(sc::error_document("diff", prog.file, std::span(&d, 1)));
    else std::cerr << "rmapkit diff: " << d.message << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  };
  // Without the model's side there is nothing to compare: where it stops at something it
  // does not model yet (large folios it has not), the kernel need not run at all.
  if (prog.thp)
    if (auto d = rmapkit::model::not_modelled_in(prog, mopts))
      return refuse(
          {d->file, d->line,
           fmt::format("the model stops at line {}, so there is nothing to compare: {}", d->line, d->message)});
  // Nor without the kernel's: its failure is not a report.
  if (auto why = rmapkit::kcheck::missing_privileges())
    return refuse({prog.file, 0, "the kernel side cannot run, so there is nothing to compare: " + *why});
  const auto res = diff_with_progress(prog, mopts, kopts);
  if (json) {
    std::cout << sc::dump(rmapkit::lab::diff_document(prog, res)) << std::flush;
    if (res.signal) die_of(res.signal);
    return res.exit_code();
  }
  if (res.signal) {
    std::cerr << res.kernel.errors;
    die_of(res.signal);
    return res.exit_code();
  }
  if (!res.agree) {
    std::cout << res.unified;
  } else if (res.kernel.exit_code != 0) {
    std::cerr << res.kernel.errors;  // both refused the scenario in the same way
  } else {
    std::cerr << "rmapkit diff: the model and the kernel agree on " << prog.file << '\n';
  }
  return res.exit_code();
}

command add_diff(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::model::run_options opts;
    rmapkit::kcheck::run_options kopts;
    bool json = false;
    report_extras extras;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("diff",
                                 "Run a scenario on the model and on the kernel; print a unified diff "
                                 "of the reports (exit 1 when they differ)");
  add_file(*sub, a->file, "scenario file (.rmap)");
  sub->add_flag("--check-invariants,!--no-check-invariants", a->opts.check_invariants,
                "check the model's invariants after every statement");
  sub->add_option("--design", a->opts.design,
                  "rmap design of the model: ANON[+FILE], as linux-2.6.7+prio-tree (docs/designs.md)")
      ->check(design_names())
      ->capture_default_str();
  sub->add_flag("--ksm-counters", a->opts.ksm_counters,
                "compare the KSM counters too: after each ksm, both sides print them into the report");
  add_report_flags(*sub, a->extras);
  add_lock_options(*sub, a->kopts);
  add_json_flag(*sub, a->json);
  return {sub, [a] {
            auto prog = with_extras(a->json ? load_json("diff", a->file) : load(a->file), a->extras);
            return prog ? print_diff(*prog, a->opts, a->kopts, a->json) : sc::EXIT_SCENARIO_ERROR;
          }};
}

/// A `gen` subcommand that writes @generate(@opts).
template <typename Options, typename Generate>
command gen_command(CLI::App* sub, std::shared_ptr<Options> opts, Generate generate) {
  return {sub, [sub, opts, generate] {
            try {
              std::cout << generate(*opts);
            } catch (const std::invalid_argument& e) {  // sizes that do not fit together
              std::cerr << fmt::format("rmapkit gen {}: {}\n", sub->get_name(), e.what());
              return sc::EXIT_SCENARIO_ERROR;
            }
            return 0;
          }};
}

/// @base (a profile's options) with those of @given that were written on @sub's command
/// line.
sc::random_options with_options_given(sc::random_options base, const sc::random_options& given, const CLI::App& sub) {
  base.seed = given.seed;
  if (sub.count("--statements")) base.statements = given.statements;
  if (sub.count("--processes")) base.max_processes = given.max_processes;
  if (sub.count("--pages")) base.max_region_pages = given.max_region_pages;
  if (sub.count("--no-pageout")) base.pageout = false;
  if (sub.count("--ksm")) base.ksm = true;
  if (sub.count("--ksm-heavy")) base.ksm_heavy = true;
  if (sub.count("--reclaim")) base.reclaim = true;
  if (sub.count("--smaps")) base.smaps = true;
  if (sub.count("--neighbours")) base.neighbours = true;
  if (sub.count("--thp")) base.thp = true;
  if (sub.count("--thp-anon")) base.thp_anon = given.thp_anon;
  if (sub.count("--thp-shmem")) base.thp_shmem = given.thp_shmem;
  if (sub.count("--no-collapse")) base.collapse = false;
  if (base.thp_anon || base.thp_shmem) base.thp = true;
  return base;
}

command add_gen_random(CLI::App& gen) {
  auto o = std::make_shared<sc::random_options>();
  auto* sub = gen.add_subcommand("random", "A random valid scenario, reproducible from its seed");
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  sub->add_option("--statements", o->statements, "number of statements")
      ->capture_default_str()
      ->check(CLI::Range(1U, 10000000U));
  sub->add_option("--processes", o->max_processes, "live processes at most")
      ->capture_default_str()
      ->check(CLI::Range(1U, 64U));
  sub->add_option("--pages", o->max_region_pages, "largest region mmap creates")
      ->capture_default_str()
      ->check(CLI::Range(1U, 4096U));
  sub->add_flag("!--no-pageout", o->pageout, "leave out madvise pageout");
  sub->add_flag("--ksm", o->ksm, "include mergeable, unmergeable and ksm");
  sub->add_flag("--ksm-heavy", o->ksm_heavy,
                "aim at where KSM is hard (implies --ksm): half the regions of 100-320 pages written with a "
                "few values, so chains of dups form and refill; ksm and ksm prune often");
  sub->add_flag("--reclaim", o->reclaim, "include reclaim");
  sub->add_flag("--smaps", o->smaps,
                "start with 'report smaps' (every check prints smaps figures) and include clear_refs");
  sub->add_flag("--neighbours", o->neighbours,
                "half the mmaps map into an existing region (mmap R[i:j]: next to its VMAs, over them, past its "
                "end), and protections include rx and rwx");
  sub->add_flag("--thp", o->thp,
                "scenario format version 2: a thp line with random sizes, most regions huge and some of PMD size, "
                "madvise collapse and shrink (the model runs what it models: see --thp-anon)");
  auto thp_sizes = [](std::optional<std::uint16_t>& into) {
    return [&into](const std::string& text) {
      auto orders = sc::thp_sizes_of(text);
      if (!orders) throw CLI::ValidationError(orders.error());
      into = *orders;
    };
  };
  sub->add_option_function<std::string>(
         "--thp-anon", thp_sizes(o->thp_anon),
         "with --thp (implied): these anonymous sizes, not random ones (\"16k,64k\", "
         "\"none\"); collapse only with 2m among them. Without --thp-shmem, --neighbours, "
         "--ksm or --reclaim, --thp-anon writes only what the model runs")
      ->type_name("SIZES");
  sub->add_option_function<std::string>("--thp-shmem", thp_sizes(o->thp_shmem),
                                        "with --thp (implied): these shmem sizes, not random ones (none unless given "
                                        "with --thp-anon)")
      ->type_name("SIZES");
  sub->add_flag("!--no-collapse", o->collapse, "with --thp: leave out madvise collapse");
  auto profile = std::make_shared<std::string>();
  sub->add_option("--profile", *profile,
                  "start from a generator profile: a built-in one (rmapkit fuzz profiles) or a file "
                  "(docs/fuzzing.md); the options given beside it override it");
  return {sub, [o, profile, sub] {
            auto opts = *o;
            if (!profile->empty()) {
              auto p = sc::find_profile(*profile);
              if (!p) {
                std::cerr << "rmapkit gen random: --profile: " << p.error() << '\n';
                return sc::EXIT_SCENARIO_ERROR;
              }
              opts = with_options_given(p->options, *o, *sub);
            }
            std::cout << sc::generate_random(opts);
            return 0;
          }};
}

void add_fuzz(CLI::App& app, std::vector<command>& commands) {
  auto a = std::make_shared<rmapkit::tool::fuzz_args>();
  auto* fuzz = app.add_subcommand(
      "fuzz",
      "Differential campaign: random scenarios on the model and on the kernel (or model-only, the designs "
      "against each other), every disagreement minimised to a short case (docs/fuzzing.md)");
  fuzz->require_subcommand(0, 1);
  auto* seeds = fuzz->add_option("--seeds", a->seeds, "the campaign's seeds, A..B (both included)");
  fuzz->add_option("--count", a->count, "the campaign's seeds are 0..N-1 (default: 100)")->excludes(seeds);
  fuzz->add_option("--profile", a->profiles,
                   "generator profiles, comma-separated: built-in names (rmapkit fuzz profiles) or files; each "
                   "seed runs under each")
      ->delimiter(',')
      ->capture_default_str();
  fuzz->add_option("--shard", a->shard, "run shard I of N: seeds first+I, first+I+N, ...")->capture_default_str();
  fuzz->add_option("--out", a->opts.out_dir, "folder of the records (JSON Lines) and the cases")->capture_default_str();
  fuzz->add_option("--time-limit", a->time_limit,
                   "start no scenario after S seconds; a rerun into the same folder does the rest");
  auto* kernel = fuzz->add_flag("--kernel", a->kernel, "the model against the live kernel (the default; root)");
  fuzz->add_flag("--model-only", a->model_only,
                 "no kernel: the model under every design (or --design), invariants checked, designs compared")
      ->excludes(kernel);
  fuzz->add_option("--design", a->design, "the model's design (default: linux-6; model-only: every design)");
  fuzz->add_flag("!--no-minimize", a->opts.minimize, "save failing scenarios whole, without minimising them");
  fuzz->add_flag("--quiet", a->quiet, "no progress lines, only failures and the summary");
  fuzz->add_flag("--smaps", a->smaps,
                 "every profile with smaps on (gen random --smaps): its scenarios print and compare smaps figures "
                 "and clear accessed bits; profile NAME becomes NAME+smaps");
  fuzz->add_option("--plant-fault", a->plant, "test only: run a model with a planted fault")->group("");
  add_lock_options(*fuzz, a->opts.kernel);

  auto dirs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto* report = fuzz->add_subcommand("report",
                                      "Merge the records of campaigns and shards: counts per kernel "
                                      "release, profile and outcome, and the cases");
  report->add_option("DIR", *dirs, "folders of fuzz records (--out of each shard)")->required();
  report->add_flag("--json", *json, "print the report as one JSON document");
  commands.push_back(
      {report, [dirs, json] { return rmapkit::tool::cmd_fuzz_report(*dirs, *json, std::cout, std::cerr); }});

  auto name = std::make_shared<std::optional<std::string>>();
  auto* profiles = fuzz->add_subcommand("profiles", "List the built-in generator profiles, or print one to copy");
  profiles->add_option("NAME", *name, "the profile to print");
  commands.push_back({profiles, [name] { return rmapkit::tool::cmd_fuzz_profiles(*name, std::cout, std::cerr); }});

  commands.push_back({fuzz, [a] {
                        int sig = 0;
                        int rc = rmapkit::tool::cmd_fuzz(*a, std::cout, std::cerr, sig);
                        if (sig) die_of(sig);
                        return rc;
                      }});
}

// The workloads that made rmap history (docs/designs.md).
const auto count_range = CLI::Range(1U, 1000000U);
const auto pages_range = CLI::Range(1U, static_cast<unsigned>(sc::MAX_REGION_PAGES));

command add_gen_fanout(CLI::App& gen) {
  auto o = std::make_shared<sc::fanout_options>();
  auto* sub = gen.add_subcommand("fanout", "N-way fork fan-out with COW, then reclaim (AIM7, 2010)");
  sub->add_option("--children", o->children, "children forked")->capture_default_str()->check(count_range);
  sub->add_option("--vmas", o->vmas, "anonymous regions in the parent")->capture_default_str()->check(count_range);
  sub->add_option("--pages", o->pages, "pages per region")->capture_default_str()->check(pages_range);
  sub->add_flag("!--no-reclaim", o->reclaim, "leave out the final reclaim");
  return gen_command(sub, o, sc::generate_fanout);
}

command add_gen_forkchain(CLI::App& gen) {
  auto o = std::make_shared<sc::forkchain_options>();
  auto* sub = gen.add_subcommand("forkchain", "A serial fork chain: touch, fork, exit (2012)");
  sub->add_option("--generations", o->generations, "generations")->capture_default_str()->check(count_range);
  sub->add_option("--pages", o->pages, "pages of the region")->capture_default_str()->check(pages_range);
  return gen_command(sub, o, sc::generate_forkchain);
}

command add_gen_fileshare(CLI::App& gen) {
  auto o = std::make_shared<sc::fileshare_options>();
  auto* sub = gen.add_subcommand("fileshare", "Many processes mapping one file, then reclaim");
  sub->add_option("--processes", o->processes, "processes")->capture_default_str()->check(count_range);
  sub->add_option("--pages", o->pages, "pages of the file")->capture_default_str()->check(pages_range);
  return gen_command(sub, o, sc::generate_fileshare);
}

command add_gen_filewindows(CLI::App& gen) {
  auto o = std::make_shared<sc::filewindows_options>();
  auto* sub = gen.add_subcommand("filewindows", "Many processes mapping scattered windows of one big file (2004)");
  sub->add_option("--processes", o->processes, "processes")->capture_default_str()->check(count_range);
  sub->add_option("--windows", o->windows, "windows each process maps")->capture_default_str()->check(count_range);
  sub->add_option("--window-pages", o->window_pages, "pages of each window")->capture_default_str()->check(pages_range);
  sub->add_option("--pages", o->pages, "pages of the file")
      ->capture_default_str()
      ->check(CLI::Range(1U, static_cast<unsigned>(sc::MAX_FILE_PAGES)));
  sub->add_option("--seed", o->seed, "seed of the windows' offsets")->capture_default_str();
  return gen_command(sub, o, sc::generate_filewindows);
}

command add_gen_ksm(CLI::App& gen) {
  auto o = std::make_shared<sc::ksm_options>();
  auto* sub = gen.add_subcommand("ksm", "Equal pages in a process and its children, merged by ksm");
  sub->add_option("--pages", o->pages, "equal pages")->capture_default_str()->check(pages_range);
  sub->add_option("--children", o->children, "children sharing them")
      ->capture_default_str()
      ->check(CLI::Range(0U, 1000000U));
  return gen_command(sub, o, sc::generate_ksm);
}

command add_gen_buildstorm(CLI::App& gen) {
  auto o = std::make_shared<sc::buildstorm_options>();
  auto* sub = gen.add_subcommand("buildstorm", "A build-like storm of short-lived forked processes");
  sub->add_option("--jobs", o->jobs, "jobs forked by make")->capture_default_str()->check(count_range);
  sub->add_option("--parallel", o->parallel, "jobs alive at once")->capture_default_str()->check(count_range);
  sub->add_option("--pages", o->pages, "heap pages per job")->capture_default_str()->check(pages_range);
  return gen_command(sub, o, sc::generate_buildstorm);
}

void add_gen(CLI::App& app, std::vector<command>& commands) {
  auto* gen = app.add_subcommand("gen", "Write a scenario to standard output");
  gen->require_subcommand(1);
  for (auto add : {add_gen_random, add_gen_fanout, add_gen_forkchain, add_gen_fileshare, add_gen_filewindows,
                   add_gen_ksm, add_gen_buildstorm})
    commands.push_back(add(*gen));
}

command add_compare(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::lab::compare_options opts;
    bool json = false;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand(
      "compare", "Run a scenario (or replay a trace) under every rmap design; print their costs side by side");
  add_file(*sub, a->file);
  sub->add_option("--designs", a->opts.designs, "designs to compare, ANON[+FILE] (default: every anonymous design)")
      ->delimiter(',')
      ->check(design_names());
  sub->add_option("--file-designs", a->opts.file_designs,
                  "run each design under each of these file designs (interval-tree, prio-tree, list)")
      ->delimiter(',')
      ->check(CLI::IsMember(
          std::vector<std::string>(rmapkit::mm::file_rmap_designs().begin(), rmapkit::mm::file_rmap_designs().end())));
  add_json_flag(*sub, a->json);
  sub->add_flag("--vs-kernel", a->opts.vs_kernel,
                "also count the kernel's anon_vma/AVC allocations (root; exit 1 if linux-6's differ)");
  sub->add_option("--repeat", a->opts.repeat, "timed runs of each design: times are their median, with the spread")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1000U));
  a->opts.on_lock_wait = tell_lock_wait;
  return {sub, [a] {
            if (a->file != "-" && rmapkit::replay::is_trace_file(a->file)) {
              if (a->json || a->opts.vs_kernel || !a->opts.file_designs.empty()) {
                std::cerr << "rmapkit compare: " << a->file
                          << ": a trace takes --designs only (not --json, --vs-kernel or --file-designs)\n";
                return sc::EXIT_SCENARIO_ERROR;
              }
              return rmapkit::tool::cmd_compare_trace(a->file, a->opts.designs, std::cout, std::cerr);
            }
            auto prog = a->json ? load_json("compare", a->file) : load(a->file);
            return prog ? rmapkit::tool::cmd_compare(*prog, a->opts, a->json, std::cout, std::cerr)
                        : sc::EXIT_SCENARIO_ERROR;
          }};
}

command add_bench(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::lab::bench_options opts;
    bool json = false;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("bench",
                                 "Time a scenario's statements per kind on the model (and on the kernel): "
                                 "median and spread over several runs");
  add_file(*sub, a->file);
  auto* vs = sub->add_flag("--vs-kernel", a->opts.vs_kernel,
                           "also run it on the live kernel (root) and print kernel/model");
  auto* only = sub->add_flag("--kernel-only", a->opts.kernel_only,
                             "run it on the live kernel (root) only, not on the model (the kernel's own figures)")
                   ->excludes(vs);
  auto* share = sub->add_flag("--kernel-share", a->opts.kernel_share,
                              "with --vs-kernel or --kernel-only: also the kernel's own time per kind from its "
                              "tracepoints (system calls entry to return, exit_mmap() for exit), without the C "
                              "library, the agents and the reap");
  sub->parse_complete_callback([vs, only, share] {
    if (share->count() > 0 && vs->count() == 0 && only->count() == 0)
      throw CLI::ValidationError("--kernel-share", "needs --vs-kernel or --kernel-only");
  });
  a->opts.on_lock_wait = tell_lock_wait;
  sub->add_option("--repeat", a->opts.repeat, "runs on each back end")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1000U));
  sub->add_option("--design", a->opts.design,
                  "rmap design of the model: ANON[+FILE], as linux-2.6.7+prio-tree (docs/designs.md)")
      ->check(design_names())
      ->capture_default_str();
  add_json_flag(*sub, a->json);
  return {sub, [a] {
            auto prog = a->json ? load_json("bench", a->file) : load(a->file);
            return prog ? rmapkit::tool::cmd_bench(*prog, a->opts, a->json, std::cout, std::cerr)
                        : sc::EXIT_SCENARIO_ERROR;
          }};
}

command add_lint(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("lint", "Check a scenario for errors without running it");
  add_file(*sub, *file);
  add_json_flag(*sub, *json);
  return {sub, [file, json] {
            if (*json) {
              std::vector<sc::diag> errors;
              auto prog = load(*file, &errors);
              std::cout << sc::dump(sc::lint_document(*file, prog ? &*prog : nullptr, errors));
              return prog ? 0 : sc::EXIT_SCENARIO_ERROR;
            }
            auto prog = load(*file);
            if (!prog) return sc::EXIT_SCENARIO_ERROR;
            std::cout << *file << ": " << prog->ops.size() << " statements, " << prog->process_names.size()
                      << " processes, " << prog->file_names.size() << " files"
                      << (prog->needs_machine_lock ? ", machine-wide (KSM, swap, THP)" : "") << '\n';
            return 0;
          }};
}

void add_view_options(CLI::App& sub, rmapkit::tool::view_options& o) {
  sub.add_option("--at", o.at, "after which statement: N (1 = the first), line:L, or end")->capture_default_str();
  sub.add_option("--design", o.design,
                 "rmap design of the model: ANON[+FILE], as linux-2.6.7+prio-tree (docs/designs.md)")
      ->check(design_names())
      ->capture_default_str();
  sub.add_flag("--check-invariants", o.check_invariants,
               "check the model's invariants after every statement on the way");
  sub.add_option("--format", o.format, "output: text, json, dot (Graphviz) or svg (drawn by Graphviz's dot program)")
      ->check(CLI::IsMember({"text", "json", "dot", "svg"}))
      ->capture_default_str();
  sub.add_flag_callback(
      "--json", [&o] { o.format = "json"; }, "the same as --format json");
}

command add_show(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::tool::view_options opts;
    rmapkit::view::filter filter;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("show",
                                 "Print the model's reverse map after a statement: mms and VMAs, the anon_vma "
                                 "forest, i_mmap and page caches, KSM, folios (or a design's own structures)");
  add_file(*sub, a->file);
  add_view_options(*sub, a->opts);
  sub->add_option("--pid", a->filter.pid, "only what process P maps");
  sub->add_option("--frame", a->filter.frame, "only frame K (numbered as a bare check here numbers frames)");
  sub->add_option("--anon-vma", a->filter.anon_vma, "only anon_vma avN (N)");
  sub->add_option("--file", a->filter.file, "only file F");
  return {sub, [a] {
            auto prog = a->opts.format == "json" ? load_json("show", a->file) : load(a->file);
            return prog ? rmapkit::tool::cmd_show(*prog, a->opts, a->filter, std::cout, std::cerr)
                        : sc::EXIT_SCENARIO_ERROR;
          }};
}

command add_walk(CLI::App& app) {
  struct args {
    std::string file;
    rmapkit::tool::view_options opts;
    rmapkit::view::walk_target target;
    std::string op = "none";
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("walk", "Walk the reverse map of one frame step by step, as the design does it");
  add_file(*sub, a->file);
  add_view_options(*sub, a->opts);
  auto* frame = sub->add_option("--frame", a->target.frame, "frame K (numbered as a bare check here numbers frames)");
  auto* page = sub->add_option("--page", a->target.page,
                               "the frame process P maps at page IDX of REGION: P:REGION:IDX");
  frame->excludes(page);
  sub->add_flag("--all-designs", a->opts.all_designs,
                "the same walk under every design, one after the other, then their counts side by side");
  sub->add_option("--op", a->op, "what to do at each mapping: none, referenced, unmap, mkclean, migrate")
      ->capture_default_str();
  return {sub, [a] {
            auto prog = a->opts.format == "json" ? load_json("walk", a->file) : load(a->file);
            return prog ? rmapkit::tool::cmd_walk(*prog, a->opts, a->target, a->op, std::cout, std::cerr)
                        : sc::EXIT_SCENARIO_ERROR;
          }};
}

command add_html(CLI::App& app) {
  auto a = std::make_shared<rmapkit::tool::html_args>();
  auto* sub = app.add_subcommand("html",
                                 "Write one self-contained page that steps through the scenario: its source, "
                                 "the reverse map after each statement, the reports, each frame's rmap walk");
  add_file(*sub, a->file);
  sub->add_option("-o,--output", a->output, "the page to write, or - for standard output")->required();
  sub->add_option("--design", a->design,
                  "rmap design of the model: ANON[+FILE], as linux-2.6.7+prio-tree (docs/designs.md)")
      ->check(design_names())
      ->capture_default_str();
  sub->add_flag("--check-invariants", a->check_invariants, "check every invariant after every statement");
  sub->add_flag("--no-pictures", a->no_pictures, "the state in words alone, without Graphviz's pictures");
  sub->add_flag("--no-compress", a->no_compress, "embed the data as plain JSON instead of gzip and base64");
  sub->add_flag("--stats", a->stats, "print what went into the page and its size to standard error");
  return {sub, [a] { return rmapkit::tool::cmd_html(*a, std::cout, std::cerr); }};
}

/// CLI11 reports a missing or mistyped command ("rmapkit rnu x.rmap") as "A subcommand is
/// required"; name the word and the commands instead. Returns false when @e is another error.
bool report_missing_command(const CLI::App& app, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::RequiredError*>(&e) == nullptr) return false;
  const auto all = [](const CLI::App*) { return true; };
  const CLI::App* level = &app;
  std::string where = "rmapkit";
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* sub : level->get_subcommands(all))
      if (sub->parsed()) {
        level = sub;
        where += " " + sub->get_name();
        deeper = true;
        break;
      }
  }
  const auto subs = level->get_subcommands(all);
  if (subs.empty()) return false;  // a required option or argument, which CLI11 names
  std::string names;
  for (const CLI::App* sub : subs) names += (names.empty() ? "" : ", ") + sub->get_name();
  const std::vector<std::string> rest = level->remaining();
  if (rest.empty() || rest.front().starts_with('-'))
    std::cerr << where << ": a command is required (one of: " << names << ")\n";
  else std::cerr << where << ": unknown command '" << rest.front() << "' (one of: " << names << ")\n";
  return true;
}

command add_replay(CLI::App& app) {
  struct args {
    std::string file, scenario;
    rmapkit::replay::replay_run_options opts;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("replay",
                                 "Replay a trace (.rtrace, docs/rtrace.md) on the model; with --check, compare every "
                                 "snapshot it carries (exit 1 when one differs)");
  add_file(*sub, a->file, "trace file (.rtrace, text or binary), or - for standard input");
  auto* check = sub->add_flag("--check", a->opts.check,
                              "compare the model's state with each snapshot record of the trace");
  auto* until = sub->add_option("--until", a->opts.until, "stop after the records of time T (the trace's clock)");
  auto* state = sub->add_flag("--state", a->opts.print_state,
                              "print the model's state at the end, as a snapshot record");
  sub->add_option("--scenario", a->scenario,
                  "the trace is a recording of 'rmapkit kernel S': print S's checks as the replay shows them (what "
                  "'rmapkit run S' prints; exit 1 when the trace does not follow S)")
      ->excludes(check)
      ->excludes(until)
      ->excludes(state);
  sub->add_flag("--check-invariants", a->opts.replay.check_invariants,
                "check every invariant of the model after every event (slow; they are checked at every snapshot "
                "record and at the end in any case)");
  sub->add_option("--design", a->opts.replay.design,
                  "rmap design of the model: ANON[+FILE], as linux-2.6.7+prio-tree (docs/designs.md)")
      ->check(design_names())
      ->capture_default_str();
  return {sub, [a] {
            if (a->scenario.empty()) return rmapkit::tool::cmd_replay(a->file, a->opts, std::cout, std::cerr);
            auto prog = load(a->scenario);
            if (!prog) return 2;
            return rmapkit::tool::cmd_replay_scenario(a->file, *prog, a->opts.replay, std::cout, std::cerr);
          }};
}

command add_record(CLI::App& app) {
  struct args {
    std::vector<std::string> argv;
    std::string output = "trace.rtrace";
    bool binary = false;
    rmapkit::replay::record_options opts;
  };
  auto a = std::make_shared<args>();
  auto* sub = app.add_subcommand("record",
                                 "Run a command (as root) and record what its process tree does to memory as a trace "
                                 "(docs/rtrace.md); exit with the command's status");
  sub->add_option("-o,--output", a->output, "the trace to write")->capture_default_str();
  sub->add_flag("--binary", a->binary, "write the binary form (default: text)");
  sub->add_option("--check-every", a->opts.check_every,
                  "freeze the tree every S seconds and record a snapshot of its memory from /proc")
      ->check(CLI::PositiveNumber);
  sub->add_option("CMD", a->argv, "the command and its arguments (after --)")->required();
  return {sub, [a] { return rmapkit::tool::cmd_record(a->argv, a->output, a->binary, a->opts, std::cerr); }};
}

void add_rtrace(CLI::App& app, std::vector<command>& commands) {
  auto* rtrace = app.add_subcommand("rtrace", "Traces (docs/rtrace.md): make one from a scenario, convert one");
  rtrace->require_subcommand(1);
  {
    struct args {
      std::string file, output = "-";
      bool binary = false;
      rmapkit::model::run_options opts;
    };
    auto a = std::make_shared<args>();
    auto* sub = rtrace->add_subcommand(
        "from-scenario",
        "Run a scenario on the model and write its trace: its system calls and faults by address, "
        "each check a snapshot");
    add_file(*sub, a->file);
    sub->add_option("-o,--output", a->output, "the trace to write, or - for standard output")->capture_default_str();
    sub->add_flag("--binary", a->binary, "write the binary form (default: text)");
    sub->add_option("--design", a->opts.design, "rmap design of the model")
        ->check(design_names())
        ->capture_default_str();
    commands.push_back({sub, [a] {
                          auto prog = load(a->file);
                          return prog ? rmapkit::tool::cmd_trace_scenario(*prog, a->output, a->binary, a->opts,
                                                                          std::cerr)
                                      : sc::EXIT_SCENARIO_ERROR;
                        }});
  }
  {
    struct args {
      std::string file, output = "-";
      bool binary = false;
    };
    auto a = std::make_shared<args>();
    auto* sub = rtrace->add_subcommand("convert", "Write a trace in text (default) or binary form");
    add_file(*sub, a->file, "trace file (.rtrace, text or binary), or - for standard input");
    sub->add_option("-o,--output", a->output, "the trace to write, or - for standard output")->capture_default_str();
    sub->add_flag("--binary", a->binary, "write the binary form (default: text)");
    commands.push_back(
        {sub, [a] { return rmapkit::tool::cmd_trace_convert(a->file, a->output, a->binary, std::cerr); }});
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rmapkit: the Linux reverse map, modelled and checked against the live kernel"};
  app.set_version_flag("--version", "rmapkit " RMAPKIT_VERSION);
  app.require_subcommand(1);
  std::vector<command> commands{add_kernel(app), add_run(app), add_diff(app)};
  add_gen(app, commands);
  for (auto add : {add_compare, add_bench, add_lint, add_show, add_walk, add_html, add_replay, add_record})
    commands.push_back(add(app));
  add_fuzz(app, commands);
  add_rtrace(app, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (!report_missing_command(app, e)) app.exit(e);
    return sc::EXIT_SCENARIO_ERROR;
  }
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.action();
  } catch (const std::exception& e) {
    std::cerr << "rmapkit: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
