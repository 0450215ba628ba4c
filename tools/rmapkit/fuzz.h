// rmapkit fuzz: a differential campaign (lab::fuzz()), its report (lab::fuzz_report()) and
// the generator profiles it runs (docs/fuzzing.md).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "rmapkit/lab/fuzz.h"

namespace rmapkit::tool {

/// `rmapkit fuzz`'s arguments as written, checked by cmd_fuzz().
struct fuzz_args {
  std::string seeds;  ///< "A..B", or empty
  std::optional<std::uint64_t> count;
  std::vector<std::string> profiles{"plain"};
  std::string shard = "0/1";  ///< "I/N"
  bool kernel = false;        ///< --kernel, the default, said out loud
  bool model_only = false;
  std::optional<std::string> design;
  std::string plant;                        ///< test only: a model::planted_fault by name
  std::optional<std::uint64_t> time_limit;  ///< seconds
  bool quiet = false;
  bool smaps = false;      ///< every profile with smaps on, named NAME+smaps
  lab::fuzz_options opts;  ///< out_dir, time_limit, minimize, kernel: set by the CLI
};

/// Runs the campaign; progress and failures on @err, the summary on @out. Exit status 0
/// when every scenario agreed, 1 when any did not, 2 for bad arguments, a kernel back end
/// that cannot run here or an output folder that cannot be written, 75 (kcheck::
/// EXIT_MACHINE_BUSY) when --no-wait met a busy machine lock; when a signal interrupted
/// it, @signal is set (the caller dies of it).
int cmd_fuzz(fuzz_args& a, std::ostream& out, std::ostream& err, int& signal);

/// `rmapkit fuzz report DIR...`: exit 0 when every scenario on record agreed, 1 when one
/// did not, 2 when a folder or a line could not be read (what could be read is reported
/// all the same).
int cmd_fuzz_report(const std::vector<std::string>& dirs, bool json, std::ostream& out, std::ostream& err);

/// `rmapkit fuzz profiles [NAME]`: the built-in profiles, or one profile's text.
int cmd_fuzz_profiles(const std::optional<std::string>& name, std::ostream& out, std::ostream& err);

}  // namespace rmapkit::tool
