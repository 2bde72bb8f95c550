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
  EXPECT_LT(false_positives, 300);  // ~1% expected at capacity
  EXPECT_TRUE(f.full());
  // Sequential names too ("order-1", "order-2", ...).
  BloomFilter g(10000);
  for (int i = 0; i < 10000; ++i) g.Add(DedupHash("order-" + std::to_string(i)));
  false_positives = 0;
  for (int i = 10000; i < 20000; ++i) {
    false_positives += g.MayContain(DedupHash("order-" + std::to_string(i)));
  }
  EXPECT_LT(false_positives, 300);
}

}  // namespace
}  // namespace txmq::broker
