// The parts of LocalStore and LocalTxn that txmq's own tables use: writes
// into the reserved key space, key locks for check-then-commit, a commit
// sequence that orders outbox rows, and background retention.
//
// Reserved key space (all under LocalStore::kReservedPrefix):
//   meta/instance                    -> the store's instance id
//   o/p/<seq:be64>                   -> outbox row, pending      (producer/)
//   o/x/<seq:be64>                   -> outbox row, parked       (producer/)
//   i/r/<record key>                 -> inbox record             (consumer/)
//   t/r/<transaction id>             -> transaction record       (producer/)
//   <table>/e/<time_ms:be64><record key> -> "" retention index: the record
//                                      goes when time_ms is past the horizon
//
// Threads: "txmq-local-gc" (started by the first AddRetention) owns the
// retention passes. Shared under seq_mu_: commit_seq_, in_flight_; under
// retention_mu_: retention_ and the stop flag; under running_transactions_.mu
// its ids (written by SendInTransaction callers, read by checker threads);
// under key_locks_mu_: key_locks_ and each entry's state (a waiter sleeps
// on its entry's condition variable).
#pragma once

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/src/db.h"
#include "txmq/local_store.h"

namespace txmq {

// A reserved key: kReservedPrefix + suffix.
std::string ReservedKey(std::string_view suffix);

// Tables keyed by commit sequence (reserved suffix + <seq:be64>): the
// outbox's pending and parked rows. The store starts its sequence above
// every key in them, so a commit never reuses a stored row's seq.
inline constexpr std::string_view kOutboxPendingTable = "o/p/";
inline constexpr std::string_view kOutboxParkedTable = "o/x/";

class LocalStore::Impl {
 public:
  Impl(std::unique_ptr<storage::Db> db, const LocalStoreOptions& options);
  ~Impl();

  // LocalStore::Open on the file layer `env` (null: LevelDB's default);
  // fault tests pass one that fails or stalls writes.
  static Result<std::unique_ptr<LocalStore>> Open(const std::string& path,
                                                  const LocalStoreOptions& options,
                                                  leveldb::Env* env);

  Status LoadOrCreateInstanceId();
  // Starts the commit sequence above the highest seq stored in the tables
  // keyed by it (called once by Open, before any commit can take a seq).
  Status SeedCommitSeq();

  leveldb::DB* db() const { return db_->get(); }
  // The value under `key` (a business or reserved key); NOT_FOUND if none.
  Result<std::string> Get(std::string_view key) const;
  const std::string& instance_id() const { return instance_id_; }
  const std::string& path() const { return db_->path(); }

  // A lock per key (exactly that key: two keys never share one, so a
  // holder may take another key's lock without deadlocking on itself):
  // held from a check to the commit that depends on it.
  class KeyGuard {
   public:
    KeyGuard(KeyGuard&& other) noexcept : table_(other.table_), key_(std::move(other.key_)) {
      other.table_ = nullptr;
    }
    KeyGuard(const KeyGuard&) = delete;
    ~KeyGuard();

   private:
    friend class Impl;
    KeyGuard(Impl* table, std::string key) : table_(table), key_(std::move(key)) {}
    Impl* table_;
    std::string key_;
  };
  KeyGuard LockKey(const std::string& key);
  // How many threads wait in LockKey(key) right now (blocked behind its
  // holder), for tests that must see a waiter queued rather than guess
  // from a sleep.
  int TEST_KeyLockWaiters(const std::string& key);

  // Commit sequence: taken under seq_mu_ by commits that order rows, `n`
  // consecutive numbers from the one returned (one per sequenced write).
  uint64_t TakeSeqs(uint64_t n);
  void SeqsDone(uint64_t first);  // the first number TakeSeqs returned
  // Every commit with a sequence at or below this is durable (or failed).
  uint64_t SafeSeq();

  // Writes a batch of txmq's own keys with the store's sync setting.
  Status Write(leveldb::WriteBatch& batch);

