// The broker store after a write round failed. A failed fdatasync is not
// a promise that a later one covers the same bytes: Linux drops the dirty
// pages of a failed writeback, reports the error once, and the next
// fdatasync succeeds. A round written after that would sit behind a hole,
// acknowledged but unreadable (and the log refuses to open past damage).
// So the first failure is the store's last word until it is reopened.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "storage/src/broker_store.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"
#include "tests/unit/broker_store_harness.h"

namespace txmq::storage {
namespace {

using testing::FaultFileSystem;
using testing::TempDir;

struct Store : Harness {
  explicit Store(const std::string& dir, FileSystem* fs = FileSystem::Default(),
                 leveldb::Env* env = nullptr)
      : Harness(dir, fs, env) {}
  // One message per round, on the storage thread or inline; `sealed` as
  // a cluster leader's (BrokerStore::SealedFn).
  Status Append(uint64_t offset, bool inline_write, const BrokerStore::SealedFn& sealed = {}) {
    const std::string id = "m" + std::to_string(offset);
    MessageView m;
    m.id = id;
    m.topic = "orders";
    m.body = "body of " + id;
    m.stored_ms = 1000;
    store->AppendMessage(1, 0, offset, m, true);
    std::unique_ptr<Round> round;
    if (inline_write) {
      round = store->WriteInline(++clock, sealed);
    } else {
      store->Submit(++clock, sealed);
      round = store->WaitFinished();
    }
    Status s = round->status();
    round->Complete();
    return s;
  }
};

void NoRoundAfterAFailedOneIsDurable(bool inline_write) {
  TempDir dir;
  FaultFileSystem fs;
  {
    Store s(dir.path(), &fs);
    ASSERT_TRUE(s.Open().ok());
    ASSERT_TRUE(s.Append(0, inline_write).ok());
    fs.FailNextSyncs(1);  // this round's bytes are lost; the disk is fine again after
    Status failed = s.Append(1, inline_write);
    ASSERT_FALSE(failed.ok());
    Status later = s.Append(2, inline_write);
    EXPECT_FALSE(later.ok()) << "a round after a failed one was reported durable";
    EXPECT_NE(later.message().find(failed.message()), std::string::npos)
        << "it names the first failure: " << later.ToString();
  }
  // Restarted on the same (healthy) disk: what was durable is there, the
  // log ends where the failure was, and the store takes rounds again.
  Store s(dir.path());
  Status opened = s.Open();
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  auto m0 = s.store->ReadMessage(1, 0, 0);
  ASSERT_TRUE(m0.ok()) << m0.status().ToString();
  EXPECT_EQ(m0->body.message.id, "m0");
  EXPECT_EQ(s.store->GetQueueBounds(1, 0).end, 1u);
  ASSERT_TRUE(s.Append(1, inline_write).ok());
  auto m1 = s.store->ReadMessage(1, 0, 1);
  ASSERT_TRUE(m1.ok()) << m1.status().ToString();
  EXPECT_EQ(m1->body.message.id, "m1");
}

TEST(BrokerStoreFailure, NoRoundAfterAFailedOneIsDurableOnTheStorageThread) {
  NoRoundAfterAFailedOneIsDurable(false);
}

TEST(BrokerStoreFailure, NoRoundAfterAFailedOneIsDurableInline) {
  NoRoundAfterAFailedOneIsDurable(true);
}

TEST(BrokerStoreFailure, UnderFlushAsyncAFailedBackgroundSyncFailsTheNextRound) {
  TempDir dir;
  FaultFileSystem fs;
  Store s(dir.path(), &fs);
  s.options.sync = false;
  s.options.async_sync_interval = std::chrono::milliseconds(20);
  ASSERT_TRUE(s.Open().ok());
  fs.FailNextSyncs(1);
  ASSERT_TRUE(s.Append(0, false).ok()) << "flush async acknowledges before the sync";
  // The background sync fails (and the kernel drops the round).
  ASSERT_TRUE(testing::WaitFor([&] { return fs.unsynced_bytes() == 0; }));
  uint64_t offset = 1;
  EXPECT_TRUE(testing::WaitFor([&] { return !s.Append(offset++, false).ok(); }))
      << "rounds are still acknowledged after the log lost what they follow";
}

// A round written and never synced (the process killed between its write
// and its fdatasync) is read whole at the next start, from the page cache,
// and built on: replayed, and covered by the recovery's checkpoint. It
// must then be durable too; a power loss after the restart otherwise
// takes it from under a checkpoint that names it, and the store refuses
// to start ("damaged").
TEST(BrokerStoreFailure, ARoundReadBackAtAStartIsMadeDurable) {
  TempDir dir;
  FaultFileSystem fs;
  testing::FaultLevelDbEnv env;
  {
    Store s(dir.path(), &fs, &env);
    ASSERT_TRUE(s.Open().ok());
    ASSERT_TRUE(s.Append(0, false).ok());
    fs.FailSyncs();  // round 1 reaches the page cache only
    ASSERT_FALSE(s.Append(1, false).ok());
  }
  fs.AllowSyncs();
  {
    Store s(dir.path(), &fs, &env);
    ASSERT_TRUE(s.Open().ok());
    EXPECT_EQ(s.store->GetQueueBounds(1, 0).end, 2u) << "round 1 read back after the kill";
    fs.PowerOff();
    env.PowerOff();
  }
  fs.DropUnsynced();
  env.DropUnsynced();
  Store s(dir.path());
  Status opened = s.Open();
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  EXPECT_EQ(s.store->GetQueueBounds(1, 0).end, 2u);
}

// Under --flush async rounds reach the index before the log's background
// sync: LevelDB flushing a full memtable (synced table files) must not
// make index entries durable for rounds a power loss then takes from the
// log. The store syncs the log first; else the next start refused the
// store ("the index names messages at log position ..., but the log ends
// at ...").
TEST(BrokerStoreFailure, UnderFlushAsyncAPowerLossNeverLeavesTheIndexAheadOfTheLog) {
  TempDir dir;
  FaultFileSystem fs;
  testing::FaultLevelDbEnv env;
  uint64_t appended = 0;
  {
    Store s(dir.path(), &fs, &env);
    s.options.sync = false;
    s.options.async_sync_interval = std::chrono::hours(1);  // the power goes before it
    s.options.write_buffer_bytes = 64 << 10;                // LevelDB flushes often
    ASSERT_TRUE(s.Open().ok());
    for (; appended < 2000; ++appended) ASSERT_TRUE(s.Append(appended, false).ok());
    fs.PowerOff();
    env.PowerOff();
  }
  fs.DropUnsynced();
  env.DropUnsynced();
  Store s(dir.path());
  Status opened = s.Open();
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  EXPECT_LE(s.store->GetQueueBounds(1, 0).end, appended);
}

// A start that refuses a damaged store ("Nothing was changed. Start txmqd
// with --repair ...") changes nothing: the store it opened halfway did
// not checkpoint (flush the index it replayed, rewrite CHECKPOINT) when
// it was thrown away.
TEST(BrokerStoreFailure, AStartThatRefusesChangesNothing) {
  TempDir dir;
  const std::string crashed = dir.Sub("crashed");
  {
    Harness h(dir.Sub("live"));
    ASSERT_TRUE(h.Open().ok());
    for (uint64_t i = 0; i < 8; ++i) {  // 1.6 MiB: two segments of 1 MiB
      h.store->AppendMessage(1, 0, i, Msg("m" + std::to_string(i), std::string(200 << 10, 'x')),
                             true);
      ASSERT_TRUE(h.Commit().ok());
      // A checkpoint in the second segment, with rounds after it.
      if (i == 5) {
        ASSERT_TRUE(h.store->CheckpointNow().ok());
      }
    }
    ASSERT_GE(h.store->Segments().size(), 2u);
    // As a crash leaves it: rounds after the last checkpoint, to replay.
    std::filesystem::copy(dir.Sub("live"), crashed, std::filesystem::copy_options::recursive);
  }
  const std::string checkpoint = crashed + "/CHECKPOINT";
  ASSERT_TRUE(std::filesystem::exists(checkpoint));
  const std::string before = testing::ReadFile(checkpoint);
  // The first segment, which holds indexed messages, is gone.
  std::filesystem::remove(crashed + "/log/00000000000000000000.seg");
  Store s(crashed);
  Status opened = s.Open();
  ASSERT_EQ(opened.code(), StatusCode::kCorruption) << opened.ToString();
  EXPECT_EQ(testing::ReadFile(checkpoint), before) << "a refused start rewrote CHECKPOINT";
}

// The background sync runs every async_sync_interval also while rounds
// keep coming: a busy broker under --flush async is not left unsynced
// until its next checkpoint, and a cluster leader (whose store runs so)
// gets synced rounds to mark.
TEST(BrokerStoreFailure, UnderFlushAsyncTheBackgroundSyncRunsUnderSteadyTraffic) {
  TempDir dir;
  Store s(dir.path());
  s.options.sync = false;
  s.options.async_sync_interval = std::chrono::milliseconds(20);
  ASSERT_TRUE(s.Open().ok());
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
  uint64_t offset = 0;
  while (std::chrono::steady_clock::now() < until) {  // a round every ~5 ms, never 20 ms apart
    ASSERT_TRUE(s.Append(offset++, false).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(s.store->synced_rounds(), 0u) << offset << " rounds, none synced";
}

// A cluster leader's round that its replica log never took (the node
// stopped leading) is refused before its write, and so is every round
// after it: the store never holds a round after one it lacks. What it
// holds is whole, so it still syncs (a clean stop marks and checkpoints
// it), and no round is handed to replication once one was refused.
TEST(BrokerStoreFailure, ARoundRefusedBeforeItsWriteIsNotWrittenNorAnyAfterIt) {
  TempDir dir;
  {
    Store s(dir.path());
    s.options.sync = false;
    ASSERT_TRUE(s.Open().ok());
    int sealed = 0;
    bool refuse = false;
    auto seal = [&](Round& round) {
      ++sealed;
      round.set_before_write([&] {
        return refuse ? Status::Unavailable("node a stopped leading group g1") : Status::OK();
      });
    };
    ASSERT_TRUE(s.Append(0, false, seal).ok());
    refuse = true;
    Status refused = s.Append(1, false, seal);
    EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
    refuse = false;
    Status later = s.Append(2, false, seal);
    EXPECT_FALSE(later.ok()) << "a round after a refused one was written";
    EXPECT_EQ(sealed, 2) << "a round was handed to replication after one was refused";
    EXPECT_EQ(s.store->GetQueueBounds(1, 0).end, 1u);
    EXPECT_TRUE(s.store->SyncReplicated().ok()) << "what the store holds no longer syncs";
  }
  Store s(dir.path());
  ASSERT_TRUE(s.Open().ok());
  EXPECT_EQ(s.store->GetQueueBounds(1, 0).end, 1u);
  EXPECT_TRUE(s.store->ReadMessage(1, 0, 0).ok());
}

}  // namespace
}  // namespace txmq::storage
