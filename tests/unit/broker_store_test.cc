// The broker store without a broker: rounds in, messages and index state
// out, across clean restarts, checkpoints, power loss and log deletion.
#include "storage/src/broker_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "protocol/src/event_fd.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"
#include "tests/unit/broker_store_harness.h"

namespace txmq::storage {
namespace {

using testing::FaultFileSystem;
using testing::FaultLevelDbEnv;
using testing::TempDir;

std::string Body(const StoredMessage& m) { return std::string(m.body.message.body); }

TEST(BrokerStore, MessagesAreReadBackByQueueAndOffsetAlsoAfterARestart) {
  TempDir dir;
  std::vector<std::string> ids;
  {
    Harness h(dir.path());
    ASSERT_TRUE(h.Open().ok());
    uint64_t next[2] = {0, 0};
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 10; ++i) {
        const uint32_t q = i % 2;
        ids.push_back("m" + std::to_string(round * 10 + i));
        // Bodies and ids point into `ids`/temporaries: the round copies them.
        std::string body = "body-" + ids.back();
        h.store->AppendMessage(7, q, next[q]++, Msg(ids.back(), body), true);
      }
      ASSERT_TRUE(h.Commit().ok());
    }
    auto m = h.store->ReadMessage(7, 1, 13);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(Body(*m), "body-m27");
  }
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  for (uint32_t q = 0; q < 2; ++q) {
    auto b = h.store->GetQueueBounds(7, q);
    EXPECT_EQ(b.first, 0u);
    EXPECT_EQ(b.end, 100u);
    for (uint64_t off = 0; off < 100; ++off) {
      auto m = h.store->ReadMessage(7, q, off);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      EXPECT_EQ(m->body.message.id, ids[off * 2 + q]);
    }
  }
  EXPECT_EQ(h.store->ReadMessage(7, 0, 100).status().code(), StatusCode::kNotFound);
  auto id = h.store->GetId(1000 / store::kIdBucketMs, "m42");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->queue, 0u);
  EXPECT_EQ(id->offset, 21u);
}

TEST(BrokerStore, IndexStateRoundTripsThroughTheLog) {
  TempDir dir;
  {
    Harness h(dir.path());
    ASSERT_TRUE(h.Open().ok());
    h.store->PutTopic("orders", {3, 4, 111, "svc"});
    h.store->PutCursor("billing", "orders", 2, 17);
    RetryRecord r{"orders", 1, 5, 2, 16, std::nullopt};
    h.store->PutRetry("billing", 5000, 9, r);
    TxRecord tx;
    tx.group = "g";
    tx.messages.push_back({"m1", "orders", "k"});
    h.store->PutTx("tx-1", tx);
    h.store->ScheduleCheck(7000, "tx-1");
    h.store->PutHalf({"tx-1", 0, 250, Msg("m1", "half body")});
    store::DelayedBody d{9000, 4, 3, 1, Msg("d1", "later")};
    h.store->PutDelayed(d);
    h.store->PutMeta("clock", "12345");
    ASSERT_TRUE(h.Commit().ok());
  }
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  int topics = 0, cursors = 0, retries = 0, checks = 0, delayed = 0;
  ASSERT_TRUE(h.store
                  ->ForEachTopic([&](std::string_view n, const store::TopicEntry& e) {
                    EXPECT_EQ(n, "orders");
                    EXPECT_EQ(e.id, 3u);
                    return ++topics > 0;
                  })
                  .ok());
  ASSERT_TRUE(h.store
                  ->ForEachCursor([&](auto g, auto t, uint32_t q, uint64_t f) {
                    EXPECT_EQ(g, "billing");
                    EXPECT_EQ(t, "orders");
                    EXPECT_EQ(q, 2u);
                    EXPECT_EQ(f, 17u);
                    return ++cursors > 0;
                  })
                  .ok());
  ASSERT_TRUE(h.store
                  ->ForEachRetry([&](auto g, int64_t due, uint64_t id, const RetryRecord& rr) {
                    EXPECT_EQ(g, "billing");
                    EXPECT_EQ(due, 5000);
                    EXPECT_EQ(id, 9u);
                    EXPECT_EQ(rr.offset, 5u);
                    return ++retries > 0;
                  })
                  .ok());
  ASSERT_TRUE(h.store
                  ->ForEachScheduledCheck([&](int64_t ms, std::string_view tx) {
                    EXPECT_EQ(ms, 7000);
                    EXPECT_EQ(tx, "tx-1");
                    return ++checks > 0;
                  })
                  .ok());
  ASSERT_TRUE(h.store
                  ->ForEachDelayed([&](int64_t due, uint64_t seq) {
                    EXPECT_EQ(due, 9000);
                    EXPECT_EQ(seq, 4u);
                    return ++delayed > 0;
                  })
                  .ok());
  EXPECT_EQ(topics + cursors + retries + checks + delayed, 5);
  auto tx = h.store->GetTx("tx-1");
  ASSERT_TRUE(tx.has_value());
  EXPECT_EQ(tx->group, "g");
  auto half = h.store->ReadHalf("tx-1", 0);
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  EXPECT_EQ(half->body.message.body, "half body");
  EXPECT_EQ(half->body.delay_ms, 250u);
  auto later = h.store->ReadDelayed(9000, 4);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->body.message.body, "later");
  EXPECT_EQ(h.store->GetMeta("clock").value_or(""), "12345");

  // Deletions go through the log the same way.
  h.store->DeleteHalf("tx-1", 0);
  h.store->DeleteTx("tx-1");
  h.store->UnscheduleCheck(7000, "tx-1");
  h.store->DeleteDelayed(9000, 4);
  ASSERT_TRUE(h.Commit().ok());
  h.store.reset();
  ASSERT_TRUE(h.Open().ok());
  EXPECT_FALSE(h.store->GetTx("tx-1").has_value());
  EXPECT_EQ(h.store->ReadHalf("tx-1", 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(h.store->ReadDelayed(9000, 4).status().code(), StatusCode::kNotFound);
}

TEST(BrokerStore, ACrashAfterTheCheckpointIsReplayedFromTheLog) {
  TempDir dir;
  FaultFileSystem fs;
  FaultLevelDbEnv env;
  {
    Harness h(dir.path(), &fs, &env);
    ASSERT_TRUE(h.Open().ok());
    for (uint64_t i = 0; i < 50; ++i) {
      h.store->AppendMessage(1, 0, i, Msg("a" + std::to_string(i), "x"), true);
      ASSERT_TRUE(h.Commit().ok());
    }
    ASSERT_TRUE(h.store->CheckpointNow().ok());
    for (uint64_t i = 50; i < 80; ++i) {
      h.store->AppendMessage(1, 0, i, Msg("a" + std::to_string(i), "x"), true);
      h.store->PutCursor("g", "orders", 0, i);
      ASSERT_TRUE(h.Commit().ok());
    }
    // Power loss: the index's writes after the checkpoint were never synced
    // (they live only in LevelDB's memtable: its own log is not written).
    fs.PowerOff();
    env.PowerOff();
  }
  fs.DropUnsynced();
  env.DropUnsynced();
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.store->stats().replayed_entries, 30u);
  EXPECT_EQ(h.store->GetQueueBounds(1, 0).end, 80u);
  auto m = h.store->ReadMessage(1, 0, 79);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->body.message.id, "a79");
  int cursors = 0;
  ASSERT_TRUE(h.store
                  ->ForEachCursor([&](auto, auto, uint32_t, uint64_t floor) {
                    EXPECT_EQ(floor, 79u);
                    return ++cursors > 0;
                  })
                  .ok());
  EXPECT_EQ(cursors, 1);
}

