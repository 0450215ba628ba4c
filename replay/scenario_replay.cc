// Kernel counterpart: none. A recording of the kernel runner followed statement by
// statement: the scenario's run on the model says which events each statement leaves (its
// system calls, and the accesses that fault), and the recording's events are matched to
// them in order, which tells where each `check` was taken. The reports come from the
// replayed trace, and from the scenario only what no recording can show (an access that
// does not fault, KSM, reclaim, a clear_refs write, the byte a write fills a page with).
#include "rmapkit/replay/scenario_replay.h"

#include <algorithm>
#include <istream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "replay_internal.h"
#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"
#include "rmapkit/model/session.h"
#include "rmapkit/replay/scenario_trace.h"
#include "rmapkit/scenario/report.h"
#include "scenario_internal.h"

namespace rmapkit::replay {

namespace sc = rmapkit::scenario;

namespace {

/// The trace does not follow the scenario: the message says where and what was expected.
struct divergence : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One event a statement leaves in a recording of the kernel runner, in the tids of a
/// trace made from the scenario (scenario_tid()).
struct expected {
  event ev;
  std::size_t op = 0;    ///< its statement's index in the program
  bool required = true;  ///< the kernel must show it: a system call, or an access that faults
  /// A recording cannot show it, so the replay makes it where the trace passes over it: an
  /// access that does not fault, KSM, reclaim, a clear_refs write.
  bool made = false;
};

/// Whether a recording can show the events of statement @o.
bool unrecordable(const sc::op& o) {
  return std::holds_alternative<sc::op_ksm>(o.body) || std::holds_alternative<sc::op_reclaim>(o.body) ||
         std::holds_alternative<sc::op_clear_refs>(o.body);
}

/// Whether the statement is a page-touch loop (its plan comes from the accesses made).
bool touches_pages(const sc::op& o) {
  return std::holds_alternative<sc::op_read>(o.body) || std::holds_alternative<sc::op_write>(o.body);
}

/// The events of @prog's statements in order, from its run on the model: an access is
/// required only when it faults there. Sets @code to the run's status (0 when it ran).
std::vector<expected> plan_of(const sc::program& prog, std::ostream& err, int& code) {
  std::vector<expected> plan;
  std::vector<expected> accesses;
  model::run_options opts;
  opts.on_access = [&](sc::proc_id p, vaddr_t a, bool write, bool faulted) {
    accesses.push_back(
        {ev_fault{scenario_tid(p), a, write ? access::write : access::read, true, std::nullopt}, 0, faulted, !faulted});
  };
  model::session s(prog, opts);
  std::ostringstream reports;  // the model's own reports: not what is printed
  code = 0;
  while (!s.done()) {
    const std::size_t at = s.position();
    const auto& o = prog.ops[at];
    auto events = statement_events(s, o);
    accesses.clear();
    if ((code = s.step(reports, err)) != 0) break;
    if (touches_pages(o)) {
      const auto* w = std::get_if<sc::op_write>(&o.body);
      for (auto& x : accesses) {
        if (w) std::get<ev_fault>(x.ev).value = w->value;  // the byte a value write fills with: KSM compares
        plan.push_back({std::move(x.ev), at, x.required, x.made});
      }
      continue;
    }
    if (unrecordable(o)) {
      for (auto& e : events) plan.push_back({std::move(e), at, false, true});
      continue;
    }
    for (auto& e : events) {
      // A spawn's exec is not matched: an agent is known by its first event in the slots.
      const bool required = !std::holds_alternative<ev_exec>(e) && !std::holds_alternative<ev_file>(e);
      const auto* m = std::get_if<ev_map>(&e);
      const std::optional<ev_advise> nohuge = m ? std::optional<ev_advise>(
                                                      ev_advise{m->tid, m->start, m->pages, "nohugepage"})
                                                : std::nullopt;
      plan.push_back({std::move(e), at, required});
      // The agent's madvise(MADV_NOHUGEPAGE) after each mapping (kcheck/agent.cc).
      if (nohuge) plan.push_back({*nohuge, at, false});
    }
  }
  return plan;
}

/// The task that makes @e: the parent of a fork or clone.
std::optional<tid_t> actor_of(const event& e) {
  return std::visit(
      [](const auto& v) -> std::optional<tid_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ev_fork> || std::is_same_v<T, ev_clone_vm>) return v.parent;
        else if constexpr (requires { v.tid; }) return v.tid;
        else return std::nullopt;
      },
      e);
}

