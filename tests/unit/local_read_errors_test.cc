// A local record that cannot be read (an I/O error, damage) is not the
// same as no record. Taken for none, the inbox ran a handler again for a
// message it had processed (its effect twice), and a compensation fenced
// a message that had committed (its undo lost).
#include <gtest/gtest.h>
#include <leveldb/env.h>

#include <atomic>
#include <memory>

#include "producer/src/origin_fence.h"
#include "producer/src/outbox_row.h"
#include "storage/src/local_store_impl.h"
#include "tests/testutil/testutil.h"
#include "txmq/inbox.h"
#include "txmq/local_store.h"

namespace txmq {
namespace {

// LevelDB's files, whose reads fail once `fail` is set.
class FailingReadsEnv final : public leveldb::EnvWrapper {
 public:
  FailingReadsEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}
  std::atomic<bool> fail{false};

  leveldb::Status NewRandomAccessFile(const std::string& name,
                                      leveldb::RandomAccessFile** out) override {
    leveldb::RandomAccessFile* base = nullptr;
    leveldb::Status s = target()->NewRandomAccessFile(name, &base);
    if (!s.ok()) return s;
    *out = new File(std::unique_ptr<leveldb::RandomAccessFile>(base), &fail);
    return s;
  }

 private:
  class File final : public leveldb::RandomAccessFile {
   public:
    File(std::unique_ptr<leveldb::RandomAccessFile> base, const std::atomic<bool>* fail)
        : base_(std::move(base)), fail_(fail) {}
    leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result,
                         char* scratch) const override {
      if (*fail_) return leveldb::Status::IOError("test: read failed");
      return base_->Read(offset, n, result, scratch);
    }

   private:
    std::unique_ptr<leveldb::RandomAccessFile> base_;
    const std::atomic<bool>* fail_;
  };
};

Received Delivery(const std::string& id) {
  Received m;
  m.id = id;
  m.topic = "orders";
  m.body = "order-1";
  return m;
}

// Opens the store in `dir` on `env` (after a first open turned its log
// into a table file, so reads go to the files).
std::unique_ptr<LocalStore> Reopen(const std::string& dir, leveldb::Env* env) {
  { auto once = LocalStore::Impl::Open(dir, {}, env); }
  auto store = LocalStore::Impl::Open(dir, {}, env);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(LocalReadErrors, AnInboxThatCannotReadItsRecordGivesTheMessageBack) {
  testing::TempDir dir;
  FailingReadsEnv env;
  int runs = 0;
  auto count = [&](LocalTxn&, const Received&) {
    ++runs;
    return ConsumeResult::Success();
  };
  {
    auto store = LocalStore::Impl::Open(dir.Sub("db"), {}, &env);
    ASSERT_TRUE(store.ok());
    Inbox inbox(**store, {.group = "billing"});
    ASSERT_EQ(inbox.Idempotent(count)(Delivery("m-1")).kind(), ConsumeResult::Kind::kSuccess);
  }
  auto store = Reopen(dir.Sub("db"), &env);
  ASSERT_NE(store, nullptr);
  Inbox inbox(*store, {.group = "billing"});
  env.fail = true;
  EXPECT_EQ(inbox.Idempotent(count)(Delivery("m-1")).kind(), ConsumeResult::Kind::kRetryLater);
  env.fail = false;
  EXPECT_EQ(inbox.Idempotent(count)(Delivery("m-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(runs, 1) << "the handler ran again for a message it had processed";
}

TEST(LocalReadErrors, AnOriginThatCannotBeReadIsUndecidedNotFenced) {
  testing::TempDir dir;
  FailingReadsEnv env;
  {
    auto store = LocalStore::Impl::Open(dir.Sub("db"), {}, &env);
    ASSERT_TRUE(store.ok());
    LocalTxn txn = (*store)->Begin();
    outbox::PutRecord(txn, "order-9", outbox::kCommitted, "");
    ASSERT_TRUE(txn.Commit().ok());
  }
  auto store = Reopen(dir.Sub("db"), &env);
  ASSERT_NE(store, nullptr);
  env.fail = true;
  LocalTxn txn = store->Begin();
  std::string why;
  EXPECT_EQ(producer::CheckOrigin(*store, txn, "order-9", "", std::chrono::hours(24), &why),
            producer::Origin::kUndecided)
      << why;
}

}  // namespace
}  // namespace txmq
