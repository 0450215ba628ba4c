// The agent side of the kernel back end, built into the rmapkit-agent executable only.
// Kept free of allocation in the command loop: an agent's own memory use must not
// disturb what the scenario measures. Never built with sanitizers: their shadow memory
// would sit where the scenario's slots are.
#include "kcheck/agent.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csetjmp>
#include <csignal>
#include <cstring>
#include <ctime>

#ifdef RMAPKIT_COVERAGE
// libgcov's: writes the counts gathered so far (tools/rmapkit-agent/CMakeLists.txt defines
// RMAPKIT_COVERAGE in a build with --coverage).
extern "C" void __gcov_dump();  // NOLINT(bugprone-reserved-identifier)
#endif

namespace rmapkit::kcheck {

namespace {

/// The agent's end: _exit(), so that no exit handler runs in a scenario process (a forked
/// agent would run its parent's). A coverage build writes its counts first, which the
/// skipped exit handler would have done.
[[noreturn]] void agent_exit() {
#ifdef RMAPKIT_COVERAGE
  __gcov_dump();
#endif
  ::_exit(0);
}

sigjmp_buf g_fault_jmp;
volatile sig_atomic_t g_fault_armed = 0;

void on_fault(int) {
  if (g_fault_armed) siglongjmp(g_fault_jmp, 1);
  std::signal(SIGSEGV, SIG_DFL);
  std::raise(SIGSEGV);
}

bool recv_request(int channel, agent_request& req, int& fd) {
  fd = -1;
  iovec iov{&req, sizeof req};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof req)) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return true;
}

/// CLOCK_MONOTONIC in nanoseconds (no allocation, async-signal-safe).
std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000U + static_cast<std::uint64_t>(ts.tv_nsec);
}

