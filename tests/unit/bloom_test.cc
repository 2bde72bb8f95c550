#include <gtest/gtest.h>

#include "broker/src/dedup.h"
#include "protocol/src/util.h"

namespace txmq::broker {
namespace {

TEST(BloomFilter, NoFalseNegativesAndFewFalsePositives) {
  BloomFilter f(10000);
  for (int i = 0; i < 10000; ++i)
    f.Add(StableHash("in-" + std::to_string(i)) * 0x9e3779b97f4a7c15ull);
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(f.MayContain(StableHash("in-" + std::to_string(i)) * 0x9e3779b97f4a7c15ull));
  }
  int false_positives = 0;
  for (int i = 0; i < 10000; ++i) {
    false_positives += f.MayContain(StableHash("out-" + std::to_string(i)) * 0x9e3779b97f4a7c15ull);
  }
  EXPECT_LT(false_positives, 300);  // ~1% expected at capacity
  EXPECT_TRUE(f.full());
}

}  // namespace
}  // namespace txmq::broker
