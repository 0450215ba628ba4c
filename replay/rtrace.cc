// Kernel counterpart: none; this is the trace format of docs/rtrace.md. Both encodings live
// here, so that a field added to an event is added to both in one place.
#include "rmapkit/replay/rtrace.h"

#include <array>
#include <charconv>
#include <istream>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

namespace rmapkit::replay {

namespace {

constexpr std::string_view BINARY_MAGIC{"\x7frtrace\n", 8};

// The events' keywords, in the variant's order: the binary form's tag is the index.
constexpr std::array<std::string_view, std::variant_size_v<event>> EVENT_NAMES = {
    "file",   "exec", "fork",  "clone-vm",   "exit",   "map",  "unmap",    "protect", "mremap",  "brk",
    "advise", "lock", "fault", "clear-refs", "inject", "lost", "snapshot", "kmem",    "lock-all"};

constexpr std::array<std::string_view, 5> PAGE_STATES = {"anon", "file", "zero", "ksm", "swap"};

std::uint8_t perm_bits(const perms& p) {
  return static_cast<std::uint8_t>((p.read ? 1 : 0) | (p.write ? 2 : 0) | (p.exec ? 4 : 0) | (p.shared ? 8 : 0));
}
perms perms_of(std::uint64_t b) { return {(b & 1) != 0, (b & 2) != 0, (b & 4) != 0, (b & 8) != 0}; }

// ---- text ------------------------------------------------------------------------------

std::string hex(vaddr_t a) { return fmt::format("{:#x}", a.value); }

void put_text(std::ostream& o, const ev_snapshot& s) {
  o << "snapshot " << s.label << '\n';
  for (const auto& p : s.processes) {
    o << "  process " << p.tid << '\n';
    for (const auto& v : p.vmas) {
      o << "    vma " << hex(v.start) << ' ' << hex(v.end) << ' ' << to_string(v.perms);
      if (v.file) o << " file " << *v.file << ' ' << v.pgoff.value;
      else o << (v.shmem ? " shmem" : " anon");
      o << '\n';
    }
    for (const auto& pg : p.pages)
      o << "    page " << hex(pg.addr) << ' ' << to_string(pg.state) << ' ' << pg.frame << (pg.exclusive ? " excl" : "")
        << '\n';
  }
  o << "end\n";
}

std::string text_of(const event& ev) {
  return std::visit(
      [](const auto& e) -> std::string {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, ev_file>) return fmt::format("file {} {} {}", e.id, e.pages, e.name);
        else if constexpr (std::is_same_v<T, ev_exec>) return fmt::format("exec {}", e.tid);
        else if constexpr (std::is_same_v<T, ev_fork>) return fmt::format("fork {} {}", e.parent, e.child);
        else if constexpr (std::is_same_v<T, ev_clone_vm>) return fmt::format("clone-vm {} {}", e.parent, e.child);
        else if constexpr (std::is_same_v<T, ev_exit>) return fmt::format("exit {}", e.tid);
        else if constexpr (std::is_same_v<T, ev_map>) {
          auto s = fmt::format("map {} {} {} {}", e.tid, hex(e.start), e.pages, to_string(e.perms));
          s += e.file ? fmt::format(" file {} {}", *e.file, e.pgoff.value) : std::string(" anon");
          if (e.fixed) s += " fixed";
          if (e.noreserve) s += " noreserve";
          if (e.stack) s += " stack";
          return s;
        } else if constexpr (std::is_same_v<T, ev_unmap>) {
          return fmt::format("unmap {} {} {}", e.tid, hex(e.start), e.pages);
        } else if constexpr (std::is_same_v<T, ev_protect>) {
          return fmt::format("protect {} {} {} {}", e.tid, hex(e.start), e.pages, to_string(e.perms).substr(0, 3));
        } else if constexpr (std::is_same_v<T, ev_mremap>) {
          return fmt::format("mremap {} {} {} {} {}{}", e.tid, hex(e.old_start), e.old_pages, hex(e.new_start),
                             e.new_pages, e.dontunmap ? " dontunmap" : "");
        } else if constexpr (std::is_same_v<T, ev_brk>) {
          return fmt::format("brk {} {} {}", e.tid, hex(e.old_end), hex(e.new_end));
        } else if constexpr (std::is_same_v<T, ev_advise>) {
          return fmt::format("advise {} {} {} {}", e.tid, hex(e.start), e.pages, e.advice);
        } else if constexpr (std::is_same_v<T, ev_lock>) {
          return fmt::format("{} {} {} {}", e.lock ? "lock" : "unlock", e.tid, hex(e.start), e.pages);
        } else if constexpr (std::is_same_v<T, ev_lock_all>) {
          if (!e.lock) return fmt::format("unlock-all {}", e.tid);
          return fmt::format("lock-all {}{}{}{}", e.tid, e.current ? " current" : "", e.future ? " future" : "",
                             e.onfault ? " onfault" : "");
        } else if constexpr (std::is_same_v<T, ev_fault>) {
          static constexpr std::array<char, 3> kinds = {'r', 'w', 'x'};
          auto s = fmt::format("fault {} {} {}", e.tid, hex(e.addr), kinds[static_cast<std::size_t>(e.access)]);
          if (!e.user) s += " kernel";
          if (e.value) s += fmt::format(" value={:#x}", *e.value);
          return s;
        } else if constexpr (std::is_same_v<T, ev_clear_refs>) {
          return fmt::format("clear-refs {} {}", e.tid, e.type);
        } else if constexpr (std::is_same_v<T, ev_inject>) {
          return fmt::format("inject {}", e.what);
        } else if constexpr (std::is_same_v<T, ev_lost>) {
          return fmt::format("lost {}", e.count);
        } else if constexpr (std::is_same_v<T, ev_kmem>) {
          return fmt::format("kmem {} {} {} {}", e.anon_vma_alloc, e.anon_vma_free, e.avc_alloc, e.avc_free);
        } else {
          static_assert(std::is_same_v<T, ev_snapshot>);
          std::ostringstream o;
          put_text(o, e);
          return o.str();
        }
      },
      ev);
}

/// The whitespace-separated words of one line.
std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// ---- binary: unsigned LEB128 varints, strings as length + bytes --------------------------

void put_varint(std::ostream& o, std::uint64_t v) {
  do {
    auto byte = static_cast<char>(v & 0x7f);
    v >>= 7;
    if (v) byte = static_cast<char>(byte | 0x80);
    o.put(byte);
  } while (v);
}
void put_string(std::ostream& o, std::string_view s) {
  put_varint(o, s.size());
  o.write(s.data(), static_cast<std::streamsize>(s.size()));
}

/// Calls @f with each field of @e in the order the binary form holds them; the reader and
/// the writer pass the same walk, so the two cannot disagree on the order. @E may be const.
template <class E, class F>
void fields(E& e, F&& f) {
  using T = std::remove_const_t<E>;
  if constexpr (std::is_same_v<T, ev_file>) f(e.id), f(e.pages), f(e.name);
  else if constexpr (std::is_same_v<T, ev_exec> || std::is_same_v<T, ev_exit>) f(e.tid);
  else if constexpr (std::is_same_v<T, ev_fork> || std::is_same_v<T, ev_clone_vm>) f(e.parent), f(e.child);
  else if constexpr (std::is_same_v<T, ev_map>)
    f(e.tid), f(e.start), f(e.pages), f(e.perms), f(e.file), f(e.pgoff), f(e.fixed), f(e.noreserve), f(e.stack);
  else if constexpr (std::is_same_v<T, ev_unmap>) f(e.tid), f(e.start), f(e.pages);
  else if constexpr (std::is_same_v<T, ev_protect>) f(e.tid), f(e.start), f(e.pages), f(e.perms);
  else if constexpr (std::is_same_v<T, ev_mremap>)
    f(e.tid), f(e.old_start), f(e.old_pages), f(e.new_start), f(e.new_pages), f(e.dontunmap);
  else if constexpr (std::is_same_v<T, ev_brk>) f(e.tid), f(e.old_end), f(e.new_end);
  else if constexpr (std::is_same_v<T, ev_advise>) f(e.tid), f(e.start), f(e.pages), f(e.advice);
  else if constexpr (std::is_same_v<T, ev_lock>) f(e.tid), f(e.start), f(e.pages), f(e.lock);
  else if constexpr (std::is_same_v<T, ev_lock_all>) f(e.tid), f(e.lock), f(e.current), f(e.future), f(e.onfault);
  else if constexpr (std::is_same_v<T, ev_fault>) f(e.tid), f(e.addr), f(e.access), f(e.user), f(e.value);
  else if constexpr (std::is_same_v<T, ev_clear_refs>) f(e.tid), f(e.type);
  else if constexpr (std::is_same_v<T, ev_inject>) f(e.what);
  else if constexpr (std::is_same_v<T, ev_lost>) f(e.count);
  else if constexpr (std::is_same_v<T, ev_kmem>) f(e.anon_vma_alloc), f(e.anon_vma_free), f(e.avc_alloc), f(e.avc_free);
  else if constexpr (std::is_same_v<T, snap_vma>) f(e.start), f(e.end), f(e.perms), f(e.shmem), f(e.file), f(e.pgoff);
  else if constexpr (std::is_same_v<T, snap_page>) f(e.addr), f(e.state), f(e.frame), f(e.exclusive);
  else if constexpr (std::is_same_v<T, snap_process>) f(e.tid), f(e.vmas), f(e.pages);
  else if constexpr (std::is_same_v<T, ev_snapshot>) f(e.label), f(e.processes);
  else static_assert(sizeof(T) == 0, "a record the binary form does not know");
}

template <class T>
constexpr bool has_fields = std::is_class_v<T> && !std::is_same_v<T, std::string> && !std::is_same_v<T, perms> &&
                            !std::is_same_v<T, vaddr_t> && !std::is_same_v<T, pgoff_t>;

struct binary_put {
  std::ostream& o;
  template <class T>
  void operator()(const T& v) const {
    if constexpr (std::is_same_v<T, std::string>) put_string(o, v);
    else if constexpr (std::is_same_v<T, bool>) put_varint(o, v ? 1 : 0);
    else if constexpr (std::is_enum_v<T>) put_varint(o, static_cast<std::uint64_t>(v));
    else if constexpr (std::is_integral_v<T>) put_varint(o, v);
    else if constexpr (std::is_same_v<T, vaddr_t> || std::is_same_v<T, pgoff_t>) put_varint(o, v.value);
    else if constexpr (std::is_same_v<T, perms>) put_varint(o, perm_bits(v));
    else if constexpr (requires { v.has_value(); }) {
      put_varint(o, v ? 1 : 0);
      if (v) (*this)(*v);
    } else if constexpr (requires {
                           v.size();
                           v.begin();
                         }) {
      put_varint(o, v.size());
      for (const auto& x : v) (*this)(x);
    } else if constexpr (has_fields<T>) {
      fields(v, *this);
    } else {
      static_assert(sizeof(T) == 0, "a field the binary form cannot write");
    }
  }
};

}  // namespace

