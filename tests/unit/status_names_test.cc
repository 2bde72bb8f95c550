#include <gtest/gtest.h>

#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/status.h"

namespace txmq {
namespace {

TEST(Status, OkAndErrorsPrintCodeAndMessage) {
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().ToString(), "OK");
  Status s = Status::NotFound("topic 'x' does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "NOT_FOUND: topic 'x' does not exist");
}

TEST(Status, OnlyTransientCodesAreRetryable) {
  EXPECT_TRUE(Status::Timeout("").IsRetryable());
  EXPECT_TRUE(Status::Unavailable("").IsRetryable());
  EXPECT_TRUE(Status::Overloaded("").IsRetryable());
  EXPECT_FALSE(Status::InvalidArgument("").IsRetryable());
  EXPECT_FALSE(Status::Conflict("").IsRetryable());
  EXPECT_FALSE(Status::TooLarge("").IsRetryable());
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::Conflict("already committed");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kConflict);
  // An OK status cannot pose as a missing value.
  Result<int> odd = Status::OK();
  EXPECT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().code(), StatusCode::kInternal);
}

TEST(Names, AcceptsTheDocumentedAlphabet) {
  EXPECT_TRUE(ValidateName("topic", "orders").ok());
  EXPECT_TRUE(ValidateName("topic", "Order_Created.v2-eu").ok());
  EXPECT_TRUE(ValidateName("topic", std::string(127, 'a')).ok());
}

TEST(Names, RefusalsNameTheValueAndTheRule) {
  Status s = ValidateName("topic", "bad topic");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'bad topic'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("[A-Za-z0-9_.-]"), std::string::npos) << s.message();

  EXPECT_FALSE(ValidateName("topic", "").ok());
  EXPECT_FALSE(ValidateName("topic", std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateName("group", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateName("group", "caf\xc3\xa9").ok());
  Status reserved = ValidateName("topic", "%DLQ%billing");
  EXPECT_NE(reserved.message().find("reserved"), std::string::npos);
}

TEST(Names, SystemNamesAreAcceptedOnlyWhereAllowed) {
  EXPECT_TRUE(ValidateNameOrSystem("topic", "%DLQ%billing").ok());
  EXPECT_TRUE(ValidateNameOrSystem("topic", "orders").ok());
  EXPECT_FALSE(ValidateNameOrSystem("topic", "%DLQ%").ok());
  EXPECT_FALSE(ValidateNameOrSystem("topic", "%%x").ok());
  EXPECT_FALSE(ValidateNameOrSystem("topic", "%dlq%x").ok());
  EXPECT_FALSE(ValidateNameOrSystem("topic", "%DLQ%a b").ok());
  EXPECT_EQ(DeadLetterTopic("billing"), "%DLQ%billing");
}

TEST(Uuid, IsVersion7AndStrictlyIncreasing) {
  std::string prev = NewUuidV7();
  ASSERT_EQ(prev.size(), 36u);
  EXPECT_EQ(prev[14], '7');
  for (int i = 0; i < 20000; ++i) {
    std::string next = NewUuidV7();
    ASSERT_LT(prev, next) << "ids must sort in creation order";
    prev = next;
  }
}

TEST(Uuid, CarriesTheMillisecondItWasMadeAt) {
  const int64_t before = NowMs();
  const std::string id = NewUuidV7();
  const int64_t at = UuidV7Millis(id);
  EXPECT_GE(at, before);
  EXPECT_LE(at, NowMs() + 50);  // a burst of ids may borrow milliseconds ahead
  EXPECT_EQ(UuidV7Millis("not-a-uuid"), -1);
  EXPECT_EQ(UuidV7Millis("01890a5d-ac96-4000-8000-000000000000"), -1) << "version 4, not 7";
  EXPECT_EQ(UuidV7Millis("01890a5d-ac96-7000-8000-000000000000"), 0x01890a5dac96);
}

TEST(Durations, ParseAndFormat) {
  EXPECT_EQ(ParseDurationMs("250ms"), 250);
  EXPECT_EQ(ParseDurationMs("1.5s"), 1500);
  EXPECT_EQ(ParseDurationMs("10"), 10000);
  EXPECT_EQ(ParseDurationMs("5m"), 300000);
  EXPECT_EQ(ParseDurationMs("2h"), 7200000);
  EXPECT_EQ(ParseDurationMs("1h30m"), 5400000);
  EXPECT_EQ(ParseDurationMs("1d"), 86400000);
  EXPECT_EQ(ParseDurationMs(""), -1);
  EXPECT_EQ(ParseDurationMs("abc"), -1);
  EXPECT_EQ(ParseDurationMs("5x"), -1);
  EXPECT_EQ(FormatDurationMs(1500), "1.5s");
  EXPECT_EQ(FormatDurationMs(90000), "1m30s");
  EXPECT_EQ(FormatDurationMs(250), "250ms");
  EXPECT_EQ(FormatDurationMs(10000), "10s");
  EXPECT_EQ(FormatDurationMs(600000), "10m");
  EXPECT_EQ(FormatDurationMs(86'400'000), "1d");
  EXPECT_EQ(FormatDurationMs(90'000'000), "1d1h");
  EXPECT_EQ(FormatDurationMs(7'200'000), "2h");
}

TEST(StableHash, NeverChangesAcrossBuilds) {
  // Queue selection depends on it: a changed value would move keys.
  EXPECT_EQ(StableHash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(StableHash("a"), 0xaf63dc4c8601ec8cull);
}

}  // namespace
}  // namespace txmq