void reply(int channel, int err, int pid = 0, std::uint64_t ns = 0) {
  agent_reply r{err, pid, ns};
  while (::send(channel, &r, sizeof r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

/// Touches each page; a faulting access becomes EFAULT instead of a crash.
/// The page a write copies from. Touched at start-up (agent_main()), so that the first
/// write request does not give the agent's own .bss its anon_vma: a run's anon_vma
/// counts must not depend on which requests an agent happened to serve.
alignas(64) unsigned char g_page_buf[AGENT_PAGE_SIZE];

int touch(const agent_request& req, bool write) {
  auto& buf = g_page_buf;
  auto* base = reinterpret_cast<unsigned char*>(req.addr);
  std::uint64_t pages = req.len / AGENT_PAGE_SIZE;
  if (sigsetjmp(g_fault_jmp, 1)) {
    g_fault_armed = 0;
    return EFAULT;
  }
  g_fault_armed = 1;
  for (std::uint64_t i = 0; i < pages; ++i) {
    auto* page = base + i * AGENT_PAGE_SIZE;
    if (!write) {
      (void)*static_cast<volatile unsigned char*>(page);
      continue;
    }
    if (req.value >= 0) {
      std::memset(buf, req.value, AGENT_PAGE_SIZE);
    } else {
      unique_page(buf, req.salt, req.line, req.index + i);
    }
    // Every byte of the page, ascending (docs/scenario-format.md: `write`).
    std::memcpy(page, buf, AGENT_PAGE_SIZE);
  }
  g_fault_armed = 0;
  return 0;
}

int do_fork(int channel, int new_channel) {
  const std::uint64_t t0 = now_ns();
  pid_t child = ::fork();
  const std::uint64_t t1 = now_ns();  // in the parent: the fork() call itself
  if (child < 0) return errno;
  if (child == 0) {
    // The child continues as the new agent on its own channel.
    ::dup2(new_channel, AGENT_CHANNEL_FD);
    if (new_channel != AGENT_CHANNEL_FD) ::close(new_channel);
    reply(AGENT_CHANNEL_FD, 0, ::getpid());
    return -1;  // tells the loop nothing more to answer on the old channel
  }
  ::close(new_channel);
  reply(channel, 0, child, t1 - t0);
  return -2;
}

int sys_result(long r) { return r < 0 ? errno : 0; }

// x86 clears an accessed bit without flushing the TLB (ptep_clear_flush_young() is lazy
// there), and an access that hits a cached translation does not set the bit again. So
// after clear_refs the agent's next touches would be counted or not by chance. Zapping
// more PTEs than the kernel flushes one by one (tlb_single_page_flush_ceiling, 33 by
// default) flushes the whole mm's TLB. The area is a memfd of the agent's own, mapped
// shared: no anon_vma (kmem counts are untouched), outside the slots, repopulated from the
// page cache each time (after fork or reclaim it may have no PTEs).
constexpr std::size_t TLB_FLUSH_PAGES = 48;

int flush_tlb() {
  static void* area = nullptr;
  const std::size_t len = TLB_FLUSH_PAGES * AGENT_PAGE_SIZE;
  if (!area) {
    int fd = ::memfd_create("rmapkit_tlb_flush", MFD_CLOEXEC);
    if (fd < 0) return errno;
    int err = ::ftruncate(fd, static_cast<off_t>(len)) == 0 ? 0 : errno;
    void* p = err ? MAP_FAILED : ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (!err && p == MAP_FAILED) err = errno;
    ::close(fd);
    if (err) return err;
    area = p;
  }
  if (::madvise(area, len, MADV_POPULATE_READ) != 0) return errno;
  return sys_result(::madvise(area, len, MADV_DONTNEED));
}

}  // namespace

void agent_main() {
  std::memset(g_page_buf, 0, sizeof g_page_buf);
  ::prctl(PR_SET_NAME, "rmapkit-agent", 0, 0, 0);
  ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  // Exited children vanish at once; the controller, not the agent, watches them.
  std::signal(SIGCHLD, SIG_IGN);
  // Only the controller handles interruption: it tears agents down in order. An agent
  // whose controller is gone sees its channel close and exits.
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGHUP, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_NODEFER;
  ::sigaction(SIGSEGV, &sa, nullptr);
  ::sigaction(SIGBUS, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  int ch = AGENT_CHANNEL_FD;
  reply(ch, 0, ::getpid());
  for (;;) {
    agent_request req;
    int fd = -1;
    if (!recv_request(ch, req, fd)) agent_exit();
    const bool window = (req.thp & AGENT_THP_WINDOW) != 0;
    if (window) ::prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
    int err = 0;
    auto* addr = reinterpret_cast<void*>(req.addr);
    const std::uint64_t t0 = now_ns();
    std::uint64_t t1 = 0;  // set where the timed part ends early (mmap: before its madvise)
    switch (req.op) {
      case agent_op::mmap: {
        // MAP_FIXED when asked (a mapping into a region replaces what is there), else a
        // fresh slot that must be empty.
        const int fixed = (req.flags & MAP_FIXED) ? 0 : MAP_FIXED_NOREPLACE;
        void* p = ::mmap(addr, req.len, req.prot, req.flags | fixed, fd, static_cast<off_t>(req.offset));
        t1 = now_ns();
        if (p == MAP_FAILED) err = errno;
        else if (p != addr) err = EEXIST;
        else ::madvise(p, req.len, (req.thp & AGENT_THP_HUGE) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        break;
      }
      case agent_op::read: err = touch(req, false); break;
      case agent_op::write: err = touch(req, true); break;
      case agent_op::fork: {
        int r = do_fork(ch, fd);
        fd = -1;
        // Replies already sent (the child is now its own agent). Both close the window: the
        // child inherited it open.
        if (window) ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
        if (r == -1 || r == -2) continue;
        err = r;
        break;
      }
      case agent_op::exit: agent_exit();
      case agent_op::munmap: err = sys_result(::munmap(addr, req.len)); break;
      case agent_op::mprotect: err = sys_result(::mprotect(addr, req.len, req.prot)); break;
      case agent_op::mremap: {
        void* p = ::mremap(addr, req.len, req.new_len, req.flags, reinterpret_cast<void*>(req.new_addr));
        err = p == MAP_FAILED ? errno : 0;
        break;
      }
      case agent_op::madvise: err = sys_result(::madvise(addr, req.len, req.flags)); break;
      case agent_op::mlock: err = sys_result(::mlock(addr, req.len)); break;
      case agent_op::munlock: err = sys_result(::munlock(addr, req.len)); break;
      case agent_op::flush_tlb: err = flush_tlb(); break;
    }
    if (t1 == 0) t1 = now_ns();
    if (window) ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    if (fd >= 0) ::close(fd);
    reply(ch, err, 0, t1 - t0);
  }
}

}  // namespace rmapkit::kcheck
