#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>

#include "storage/src/coding.h"
#include "storage/src/local_store_impl.h"
#include "tests/testutil/testutil.h"
#include "txmq/local_store.h"

namespace txmq {
namespace {

TEST(LocalStore, CommitsBothOrNeither) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  LocalTxn tx = (*store)->Begin();
  ASSERT_TRUE(tx.Put("order/1", "new").ok());
  ASSERT_TRUE(tx.Put("stock/apple", "9").ok());
  EXPECT_EQ((*store)->Get("order/1").status().code(), StatusCode::kNotFound) << "not yet";
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(*(*store)->Get("order/1"), "new");
  EXPECT_EQ(*(*store)->Get("stock/apple"), "9");
  EXPECT_EQ(tx.Commit().code(), StatusCode::kFailedPrecondition) << "used once";

  LocalTxn dropped = (*store)->Begin();
  ASSERT_TRUE(dropped.Put("order/2", "x").ok());
  dropped.Abort();
  EXPECT_EQ((*store)->Get("order/2").status().code(), StatusCode::kNotFound);
}

TEST(LocalStore, RefusesBusinessWritesIntoTheReservedSpace) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  LocalTxn tx = (*store)->Begin();
  Status s = tx.Put(std::string(LocalStore::kReservedPrefix) + "o/p/x", "forged");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("reserved"), std::string::npos);
  EXPECT_EQ(tx.Delete(std::string(LocalStore::kReservedPrefix) + "meta/instance").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(tx.Put("", "x").code(), StatusCode::kInvalidArgument);
  // Scans of business keys never show txmq's rows.
  ASSERT_TRUE(tx.Put("a", "1").ok());
  ASSERT_TRUE(tx.Commit().ok());
  std::vector<std::string> keys;
  (*store)->Scan("", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  EXPECT_EQ(keys, std::vector<std::string>{"a"});
}

TEST(LocalStore, InstanceIdIsPersistentAndTheDirectoryExclusive) {
  testing::TempDir dir;
  std::string id;
  {
    auto store = LocalStore::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok());
    id = (*store)->instance_id();
    EXPECT_EQ(id.size(), 36u);
    auto second = LocalStore::Open(dir.Sub("db"));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(second.status().message().find(dir.Sub("db")), std::string::npos);
  }
  auto reopened = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->instance_id(), id);
  auto missing = LocalStore::Open(dir.Sub("nope"), {.create_if_missing = false});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir.Sub("nope")), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("nope"))) << "nothing is created at a wrong path";
}

TEST(LocalStore, AFailedConditionAbortsTheWholeCommit) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  LocalTxn tx = (*store)->Begin();
  ASSERT_TRUE(tx.Put("row", "x").ok());
  tx.impl().Require(ReservedKey("guard"), [] { return Status::Aborted("refused by a check"); });
  Status s = tx.Commit();
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ((*store)->Get("row").status().code(), StatusCode::kNotFound);
}

TEST(LocalStore, KeyLocksSerializeOneKeyOnly) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  auto& impl = (*store)->impl();
  std::optional<LocalStore::Impl::KeyGuard> a(impl.LockKey("a"));
  // A second taker of "a" is seen queued behind the holder (not merely
  // "not done yet"), and stays queued while its key is held.
  std::atomic<bool> got_a{false};
  std::thread waiter([&] {
    auto again = impl.LockKey("a");
    got_a = true;
  });
  EXPECT_TRUE(testing::WaitFor([&] { return impl.TEST_KeyLockWaiters("a") == 1; }))
      << "LockKey(\"a\") did not wait for the holder of \"a\"";
  EXPECT_FALSE(got_a) << "two holders of one key at once";
  // Another key is taken and given back meanwhile, from another thread and
  // from the holder's own thread, while "a" still has its waiter.
  std::atomic<bool> got_b{false};
  std::thread other([&] {
    auto b = impl.LockKey("b");
    got_b = true;
  });
  EXPECT_TRUE(testing::WaitFor([&] { return got_b.load(); }))
      << "a lock of \"b\" waited for the holder of \"a\"";
  if (got_b) {                   // (keys not apart: this thread would wait for itself)
    auto c = impl.LockKey("c");  // the holder of "a" takes another key too
  }
  EXPECT_EQ(impl.TEST_KeyLockWaiters("a"), 1);
  EXPECT_FALSE(got_a);
  a.reset();  // releasing "a" lets its waiter in
  waiter.join();
  other.join();
  EXPECT_TRUE(got_a);
  EXPECT_EQ(impl.TEST_KeyLockWaiters("a"), 0);
}

