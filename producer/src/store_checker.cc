#include "producer/src/store_checker.h"

#include <algorithm>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/db.h"
#include "storage/src/local_store_impl.h"

namespace txmq::producer {

namespace {

// How long a check waits for a running local transaction before it says
// UNKNOWN (the broker asks again later).
constexpr auto kRunningWait = std::chrono::milliseconds(500);
constexpr size_t kRetentionBatch = 1000;

std::string RecordKey(const std::string& tx_id) { return ReservedKey("t/r/" + tx_id); }

std::string IndexKey(int64_t time_ms, const std::string& tx_id) {
  std::string k = ReservedKey("t/e/");
  storage::PutBe64(&k, static_cast<uint64_t>(time_ms));
  k += tx_id;
  return k;
}

}  // namespace

StoreTransactions::StoreTransactions(LocalStore& store, std::chrono::milliseconds horizon)
    : store_(store), prefix_(store.instance_id() + ":"), horizon_(horizon) {
  store_.impl().AddRetention("t/", horizon, kRetentionBatch);
}

std::string StoreTransactions::NewTransactionId() const { return prefix_ + NewUuidV7(); }

void StoreTransactions::Begin(const std::string& tx_id) {
  auto& running = store_.impl().running_transactions();
  std::lock_guard<std::mutex> lock(running.mu);
  running.ids.insert(tx_id);
}

void StoreTransactions::End(const std::string& tx_id) {
  auto& running = store_.impl().running_transactions();
  {
    std::lock_guard<std::mutex> lock(running.mu);
    running.ids.erase(tx_id);
  }
  running.cv.notify_all();
}

void StoreTransactions::RecordCommit(LocalTxn& txn, const std::string& tx_id) {
  const std::string key = RecordKey(tx_id);
  const int64_t now = NowMs();
  txn.impl().PutInternal(key, "C");
  txn.impl().PutInternal(IndexKey(now, tx_id), "");
  LocalStore::Impl* store = &store_.impl();
  txn.impl().Require(key, [store, key, tx_id]() {
    std::string value;
    const leveldb::Status read = store->db()->Get(storage::CheckedReads(), key, &value);
    if (!read.ok() && !read.IsNotFound()) {
      // Whether check-back rolled it back is unknown: no commit.
      return Status::Unavailable("transaction " + tx_id +
                                 ": its record cannot be read: " + read.ToString());
    }
    if (read.ok() && value == "R") {
      return Status::Aborted("transaction " + tx_id +
                             " was aborted by check-back (the broker asked, the local "
                             "transaction had not committed, so it was rolled back); nothing was "
                             "committed");
    }
    return Status::OK();
  });
}

TxState StoreTransactions::Check(const std::string& tx_id, std::string* why) {
  return ResolveTransaction(store_, tx_id, horizon_, why);
}

TxState ResolveTransaction(LocalStore& local_store, const std::string& tx_id,
                           std::chrono::milliseconds horizon, std::string* why) {
  const std::string prefix = local_store.instance_id() + ":";
  if (!tx_id.starts_with(prefix)) {
    // Another store's transaction: only that store can know.
    *why = "transaction " + tx_id + " was not started by store " + local_store.instance_id();
    return TxState::kUnknown;
  }
  auto& running = local_store.impl().running_transactions();
  {
    std::unique_lock<std::mutex> lock(running.mu);
    if (!running.cv.wait_for(lock, kRunningWait, [&] { return !running.ids.count(tx_id); })) {
      *why = "the local transaction is still running";
      return TxState::kUnknown;
    }
  }
  const std::string key = RecordKey(tx_id);
  LocalStore::Impl& store = local_store.impl();
  auto key_lock = store.LockKey(key);
  std::string value;
  leveldb::Status s = store.db()->Get(storage::CheckedReads(), key, &value);
  if (s.ok()) return value == "C" ? TxState::kCommit : TxState::kRollback;
  if (!s.IsNotFound()) {
    *why = "reading the transaction record: " + s.ToString();
    return TxState::kUnknown;
  }
  // Records go after the horizon: for a transaction that old, "no record"
  // may mean "committed, then cleaned up". Only an operator can tell now.
  // (Started at the time in its UUIDv7; a half hour of margin for clocks.)
  const int64_t born_ms = UuidV7Millis(std::string_view(tx_id).substr(prefix.size()));
  const int64_t margin_ms = 30 * 60 * 1000;
  if (born_ms < 0 ||
      NowMs() - born_ms > horizon.count() - std::min(margin_ms, horizon.count() / 2)) {
    *why = "no record of transaction " + tx_id + ", but it is older than the record horizon (" +
           FormatDurationMs(horizon.count()) +
           "): its record may have been removed after a local commit; resolve it with txmqctl";
    return TxState::kUnknown;
  }
  {
    // Not committed and not running: it never will commit. Say so durably
    // first, so a late local commit is refused.
    std::lock_guard<std::mutex> lock(running.mu);
    if (running.ids.count(tx_id)) {
      *why = "the local transaction started again";
      return TxState::kUnknown;
    }
  }
  leveldb::WriteBatch batch;
  batch.Put(key, "R");
  batch.Put(IndexKey(NowMs(), tx_id), "");
  if (Status w = store.Write(batch); !w.ok()) {
    *why = "writing the rollback tombstone: " + w.ToString();
    return TxState::kUnknown;
  }
  Logger("producer")
      ->info("transaction {} never committed locally: recorded as rolled back", tx_id);
  return TxState::kRollback;
}

}  // namespace txmq::producer
