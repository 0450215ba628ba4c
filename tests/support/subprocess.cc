#include "support/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace rmapkit::testing {

namespace {

/// The directories temp_file() made, removed when the test process that made them ends
/// (not when a child it forked exits): a test suite of thousands of files leaves none.
class temp_dirs {
 public:
  void add(std::string dir) {
    const std::lock_guard hold(_mutex);
    _dirs.push_back(std::move(dir));
  }
  ~temp_dirs() {
    if (::getpid() != _owner) return;
    std::error_code ec;
    for (const auto& d : _dirs) std::filesystem::remove_all(d, ec);
  }

 private:
  const pid_t _owner = ::getpid();
  std::mutex _mutex;
  std::vector<std::string> _dirs;
};

temp_dirs& made_dirs() {
  static temp_dirs dirs;
  return dirs;
}

std::string make_temp(const std::string& stem) {
  std::string tmpl = "/tmp/rmapkit-test-" + stem + "-XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  return tmpl;
}
}  // namespace

std::vector<std::string> corpus_names(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.substr(n.size() - 5) == ".rmap") names.push_back(n.substr(0, n.size() - 5));
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

child::child(const std::vector<std::string>& argv, const std::function<void()>& before_exec)
    : _out_path(make_temp("out")), _err_path(make_temp("err")) {
  _pid = ::fork();
  if (_pid < 0) throw std::runtime_error("fork failed");
  if (_pid == 0) {
    int out = ::open(_out_path.c_str(), O_WRONLY | O_TRUNC);
    int err = ::open(_err_path.c_str(), O_WRONLY | O_TRUNC);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (before_exec) before_exec();
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

child::~child() {
  if (!_reaped) {
    ::kill(_pid, SIGKILL);
    ::waitpid(_pid, nullptr, 0);
  }
  ::unlink(_out_path.c_str());
  ::unlink(_err_path.c_str());
}

std::string child::err_so_far() const { return slurp(_err_path); }

bool child::wait_for_err(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (err_so_far().find(needle) != std::string::npos) return true;
    if (::waitpid(_pid, &_status, WNOHANG) == _pid) {
      _reaped = true;
      return err_so_far().find(needle) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

outcome child::wait() {
  outcome o;
  if (!_reaped) {
    ::waitpid(_pid, &_status, 0);
    _reaped = true;
  }
  if (WIFEXITED(_status)) o.exit_code = WEXITSTATUS(_status);
  if (WIFSIGNALED(_status)) o.signal = WTERMSIG(_status);
  o.out = slurp(_out_path);
  o.err = slurp(_err_path);
  return o;
}

outcome run(const std::vector<std::string>& argv, const std::function<void()>& before_exec) {
  child c(argv, before_exec);
  return c.wait();
}

void drop_root() {
  if (::geteuid() == 0) {
    (void)::setgid(65534);
    (void)::setuid(65534);
  }
}

std::string rmapkit_bin() { return RMAPKIT_BIN; }

std::string temp_file(const std::string& name, const std::string& text) {
  char dir[] = "/tmp/rmapkit-test-XXXXXX";
  if (!::mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
  made_dirs().add(dir);
  ::chmod(dir, 0755);  // readable by the unprivileged user some tests run as
  std::string path = std::string(dir) + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace rmapkit::testing