/// Whether two events are the same call or fault, whoever makes them.
bool same_payload(const event& got, const event& want) {
  if (got.index() != want.index()) return false;
  return std::visit(
      [&](const auto& w) {
        using T = std::decay_t<decltype(w)>;
        const auto& g = std::get<T>(got);
        if constexpr (std::is_same_v<T, ev_map>) {
          return g.start == w.start && g.pages == w.pages && g.perms == w.perms &&
                 g.file.has_value() == w.file.has_value() && (!w.file || g.pgoff == w.pgoff);
        } else if constexpr (std::is_same_v<T, ev_unmap>) {
          return g.start == w.start && g.pages == w.pages;
        } else if constexpr (std::is_same_v<T, ev_protect>) {
          return g.start == w.start && g.pages == w.pages && g.perms.read == w.perms.read &&
                 g.perms.write == w.perms.write && g.perms.exec == w.perms.exec;
        } else if constexpr (std::is_same_v<T, ev_mremap>) {
          return g.old_start == w.old_start && g.old_pages == w.old_pages && g.new_start == w.new_start &&
                 g.new_pages == w.new_pages;
        } else if constexpr (std::is_same_v<T, ev_advise>) {
          return g.start == w.start && g.pages == w.pages && g.advice == w.advice;
        } else if constexpr (std::is_same_v<T, ev_lock>) {
          return g.start == w.start && g.pages == w.pages && g.lock == w.lock;
        } else if constexpr (std::is_same_v<T, ev_fault>) {
          return g.addr == w.addr && g.access == w.access;
        } else if constexpr (std::is_same_v<T, ev_inject>) {
          return g.what == w.what;
        } else if constexpr (std::is_same_v<T, ev_clear_refs>) {
          return g.type == w.type;
        } else {
          return std::is_same_v<T, ev_fork> || std::is_same_v<T, ev_exit>;
        }
      },
      want);
}

/// The name a scenario gave the file the runner's memfd of @name stands for.
std::string scenario_file_name(std::string name) {
  const auto prefix = fmt::format("memfd:{}", kcheck::MEMFD_NAME_PREFIX);
  if (!name.starts_with(prefix)) return name;  // a trace made from the scenario names it so
  name.erase(0, prefix.size());
  for (std::string_view deleted : {"_(deleted)", " (deleted)"})
    if (name.ends_with(deleted)) name.resize(name.size() - deleted.size());
  return name;
}

/// Follows a trace through the plan, and prints each check when the trace has passed it.
class follower {
 public:
  follower(const sc::program& prog, std::vector<expected> plan, replayer& rp, std::ostream& out)
      : _prog(prog), _plan(std::move(plan)), _rp(rp), _out(out) {}

  /// Called with each record before it is applied; returns the record to apply (a value
  /// write's fault takes the value the scenario writes).
  record see(record r) {
    ++_stats.records;
    const auto& e = r.ev;
    if (_done) return r;
    if (const bool rel = relevant(e); !may_count(e, rel) || !rel) return r;
    const auto actor = actor_of(e);
    for (std::size_t j = _cursor; j < _plan.size(); ++j) {
      if (matches(e, actor, _plan[j])) {
        consume(j, r, actor);
        if (auto* f = std::get_if<ev_fault>(&r.ev)) f->value = std::get<ev_fault>(_plan[j].ev).value;
        return r;
      }
      if (_plan[j].required) break;
    }
    if (retried(e, actor)) return r;
    if (std::none_of(_plan.begin() + static_cast<std::ptrdiff_t>(_cursor), _plan.end(),
                     [](const expected& x) { return x.required; })) {
      // Every statement is over: what follows is the runner's teardown (its agents exit).
      end(r.time);
      return r;
    }
    throw divergence(fmt::format("`{}` does not follow the scenario: next, {}", to_text(e), expecting()));
  }

  /// At the end of the trace: every required event must have been seen.
  void finish(nsec_t time) {
    if (_done) return;
    for (std::size_t j = _cursor; j < _plan.size(); ++j)
      if (_plan[j].required) throw divergence(fmt::format("the trace ends, but {}", expecting()));
    end(time);
  }

  [[nodiscard]] const scenario_replay_stats& stats() const { return _stats; }

 private:
  [[nodiscard]] bool in_slots(vaddr_t start, std::uint64_t pages) const {
    return start.value < sc::slot_start(_prog.slot_count).value && start.value + pages * PAGE_SIZE > sc::SLOT_BASE;
  }

  /// Keeps the set of tasks that cannot be scenario processes: a task whose own memory
  /// reaches into the slots (the runner's, when an ASan build's shadow spans them: it then
  /// faults there too), and its fork children until they exec. Whether @e (@rel: relevant())
  /// may count.
  bool may_count(const event& e, bool rel) {
    if (const auto* x = std::get_if<ev_exec>(&e)) _not_agents.erase(x->tid);
    if (const auto* f = std::get_if<ev_fork>(&e); f && _not_agents.contains(f->parent)) _not_agents.insert(f->child);
    const auto actor = actor_of(e);
    if (!actor || _bound.contains(*actor)) return true;
    if (_not_agents.contains(*actor)) return false;
    if (rel && !within_slots(e)) {
      _not_agents.insert(*actor);
      return false;
    }
    return true;
  }

