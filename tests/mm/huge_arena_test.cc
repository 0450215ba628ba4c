// huge_arena: the model's slabs and frame chunks from 2 MiB huge-page regions.
#include "rmapkit/mm/huge_arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "rmapkit/mm/mm_types.h"
#include "rmapkit/mm/slab.h"

namespace rmapkit::mm {
namespace {

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(HugeArena, PiecesAreAlignedToTheirSizeZeroFilledAndDisjoint) {
  std::vector<std::pair<std::byte*, std::size_t>> pieces;
  // Sizes interleaved, as slabs of several types and frame chunks are in a run.
  for (int round = 0; round < 40; ++round)
    for (std::size_t bytes : {std::size_t{4096}, std::size_t{16384}, std::size_t{262144}}) {
      auto* p = static_cast<std::byte*>(huge_arena_alloc(bytes));
      EXPECT_EQ(address(p) % bytes, 0U) << bytes;
      EXPECT_TRUE(std::all_of(p, p + bytes, [](std::byte b) { return b == std::byte{0}; }));
      std::fill(p, p + bytes, std::byte{0x5a});  // writable, all of it
      pieces.emplace_back(p, bytes);
    }
  std::sort(pieces.begin(), pieces.end());
  for (std::size_t i = 1; i < pieces.size(); ++i)
    EXPECT_LE(address(pieces[i - 1].first) + pieces[i - 1].second, address(pieces[i].first));
  // Each piece still holds what was written to it: none overlaps another.
  for (auto [p, bytes] : pieces) {
    EXPECT_TRUE(std::all_of(p, p + bytes, [](std::byte b) { return b == std::byte{0x5a}; }));
    huge_arena_free(p, bytes);
  }
}

TEST(HugeArena, PiecesOfOneSizeFillARegionWithoutGaps) {
  // The point of one region per size: nothing inside a region is unmapped (which would
  // split its huge page) while its pieces live. 2 MiB of 256 KiB pieces is 8.
  constexpr std::size_t bytes = 262144;
  std::vector<std::byte*> pieces;
  for (int i = 0; i < 16; ++i) pieces.push_back(static_cast<std::byte*>(huge_arena_alloc(bytes)));
  int adjacent = 0;
  for (std::size_t i = 1; i < pieces.size(); ++i) adjacent += pieces[i] == pieces[i - 1] + bytes ? 1 : 0;
  EXPECT_GE(adjacent, 13);  // at most two region changes among 16 pieces
  for (auto* p : pieces) huge_arena_free(p, bytes);
}

TEST(HugeArena, CountsWhatIsHandedOut) {
  const std::size_t before = huge_arena_bytes();
  void* a = huge_arena_alloc(16384);
  void* b = huge_arena_alloc(HUGE_REGION_BYTES);
  EXPECT_EQ(huge_arena_bytes(), before + 16384 + HUGE_REGION_BYTES);
  EXPECT_EQ(address(b) % HUGE_REGION_BYTES, 0U);
  huge_arena_free(a, 16384);
  huge_arena_free(b, HUGE_REGION_BYTES);
  EXPECT_EQ(huge_arena_bytes(), before);
}

TEST(HugeArena, RefusesSizesItCannotAlign) {
  const std::size_t before = huge_arena_bytes();
  EXPECT_THROW((void)huge_arena_alloc(0), std::invalid_argument);
  EXPECT_THROW((void)huge_arena_alloc(2048), std::invalid_argument);
  EXPECT_THROW((void)huge_arena_alloc(12288), std::invalid_argument);
  EXPECT_THROW((void)huge_arena_alloc(2 * HUGE_REGION_BYTES), std::invalid_argument);
  EXPECT_EQ(huge_arena_bytes(), before);
}

TEST(HugeArena, SlabCachesTakeTheirSlabsFromIt) {
  const std::size_t before = huge_arena_bytes();
  {
    slab_cache<anon_vma_chain> cache;
    std::vector<anon_vma_chain*> objs;
    for (int i = 0; i < 1000; ++i) objs.push_back(cache.alloc());
    EXPECT_GT(huge_arena_bytes(), before);
    for (auto* o : objs) cache.free(o);
  }
  // The cache is gone; its slabs are in the type's pool or unmapped, never lost to the heap.
  EXPECT_GE(huge_arena_bytes(), before);
}

}  // namespace
}  // namespace rmapkit::mm