  // Records under `table` + "r/" are deleted `horizon` after the time in
  // their retention index entry (`table` + "e/"), in passes of at most
  // `batch` records.
  void AddRetention(const std::string& table, std::chrono::milliseconds horizon, size_t batch);
  // One pass over every table now; returns how many records went.
  size_t RunRetentionPass();
  uint64_t retention_deleted() const { return retention_deleted_; }
  uint64_t retention_passes() const { return retention_passes_; }

  // Transactions whose local part is running right now, shared by every
  // transaction producer on this store: a check answered by one producer
  // must see what another one is still running (and never roll it back).
  struct RunningTransactions {
    std::mutex mu;
    std::condition_variable cv;
    std::set<std::string> ids;  // guarded by mu
  };
  RunningTransactions& running_transactions() { return running_transactions_; }

 private:
  struct RetentionTable {
    std::string table;
    std::chrono::milliseconds horizon;
    size_t batch;
  };
  void RetentionLoop();

  std::unique_ptr<storage::Db> db_;
  LocalStoreOptions options_;
  std::string instance_id_;
  // One key's lock, present while someone holds or waits for it.
  struct KeyLockEntry {
    std::condition_variable released;
    bool held = false;  // guarded by key_locks_mu_
    int users = 0;      // guarded by key_locks_mu_: the holder and the waiters
    int waiters = 0;    // guarded by key_locks_mu_
  };
  std::mutex key_locks_mu_;
  std::unordered_map<std::string, std::unique_ptr<KeyLockEntry>> key_locks_;  // guarded

  std::mutex seq_mu_;
  uint64_t commit_seq_ = 0;       // guarded by seq_mu_
  std::set<uint64_t> in_flight_;  // guarded by seq_mu_

  std::mutex retention_mu_;
  std::condition_variable retention_cv_;
  std::vector<RetentionTable> retention_;  // guarded by retention_mu_
  bool stopping_ = false;                  // guarded by retention_mu_
  std::thread retention_thread_;
  std::atomic<uint64_t> retention_deleted_{0};
  std::atomic<uint64_t> retention_passes_{0};
  RunningTransactions running_transactions_;
};

class LocalTxn::Impl {
 public:
  explicit Impl(LocalStore::Impl* store) : store(store) {}

  // Writes into the reserved key space (no prefix check).
  void PutInternal(std::string_view key, std::string_view value) {
    batch.Put(key_slice(key), key_slice(value));
  }
  void DeleteInternal(std::string_view key) { batch.Delete(key_slice(key)); }
  // A write whose key needs a commit sequence number (an outbox row: rows
  // are relayed in seq order). Every registration gets a number of its
  // own, consecutive within the commit in the order registered; `write`
  // runs under the commit sequence, `committed` (optional) with the same
  // number after a successful write.
  void AtCommit(std::function<void(leveldb::WriteBatch&, uint64_t seq)> write,
                std::function<void(uint64_t seq)> committed = nullptr) {
    at_commit.push_back({std::move(write), std::move(committed)});
  }
  // Checked while the key's lock is held, right before the write; a
  // failure aborts the transaction with that status.
  void Require(std::string lock_key, std::function<Status()> condition) {
    lock_keys.push_back(std::move(lock_key));
    conditions.push_back(std::move(condition));
  }
  // Makes this transaction's commit depend on what `other` read too (a
  // decision taken in one transaction, committed by another).
  void AdoptReads(const Impl& other) {
    for (const auto& [key, value] : other.reads) reads.emplace(key, value);
  }

  static leveldb::Slice key_slice(std::string_view s) { return {s.data(), s.size()}; }

  LocalStore::Impl* store;
  leveldb::WriteBatch batch;
  struct Sequenced {
    std::function<void(leveldb::WriteBatch&, uint64_t)> write;
    std::function<void(uint64_t)> committed;
  };
  std::vector<Sequenced> at_commit;
  std::vector<std::string> lock_keys;
  std::vector<std::function<Status()>> conditions;
  // Business keys read through Get, with the value first seen (nullopt:
  // absent); Commit fails ABORTED if one changed since.
  std::map<std::string, std::optional<std::string>, std::less<>> reads;
  // Business keys written: locked at Commit, so no commit slips between
  // another one's check of its reads and its write.
  std::set<std::string, std::less<>> written;
  bool done = false;
  bool committed = false;
};

}  // namespace txmq