  [[nodiscard]] bool within_slots(vaddr_t start, std::uint64_t pages) const {
    return start.value >= sc::SLOT_BASE && start.value + pages * PAGE_SIZE <= sc::slot_start(_prog.slot_count).value;
  }
  [[nodiscard]] bool within_slots(const event& e) const {
    return std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, ev_fault>) return within_slots(v.addr, 1);
          else if constexpr (std::is_same_v<T, ev_mremap>) return within_slots(v.old_start, v.old_pages);
          else if constexpr (requires { v.start, v.pages; }) return within_slots(v.start, v.pages);
          else return false;
        },
        e);
  }

  /// Whether the scenario's statements can have made @e: a call or fault in the slot area,
  /// or a fork or exit of a task that is a scenario process.
  [[nodiscard]] bool relevant(const event& e) const {
    return std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, ev_fork> || std::is_same_v<T, ev_clone_vm>) return _bound.contains(v.parent);
          else if constexpr (std::is_same_v<T, ev_exit> || std::is_same_v<T, ev_clear_refs>)
            return _bound.contains(v.tid);
          else if constexpr (std::is_same_v<T, ev_inject>) return true;
          else if constexpr (std::is_same_v<T, ev_fault>) return in_slots(v.addr, 1);
          else if constexpr (std::is_same_v<T, ev_mremap>)
            return in_slots(v.old_start, v.old_pages) || in_slots(v.new_start, v.new_pages);
          else if constexpr (requires { v.start, v.pages; }) return in_slots(v.start, v.pages);
          else return false;
        },
        e);
  }

  /// Whether @e by trace task @actor is plan entry @x: the same call or fault, by the task
  /// that is x's process, or by a task not yet known when x's process is not yet known.
  [[nodiscard]] bool matches(const event& e, std::optional<tid_t> actor, const expected& x) const {
    if (!same_payload(e, x.ev)) return false;
    const auto want = actor_of(x.ev);
    if (!actor || !want) return !actor && !want;
    if (auto it = _bound.find(*actor); it != _bound.end()) return it->second == *want;
    return !_trace_tid.contains(*want);
  }

  void consume(std::size_t j, const record& r, std::optional<tid_t> actor) {
    const auto& e = r.ev;
    make_unseen(j, r.time);
    advance_to(_plan[j].op);
    const auto who = actor_of(_plan[j].ev);
    if (actor && !_bound.contains(*actor)) bind(*actor, *who);
    if (const auto* f = std::get_if<ev_fork>(&e)) bind(f->child, std::get<ev_fork>(_plan[j].ev).child);
    _cursor = j + 1;
    _last = {who.value_or(0), e};
    ++_stats.followed;
  }

  /// Every statement is over: the rest of the checks are printed.
  void end(nsec_t time) {
    make_unseen(_plan.size(), time);
    advance_to(_prog.ops.size());
    _done = true;
  }

  /// What plan entries [_cursor, @to) that the trace passed over say the replay must make
  /// itself (expected::made): an access that did not fault (the CPU set the accessed and
  /// dirty bits), KSM and reclaim (the machine's own work), a clear_refs write.
  void make_unseen(std::size_t to, nsec_t time) {
    for (std::size_t i = _cursor; i < to; ++i) {
      if (!_plan[i].made) continue;
      auto ev = _plan[i].ev;
      if (const auto who = actor_of(ev)) {
        const auto task = _trace_tid.find(*who);
        if (task == _trace_tid.end()) continue;  // a process the trace never showed: nothing to do it in
        std::visit(
            [&](auto& v) {
              if constexpr (requires { v.tid; }) v.tid = task->second;
            },
            ev);
      }
      advance_to(_plan[i].op);
      ++(std::holds_alternative<ev_fault>(ev) ? _stats.unseen : _stats.made);
      _rp.apply({time, std::move(ev)});
    }
  }

  /// A fault taken again on the page the last one was on: the kernel retried it.
  bool retried(const event& e, std::optional<tid_t> actor) {
    const auto* f = std::get_if<ev_fault>(&e);
    const auto* last = _last ? std::get_if<ev_fault>(&_last->second) : nullptr;
    if (!f || !last || f->addr != last->addr || !_bound.contains(*actor) || _bound.at(*actor) != _last->first)
      return false;
    ++_stats.retried;
    return true;
  }

  void bind(tid_t trace_tid, tid_t scenario_tid) {
    _bound[trace_tid] = scenario_tid;
    _trace_tid[scenario_tid] = trace_tid;
    ++_stats.processes;
  }

  /// The next required event, worded with its statement.
  [[nodiscard]] std::string expecting() const {
    for (std::size_t j = _cursor; j < _plan.size(); ++j) {
      const auto& x = _plan[j];
      if (!x.required) continue;
      const auto& o = _prog.ops[x.op];
      const auto p = static_cast<sc::proc_id>(*actor_of(x.ev) - scenario_tid(0));  // required: a task's
      const auto it = _trace_tid.find(*actor_of(x.ev));
      if (it == _trace_tid.end())
        return fmt::format("line {} (`{}`) expects `{}` by {} (a task not seen yet, {} here)", o.line, o.text,
                           to_text(x.ev), _prog.process_names.at(p), *actor_of(x.ev));
      auto ev = x.ev;  // in the trace's tids
      std::visit(
          [&](auto& v) {
            if constexpr (requires { v.parent; }) v.parent = it->second;
            else if constexpr (requires { v.tid; }) v.tid = it->second;
          },
          ev);
      return fmt::format("line {} (`{}`) expects `{}` by {}", o.line, o.text, to_text(ev), _prog.process_names.at(p));
    }
    return "nothing more is expected";
  }

  /// Starts the statements up to @op: the runner drains the LRU batches
  /// before each statement, and a check prints its report.
  void advance_to(std::size_t op) {
    for (; _started <= op && _started < _prog.ops.size(); ++_started) {
      _rp.machine().lru_add_drain();
      if (const auto* c = std::get_if<sc::op_check>(&_prog.ops[_started].body)) print(*c);
    }
  }

  void print(const sc::op_check& c) {
    _rp.check_invariants();
    const model::report_source src{[this](sc::proc_id p) -> const mm::mm_struct* {
                                     auto it = _trace_tid.find(scenario_tid(p));
                                     return it == _trace_tid.end() ? nullptr : _rp.task_mm(it->second);
                                   },
                                   [](const mm::address_space& f) { return scenario_file_name(f.name); }};
    _out << sc::format(model::check_report(_rp.machine(), c, src)) << std::flush;
  }

  const sc::program& _prog;
  std::vector<expected> _plan;
  replayer& _rp;
  std::ostream& _out;
  std::size_t _cursor = 0;                       // the first plan entry not yet seen
  std::size_t _started = 0;                      // statements started (their checks printed)
  bool _done = false;                            // the plan is over: the rest is the runner's teardown
  std::map<tid_t, tid_t> _bound;                 // trace tid -> scenario tid
  std::map<tid_t, tid_t> _trace_tid;             // scenario tid -> trace tid
  std::set<tid_t> _not_agents;                   // tasks whose own memory is in the slots
  std::optional<std::pair<tid_t, event>> _last;  // the last event followed, by scenario tid
  scenario_replay_stats _stats;
};

}  // namespace

