#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/src/dedup.h"
#include "protocol/src/util.h"

namespace txmq::broker {
namespace {

// With the hash the dedup window files ids under, and ids shaped like the
// ones producers send (UUIDv7s from one process, mostly equal prefixes).
TEST(BloomFilter, NoFalseNegativesAndFewFalsePositives) {
  BloomFilter f(10000);
  std::vector<std::string> in, out;
  for (int i = 0; i < 10000; ++i) in.push_back(NewUuidV7());
  for (int i = 0; i < 10000; ++i) out.push_back(NewUuidV7());
  for (const auto& id : in) f.Add(DedupHash(id));
  for (const auto& id : in) ASSERT_TRUE(f.MayContain(DedupHash(id))) << id;
  int false_positives = 0;
  for (const auto& id : out) false_positives += f.MayContain(DedupHash(id));
  EXPECT_LT(false_positives, 50);  // ~0.2% expected at capacity
  EXPECT_TRUE(f.full());
  // Sequential names too ("order-1", "order-2", ...).
  BloomFilter g(10000);
  for (int i = 0; i < 10000; ++i) g.Add(DedupHash("order-" + std::to_string(i)));
  false_positives = 0;
  for (int i = 10000; i < 20000; ++i) {
    false_positives += g.MayContain(DedupHash("order-" + std::to_string(i)));
  }
  EXPECT_LT(false_positives, 50);
}

// A send asks every filter of the window; their number must grow with the
// logarithm of the ids, not with the ids (that made sends slow down as the
// window filled: one 64k filter per 64k ids).
TEST(GrowingBloomFilter, FiltersGrowWithTheLogarithmOfTheIds) {
  GrowingBloomFilter f;
  const int n = 1'000'000;
  for (int i = 0; i < n; ++i) f.Add(DedupHash("id-" + std::to_string(i)));
  // 64k + 128k + 256k + 512k < 1 M <= ... + 1 M
  EXPECT_EQ(f.filters(), 5u);
  for (int i = 0; i < n; i += 997) {
    ASSERT_TRUE(f.MayContain(DedupHash("id-" + std::to_string(i)))) << i;
  }
  int false_positives = 0;
  for (int i = n; i < n + 100'000; ++i) {
    false_positives += f.MayContain(DedupHash("id-" + std::to_string(i)));
  }
  EXPECT_LT(false_positives, 1000);  // 0.2% per full filter, the last one half full
  EXPECT_EQ(f.count(), static_cast<size_t>(n));
  // The next minute's bucket at the same rate: sized from this one, a
  // lookup reads one filter.
  GrowingBloomFilter next(f.count());
  for (int i = 0; i < n; ++i) next.Add(DedupHash("next-" + std::to_string(i)));
  EXPECT_EQ(next.filters(), 1u);
}

}  // namespace
}  // namespace txmq::broker
