// rmapkit-agent: one scenario process of the kernel back end. Started by the runner
// with its command channel as descriptor 3; not meant to be run by hand.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "kcheck/agent.h"

int main() {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(rmapkit::kcheck::AGENT_CHANNEL_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      type != SOCK_SEQPACKET) {
    std::fputs("rmapkit-agent: started by `rmapkit kernel`, not by hand\n", stderr);
    return 2;
  }
  rmapkit::kcheck::agent_main();
}