int replay_scenario(std::istream& in, const std::string& name, const sc::program& prog, const replay_options& opts,
                    std::ostream& out, std::ostream& err, scenario_replay_stats* stats) {
  int code = 0;
  auto plan = plan_of(prog, err, code);
  if (code != 0) return code;
  replayer rp(opts);
  follower f(prog, std::move(plan), rp, out);
  code = replay_guarded(in, name, err, [&](reader& rd) {
    nsec_t last = 0;
    try {
      while (auto rec = rd.next()) {
        if (std::holds_alternative<ev_snapshot>(rec->ev)) continue;  // the scenario's checks say it
        last = rec->time;
        rp.apply(f.see(std::move(*rec)));
      }
      f.finish(last);
    } catch (const divergence& e) {
      err << rd.where() << ": " << e.what() << '\n';
      return 1;
    }
    rp.check_invariants();
    return 0;
  });
  if (code != 0) return code;
  const auto& st = f.stats();
  if (stats) *stats = st;
  err << fmt::format(
      "{}: {} records, {} of them {}'s statements' ({} retried faults), {} of its processes; made as the scenario "
      "says: {} accesses that did not fault, {} statements no recording shows\n",
      name, st.records, st.followed, prog.file, st.retried, st.processes, st.unseen, st.made);
  for (const auto& [what, n] : rp.stats().refused)
    err << fmt::format("{}: refused by the model: {} {}\n", name, what, n);
  for (const auto& [what, n] : rp.stats().unsupported) err << fmt::format("{}: not replayed: {} {}\n", name, what, n);
  return 0;
}

}  // namespace rmapkit::replay
