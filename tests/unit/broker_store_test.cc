// The broker store without a broker: rounds in, messages and index state
// out, across clean restarts, checkpoints, power loss and log deletion.
#include "storage/src/broker_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "protocol/src/event_fd.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"

namespace txmq::storage {
namespace {

using testing::FaultFileSystem;
using testing::FaultLevelDbEnv;
using testing::TempDir;

struct Harness {
  explicit Harness(const std::string& dir, FileSystem* fs = FileSystem::Default(),
                   leveldb::Env* env = nullptr, uint64_t segment = 1 << 20) {
    options.dir = dir;
    options.segment_bytes = segment;
    options.max_round_bytes = segment / 4;
    options.fs = fs;
    options.env = env;
  }
  Status Open() {
    auto s = BrokerStore::Open(options, &done);
    if (!s.ok()) return s.status();
    store = std::move(s.value());
    return Status::OK();
  }
  // Submits the open round and waits for it; its status.
  Status Commit() {
    store->Submit(++clock);
    auto round = store->WaitFinished();
    Status s = round->status();
    round->Complete();
    return s;
  }
  StoreOptions options;
  EventFd done;
  std::unique_ptr<BrokerStore> store;
  int64_t clock = 1'000'000;
};

MessageView Msg(const std::string& id, const std::string& body, int64_t stored_ms = 1000) {
  MessageView m;
  m.id = id;
  m.topic = "orders";
  m.key = "k";
  m.body = body;
  m.born_ms = 1;
  m.stored_ms = stored_ms;
  return m;
}

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

// ---- the index overlay (index_overlay.h) through the store ----

TxRecord Tx(const std::string& group) {
  TxRecord tx;
  tx.group = group;
  tx.messages.push_back({"m", "orders", "k"});
  return tx;
}

std::vector<std::string> HalvesOf(BrokerStore& store) {
  std::vector<std::string> out;
  EXPECT_TRUE(store
                  .ForEachHalf([&](std::string_view tx, uint32_t, uint64_t) {
                    out.emplace_back(tx);
                    return true;
                  })
                  .ok());
  return out;
}

std::vector<std::string> ChecksOf(BrokerStore& store) {
  std::vector<std::string> out;
  EXPECT_TRUE(store
                  .ForEachScheduledCheck([&](int64_t, std::string_view tx) {
                    out.emplace_back(tx);
                    return true;
                  })
                  .ok());
  return out;
}

// Prepares `tx` as the broker does: record, check slot, half.
void Prepare(BrokerStore& store, const std::string& tx, int64_t check_ms = 7000) {
  store.PutTx(tx, Tx("g"));
  store.ScheduleCheck(check_ms, tx);
  store.PutHalf({tx, 0, 0, Msg("m-" + tx, "body of " + tx)});
}

void End(BrokerStore& store, const std::string& tx, int64_t check_ms = 7000) {
  store.DeleteHalf(tx, 0);
  store.UnscheduleCheck(check_ms, tx);
  TxRecord done = Tx("g");
  done.state = TxStateCode::kCommitted;
  store.PutTx(tx, done);
}

TEST(BrokerStoreOverlay, ATransactionEndedBetweenCheckpointsWritesNoHalfOrCheckKeyToTheIndex) {
  TempDir dir;
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  Prepare(*h.store, "t1");
  ASSERT_TRUE(h.Commit().ok());
  EXPECT_EQ(HalvesOf(*h.store), std::vector<std::string>{"t1"});
  EXPECT_EQ(ChecksOf(*h.store), std::vector<std::string>{"t1"});
  End(*h.store, "t1");
  ASSERT_TRUE(h.Commit().ok());
  EXPECT_EQ(h.store->stats().overlay_dropped, 2u) << "the half's reference and the check slot";
  EXPECT_TRUE(HalvesOf(*h.store).empty());
  EXPECT_TRUE(ChecksOf(*h.store).empty());
  ASSERT_TRUE(h.store->CheckpointNow().ok());
  EXPECT_EQ(h.store->stats().overlay_written, 1u) << "the record, once, as it ended";
  h.store.reset();
  ASSERT_TRUE(h.Open().ok());
  auto tx = h.store->GetTx("t1");
  ASSERT_TRUE(tx.has_value());
  EXPECT_EQ(tx->state, TxStateCode::kCommitted);
  EXPECT_TRUE(HalvesOf(*h.store).empty());
}

// The overlay is not durable: what it held at a power loss comes back by
// replaying the log from the checkpoint.
TEST(BrokerStoreOverlay, TransactionsOnlyInTheOverlaySurviveAPowerLoss) {
  TempDir dir;
  FaultFileSystem fs;
  FaultLevelDbEnv env;
  {
    Harness h(dir.path(), &fs, &env);
    ASSERT_TRUE(h.Open().ok());
    Prepare(*h.store, "before");  // in the overlay when the checkpoint covers it
    Prepare(*h.store, "ended-after");
    ASSERT_TRUE(h.Commit().ok());
    ASSERT_TRUE(h.store->CheckpointNow().ok());
    Prepare(*h.store, "open");
    Prepare(*h.store, "ended");
    ASSERT_TRUE(h.Commit().ok());
    End(*h.store, "ended");
    End(*h.store, "ended-after");
    ASSERT_TRUE(h.Commit().ok());
    fs.PowerOff();
    env.PowerOff();
  }
  fs.DropUnsynced();
  env.DropUnsynced();
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(HalvesOf(*h.store), (std::vector<std::string>{"before", "open"}));
  EXPECT_EQ(ChecksOf(*h.store), (std::vector<std::string>{"before", "open"}));
  for (const char* open : {"before", "open"}) {
    auto half = h.store->ReadHalf(open, 0);
    ASSERT_TRUE(half.ok()) << open << ": " << half.status().ToString();
    EXPECT_EQ(half->body.message.body, "body of " + std::string(open));
  }
  for (const char* ended : {"ended", "ended-after"}) {
    auto tx = h.store->GetTx(ended);
    ASSERT_TRUE(tx.has_value()) << ended;
    EXPECT_EQ(tx->state, TxStateCode::kCommitted) << ended;
    EXPECT_EQ(h.store->ReadHalf(ended, 0).status().code(), StatusCode::kNotFound) << ended;
  }
  EXPECT_EQ(h.store->GetTx("open")->state, TxStateCode::kPrepared);
}

// Scans merge the overlay with LevelDB: keys of both, in order, without
// the ones the overlay deleted.
TEST(BrokerStoreOverlay, AScanSeesTheIndexAndTheOverlayAsOne) {
  TempDir dir;
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  for (const char* tx : {"a", "c", "e"}) Prepare(*h.store, tx);
  ASSERT_TRUE(h.Commit().ok());
  ASSERT_TRUE(h.store->CheckpointNow().ok());  // a, c, e now in LevelDB
  for (const char* tx : {"b", "d", "f"}) Prepare(*h.store, tx);
  End(*h.store, "c");
  End(*h.store, "d");
  ASSERT_TRUE(h.Commit().ok());
  EXPECT_EQ(HalvesOf(*h.store), (std::vector<std::string>{"a", "b", "e", "f"}));
  EXPECT_EQ(ChecksOf(*h.store), (std::vector<std::string>{"a", "b", "e", "f"}));
  EXPECT_EQ(h.store->ReadHalf("c", 0).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(h.store->ReadHalf("b", 0).ok());
}

// Retention writes a stored half again further on: its key is not new,
// so deleting it must hide the reference LevelDB holds.
TEST(BrokerStoreOverlay, AMovedHalfDeletedLaterLeavesNoOldReferenceBehind) {
  TempDir dir;
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  Prepare(*h.store, "t");
  ASSERT_TRUE(h.Commit().ok());
  ASSERT_TRUE(h.store->CheckpointNow().ok());
  auto half = h.store->ReadHalf("t", 0);
  ASSERT_TRUE(half.ok());
  h.store->MoveHalf(half->body);
  ASSERT_TRUE(h.Commit().ok());
  h.store->DeleteHalf("t", 0);
  ASSERT_TRUE(h.Commit().ok());
  EXPECT_EQ(h.store->ReadHalf("t", 0).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(h.store->CheckpointNow().ok());
  h.store.reset();
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.store->stats().replayed_entries, 0u);
  EXPECT_EQ(h.store->ReadHalf("t", 0).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HalvesOf(*h.store).empty());
}

// Fails creating LevelDB's write-ahead log files while `fail` is set: a
// write error LevelDB does not remember (MakeRoomForWrite returns it and
// the next write may succeed).
class FailLogCreationEnv final : public leveldb::EnvWrapper {
 public:
  FailLogCreationEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}
  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override {
    if (fail && name.ends_with(".log")) return leveldb::Status::IOError(name, "injected");
    return target()->NewWritableFile(name, out);
  }
  std::atomic<bool> fail{false};
};

// The overlay's write into LevelDB fails: what it held stays readable,
// the store takes no more rounds, and no later checkpoint (not even the
// final one) names rounds whose keys LevelDB lacks, so the next start
// replays them.
TEST(BrokerStoreOverlay, AFailedOverlayWriteIsNeverCoveredByACheckpoint) {
  TempDir dir;
  FailLogCreationEnv env;
  {
    Harness h(dir.path(), FileSystem::Default(), &env);
    h.options.write_buffer_bytes = 64 << 10;
    ASSERT_TRUE(h.Open().ok());
    Prepare(*h.store, "t1");
    ASSERT_TRUE(h.Commit().ok());
    // Past the memtable's size: LevelDB's next write switches to a new one.
    h.store->PutMeta("big", std::string(200 << 10, 'x'));
    ASSERT_TRUE(h.Commit().ok());
    env.fail = true;
    EXPECT_FALSE(h.store->CheckpointNow().ok());
    EXPECT_TRUE(h.store->ReadHalf("t1", 0).ok()) << "still readable after the failed write";
    env.fail = false;
    EXPECT_FALSE(h.store->CheckpointNow().ok()) << "a later checkpoint would cover t1's round";
    Prepare(*h.store, "t2");
    EXPECT_FALSE(h.Commit().ok()) << "the store takes no more rounds";
  }
  Harness h(dir.path());
  ASSERT_TRUE(h.Open().ok());
  EXPECT_TRUE(h.store->ReadHalf("t1", 0).ok());
  EXPECT_TRUE(h.store->GetTx("t1").has_value());
  EXPECT_EQ(ChecksOf(*h.store), std::vector<std::string>{"t1"});
}

// Random transactions (new and reused ids, checks rescheduled to the same
// time or another, ends, expiries, halves moved by retention) against a
// model, with an overlay small enough to be written between most rounds,
// checkpoints racing the rounds, and restarts clean or after a power loss
// (cut during a checkpoint).
TEST(BrokerStoreOverlay, RandomTransactionsMatchAModelAcrossRestartsAndPowerLoss) {
  struct ModelTx {
    bool open = false, half = false, record = false;
    int64_t check = 0;
    TxStateCode state = TxStateCode::kPrepared;
  };
  using Model = std::map<std::string, ModelTx>;
  const auto expect_model = [](BrokerStore& store, const Model& model, int step) {
    std::vector<std::string> want_halves, want_checks, got_checks;
    for (const auto& [id, t] : model) {
      if (t.half) want_halves.push_back(id);
      if (t.open) want_checks.push_back(std::to_string(t.check) + "/" + id);
    }
    std::sort(want_checks.begin(), want_checks.end());
    ASSERT_TRUE(store
                    .ForEachScheduledCheck([&](int64_t ms, std::string_view tx) {
                      got_checks.push_back(std::to_string(ms) + "/" + std::string(tx));
                      return true;
                    })
                    .ok());
    std::sort(got_checks.begin(), got_checks.end());
    ASSERT_EQ(HalvesOf(store), want_halves) << "step " << step;
    ASSERT_EQ(got_checks, want_checks) << "step " << step;
    for (const auto& [id, t] : model) {
      auto r = store.GetTx(id);
      ASSERT_EQ(r.has_value(), t.record) << id << " step " << step;
      if (r) {
        ASSERT_EQ(r->state, t.state) << id << " step " << step;
      }
      ASSERT_EQ(store.ReadHalf(id, 0).ok(), t.half) << id << " step " << step;
    }
  };
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    std::mt19937 rng(seed);
    Model model;
    int64_t clock_ms = 10'000;
    for (int life = 0; life < 4; ++life) {
      const bool power_loss = rng() % 2;
      FaultFileSystem fs;
      FaultLevelDbEnv env;
      {
        Harness h(dir.path(), &fs, &env);
        h.options.index_overlay_bytes = 1 + rng() % 3000;
        h.options.checkpoint_interval = std::chrono::milliseconds(5);
        ASSERT_TRUE(h.Open().ok());
        ASSERT_NO_FATAL_FAILURE(expect_model(*h.store, model, -1));
        for (int step = 0; step < 150; ++step) {
          std::set<std::string> touched;  // one change per id and round
          for (int k = 1 + rng() % 6; k > 0; --k) {
            const std::string id = "t" + std::to_string(rng() % 12);
            if (!touched.insert(id).second) continue;
            ModelTx& t = model[id];
            const uint32_t what = rng() % 6;
            if (!t.open && !t.record && what <= 2) {
              t = ModelTx{true, true, true, clock_ms + static_cast<int64_t>(rng() % 5),
                          TxStateCode::kPrepared};
              h.store->PutTx(id, Tx("g"));
              h.store->ScheduleCheck(t.check, id);
              h.store->PutHalf({id, 0, 0, Msg("m-" + id, "b")});
            } else if (t.open && what == 0) {
              h.store->UnscheduleCheck(t.check, id);
              if (rng() % 2) t.check = clock_ms + static_cast<int64_t>(rng() % 5);
              h.store->ScheduleCheck(t.check, id);
            } else if (t.open && what == 1) {
              End(*h.store, id, t.check);
              t.open = t.half = false;
              t.state = TxStateCode::kCommitted;
            } else if (!t.open && t.record && what == 2) {
              h.store->DeleteTx(id);
              t.record = false;
            }
          }
          clock_ms += static_cast<int64_t>(rng() % 3);
          ASSERT_TRUE(h.Commit().ok());
          if (rng() % 7 == 0) {  // retention writes some halves again
            for (auto& [id, t] : model) {
              if (!t.half || rng() % 2) continue;
              auto half = h.store->ReadHalf(id, 0);
              ASSERT_TRUE(half.ok());
              h.store->MoveHalf(half->body);
            }
            ASSERT_TRUE(h.Commit().ok());
          }
          if (rng() % 50 == 0) {
            ASSERT_TRUE(h.store->CheckpointNow().ok());
          }
          ASSERT_NO_FATAL_FAILURE(expect_model(*h.store, model, step));
        }
        if (power_loss) {
          std::thread checkpoint([&] { (void)h.store->CheckpointNow(); });
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
          fs.PowerOff();
          env.PowerOff();
          checkpoint.join();
        }
      }
      if (power_loss) {
        fs.DropUnsynced();
        env.DropUnsynced();
      }
    }
    Harness h(dir.path());
    ASSERT_TRUE(h.Open().ok());
    ASSERT_NO_FATAL_FAILURE(expect_model(*h.store, model, -2));
  }
}

}  // namespace
}  // namespace txmq::storage
