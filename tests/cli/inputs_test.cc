// Hard and big inputs as a user meets them (issue 17): every command reads a scenario the
// same bounded way, the model never speaks for the kernel, the kernel back end refuses
// what would endanger the machine, and a million statements run (their speed is benchmarked).
#include <filesystem>
#include <string>

#include <sys/resource.h>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

TEST(Inputs, LintReadsAtMostTheCap) {
  auto o = run({rmapkit_bin(), "lint", "/dev/zero"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "/dev/zero: larger than a scenario may be (64 MiB at most)\n");
}

TEST(Inputs, DirectoryIsNotAScenario) {
  auto dir = std::filesystem::temp_directory_path().string();
  for (const char* cmd : {"lint", "run", "kernel", "html"}) {
    auto o = cmd == std::string("html") ? run({rmapkit_bin(), cmd, dir, "-o", "-"}) : run({rmapkit_bin(), cmd, dir});
    EXPECT_EQ(o.exit_code, 2) << cmd;
    EXPECT_EQ(o.err, dir + ": is a directory, not a scenario\n") << cmd;
  }
}

TEST(Inputs, WrappedIndexIsALintErrorNotAKernelRefusal) {
  auto path = temp_file("wrap.rmap",
                        "spawn P\nP: mmap A anon private pages=2\nP: read A[18446744073709551615]\ncheck\n");
  for (const char* cmd : {"lint", "run"}) {
    auto o = run({rmapkit_bin(), cmd, path});
    EXPECT_EQ(o.exit_code, 2) << cmd;
    EXPECT_EQ(o.err, path + ":3: read: page A[18446744073709551615] outside region A (2 pages)\n") << cmd;
    EXPECT_EQ(o.out, "") << cmd;
  }
}

TEST(Inputs, WrappedOffsetIsALintError) {
  auto path = temp_file("offset.rmap",
                        "file F pages=4\nspawn P\nP: mmap A file F private pages=2 offset=18446744073709551614\n"
                        "P: read A[0]\ncheck\n");
  auto o = run({rmapkit_bin(), "run", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find(path + ":3: mmap: offset=18446744073709551614 pages=2 ends beyond the largest file offset"),
            std::string::npos)
      << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(Inputs, KernelRefusesAScenarioBeyondItsMemoryCap) {
  // 300,000 pages (1.1 GiB) written: refused before anything runs, root or not.
  auto path = temp_file("large.rmap",
                        "spawn P\nP: mmap A anon private pages=150000\nP: mmap B anon private "
                        "pages=150000\nP: write A\nP: write B\n");
  auto o = run({rmapkit_bin(), "kernel", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path +
                       ": the scenario can hold 300000 pages (1171 MiB) at once, more than the kernel back end allows "
                       "(262144 pages, 1024 MiB); --allow-large runs it all the same\n");
  EXPECT_EQ(run({rmapkit_bin(), "lint", path}).exit_code, 0);  // the model runs it
}

TEST(Inputs, KernelRefusesTooManyProcessesAtOnce) {
  std::string text;
  for (int i = 0; i < 1025; ++i) text += "spawn P" + std::to_string(i) + '\n';
  auto path = temp_file("procs.rmap", text);
  auto o = run({rmapkit_bin(), "kernel", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path +
                       ": the scenario has 1025 processes alive at once, more than the kernel back end allows (1024); "
                       "--allow-large runs it all the same\n");
}

TEST(Inputs, KernelSaysWhenItWouldRunOutOfOpenFiles) {
  // Each live process costs the runner two descriptors: 60 processes do not fit in 100.
  std::string text;
  for (int i = 0; i < 60; ++i) text += "spawn P" + std::to_string(i) + '\n';
  auto path = temp_file("fds.rmap", text);
  auto o = run({rmapkit_bin(), "kernel", path}, [] {
    rlimit rl{100, 100};
    ::setrlimit(RLIMIT_NOFILE, &rl);
  });
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path +
                       ": the scenario needs about 184 open files (one a file, two a live process), more than "
                       "RLIMIT_NOFILE allows (100)\n");
}

TEST(Inputs, AMillionSpawnsAndExitsRun) {
  // Processes exit in the order they were spawned, 10,000 alive at a time: the worst order
  // for a list that exit searches and shifts. How the cost per process grows with the number
  // alive is measured by rmapkit_runner_bench (docs/performance.md), not asserted here.
  std::string text;
  text.reserve(16 << 20);
  for (int batch = 0; batch < 50; ++batch) {
    for (int i = 0; i < 10000; ++i) text += "spawn P" + std::to_string(batch * 10000 + i) + '\n';
    for (int i = 0; i < 10000; ++i) text += 'P' + std::to_string(batch * 10000 + i) + ": exit\n";
  }
  auto path = temp_file("million.rmap", text + "check\n");
  auto o = run({rmapkit_bin(), "run", "--no-check-invariants", path});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "check\nend\n");
}

}  // namespace
}  // namespace rmapkit::testing