std::string to_string(const perms& p) {
  return {p.read ? 'r' : '-', p.write ? 'w' : '-', p.exec ? 'x' : '-', p.shared ? 's' : 'p'};
}

std::optional<perms> parse_perms(std::string_view s) {
  if (s.size() != 3 && s.size() != 4) return std::nullopt;
  auto bit = [&](std::size_t i, char on) -> std::optional<bool> {
    if (s[i] == on) return true;
    if (s[i] == '-') return false;
    return std::nullopt;
  };
  auto r = bit(0, 'r'), w = bit(1, 'w'), x = bit(2, 'x');
  if (!r || !w || !x) return std::nullopt;
  perms p{*r, *w, *x, false};
  if (s.size() == 4) {
    if (s[3] != 'p' && s[3] != 's') return std::nullopt;
    p.shared = s[3] == 's';
  }
  return p;
}

std::string_view to_string(page_state s) { return PAGE_STATES.at(static_cast<std::size_t>(s)); }

std::string_view event_name(const event& e) { return EVENT_NAMES.at(e.index()); }
std::string to_text(const event& e) { return text_of(e); }

// ---- writer --------------------------------------------------------------------------------

writer::writer(std::ostream& out, encoding format, const header& h) : _out(out), _format(format) {
  if (_format == encoding::text) {
    _out << "rtrace " << RTRACE_VERSION << "\nkernel " << h.kernel << "\npage-size " << h.page_size << "\nrecorder "
         << h.recorder << '\n';
    return;
  }
  _out.write(BINARY_MAGIC.data(), static_cast<std::streamsize>(BINARY_MAGIC.size()));
  put_varint(_out, RTRACE_VERSION);
  put_string(_out, h.kernel);
  put_varint(_out, h.page_size);
  put_string(_out, h.recorder);
}

