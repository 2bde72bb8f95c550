// txmq::LocalStore: the LevelDB a service keeps its own rows in, shared
// with txmq's local message tables (outbox, inbox, transaction records),
// so "change my data" and "remember to tell others" commit in one write.
//
//   auto store = txmq::LocalStore::Open("./orders-db");   // Result<unique_ptr<LocalStore>>
//   txmq::LocalTxn tx = (*store)->Begin();
//   tx.Put("order/42", row);
//   outbox.Add(tx, {.topic = "order-created", .key = "42", .body = row});
//   txmq::Status s = tx.Commit();                        // one synced write: both or neither
//
// Keys starting with LocalStore::kReservedPrefix belong to txmq; writing
// one through the business API is refused. The store has a persistent
// instance id, created on first open, that names it to the broker.
//
// Thread safety: a LocalStore is safe to use from many threads. A LocalTxn
// belongs to one thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "txmq/status.h"

namespace txmq {

struct LocalStoreOptions {
  // fsync every commit (a commit survives power loss). Turning it off
  // keeps commits across a process crash only.
  bool sync = true;
  // Create the directory and database when missing. When false, Open
  // fails NOT_FOUND, naming the path, and creates nothing there.
  bool create_if_missing = true;
  // Snappy-compress table blocks (business rows are often compressible).
  bool compress = true;
  // LevelDB memtable size.
  size_t write_buffer_bytes = 8 * 1024 * 1024;
};

class LocalStore;

// Reads plus a write batch, committed atomically with one (synced) write.
// Reads see the store as it is, not this transaction's own writes.
//
// Isolation: every key read through Get (present or absent) is checked
// again at Commit, under a lock of that key and of every key written
// (taken in key order): if another commit changed it since it was read,
// Commit fails ABORTED and writes nothing; begin again and re-read. So a
// read-modify-write of a key never loses a concurrent update: committed
// transactions are serializable with respect to the keys they read.
// LocalStore::Get and Scan are not tracked (a range is not protected
// against rows appearing in it). Commits of unrelated keys do not wait for
// each other. Inbox handlers are run again for you on ABORTED.
class LocalTxn {
 public:
  LocalTxn(LocalTxn&&) noexcept;
  LocalTxn& operator=(LocalTxn&&) noexcept;
  ~LocalTxn();

  Result<std::string> Get(std::string_view key) const;  // NOT_FOUND when absent
  // INVALID_ARGUMENT for a key in txmq's reserved space.
  Status Put(std::string_view key, std::string_view value);
  Status Delete(std::string_view key);

  // Writes everything in one batch. FAILED_PRECONDITION after a Commit or
  // Abort; ABORTED, nothing written, when a key it read changed since (run
  // it again) or a txmq condition failed (e.g. a transaction check already
  // rolled this transaction back). A transaction is used once.
  Status Commit();
  // Drops the writes. Also what destruction without Commit does.
  void Abort();
  bool committed() const;

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  friend class LocalStore;
  explicit LocalTxn(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class LocalStore {
 public:
  // Keys txmq's own tables use; business keys may not start with it.
  static constexpr std::string_view kReservedPrefix = "\xfftxmq/";

  // Fails UNAVAILABLE, naming the directory, when another process (or
  // another LocalStore in this one) has it open.
  static Result<std::unique_ptr<LocalStore>> Open(const std::string& path,
                                                  LocalStoreOptions options = {});
  ~LocalStore();
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  // Persistent, created on first open: names this store to the broker.
  const std::string& instance_id() const;
  const std::string& path() const;

  LocalTxn Begin();
  Result<std::string> Get(std::string_view key) const;
  // Calls fn(key, value) for business keys starting with `prefix`, in key
  // order, until it returns false.
  void Scan(std::string_view prefix,
            const std::function<bool(std::string_view key, std::string_view value)>& fn) const;

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit LocalStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq
