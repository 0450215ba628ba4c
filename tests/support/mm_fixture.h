// A fresh machine per test; at the end every invariant must hold and, once every mm
// exited and every file was put, nothing may be left (no leak).
#pragma once

#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm::testing {

inline constexpr vaddr_t A{0x100000000000ULL};
inline constexpr vaddr_t B{0x100040000000ULL};

class machine_test : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(m.check_invariants(), "");
    for (auto* mm : std::vector<mm_struct*>(m.mms())) m.exit_mm(mm);
    m.ksm_drop_exited();  // exited mms' rmap_items wait for ksmd's next scan
    for (auto* f : files) m.file_put(f);
    auto live = m.live();
    EXPECT_EQ(live.total(), 0U) << "leak";
  }

  machine m;
  std::vector<address_space*> files;
};

}  // namespace rmapkit::mm::testing