void writer::write(const record& r) {
  if (r.time < _last) throw trace_error(fmt::format("record at {} goes back in time from {}", r.time, _last));
  const nsec_t delta = r.time - _last;
  _last = r.time;
  if (_format == encoding::text) {
    if (delta) _out << '@' << r.time << ' ';
    _out << text_of(r.ev);
    if (!std::holds_alternative<ev_snapshot>(r.ev)) _out << '\n';
    return;
  }
  _out.put(static_cast<char>(r.ev.index()));
  put_varint(_out, delta);
  std::visit([&](const auto& e) { binary_put{_out}(e); }, r.ev);
}

// ---- reader --------------------------------------------------------------------------------

struct reader::impl {
  std::istream& in;
  std::string name;
  encoding format;
  std::uint64_t line = 0;    // text: the line last read
  std::uint64_t offset = 0;  // binary: bytes read so far
  std::uint64_t record_at = 0;
  nsec_t time = 0;

  [[noreturn]] void fail(const std::string& why) const {
    if (format == encoding::text) throw trace_error(fmt::format("{}:{}: {}", name, line, why));
    throw trace_error(fmt::format("{}: byte {}: {}", name, record_at, why));
  }

  // ---- text ----
  bool next_line(std::string& out) {
    while (std::getline(in, out)) {
      ++line;
      if (!out.empty() && out.back() == '\r') out.pop_back();
      auto first = out.find_first_not_of(" \t");
      if (first == std::string::npos || out[first] == '#') continue;
      return true;
    }
    if (in.bad()) fail("read error");
    return false;
  }

