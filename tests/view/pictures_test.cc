// `show` and `walk` with --format dot and svg, as a user runs them: DOT that Graphviz reads,
// SVG drawn by Graphviz's dot program (when it is installed), the same bytes every time,
// and a clear error when dot is missing. The pictures' content is golden-tested byte for
// byte (tests/golden/README.md).
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/view/dot.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

const char* const scenario =
    "spawn P\nP: mmap A anon private pages=4\nP: write A[0:2]\nP: fork C\ncheck after_fork\nC: write A[0]\n";

/// Graphviz's dot on this machine's PATH.
bool have_dot() { return run({"/bin/sh", "-c", "command -v dot"}).exit_code == 0; }

TEST(Pictures, DotIsADigraphWithTheKernelsFieldNames) {
  const auto path = temp_file("pictures.rmap", scenario);
  const auto o = run({rmapkit_bin(), "show", path, "--at", "4", "--format", "dot"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_TRUE(o.out.starts_with("digraph rmap {\n"));
  EXPECT_TRUE(o.out.ends_with("}\n"));
  for (const char* word : {"vm_start", "vm_pgoff", "anon_vma_chain", "num_children", "num_active_vmas", "mapcount"})
    EXPECT_NE(o.out.find(word), std::string::npos) << word;
}

TEST(Pictures, SvgIsValidAndTheSameEveryTime) {
  if (!have_dot()) GTEST_SKIP() << "Graphviz's dot is not installed (apt-get install graphviz)";
  const auto path = temp_file("pictures.rmap", scenario);
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{rmapkit_bin(), "show", path, "--at", "4", "--format", "svg"},
        std::vector<std::string>{rmapkit_bin(), "walk", path, "--at", "4", "--frame", "1", "--op", "referenced",
                                 "--format", "svg"}}) {
    const auto a = run(cmd), b = run(cmd);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out, b.out) << cmd[1] << ": two runs drew different SVG";
    EXPECT_TRUE(a.out.starts_with("<?xml")) << cmd[1];
    EXPECT_NE(a.out.find("<svg"), std::string::npos) << cmd[1];
    EXPECT_NE(a.out.find("</svg>"), std::string::npos) << cmd[1];
    // Well-formed XML, checked by a real parser.
    const auto svg = temp_file("picture.svg", a.out);
    const auto x = run(
        {"/usr/bin/python3", "-c", "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])", svg});
    EXPECT_EQ(x.exit_code, 0) << cmd[1] << ": " << x.err;
  }
}

TEST(Pictures, SvgWithoutGraphvizSaysWhatToInstall) {
  const auto path = temp_file("pictures.rmap", scenario);
  const auto o = run({rmapkit_bin(), "show", path, "--format", "svg"}, [] { ::setenv("PATH", "/nonexistent", 1); });
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ": --format svg needs Graphviz's dot program (apt-get install graphviz)\n");
  EXPECT_EQ(o.out, "");
}

TEST(Pictures, BrokenDotIsAnErrorWithWhatGraphvizSaid) {
  if (!have_dot()) GTEST_SKIP() << "Graphviz's dot is not installed (apt-get install graphviz)";
  try {
    (void)view::render_svg("digraph {\n  a -> \n");
    FAIL() << "render_svg accepted broken DOT";
  } catch (const view::view_error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("--format svg: Graphviz's dot failed (exit status 1): ")) << e.what();
  }
}

TEST(Pictures, UnknownFormatIsRefused) {
  const auto path = temp_file("pictures.rmap", scenario);
  const auto o = run({rmapkit_bin(), "walk", path, "--frame", "1", "--format", "png"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("--format: png not in {text,json,dot,svg}"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace rmapkit::testing
