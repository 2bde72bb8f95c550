// The index overlay (storage/src/index_overlay.h) through the store: what
// reaches LevelDB, what reads and scans see, and what survives a failed
// write, a restart and a power loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"
#include "tests/unit/broker_store_harness.h"

namespace txmq::storage::overlay_test {
namespace {

using testing::FaultFileSystem;
using testing::FaultLevelDbEnv;
using testing::TempDir;

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
}  // namespace txmq::storage::overlay_test
