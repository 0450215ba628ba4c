// rmapkit: the command-line tool.
//   rmapkit run FILE      run a scenario on the model and print its report
//   rmapkit kernel FILE   run a scenario on the live kernel and print its report
//   rmapkit diff FILE     run both and print a unified diff of the reports
//   rmapkit lint FILE     check a scenario without running it
//   rmapkit bench FILE    time a scenario's statements per kind (bench.cc)
#include <csignal>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <dtl/dtl.hpp>

#include "bench.h"
#include "compare.h"
#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/workloads.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace {

namespace sc = rmapkit::scenario;

/// Parses and resolves @path; prints the diag and returns nothing on bad input.
std::optional<sc::program> load(const std::string& path) {
  auto parsed = sc::parse_file(path);
  if (!parsed) {
    std::cerr << parsed.error().str() << '\n';
    return std::nullopt;
  }
  auto prog = sc::resolve(*parsed);
  if (!prog) {
    std::cerr << prog.error().str() << '\n';
    return std::nullopt;
  }
  return std::move(*prog);
}

int cmd_kernel(const std::string& path, const rmapkit::kcheck::run_options& opts) {
  auto prog = load(path);
  if (!prog) return sc::EXIT_SCENARIO_ERROR;
  auto res = rmapkit::kcheck::run(*prog, std::cout, std::cerr, opts);
  if (res.signal) {
    // Die of the signal, as an interrupted program should, now that everything is restored.
    std::signal(res.signal, SIG_DFL);
    std::raise(res.signal);
  }
  return res.exit_code;
}

int cmd_run(const std::string& path, const rmapkit::model::run_options& opts) {
  auto prog = load(path);
  if (!prog) return sc::EXIT_SCENARIO_ERROR;
  return rmapkit::model::run(*prog, std::cout, std::cerr, opts);
}

