// rmapkit: the command-line tool.
//   rmapkit kernel FILE   run a scenario on the live kernel and print its report
//   rmapkit lint FILE     check a scenario without running it
#include <csignal>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "rmapkit/kcheck/kernel.h"
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

int cmd_lint(const std::string& path) {
  auto prog = load(path);
  if (!prog) return sc::EXIT_SCENARIO_ERROR;
  std::cout << path << ": " << prog->ops.size() << " statements, " << prog->process_names.size() << " processes, "
            << prog->file_names.size() << " files" << (prog->needs_machine_lock ? ", machine-wide (KSM/swap)" : "")
            << '\n';
  return 0;
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
  kernel->add_option("--swap-dir", kopts.swap_dir,
                     "directory for the temporary swap file (a file system that supports swap files)")
      ->capture_default_str();

  auto* lint = app.add_subcommand("lint", "Check a scenario for errors without running it");
  lint->add_option("FILE", file, "scenario file (.rmap), or - for standard input")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return sc::EXIT_SCENARIO_ERROR;
  }
  try {
    if (*kernel) return cmd_kernel(file, kopts);
    if (*lint) return cmd_lint(file);
  } catch (const std::exception& e) {
    std::cerr << "rmapkit: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
