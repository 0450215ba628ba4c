// A scenario run on the model one statement at a time, on a machine the session owns, so
// that the memory manager's state can be looked at between statements: what `rmapkit
// show`, `walk` and `html` do, and what an embedding program does to step a scenario.
// model::run() is a session run to its end.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "rmapkit/mm/machine.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::model {

class statement_runner;  // model/runner.cc

class session {
 public:
  /// A fresh machine with @opts.design, before the first statement of @prog. @prog must
  /// outlive the session.
  explicit session(const scenario::program& prog, run_options opts = {});
  /// The same on a machine the caller owns (run_on()).
  session(mm::machine& m, const scenario::program& prog, run_options opts = {});
  /// Every live process exits and every file is put, as at the end of run().
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Runs the next statement: its report (a `check`) goes to @out, an error as
  /// `FILE:LINE: reason` to @err. Returns 0, or the status run() would exit with; after
  /// an error the session is finished (done() is true) and the machine stays as the
  /// error left it.
  int step(std::ostream& out, std::ostream& err);
  /// Statements run so far (the index of the next one).
  [[nodiscard]] std::size_t position() const { return _next; }
  [[nodiscard]] bool done() const { return _failed || _next >= _prog.ops.size(); }
  /// Where and why the run stopped at something the model does not model yet (not_modelled).
  [[nodiscard]] const std::optional<scenario::diag>& not_modelled() const { return _not_modelled; }
  /// Runs statements until @count have run (or one fails); returns the last status.
  int run_to(std::size_t count, std::ostream& out, std::ostream& err);

  [[nodiscard]] const scenario::program& program() const { return _prog; }
  [[nodiscard]] mm::machine& machine() { return *_machine; }
  [[nodiscard]] const mm::machine& machine() const { return *_machine; }
  /// The process's mm; null before its spawn or fork and after its exit.
  [[nodiscard]] mm::mm_struct* mm_of(scenario::proc_id p) const;
  /// The scenario's reference to a file; null before its `file` statement.
  [[nodiscard]] mm::address_space* file_of(scenario::file_id f) const;
  /// The regions of a live process by name, and where each is now (its slot's base); empty
  /// for a process not alive. Valid until the next step.
  [[nodiscard]] const std::map<std::string, vaddr_t>& regions_of(scenario::proc_id p) const;

 private:
  const scenario::program& _prog;
  run_options _opts;
  std::unique_ptr<mm::machine> _own;  // empty when the caller owns the machine
  mm::machine* _machine;
  std::unique_ptr<statement_runner> _runner;
  std::size_t _next = 0;
  bool _failed = false;
  std::optional<scenario::diag> _not_modelled;
};

}  // namespace rmapkit::model
