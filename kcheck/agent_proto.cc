// The controller's side of the agent protocol, and the page contents both sides write.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kcheck/agent.h"

namespace rmapkit::kcheck {

bool send_request(int channel, const agent_request& req, int fd) {
  iovec iov{const_cast<agent_request*>(&req), sizeof req};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  do {
    n = ::sendmsg(channel, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof req);
}

bool recv_reply(int channel, agent_reply& rep) {
  ssize_t n = ::recv(channel, &rep, sizeof rep, 0);
  if (n < 0) return false;
  return n == static_cast<ssize_t>(sizeof rep);
}

pid_t start_agent(const char* agent_path, int channel) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The child: only async-signal-safe calls until exec.
  if (channel != AGENT_CHANNEL_FD) ::dup2(channel, AGENT_CHANNEL_FD);
  else ::fcntl(AGENT_CHANNEL_FD, F_SETFD, 0);
  ::close_range(AGENT_CHANNEL_FD + 1, ~0U, 0);
  char* const argv[] = {const_cast<char*>("rmapkit-agent"), nullptr};
  ::execv(agent_path, argv);
  ::_exit(127);
}

// RMAPKIT_AGENT_RELATIVE_PATH (from the bin directory to the agent) and
// RMAPKIT_AGENT_INSTALL_PATH (absolute) come from the build (kcheck/CMakeLists.txt): where
// the package installs the agent. No build-tree path is compiled in: in the build tree the
// agent sits beside the tool, and the tests name it in $RMAPKIT_AGENT.
std::vector<std::string> agent_candidates() {
  if (const char* env = std::getenv("RMAPKIT_AGENT"); env && *env) return {env};
  std::vector<std::string> places;
  char self[4096];
  if (auto n = ::readlink("/proc/self/exe", self, sizeof self - 1); n > 0) {
    std::string dir(self, static_cast<std::size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    places.push_back(dir + "rmapkit-agent");
    places.push_back(dir + RMAPKIT_AGENT_RELATIVE_PATH);
  }
  places.emplace_back(RMAPKIT_AGENT_INSTALL_PATH);
#ifdef RMAPKIT_AGENT_BUILD_PATH
  places.emplace_back(RMAPKIT_AGENT_BUILD_PATH);  // a build that installs nothing
#endif
  return places;
}

std::optional<std::string> agent_executable() {
  for (auto& place : agent_candidates()) {
    struct stat st = {};
    if (::stat(place.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(place.c_str(), X_OK) == 0) return place;
  }
  return std::nullopt;
}

}  // namespace rmapkit::kcheck
