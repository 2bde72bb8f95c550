#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

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
  EXPECT_TRUE(Status::ResourceExhausted("").IsRetryable());
  EXPECT_TRUE(Status(StatusCode::kNotLeader, "").IsRetryable());
  EXPECT_TRUE(Status(StatusCode::kWrongGroup, "").IsRetryable());
  EXPECT_EQ(Status(StatusCode::kNotLeader, "b").ToString(), "NOT_LEADER: b");
  EXPECT_EQ(Status::ResourceExhausted("disk").ToString(), "RESOURCE_EXHAUSTED: disk");
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

// The 62 random bits (rand_b) of a canonical UUIDv7: its last 16 hex digits.
std::string RandomPart(const std::string& id) { return id.substr(19, 4) + id.substr(24); }

TEST(Uuid, RandomPartsDifferAcrossThreads) {
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&made, t] {
      for (int i = 0; i < kEach; ++i) made[t].push_back(NewUuidV7());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids, randoms;
  for (const auto& list : made) {
    for (const auto& id : list) {
      ids.insert(id);
      randoms.insert(RandomPart(id));
    }
  }
  EXPECT_EQ(ids.size(), size_t{kThreads * kEach});
  EXPECT_EQ(randoms.size(), size_t{kThreads * kEach}) << "62 random bits never repeat here";
}

TEST(Uuid, AForkedChildDoesNotRepeatItsParentsRandomBits) {
  // A generator whose state lives in the process is copied by fork(): the
  // child then makes the parent's next ids' random bits, and ids made in
  // the same millisecond collide outright.
  (void)NewUuidV7();  // whatever the generator keeps is set up before fork
  constexpr int kIds = 200;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    std::string all;
    for (int i = 0; i < kIds; ++i) all += NewUuidV7();
    const char* p = all.data();
    size_t left = all.size();
    while (left > 0) {
      const ssize_t n = write(fds[1], p, left);
      if (n <= 0) _exit(1);
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::vector<std::string> parent;
  for (int i = 0; i < kIds; ++i) parent.push_back(NewUuidV7());
  std::string bytes;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(bytes.size(), size_t{36 * kIds});
  std::set<std::string> randoms;
  for (const auto& id : parent) randoms.insert(RandomPart(id));
  int shared = 0;
  for (int i = 0; i < kIds; ++i) {
    const std::string id = bytes.substr(36 * i, 36);
    ASSERT_EQ(id[14], '7') << id;
    shared += randoms.count(RandomPart(id)) > 0 ? 1 : 0;
  }
  EXPECT_EQ(shared, 0) << "the child repeated " << shared << " of its parent's random parts";
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
