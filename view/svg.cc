// render_svg(): DOT to SVG by Graphviz's own `dot -Tsvg`, run as a child process rather
// than linked (libgvc): rmapkit gains no link dependency, a crash or a hang in a layout
// cannot take rmapkit down with it, and dot finds its plugins as installed.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>  // environ (a GNU extension, as _GNU_SOURCE is set)

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "rmapkit/view/dot.h"

namespace rmapkit::view {

namespace {

/// A pipe whose ends close with it.
struct pipe_fds {
  int fd[2] = {-1, -1};
  pipe_fds() {
    if (::pipe(fd) != 0) throw view_error(fmt::format("--format svg: pipe(): {}", std::strerror(errno)));
  }
  ~pipe_fds() {
    close_end(0);
    close_end(1);
  }
  pipe_fds(const pipe_fds&) = delete;
  pipe_fds& operator=(const pipe_fds&) = delete;
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

/// SIGPIPE ignored while we write to dot: a dot that dies early must give an error, not
/// kill rmapkit.
struct ignore_sigpipe {
  struct sigaction old {};
  ignore_sigpipe() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &old);
  }
  ~ignore_sigpipe() { ::sigaction(SIGPIPE, &old, nullptr); }
  ignore_sigpipe(const ignore_sigpipe&) = delete;
  ignore_sigpipe& operator=(const ignore_sigpipe&) = delete;
};

/// Feeds @input to the child's stdin while reading its stdout and stderr, so that neither
/// side blocks on a full pipe.
void exchange(pipe_fds& in, pipe_fds& out, pipe_fds& err, const std::string& input, std::string& output,
              std::string& errors) {
  std::size_t written = 0;
  if (input.empty()) in.close_end(1);
  char buf[65536];
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    pollfd fds[3] = {{in.fd[1], POLLOUT, 0}, {out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      throw view_error(fmt::format("--format svg: poll(): {}", std::strerror(errno)));
    }
    if (in.fd[1] >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = ::write(in.fd[1], input.data() + written, input.size() - written);
      if (n < 0 && errno != EINTR && errno != EAGAIN) in.close_end(1);  // dot stopped reading: its status says why
      if (n > 0) written += static_cast<std::size_t>(n);
      if (written == input.size()) in.close_end(1);
    }
    for (int i = 1; i <= 2; ++i) {
      pipe_fds& p = i == 1 ? out : err;
      if (p.fd[0] < 0 || !(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
      const ssize_t n = ::read(p.fd[0], buf, sizeof buf);
      if (n > 0) (i == 1 ? output : errors).append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR) p.close_end(0);
    }
  }
}

}  // namespace

std::string render_svg(const std::string& dot) {
  pipe_fds in, out, err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  for (const int fd : {in.fd[0], in.fd[1], out.fd[0], out.fd[1], err.fd[0], err.fd[1]})
    posix_spawn_file_actions_addclose(&actions, fd);
  std::string prog = "dot", format = "-Tsvg";
  char* argv[] = {prog.data(), format.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "dot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc == ENOENT) throw view_error("--format svg needs Graphviz's dot program (apt-get install graphviz)");
  if (rc != 0) throw view_error(fmt::format("--format svg: cannot run Graphviz's dot: {}", std::strerror(rc)));
  in.close_end(0);
  out.close_end(1);
  err.close_end(1);

  std::string svg, errors;
  {
    const ignore_sigpipe guard;
    exchange(in, out, err, dot, svg, errors);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!errors.empty() && errors.back() == '\n') errors.pop_back();
    const std::string how = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                              : fmt::format("signal {}", WTERMSIG(status));
    throw view_error(
        fmt::format("--format svg: Graphviz's dot failed ({}){}{}", how, errors.empty() ? "" : ": ", errors));
  }
  return svg;
}

}  // namespace rmapkit::view
