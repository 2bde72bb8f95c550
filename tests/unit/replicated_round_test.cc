// A store rebuilt from another store's rounds (a cluster node that starts
// to lead) holds the same messages at the same log positions and continues
// its log where the other did: index operations name positions (retention,
// topic sweeps), so anything else would corrupt the replica.
#include "broker/src/replicated_round.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/src/event_fd.h"
#include "tests/testutil/testutil.h"

namespace txmq::broker {
namespace {

storage::StoreOptions Options(const std::string& dir) {
  storage::StoreOptions o;
  o.dir = dir;
  o.sync = false;
  o.segment_bytes = 64 << 10;  // small: the rounds below roll segments
  o.max_round_bytes = 16 << 10;
  return o;
}

TEST(ReplicatedRound, ARebuiltStoreHasEveryMessageAtTheSamePosition) {
  testing::TempDir dir;
  EventFd done_a;
  auto a = storage::BrokerStore::Open(Options(dir.Sub("a")), &done_a);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  // An epoch-start entry first: not a round, skipped.
  std::vector<std::string> payloads = {""};
  uint64_t offset = 0;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 5; ++i, ++offset) {
      const std::string id = "m" + std::to_string(offset);
      const std::string body(300 + 37 * ((round + i) % 11), 'x');
      storage::MessageView m;
      m.id = id;
      m.topic = "t";
      m.body = body;
      m.stored_ms = 1000 + round;
      (*a)->AppendMessage(1, 0, offset, m, true);
    }
    (*a)->PutMeta("round", std::to_string(round));
    auto written = (*a)->WriteInline(5000 + round);
    ASSERT_TRUE(written->status().ok()) << written->status().ToString();
    payloads.push_back(EncodeReplicatedRound(written->entry().time_ms, written->records(),
                                             written->ops_record(), written->entry().position));
    written->Complete();
  }

  EventFd done_b;
  auto b = storage::BrokerStore::Open(Options(dir.Sub("b")), &done_b);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(ApplyReplicatedRounds(**b, payloads).ok());
  EXPECT_GT((*a)->Segments().size(), 1u) << "the test should roll segments";
  EXPECT_EQ((*b)->log_end(), (*a)->log_end());
  EXPECT_EQ((*b)->GetMeta("round"), std::optional<std::string>("39"));
  for (uint64_t o = 0; o < offset; ++o) {
    const uint32_t q = 0;
    auto in_a = (*a)->ReadMessage(1, q, o);
    auto in_b = (*b)->ReadMessage(1, q, o);
    ASSERT_TRUE(in_a.ok()) << o << ": " << in_a.status().ToString();
    ASSERT_TRUE(in_b.ok()) << o << ": " << in_b.status().ToString();
    EXPECT_EQ(in_b->position, in_a->position) << "offset " << o;
    EXPECT_EQ(in_b->body.message.id, in_a->body.message.id);
  }
}

// Rounds that carry only index operations (a check rescheduled, a cursor
// moved, a transaction record rewritten) are rounds like any other. The
// rebuild once dropped them (the replicated round looked empty), so a new
// leader kept a check schedule entry its old leader had moved and refused
// its own store ("check schedule names transaction ... without an open
// record"; found by TxmqdTxnFailover).
TEST(ReplicatedRound, RoundsOfIndexOperationsAloneAreRebuiltToo) {
  testing::TempDir dir;
  EventFd done_a;
  auto a = storage::BrokerStore::Open(Options(dir.Sub("a")), &done_a);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  std::vector<std::string> payloads;
  auto round = [&](int64_t time_ms) {
    auto written = (*a)->WriteInline(time_ms);
    ASSERT_TRUE(written->status().ok()) << written->status().ToString();
    payloads.push_back(EncodeReplicatedRound(written->entry().time_ms, written->records(),
                                             written->ops_record(), written->entry().position));
    written->Complete();
  };
  (*a)->ScheduleCheck(100, "tx");
  round(1);
  (*a)->UnscheduleCheck(100, "tx");  // rescheduled: operations alone
  (*a)->ScheduleCheck(200, "tx");
  round(2);
  (*a)->PutMeta("k", "v");
  round(3);

  EventFd done_b;
  auto b = storage::BrokerStore::Open(Options(dir.Sub("b")), &done_b);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(ApplyReplicatedRounds(**b, payloads).ok());
  EXPECT_EQ((*b)->log_end(), (*a)->log_end());
  EXPECT_EQ((*b)->GetMeta("k"), std::optional<std::string>("v"));
  std::vector<int64_t> checks;
  ASSERT_TRUE((*b)->ForEachScheduledCheck([&](int64_t ms, std::string_view) {
                    checks.push_back(ms);
                    return true;
                  })
                  .ok());
  EXPECT_EQ(checks, std::vector<int64_t>{200}) << "the rescheduling round was lost";
}

// Rounds place by size: a store with another segment size puts the
// round that rolls elsewhere, and every index operation naming a position
// after it would act on other records (retention deleting live segments).
// It refuses the round instead, naming --segment-mb.
TEST(ReplicatedRound, AStoreThatPlacesARoundElsewhereRefusesIt) {
  testing::TempDir dir;
  EventFd done_a;
  auto a = storage::BrokerStore::Open(Options(dir.Sub("a")), &done_a);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  std::vector<std::string> payloads;
  for (int round = 0; round < 20; ++round) {
    storage::MessageView m;
    const std::string id = "m" + std::to_string(round);
    const std::string body(8 << 10, 'x');
    m.id = id;
    m.topic = "t";
    m.body = body;
    (*a)->AppendMessage(1, 0, round, m, true);
    auto written = (*a)->WriteInline(1000 + round);
    ASSERT_TRUE(written->status().ok()) << written->status().ToString();
    payloads.push_back(EncodeReplicatedRound(written->entry().time_ms, written->records(),
                                             written->ops_record(), written->entry().position));
    written->Complete();
  }
  ASSERT_GT((*a)->Segments().size(), 1u) << "the test should roll segments";
  EventFd done_b;
  storage::StoreOptions other = Options(dir.Sub("b"));
  other.segment_bytes *= 2;
  auto b = storage::BrokerStore::Open(other, &done_b);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Status s = ApplyReplicatedRounds(**b, payloads);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("--segment-mb"), std::string::npos) << s.ToString();
}

TEST(ReplicatedRound, APayloadTooShortIsCorruption) {
  EXPECT_EQ(DecodeReplicatedRound("short").status().code(), StatusCode::kCorruption);
  std::string lying = EncodeReplicatedRound(1, "records", "ops");
  lying.resize(16 + 3);  // says 7 bytes of records, holds 3
  EXPECT_EQ(DecodeReplicatedRound(lying).status().code(), StatusCode::kCorruption);
  auto round = DecodeReplicatedRound(EncodeReplicatedRound(42, "records", "ops"));
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->time_ms, 42);
  EXPECT_EQ(round->records, "records");
  EXPECT_EQ(round->ops_record, "ops");
}

}  // namespace
}  // namespace txmq::broker