// A model of what was acknowledged: the store after a power loss holds
// every acknowledged round and, at most, the one in flight, whole.
// Recovery replays the commit log, never LevelDB's own log, so the broker
// does not write that log at all (a fifth of its disk writes).
TEST(BrokerStore, TheIndexsOwnWriteAheadLogIsNeverWritten) {
  TempDir dir;
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  for (uint64_t i = 0; i < 200; ++i) {
    h.store->AppendMessage(1, 0, i, Msg("w" + std::to_string(i), std::string(100, 'x')), true);
    h.store->PutCursor("g", "orders", 0, i);
    ASSERT_TRUE(h.Commit().ok());
  }
  uint64_t log_files = 0, log_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/index")) {
    if (!storage::IsLevelDbLogName(e.path().filename().string())) continue;
    ++log_files;
    log_bytes += e.file_size();
  }
  EXPECT_GE(log_files, 1u) << "LevelDB still has its log file";
  EXPECT_EQ(log_bytes, 0u) << "but nothing is written into it";
  EXPECT_EQ(h.store->GetQueueBounds(1, 0).end, 200u) << "the index has every round";
}

TEST(BrokerStore, PowerLossAtRandomMomentsKeepsEveryAcknowledgedRoundAndNoPartOfOthers) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    TempDir dir;
    FaultFileSystem fs;
    FaultLevelDbEnv env;
    if (seed % 2 == 0) fs.Torn(seed);
    std::mt19937_64 rng(seed);
    std::map<std::string, uint64_t> acked_cursor;  // model: cursor per group
    uint64_t acked_end = 0;                        // messages acknowledged in queue 0
    uint64_t in_flight_end = 0;
    {
      Harness h(dir.path(), &fs, &env, 1 << 17);
      ASSERT_TRUE(h.Open().ok());
      const int rounds = 30 + static_cast<int>(rng() % 60);
      uint64_t next = 0;
      for (int r = 0; r < rounds; ++r) {
        const int n = 1 + static_cast<int>(rng() % 20);
        for (int i = 0; i < n; ++i) {
          const std::string body(rng() % 3000, 'b');
          h.store->AppendMessage(1, 0, next, Msg("s" + std::to_string(next), body), true);
          ++next;
        }
        h.store->PutCursor("g" + std::to_string(r % 3), "orders", 0, next);
        if (rng() % 9 == 0) {
          ASSERT_TRUE(h.store->CheckpointNow().ok());
        }
        if (r == rounds - 1) {
          // The last round is written, then the power goes before its sync
          // returns: it may or may not survive, but never in part.
          fs.FailSyncs();
          in_flight_end = next;
          h.store->Submit(++h.clock);
          auto round = h.store->WaitFinished();
          EXPECT_FALSE(round->status().ok());
          round->Complete();
          EXPECT_GT(fs.unsynced_bytes(), 0u);
          fs.PowerOff();
          env.PowerOff();
          break;
        }
        ASSERT_TRUE(h.Commit().ok());
        acked_end = next;
        acked_cursor["g" + std::to_string(r % 3)] = next;
      }
    }
    fs.DropUnsynced();
    env.DropUnsynced();
    Harness h(dir.path());
    ASSERT_TRUE(h.Open().ok()) << "seed " << seed;
    const auto bounds = h.store->GetQueueBounds(1, 0);
    ASSERT_TRUE(bounds.end == acked_end || bounds.end == in_flight_end)
        << "seed " << seed << ": end " << bounds.end << ", acked " << acked_end;
    for (uint64_t off = 0; off < bounds.end; ++off) {
      auto m = h.store->ReadMessage(1, 0, off);
      ASSERT_TRUE(m.ok()) << "seed " << seed << " offset " << off << ": " << m.status().ToString();
      ASSERT_EQ(m->body.message.id, "s" + std::to_string(off));
    }
    std::map<std::string, uint64_t> cursors;
    ASSERT_TRUE(h.store
                    ->ForEachCursor([&](auto group, auto, uint32_t, uint64_t floor) {
                      cursors[std::string(group)] = floor;
                      return true;
                    })
                    .ok());
    for (const auto& [group, floor] : acked_cursor) {
      // Either the acknowledged value, or the in-flight round's (if it survived).
      EXPECT_TRUE(cursors[group] == floor ||
                  (bounds.end == in_flight_end && cursors[group] == in_flight_end))
          << "seed " << seed << " group " << group;
    }
  }
}

