// The program the recorder's test records (tests/kcheck/record_test.cc): a little of
// everything a real program does to memory — anonymous pages, a brk heap, a private file
// mapping read through fault-around, mprotect, a thread writing into the shared mm, and a
// forked child that writes over shared pages — and then both processes sleep, so that the
// recorder's cuts find them alive. `record_probe MS mlockall` does it all after
// mlockall(MCL_CURRENT | MCL_FUTURE): every mapping there is and every later one is locked
// and faulted in whole (but the fork child's).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace {

constexpr std::size_t PAGE = 4096;

void touch(volatile char* p, std::size_t pages, char v) {
  for (std::size_t i = 0; i < pages; ++i) p[i * PAGE] = v;
}

}  // namespace

int main(int argc, char** argv) {
  const auto nap = std::chrono::milliseconds(argc > 1 ? std::atoi(argv[1]) : 600);
  if (argc > 2 && std::strcmp(argv[2], "mlockall") == 0 && ::mlockall(MCL_CURRENT | MCL_FUTURE) != 0) return 1;
  auto* anon = static_cast<char*>(
      ::mmap(nullptr, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (anon == MAP_FAILED) return 1;
  touch(anon, 8, 1);
  (void)::mprotect(anon + 12 * PAGE, 4 * PAGE, PROT_READ);

  auto* heap = static_cast<char*>(::sbrk(0));
  if (::sbrk(32 * PAGE) == reinterpret_cast<void*>(-1)) return 1;
  touch(heap, 32, 2);

  FILE* self = std::fopen("/proc/self/exe", "r");
  if (!self) return 1;
  auto* text = static_cast<const volatile char*>(::mmap(nullptr, 4 * PAGE, PROT_READ, MAP_PRIVATE, ::fileno(self), 0));
  if (text == MAP_FAILED) return 1;
  char sum = 0;
  for (std::size_t i = 0; i < 4; ++i) sum = static_cast<char>(sum + text[i * PAGE]);

  std::thread([&] { touch(anon + 8 * PAGE, 2, sum); }).join();

  const pid_t child = ::fork();
  if (child == 0) {
    touch(anon, 2, 3);  // COW: the child's own copies
    std::this_thread::sleep_for(nap);
    ::_exit(0);
  }
  touch(anon + 4 * PAGE, 1, 4);  // COW in the parent: the child keeps the original
  std::this_thread::sleep_for(nap);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::fclose(self);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