  std::uint64_t number(std::string_view w, const char* what) const {
    int base = 10;
    if (w.size() > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X')) {
      w.remove_prefix(2);
      base = 16;
    }
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v, base);
    if (ec != std::errc{} || p != w.data() + w.size() || w.empty())
      fail(fmt::format("{}: expected a number, got '{}'", what, w));
    return v;
  }
  tid_t tid(std::string_view w) const {
    auto v = number(w, "tid");
    if (v == 0 || v > 0xffffffffU) fail(fmt::format("tid {} is out of range", v));
    return static_cast<tid_t>(v);
  }
  vaddr_t page_address(std::string_view w, const char* what) const {
    vaddr_t a{number(w, what)};
    if (a.value % PAGE_SIZE) fail(fmt::format("{} {:#x} is not page-aligned", what, a.value));
    return a;
  }
  std::uint64_t page_count(std::string_view w) const {
    auto n = number(w, "pages");
    if (n == 0) fail("a range of 0 pages");
    if (n > (std::uint64_t{1} << 36)) fail(fmt::format("{} pages is more than an address space holds", n));
    return n;
  }
  perms perms_word(std::string_view w, std::size_t size) const {
    auto p = parse_perms(w);
    if (!p || w.size() != size)
      fail(fmt::format("permissions '{}': expected {} as in /proc/PID/maps", w, size == 4 ? "rw-p" : "rw-"));
    return *p;
  }

  static void want(const std::vector<std::string_view>& w, std::size_t n, std::string_view usage, const impl& self) {
    if (w.size() != n) self.fail(fmt::format("expected '{}'", usage));
  }

  ev_map map_event(const std::vector<std::string_view>& w) const {
    static constexpr std::string_view usage =
        "map TID START PAGES PERMS anon|file ID PGOFF [fixed] [noreserve] [stack]";
    if (w.size() < 6) fail(fmt::format("expected '{}'", usage));
    ev_map e{tid(w[1]), page_address(w[2], "start"), page_count(w[3]), perms_word(w[4], 4), {}, {}, false, false};
    std::size_t i = 5;
    if (w[i] == "file") {
      if (w.size() < i + 3) fail(fmt::format("expected '{}'", usage));
      e.file = static_cast<std::uint32_t>(number(w[i + 1], "file id"));
      e.pgoff = pgoff_t{number(w[i + 2], "pgoff")};
      i += 3;
    } else if (w[i] == "anon") {
      ++i;
    } else {
      fail(fmt::format("mapping kind '{}': expected anon or file", w[i]));
    }
    for (; i < w.size(); ++i) {
      if (w[i] == "fixed") e.fixed = true;
      else if (w[i] == "noreserve") e.noreserve = true;
      else if (w[i] == "stack") e.stack = true;
      else fail(fmt::format("unknown map flag '{}' (fixed, noreserve, stack)", w[i]));
    }
    return e;
  }

  ev_fault fault_event(const std::vector<std::string_view>& w) const {
    if (w.size() < 4) fail("expected 'fault TID ADDR r|w|x [kernel] [value=V]'");
    ev_fault e{tid(w[1]), page_address(w[2], "fault address"), access::read, true, std::nullopt};
    if (w[3] == "r") e.access = access::read;
    else if (w[3] == "w") e.access = access::write;
    else if (w[3] == "x") e.access = access::exec;
    else fail(fmt::format("fault access '{}': expected r, w or x", w[3]));
    for (std::size_t i = 4; i < w.size(); ++i) {
      if (w[i] == "kernel") {
        e.user = false;
      } else if (w[i].starts_with("value=")) {
        auto v = number(w[i].substr(6), "value");
        if (v > 0xff) fail(fmt::format("value {:#x} is not a byte", v));
        e.value = static_cast<std::uint8_t>(v);
      } else {
        fail(fmt::format("unknown fault word '{}' (kernel, value=V)", w[i]));
      }
    }
    return e;
  }

  snap_vma snapshot_vma(const std::vector<std::string_view>& w) const {
    if (w.size() < 5) fail("expected 'vma START END PERMS anon|shmem|file ID PGOFF'");
    snap_vma v{page_address(w[1], "vma start"), page_address(w[2], "vma end"), perms_word(w[3], 4), false, {}, {}};
    if (v.end <= v.start) fail("a vma that ends where it starts, or before");
    if (w[4] == "file" && w.size() == 7) {
      v.file = static_cast<std::uint32_t>(number(w[5], "file id"));
      v.pgoff = pgoff_t{number(w[6], "pgoff")};
    } else if ((w[4] == "anon" || w[4] == "shmem") && w.size() == 5) {
      v.shmem = w[4] == "shmem";
    } else {
      fail("expected 'vma START END PERMS anon|shmem|file ID PGOFF'");
    }
    return v;
  }

  snap_page snapshot_page(const std::vector<std::string_view>& w) const {
    if (w.size() != 4 && w.size() != 5) fail("expected 'page ADDR STATE FRAME [excl]'");
    snap_page p{page_address(w[1], "page address"), page_state::anon, number(w[3], "frame"), false};
    bool known = false;
    for (std::size_t i = 0; i < PAGE_STATES.size(); ++i)
      if (w[2] == PAGE_STATES[i]) {
        p.state = static_cast<page_state>(i);
        known = true;
      }
    if (!known) fail(fmt::format("page state '{}': expected anon, file, zero, ksm or swap", w[2]));
    if (w.size() == 5) {
      if (w[4] != "excl") fail(fmt::format("unknown page word '{}' (excl)", w[4]));
      p.exclusive = true;
    }
    return p;
  }

  ev_snapshot snapshot_event(std::string_view label) {
    ev_snapshot s{std::string(label), {}};
    std::string text;
    while (next_line(text)) {
      auto w = words_of(text);
      if (w[0] == "end" && w.size() == 1) return s;
      if (w[0] == "process" && w.size() == 2) {
        auto t = tid(w[1]);
        if (!s.processes.empty() && t <= s.processes.back().tid) fail("processes must come in increasing tid order");
        s.processes.push_back({t, {}, {}});
      } else if (s.processes.empty()) {
        fail(fmt::format("'{}' before the snapshot's first 'process TID'", w[0]));
      } else if (w[0] == "vma") {
        s.processes.back().vmas.push_back(snapshot_vma(w));
      } else if (w[0] == "page") {
        s.processes.back().pages.push_back(snapshot_page(w));
      } else {
        fail(fmt::format("'{}' in a snapshot: expected process, vma, page or end", w[0]));
      }
    }
    fail("the trace ends inside a snapshot (no 'end')");
  }

  event text_event(const std::vector<std::string_view>& w, std::string_view rest) {
    const auto k = w[0];
    auto range = [&](std::string_view usage) {
      want(w, 4, usage, *this);
      return std::pair{page_address(w[2], "start"), page_count(w[3])};
    };
    if (k == "file") {
      if (w.size() != 4) fail("expected 'file ID PAGES NAME'");
      return ev_file{static_cast<std::uint32_t>(number(w[1], "file id")), page_count(w[2]), std::string(w[3])};
    }
    if (k == "exec") return want(w, 2, "exec TID", *this), ev_exec{tid(w[1])};
    if (k == "exit") return want(w, 2, "exit TID", *this), ev_exit{tid(w[1])};
    if (k == "fork") return want(w, 3, "fork PARENT CHILD", *this), ev_fork{tid(w[1]), tid(w[2])};
    if (k == "clone-vm") return want(w, 3, "clone-vm PARENT CHILD", *this), ev_clone_vm{tid(w[1]), tid(w[2])};
    if (k == "map") return map_event(w);
    if (k == "unmap") {
      auto [s, n] = range("unmap TID START PAGES");
      return ev_unmap{tid(w[1]), s, n};
    }
    if (k == "unlock-all") return want(w, 2, "unlock-all TID", *this), ev_lock_all{tid(w[1]), false};
    if (k == "lock-all") {
      if (w.size() < 2) fail("lock-all TID [current] [future] [onfault]: the task is missing");
      ev_lock_all e{tid(w[1]), true};
      for (std::size_t i = 2; i < w.size(); ++i) {
        if (w[i] == "current") e.current = true;
        else if (w[i] == "future") e.future = true;
        else if (w[i] == "onfault") e.onfault = true;
        else fail(fmt::format("unknown lock-all flag '{}' (current, future, onfault)", w[i]));
      }
      return e;
    }
    if (k == "lock" || k == "unlock") {
      auto [s, n] = range(fmt::format("{} TID START PAGES", k));
      return ev_lock{tid(w[1]), s, n, k == "lock"};
    }
    if (k == "protect") {
      want(w, 5, "protect TID START PAGES PERMS", *this);
      return ev_protect{tid(w[1]), page_address(w[2], "start"), page_count(w[3]), perms_word(w[4], 3)};
    }
    if (k == "advise") {
      want(w, 5, "advise TID START PAGES ADVICE", *this);
      return ev_advise{tid(w[1]), page_address(w[2], "start"), page_count(w[3]), std::string(w[4])};
    }
    if (k == "mremap") {
      if (w.size() != 6 && !(w.size() == 7 && w[6] == "dontunmap"))
        fail("expected 'mremap TID OLD OLDPAGES NEW NEWPAGES [dontunmap]'");
      return ev_mremap{tid(w[1]),        page_address(w[2], "old start"),
                       page_count(w[3]), page_address(w[4], "new start"),
                       page_count(w[5]), w.size() == 7};
    }
    if (k == "brk") {
      want(w, 4, "brk TID OLD NEW", *this);
      return ev_brk{tid(w[1]), vaddr_t{number(w[2], "old break")}, vaddr_t{number(w[3], "new break")}};
    }
    if (k == "fault") return fault_event(w);
    if (k == "clear-refs") {
      want(w, 3, "clear-refs TID all|anon|file", *this);
      if (w[2] != "all" && w[2] != "anon" && w[2] != "file")
        fail(fmt::format("clear-refs type '{}': expected all, anon or file", w[2]));
      return ev_clear_refs{tid(w[1]), std::string(w[2])};
    }
    if (k == "inject") {
      want(w, 2, "inject ksm|ksm-prune|reclaim", *this);
      if (w[1] != "ksm" && w[1] != "ksm-prune" && w[1] != "reclaim")
        fail(fmt::format("inject '{}': expected ksm, ksm-prune or reclaim", w[1]));
      return ev_inject{std::string(w[1])};
    }
    if (k == "lost") return want(w, 2, "lost N", *this), ev_lost{number(w[1], "count")};
    if (k == "kmem") {
      want(w, 5, "kmem ANON_VMA_ALLOC ANON_VMA_FREE AVC_ALLOC AVC_FREE", *this);
      return ev_kmem{number(w[1], "count"), number(w[2], "count"), number(w[3], "count"), number(w[4], "count")};
    }
    if (k == "snapshot") {
      if (w.size() < 2) fail("expected 'snapshot LABEL'");
      return snapshot_event(rest);
    }
    fail(fmt::format("unknown event '{}'", k));
  }

  std::optional<record> next_text() {
    std::string text;
    if (!next_line(text)) return std::nullopt;
    record_at = line;
    auto w = words_of(text);
    if (w[0].starts_with('@')) {
      auto t = number(w[0].substr(1), "time");
      if (t < time) fail(fmt::format("time {} goes back from {}", t, time));
      time = t;
      w.erase(w.begin());
      if (w.empty()) fail("a time with no event");
    }
    // A snapshot's label is the rest of its line, spaces and all.
    std::string_view rest = text;
    rest.remove_prefix(static_cast<std::size_t>(w[0].data() - text.data()) + w[0].size());
    rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
    return record{time, text_event(w, rest)};
  }

  void read_text_header(header& h) {
    std::string text;
    if (!next_line(text) || words_of(text) != std::vector<std::string_view>{"rtrace", "1"})
      fail(fmt::format("not an rtrace of version {}: the first line must be 'rtrace {}'", RTRACE_VERSION,
                       RTRACE_VERSION));
    // The header's keys come in a fixed order, so that two traces' headers diff line by line.
    static constexpr std::array<std::string_view, 3> keys = {"kernel", "page-size", "recorder"};
    for (auto key : keys) {
      if (!next_line(text)) fail(fmt::format("the header ends before '{}'", key));
      auto w = words_of(text);
      if (w[0] != key || w.size() < 2) fail(fmt::format("expected the header line '{} VALUE'", key));
      std::string value(text.substr(text.find(w[1])));
      if (key == "kernel") h.kernel = value;
      else if (key == "recorder") h.recorder = value;
      else h.page_size = number(w[1], "page-size");
      if (key == "page-size" && h.page_size != PAGE_SIZE)
        fail(fmt::format("page size {}: the model has {}-byte pages", h.page_size, PAGE_SIZE));
    }
  }

  // ---- binary ----
  std::uint64_t get_varint() {
    std::uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
      int c = in.get();
      if (c == std::char_traits<char>::eof()) fail("the trace ends inside a record");
      ++offset;
      if (shift > 63) fail("a number longer than 64 bits");
      v |= std::uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
  }
  std::string get_string() {
    auto n = get_varint();
    if (n > (1U << 20)) fail(fmt::format("a string of {} bytes", n));
    std::string s(n, '\0');
    in.read(s.data(), static_cast<std::streamsize>(n));
    if (static_cast<std::uint64_t>(in.gcount()) != n) fail("the trace ends inside a string");
    offset += n;
    return s;
  }

  struct binary_get {
    impl& r;
    template <class T>
    void operator()(T& v) const {
      if constexpr (std::is_same_v<T, std::string>) {
        v = r.get_string();
      } else if constexpr (std::is_same_v<T, bool>) {
        v = r.get_varint() != 0;
      } else if constexpr (std::is_enum_v<T>) {
        auto n = r.get_varint();
        if (n > (std::is_same_v<T, access> ? 2U : PAGE_STATES.size() - 1)) r.fail(fmt::format("bad enum value {}", n));
        v = static_cast<T>(n);
      } else if constexpr (std::is_integral_v<T>) {
        auto n = r.get_varint();
        if (n > std::numeric_limits<T>::max()) r.fail(fmt::format("value {} out of range", n));
        v = static_cast<T>(n);
      } else if constexpr (std::is_same_v<T, vaddr_t> || std::is_same_v<T, pgoff_t>) {
        v = T{r.get_varint()};
      } else if constexpr (std::is_same_v<T, perms>) {
        v = perms_of(r.get_varint());
      } else if constexpr (requires {
                             v.has_value();
                             v.emplace();
                           }) {
        if (r.get_varint()) (*this)(v.emplace());
        else v.reset();
      } else if constexpr (requires { v.emplace_back(); }) {
        auto n = r.get_varint();
        if (n > (1U << 26)) r.fail(fmt::format("a list of {} entries", n));
        v.clear();
        for (std::uint64_t i = 0; i < n; ++i) (*this)(v.emplace_back());
      } else if constexpr (has_fields<T>) {
        fields(v, *this);
      } else {
        static_assert(sizeof(T) == 0, "a field the binary form cannot read");
      }
    }
  };

  template <std::size_t... I>
  event event_of_tag(std::size_t tag, std::index_sequence<I...>) {
    event e;
    ((tag == I ? (void)(e = event{std::in_place_index<I>}) : void()), ...);
    return e;
  }

  std::optional<record> next_binary() {
    record_at = offset;
    int tag = in.get();
    if (tag == std::char_traits<char>::eof()) {
      if (in.bad()) fail("read error");
      return std::nullopt;
    }
    ++offset;
    if (static_cast<std::size_t>(tag) >= std::variant_size_v<event>) fail(fmt::format("unknown record tag {}", tag));
    auto delta = get_varint();
    time += delta;
    record r{time, event_of_tag(static_cast<std::size_t>(tag), std::make_index_sequence<std::variant_size_v<event>>{})};
    std::visit([&](auto& e) { binary_get{*this}(e); }, r.ev);
    return r;
  }

  void read_binary_header(header& h) {
    std::string magic(BINARY_MAGIC.size(), '\0');
    in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
    if (magic != BINARY_MAGIC) fail("not an rtrace: neither the text form's 'rtrace 1' nor the binary magic");
    offset = magic.size();
    if (auto v = get_varint(); v != RTRACE_VERSION)
      fail(fmt::format("rtrace version {}: this rmapkit reads version {}", v, RTRACE_VERSION));
    h.kernel = get_string();
    h.page_size = get_varint();
    h.recorder = get_string();
    if (h.page_size != PAGE_SIZE)
      fail(fmt::format("page size {}: the model has {}-byte pages", h.page_size, PAGE_SIZE));
  }
};

reader::reader(std::istream& in, std::string name) {
  // The binary form starts with a byte no text trace starts with.
  const bool binary = in.peek() == BINARY_MAGIC[0];
  _format = binary ? encoding::binary : encoding::text;
  _impl = std::make_unique<impl>(impl{in, std::move(name), _format});
  if (binary) _impl->read_binary_header(_header);
  else _impl->read_text_header(_header);
}

reader::~reader() = default;

std::optional<record> reader::next() { return _format == encoding::text ? _impl->next_text() : _impl->next_binary(); }

std::string reader::where() const {
  if (_format == encoding::text) return fmt::format("{}:{}", _impl->name, _impl->record_at);
  return fmt::format("{}: byte {}", _impl->name, _impl->record_at);
}

}  // namespace rmapkit::replay