std::vector<std::string> design_names() {
  auto names = rmapkit::mm::anon_rmap_designs();
  return {names.begin(), names.end()};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// What a back end printed, with its error (if any) as a last line, so that a refusal on
/// one side only shows up in the diff too.
std::string outcome(int code, const std::string& out, const std::string& err) {
  return code == 0 ? out : out + "error: " + err;
}

int cmd_diff(const std::string& path, const rmapkit::model::run_options& mopts,
             const rmapkit::kcheck::run_options& kopts) {
  auto prog = load(path);
  if (!prog) return sc::EXIT_SCENARIO_ERROR;
  std::ostringstream mout, merr, kout, kerr;
  int mcode = rmapkit::model::run(*prog, mout, merr, mopts);
  auto kres = rmapkit::kcheck::run(*prog, kout, kerr, kopts);
  if (kres.signal) {
    std::cerr << kerr.str();
    std::signal(kres.signal, SIG_DFL);
    std::raise(kres.signal);
  }
  auto model_text = outcome(mcode, mout.str(), merr.str());
  auto kernel_text = outcome(kres.exit_code, kout.str(), kerr.str());
  if (model_text == kernel_text) {
    if (kres.exit_code != 0) {
      std::cerr << kerr.str();  // both refused the scenario in the same way
      return kres.exit_code;
    }
    std::cerr << "rmapkit diff: the model and the kernel agree on " << path << '\n';
    return 0;
  }
  auto a = lines_of(kernel_text), b = lines_of(model_text);
  dtl::Diff<std::string> d(a, b);
  d.onHuge();
  d.compose();
  d.composeUnifiedHunks();
  std::cout << "--- kernel " << path << "\n+++ model " << path << '\n';
  d.printUnifiedFormat(std::cout);
  return 1;
}

int cmd_lint(const std::string& path) {
  auto prog = load(path);
  if (!prog) return sc::EXIT_SCENARIO_ERROR;
  std::cout << path << ": " << prog->ops.size() << " statements, " << prog->process_names.size() << " processes, "
            << prog->file_names.size() << " files" << (prog->needs_machine_lock ? ", machine-wide (KSM/swap)" : "")
            << '\n';
  return 0;
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
  else
    std::cerr << where << ": unknown command '" << rest.front() << "' (one of: " << names << ")\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rmapkit: the Linux reverse map, modelled and checked against the live kernel"};
  app.require_subcommand(1);
  std::string file;
  rmapkit::kcheck::run_options kopts;

  auto* kernel = app.add_subcommand("kernel", "Run a scenario on the live kernel (as root) and print its report");
  kernel->add_option("FILE", file, "scenario file (.rmap), or - for standard input")->required();
  kernel->add_flag("--trace", kopts.trace, "print each statement to standard error before it runs");
  kernel->add_flag("--kmem-counts", kopts.kmem_counts,
                   "at the end, print the anon_vma and anon_vma_chain objects allocated and freed (kmem tracepoints)");
  kernel->add_flag("--ksm-counters", kopts.ksm_counters, "after each ksm, print /sys/kernel/mm/ksm's counters to standard error");
  kernel->add_option("--swap-dir", kopts.swap_dir,
                     "directory for the temporary swap file (a file system that supports swap files)")
      ->capture_default_str();

  rmapkit::model::run_options mopts;
  auto* run = app.add_subcommand("run", "Run a scenario on the model and print its report");
  run->add_option("FILE", file, "scenario file (.rmap), or - for standard input")->required();
  run->add_flag("--check-invariants,!--no-check-invariants", mopts.check_invariants,
                "check every invariant of the model after every statement (default in debug builds)");
  run->add_flag("--migrate-everything", mopts.migrate_everything,
                "migrate every frame after every statement (reports must not change)");
  run->add_flag("--stats", mopts.stats, "print the model's event counters (vmstat names) to standard error");
  run->add_flag("--ksm-counters", mopts.ksm_counters, "after each ksm, print the model's KSM counters to standard error");
  run->add_option("--design", mopts.design, "anonymous rmap design of the model")
      ->check(CLI::IsMember(design_names()))
      ->capture_default_str();

  auto* diff = app.add_subcommand("diff", "Run a scenario on the model and on the kernel; print a unified diff "
                                          "of the reports (exit 1 when they differ)");
  diff->add_option("FILE", file, "scenario file (.rmap)")->required();
  diff->add_flag("--check-invariants,!--no-check-invariants", mopts.check_invariants,
                 "check the model's invariants after every statement");

  sc::random_options gopts;
  auto* gen = app.add_subcommand("gen", "Write a scenario to standard output");
  gen->require_subcommand(1);
  auto* gen_random = gen->add_subcommand("random", "A random valid scenario, reproducible from its seed");
  gen_random->add_option("--seed", gopts.seed, "random seed")->capture_default_str();
  gen_random->add_option("--statements", gopts.statements, "number of statements")->capture_default_str()
      ->check(CLI::Range(1U, 100000U));
  gen_random->add_option("--processes", gopts.max_processes, "live processes at most")->capture_default_str()
      ->check(CLI::Range(1U, 64U));
  gen_random->add_option("--pages", gopts.max_region_pages, "largest region mmap creates")->capture_default_str()
      ->check(CLI::Range(1U, 4096U));
  gen_random->add_flag("!--no-pageout", gopts.pageout, "leave out madvise pageout");
  gen_random->add_flag("--ksm", gopts.ksm, "include mergeable, unmergeable and ksm");
  gen_random->add_flag("--reclaim", gopts.reclaim, "include reclaim");

  // The workloads that made rmap history (docs/designs.md).
  const auto count = CLI::Range(1U, 1000000U);
  const auto pages = CLI::Range(1U, static_cast<unsigned>(sc::MAX_REGION_PAGES));
  sc::fanout_options fan;
  auto* gen_fanout = gen->add_subcommand("fanout", "N-way fork fan-out with COW, then reclaim (AIM7, 2010)");
  gen_fanout->add_option("--children", fan.children, "children forked")->capture_default_str()->check(count);
  gen_fanout->add_option("--vmas", fan.vmas, "anonymous regions in the parent")->capture_default_str()->check(count);
  gen_fanout->add_option("--pages", fan.pages, "pages per region")->capture_default_str()->check(pages);
  gen_fanout->add_flag("!--no-reclaim", fan.reclaim, "leave out the final reclaim");
  sc::forkchain_options chain;
  auto* gen_chain = gen->add_subcommand("forkchain", "A serial fork chain: touch, fork, exit (2012)");
  gen_chain->add_option("--generations", chain.generations, "generations")->capture_default_str()->check(count);
  gen_chain->add_option("--pages", chain.pages, "pages of the region")->capture_default_str()->check(pages);
  sc::fileshare_options share;
  auto* gen_share = gen->add_subcommand("fileshare", "Many processes mapping one file, then reclaim");
  gen_share->add_option("--processes", share.processes, "processes")->capture_default_str()->check(count);
  gen_share->add_option("--pages", share.pages, "pages of the file")->capture_default_str()->check(pages);
  sc::ksm_options ksmw;
  auto* gen_ksm = gen->add_subcommand("ksm", "Equal pages in a process and its children, merged by ksm");
  gen_ksm->add_option("--pages", ksmw.pages, "equal pages")->capture_default_str()->check(pages);
  gen_ksm->add_option("--children", ksmw.children, "children sharing them")->capture_default_str()
      ->check(CLI::Range(0U, 1000000U));
  sc::buildstorm_options storm;
  auto* gen_storm = gen->add_subcommand("buildstorm", "A build-like storm of short-lived forked processes");
  gen_storm->add_option("--jobs", storm.jobs, "jobs forked by make")->capture_default_str()->check(count);
  gen_storm->add_option("--parallel", storm.parallel, "jobs alive at once")->capture_default_str()->check(count);
  gen_storm->add_option("--pages", storm.pages, "heap pages per job")->capture_default_str()->check(pages);

  rmapkit::tool::compare_options copts;
  auto* compare = app.add_subcommand("compare", "Run a scenario under every rmap design; print their costs side by side");
  compare->add_option("FILE", file, "scenario file (.rmap), or - for standard input")->required();
  compare->add_option("--designs", copts.designs, "designs to compare (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember(design_names()));
  compare->add_flag("--json", copts.json, "print JSON instead of a table");
  compare->add_flag("--vs-kernel", copts.vs_kernel,
                    "also count the kernel's anon_vma/AVC allocations (root; exit 1 if linux-6's differ)");

  rmapkit::tool::bench_options bopts;
  auto* bench = app.add_subcommand("bench", "Time a scenario's statements per kind on the model (and on the kernel): "
                                            "median and spread over several runs");
  bench->add_option("FILE", file, "scenario file (.rmap), or - for standard input")->required();
  bench->add_flag("--vs-kernel", bopts.vs_kernel, "also run it on the live kernel (root) and print kernel/model");
  bench->add_option("--repeat", bopts.repeat, "runs on each back end")->capture_default_str()
      ->check(CLI::Range(1U, 1000U));
  bench->add_option("--design", bopts.design, "anonymous rmap design of the model")
      ->check(CLI::IsMember(design_names()))
      ->capture_default_str();

  auto* lint = app.add_subcommand("lint", "Check a scenario for errors without running it");
  lint->add_option("FILE", file, "scenario file (.rmap), or - for standard input")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (!report_missing_command(app, e)) app.exit(e);
    return sc::EXIT_SCENARIO_ERROR;
  }
  try {
    if (*run) return cmd_run(file, mopts);
    if (*gen_random) {
      std::cout << sc::generate_random(gopts);
      return 0;
    }
    if (*gen_fanout) return (std::cout << sc::generate_fanout(fan), 0);
    if (*gen_chain) return (std::cout << sc::generate_forkchain(chain), 0);
    if (*gen_share) return (std::cout << sc::generate_fileshare(share), 0);
    if (*gen_ksm) return (std::cout << sc::generate_ksm(ksmw), 0);
    if (*gen_storm) return (std::cout << sc::generate_buildstorm(storm), 0);
    if (*compare) {
      auto prog = load(file);
      return prog ? rmapkit::tool::cmd_compare(*prog, copts, std::cout, std::cerr) : sc::EXIT_SCENARIO_ERROR;
    }
    if (*diff) return cmd_diff(file, mopts, kopts);
    if (*kernel) return cmd_kernel(file, kopts);
    if (*lint) return cmd_lint(file);
    if (*bench) {
      auto prog = load(file);
      return prog ? rmapkit::tool::cmd_bench(*prog, bopts, std::cout, std::cerr) : sc::EXIT_SCENARIO_ERROR;
    }
  } catch (const std::exception& e) {
    std::cerr << "rmapkit: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
