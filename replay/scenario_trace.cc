// Kernel counterpart: none. The events each statement's system calls would leave in a
// recording of the kernel runner's agent, by address; the agent makes one call per
// statement, but for a read or write (one fault per page) and a move (one mremap per VMA).
#include "rmapkit/replay/scenario_trace.h"

#include <map>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

#include "rmapkit/model/session.h"
#include "rmapkit/replay/replay.h"
#include "rmapkit/version.h"
#include "scenario_internal.h"

namespace rmapkit::replay {

namespace sc = rmapkit::scenario;

namespace {

perms perms_of(sc::prot p, bool shared) {
  switch (p) {
    case sc::prot::rw: return {true, true, false, shared};
    case sc::prot::r: return {true, false, false, shared};
    case sc::prot::none: return {false, false, false, shared};
    case sc::prot::rx: return {true, false, true, shared};
    case sc::prot::rwx: return {true, true, true, shared};
  }
  return {};
}

/// The events of one statement, from the state before it runs.
class translator {
 public:
  translator(const model::session& s, std::vector<event>& out) : _s(s), _out(out) {}

  void operator()(const sc::op_spawn& o) { _out.push_back(ev_exec{scenario_tid(o.proc)}); }
  void operator()(const sc::op_file& o) {
    _out.push_back(ev_file{static_cast<std::uint32_t>(o.file), o.pages, _s.program().file_names.at(o.file)});
  }
  void operator()(const sc::op_mmap& o) {
    const bool shared = o.kind == sc::map_kind::anon_shared || o.kind == sc::map_kind::file_shared;
    ev_map e{scenario_tid(o.proc), o.start(), o.pages,    perms_of(o.prot, shared), {},
             pgoff_t{o.offset},    o.fixed,   o.noreserve};
    if (o.file) e.file = static_cast<std::uint32_t>(*o.file);
    _out.push_back(e);
  }
  void operator()(const sc::op_read& o) { faults(o.proc, o.span, access::read, std::nullopt); }
  void operator()(const sc::op_write& o) { faults(o.proc, o.span, access::write, o.value ? o.value : std::nullopt); }
  void operator()(const sc::op_fork& o) { _out.push_back(ev_fork{scenario_tid(o.parent), scenario_tid(o.child)}); }
  void operator()(const sc::op_exit& o) { _out.push_back(ev_exit{scenario_tid(o.proc)}); }
  void operator()(const sc::op_munmap& o) {
    _out.push_back(ev_unmap{scenario_tid(o.proc), o.span.start, o.span.pages});
  }
  void operator()(const sc::op_mprotect& o) {
    _out.push_back(ev_protect{scenario_tid(o.proc), o.span.start, o.span.pages, perms_of(o.prot, false)});
  }
  void operator()(const sc::op_mremap_resize& o) {
    _out.push_back(ev_mremap{scenario_tid(o.proc), o.base, o.old_pages, o.base, o.new_pages, false});
  }
  void operator()(const sc::op_mremap_move& o) {
    // VMA by VMA, each to the same offset from the new base, as the runner's agent moves them.
    const auto* mm = _s.mm_of(o.proc);
    for (auto it = mm->mm_mt.lower_bound(o.old_base.value);
         it != mm->mm_mt.end() && it->first < o.old_base.value + sc::SLOT_SIZE; ++it) {
      const auto& v = *it->second;
      const vaddr_t to{o.new_base.value + (v.vm_start.value - o.old_base.value)};
      _out.push_back(ev_mremap{scenario_tid(o.proc), v.vm_start, v.pages(), to, v.pages(), false});
    }
  }
  void operator()(const sc::op_madvise& o) {
    _out.push_back(ev_advise{scenario_tid(o.proc), o.span.start, o.span.pages, sc::to_string(o.advice)});
  }
  void operator()(const sc::op_mlock& o) {
    _out.push_back(ev_lock{scenario_tid(o.proc), o.span.start, o.span.pages, true});
  }
  void operator()(const sc::op_munlock& o) {
    _out.push_back(ev_lock{scenario_tid(o.proc), o.span.start, o.span.pages, false});
  }
  void operator()(const sc::op_ksm& o) { _out.push_back(ev_inject{o.prune ? "ksm-prune" : "ksm"}); }
  void operator()(const sc::op_reclaim&) { _out.push_back(ev_inject{"reclaim"}); }
  void operator()(const sc::op_clear_refs& o) {
    _out.push_back(ev_clear_refs{scenario_tid(o.proc), sc::to_string(o.type)});
  }
  void operator()(const sc::op_report&) {}
  // Version 2: the model refuses `thp` before any statement after it runs; without large
  // folios `shrink` changes nothing, so a trace need not say it.
  void operator()(const sc::op_thp&) {}
  void operator()(const sc::op_shrink&) {}
  void operator()(const sc::op_check&) {}  // a snapshot, taken after the statement runs

 private:
  void faults(sc::proc_id p, const sc::page_span& s, access a, std::optional<std::uint8_t> value) {
    for (std::uint64_t i = 0; i < s.pages; ++i)
      _out.push_back(ev_fault{scenario_tid(p), page_addr(s.start, i), a, true, value});
  }

  const model::session& _s;
  std::vector<event>& _out;
};

ev_snapshot snapshot_of_session(const model::session& s, std::string label) {
  const auto& prog = s.program();
  std::map<tid_t, const mm::mm_struct*> tasks;
  for (sc::proc_id p = 0; p < prog.process_names.size(); ++p)
    if (const auto* mm = s.mm_of(p)) tasks[scenario_tid(p)] = mm;
  std::unordered_map<const mm::address_space*, std::uint32_t> files;
  for (sc::file_id f = 0; f < prog.file_names.size(); ++f)
    if (const auto* as = s.file_of(f)) files[as] = static_cast<std::uint32_t>(f);
  return snapshot_of(s.machine(), tasks, files, std::move(label));
}

}  // namespace

std::vector<event> statement_events(const model::session& s, const sc::op& o) {
  std::vector<event> events;
  std::visit(translator{s, events}, o.body);
  return events;
}

header scenario_header() { return {"model", PAGE_SIZE, "rmapkit " RMAPKIT_VERSION " (from a scenario)"}; }

int trace_scenario(const sc::program& prog, writer& w, std::ostream& err, const model::run_options& opts) {
  model::session s(prog, opts);
  std::ostringstream reports;  // the checks' reports: the snapshots say it instead
  while (!s.done()) {
    const auto& o = prog.ops[s.position()];
    auto events = statement_events(s, o);
    if (int code = s.step(reports, err); code != 0) return code;
    const auto time = static_cast<nsec_t>(o.line);
    for (auto& e : events) w.write({time, std::move(e)});
    if (const auto* c = std::get_if<sc::op_check>(&o.body))
      w.write({time, snapshot_of_session(s, c->label.empty() ? fmt::format("line {}", o.line) : c->label)});
  }
  return 0;
}

}  // namespace rmapkit::replay
