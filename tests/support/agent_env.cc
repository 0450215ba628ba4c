// Linked into every test binary: names the build's rmapkit-agent in $RMAPKIT_AGENT (unless
// it is set already) before any test runs, so that a kernel run the test starts in its own
// process (kcheck::run, the design lab's diff) finds the agent however the binary is run:
// by ctest, or by hand from any directory. Installed programs find it without this
// (kcheck/agent.h, agent_candidates).
#include <cstdlib>

namespace {

[[maybe_unused]] const bool agent_named = ::setenv("RMAPKIT_AGENT", RMAPKIT_AGENT_BIN, 0) == 0;

}  // namespace