TEST(BrokerStore, OldLogIsDeletedOnlyOnceACheckpointCoversIt) {
  TempDir dir;
  Harness h(dir.path(), FileSystem::Default(), nullptr, 1 << 16);
  h.options.max_round_bytes = 1 << 14;
  ASSERT_TRUE(h.Open().ok());
  for (uint64_t i = 0; i < 300; ++i) {
    h.store->AppendMessage(1, 0, i, Msg("x" + std::to_string(i), std::string(900, 'p')), true);
    ASSERT_TRUE(h.Commit().ok());
  }
  auto segments = h.store->Segments();
  ASSERT_GE(segments.size(), 4u);
  EXPECT_GT(segments[1].first_time_ms, segments[0].first_time_ms);
  const uint64_t cut = segments[2].base;
  // The last checkpoint was taken at open: nothing is covered yet.
  auto freed = h.store->DeleteLogBefore(cut);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 0u);
  ASSERT_TRUE(h.store->CheckpointNow().ok());
  uint64_t runs = 0, last_end = 0;
  ASSERT_TRUE(h.store
                  ->ForEachRunBefore(cut,
                                     [&](uint64_t, uint32_t, uint32_t, uint64_t, uint64_t end) {
                                       ++runs;
                                       last_end = end;
                                       return true;
                                     })
                  .ok());
  EXPECT_GT(runs, 0u);
  freed = h.store->DeleteLogBefore(cut);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, segments[0].size + segments[1].size);
  EXPECT_EQ(h.store->log_start(), cut);
  auto gone = h.store->ReadMessage(1, 0, 0);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound) << gone.status().ToString();
  EXPECT_TRUE(h.store->ReadMessage(1, 0, last_end).ok());
}

TEST(BrokerStore, AFormatOneDirectoryIsRefusedNamingTheVersion) {
  TempDir dir;
  ASSERT_TRUE(
      FileSystem::Default()->WriteFileAtomically(dir.Sub("CURRENT"), "MANIFEST-000001\n").ok());
  Harness h(dir.path());
  Status s = h.Open();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("format 1"), std::string::npos) << s.message();
}

TEST(BrokerStore, ALogWithoutItsCheckpointIsRefused) {
  TempDir dir;
  {
    Harness h(dir.path());
    ASSERT_TRUE(h.Open().ok());
    h.store->AppendMessage(1, 0, 0, Msg("a", "b"), true);
    ASSERT_TRUE(h.Commit().ok());
  }
  ASSERT_TRUE(FileSystem::Default()->Remove(dir.Sub("CHECKPOINT")).ok());
  Harness h(dir.path());
  EXPECT_EQ(h.Open().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace txmq::storage
