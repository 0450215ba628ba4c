// Agents: every scenario process is a real process running a small command loop,
// driven by the controller over a SOCK_SEQPACKET socket (one per agent). A `fork`
// statement makes the agent itself call fork(), so the child inherits its memory exactly
// as the kernel's dup_mmap() decides.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kcheck/fd.h"

namespace rmapkit::kcheck {

/// The descriptor number an agent's channel has inside the agent.
inline constexpr int AGENT_CHANNEL_FD = 3;
/// Base pages only: the runner disables THP for its processes.
inline constexpr unsigned long AGENT_PAGE_SIZE = 4096;

enum class agent_op : std::uint32_t {
  mmap,
  read,
  write,
  fork,
  exit,
  munmap,
  mprotect,
  mremap,
  madvise,
  mlock,
  munlock,
  flush_tlb,  ///< flush the agent's TLB entries (after its accessed bits were cleared)
};

/// agent_request::thp bits (version 2 scenarios). An agent keeps PR_SET_THP_DISABLE set
/// between requests, so that khugepaged never collapses a region behind the scenario's
/// back; a request with AGENT_THP_WINDOW runs with it cleared, as the statement it carries.
inline constexpr std::uint32_t AGENT_THP_WINDOW = 1U << 0;
/// mmap: MADV_HUGEPAGE on the new, still empty mapping (else MADV_NOHUGEPAGE).
inline constexpr std::uint32_t AGENT_THP_HUGE = 1U << 1;

struct agent_request {
  agent_op op = agent_op::read;
  std::uint32_t thp = 0;    ///< AGENT_THP_* bits
  std::int32_t prot = 0;    ///< PROT_* for mmap/mprotect
  std::int32_t flags = 0;   ///< MAP_* for mmap, MREMAP_* for mremap, MADV_* for madvise
  std::int32_t value = -1;  ///< write: the byte to fill with, or -1 for unique content
  std::uint64_t addr = 0;
  std::uint64_t len = 0;
  std::uint64_t new_addr = 0;  ///< mremap
  std::uint64_t new_len = 0;   ///< mremap
  std::uint64_t offset = 0;    ///< mmap file offset in bytes
  std::uint64_t salt = 0;      ///< write: per-run salt of unique content
  std::uint64_t line = 0;      ///< write: the statement's line
  std::uint64_t index = 0;     ///< write: region page index of addr
};

struct agent_reply {
  std::int32_t err = 0;  ///< 0, or the errno of the refused call (EFAULT for a faulting access)
  std::int32_t pid = 0;  ///< the agent's pid (hello), or the forked child's pid (fork)
  /// CLOCK_MONOTONIC nanoseconds the agent spent in the request's system call or page-touch
  /// loop (the kernel's cost of the statement, without the round trip); 0 for hello.
  std::uint64_t ns = 0;
};

/// Sends one request, with @fd attached when it is >= 0. Returns false when the channel is gone.
bool send_request(int channel, const agent_request& req, int fd = -1);
/// Receives one reply; returns false on EOF. EINTR is reported as errno EINTR with false.
bool recv_reply(int channel, agent_reply& rep);

/// The agent's command loop on AGENT_CHANNEL_FD (the rmapkit-agent executable). Never returns.
[[noreturn]] void agent_main();

/// Starts an agent: fork, then exec @agent_path with @channel as AGENT_CHANNEL_FD and
/// every other descriptor closed. Returns the pid, or -1 with errno.
pid_t start_agent(const char* agent_path, int channel);

/// Where rmapkit-agent is looked for, in order. When $RMAPKIT_AGENT is set, only there (an
/// explicit choice is not second-guessed). Else: beside the running executable (the build
/// tree puts it beside the rmapkit tool); then the package's agent directory relative to
/// the running executable's (the installed tool, bin/../libexec/rmapkit, in whatever prefix
/// the package was installed to); then the agent directory of the prefix the library was
/// configured for (a program installed elsewhere that embeds the kernel back end); and, in a
/// build that installs nothing (a subproject), the agent in that build tree.
std::vector<std::string> agent_candidates();

/// The first of agent_candidates() that is an executable file, or nothing.
std::optional<std::string> agent_executable();

/// Fills @page (AGENT_PAGE_SIZE bytes) with content unique to (salt, key1, key2): the pattern
/// writes and files use, so that no two unrelated pages are equal (KSM would merge them).
inline void unique_page(unsigned char* page, std::uint64_t salt, std::uint64_t key1, std::uint64_t key2) {
  std::memset(page, 0xa5, AGENT_PAGE_SIZE);
  const std::uint64_t header[4] = {0x726d61706b697421ULL /* "rmapkit!" */, salt, key1, key2};
  std::memcpy(page, header, sizeof header);
}

}  // namespace rmapkit::kcheck