TEST(LocalStore, CommitSequenceWaterMark) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  auto& impl = (*store)->impl();
  const uint64_t before = impl.SafeSeq();
  uint64_t first = impl.TakeSeqs(3), second = impl.TakeSeqs(1);
  EXPECT_EQ(first, before + 1);
  EXPECT_EQ(second, first + 3) << "a commit of three sequenced writes takes three numbers";
  EXPECT_EQ(impl.SafeSeq(), before) << "first is still being written";
  impl.SeqsDone(second);
  EXPECT_EQ(impl.SafeSeq(), before) << "second done, but first not: rows may not be sent past it";
  impl.SeqsDone(first);
  EXPECT_EQ(impl.SafeSeq(), second);
}

TEST(LocalStore, ACommitWhoseReadsChangedIsAbortedAndWritesNothing) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  LocalStore& db = **store;
  {
    LocalTxn seed = db.Begin();
    ASSERT_TRUE(seed.Put("stock/apple", "5").ok());
    ASSERT_TRUE(seed.Commit().ok());
  }
  // Read 5, decide, but another commit changed the key in between.
  LocalTxn slow = db.Begin();
  ASSERT_EQ(*slow.Get("stock/apple"), "5");
  ASSERT_EQ(slow.Get("reserved/o-1").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(slow.Put("stock/apple", "4").ok());
  ASSERT_TRUE(slow.Put("reserved/o-1", "1").ok());
  {
    LocalTxn fast = db.Begin();
    ASSERT_TRUE(fast.Put("stock/apple", "3").ok());
    ASSERT_TRUE(fast.Commit().ok());
  }
  Status s = slow.Commit();
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
  EXPECT_NE(s.message().find("'stock/apple' changed after this transaction read it"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(*db.Get("stock/apple"), "3") << "the other commit's value stays";
  EXPECT_EQ(db.Get("reserved/o-1").status().code(), StatusCode::kNotFound) << "nothing written";

  // A key read as absent that appears meanwhile is a change too.
  LocalTxn creator = db.Begin();
  ASSERT_FALSE(creator.Get("order/7").ok());
  ASSERT_TRUE(creator.Put("order/7", "mine").ok());
  {
    LocalTxn other = db.Begin();
    ASSERT_TRUE(other.Put("order/7", "theirs").ok());
    ASSERT_TRUE(other.Commit().ok());
  }
  EXPECT_EQ(creator.Commit().code(), StatusCode::kAborted);
  EXPECT_EQ(*db.Get("order/7"), "theirs");

  // Unchanged reads (and changes to keys it never read) commit.
  LocalTxn fine = db.Begin();
  ASSERT_EQ(*fine.Get("stock/apple"), "3");
  {
    LocalTxn unrelated = db.Begin();
    ASSERT_TRUE(unrelated.Put("stock/pear", "9").ok());
    ASSERT_TRUE(unrelated.Commit().ok());
  }
  ASSERT_TRUE(fine.Put("stock/apple", "2").ok());
  EXPECT_TRUE(fine.Commit().ok());
  EXPECT_EQ(*db.Get("stock/apple"), "2");
}

TEST(LocalStore, ConcurrentReadModifyWriteIncrementsLoseNothing) {
  testing::TempDir dir;
  auto store = LocalStore::Open(dir.Sub("db"));  // synced: each commit takes a while
  ASSERT_TRUE(store.ok());
  LocalStore& db = **store;
  constexpr int kThreads = 4, kEach = 100;
  std::atomic<int> aborted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        for (int run = 0; run < 10'000; ++run) {  // the caller's retry loop
          LocalTxn tx = db.Begin();
          auto have = tx.Get("counter");
          const int value = have.ok() ? std::stoi(*have) : 0;
          ASSERT_TRUE(tx.Put("counter", std::to_string(value + 1)).ok());
          Status s = tx.Commit();
          if (s.ok()) break;
          ASSERT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
          ++aborted;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(*db.Get("counter"), std::to_string(kThreads * kEach));
  EXPECT_GT(aborted, 0) << "the threads did collide (else this test proves nothing)";
}

// A commit that writes a row keyed by its commit sequence into `table`.
Status CommitSeqRow(LocalStore& store, std::string_view table, uint64_t* seq_out) {
  LocalTxn tx = store.Begin();
  tx.impl().AtCommit([table, seq_out](leveldb::WriteBatch& batch, uint64_t seq) {
    std::string key = ReservedKey(table);
    storage::PutBe64(&key, seq);
    batch.Put(key, "row");
    *seq_out = seq;
  });
  return tx.Commit();
}

TEST(LocalStore, TheCommitSequenceStartsAboveEveryStoredRowWhenTheStoreOpens) {
  testing::TempDir dir;
  uint64_t seq = 0;
  {
    auto store = LocalStore::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(CommitSeqRow(**store, kOutboxPendingTable, &seq).ok());
    EXPECT_EQ(seq, 3u);
  }
  {
    // Reopened: the next commit comes after the stored rows, with no
    // outbox started to tell the store about them.
    auto store = LocalStore::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(CommitSeqRow(**store, kOutboxPendingTable, &seq).ok());
    EXPECT_EQ(seq, 4u);
    // A parked row with a higher seq than any pending one counts too.
    leveldb::WriteBatch batch;
    std::string parked = ReservedKey(kOutboxParkedTable);
    storage::PutBe64(&parked, 1000);
    batch.Put(parked, "parked row");
    ASSERT_TRUE((*store)->impl().Write(batch).ok());
  }
  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(CommitSeqRow(**store, kOutboxPendingTable, &seq).ok());
  EXPECT_EQ(seq, 1001u);
  int pending = 0;
  std::unique_ptr<leveldb::Iterator> it((*store)->impl().db()->NewIterator({}));
  const std::string prefix = ReservedKey(kOutboxPendingTable);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++pending;
  EXPECT_EQ(pending, 5) << "no row was overwritten";
}

// A damaged table file gives an error, never a wrong answer: every read
// checks the block's CRC. The bytes flipped are inside one stored value.
TEST(LocalStore, AReadOfADamagedTableIsAnErrorNotAWrongValue) {
  testing::TempDir dir;
  const std::string value = "stock row " + std::string(200, 'v');
  {
    // Uncompressed, so the test can find the value's bytes in the file.
    auto store = LocalStore::Open(dir.Sub("db"), {.compress = false});
    ASSERT_TRUE(store.ok());
    LocalTxn tx = (*store)->Begin();
    ASSERT_TRUE(tx.Put("a/stock/apple", value).ok());
    // Rows enough that the damaged one's block holds nothing the store
    // reads when it opens (its own records sort last).
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(tx.Put("filler/" + std::to_string(1000 + i), std::string(200, 'f')).ok());
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  // Opened again, LevelDB turns its log into a table file.
  ASSERT_TRUE(LocalStore::Open(dir.Sub("db"), {.compress = false}).ok());
  std::string table;
  for (const auto& entry : std::filesystem::directory_iterator(dir.Sub("db"))) {
    if (entry.path().extension() == ".ldb") table = entry.path();
  }
  ASSERT_FALSE(table.empty()) << "no table file was written";
  std::string bytes;
  {
    std::ifstream in(table, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find(std::string(200, 'v'));
  ASSERT_NE(at, std::string::npos) << "the value is not stored uncompressed";
  bytes[at + 100] = 'X';
  {
    std::ofstream out(table, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  auto store = LocalStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto read = (*store)->Get("a/stock/apple");
  ASSERT_FALSE(read.ok()) << "a damaged row was read as valid: " << read->substr(0, 40);
  EXPECT_EQ(read.status().code(), StatusCode::kCorruption) << read.status().ToString();
}

}  // namespace
}  // namespace txmq
