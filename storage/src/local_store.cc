#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/db.h"
#include "storage/src/local_store_impl.h"

namespace txmq {

std::string ReservedKey(std::string_view suffix) {
  std::string k(LocalStore::kReservedPrefix);
  k += suffix;
  return k;
}

namespace {

Status CheckBusinessKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("an empty key cannot be stored");
  if (key.starts_with(LocalStore::kReservedPrefix)) {
    return Status::InvalidArgument(
        "key starts with \\xfftxmq/, which is reserved for txmq's own tables; choose another key");
  }
  return Status::OK();
}

}  // namespace

// ---- LocalStore::Impl ----

LocalStore::Impl::Impl(std::unique_ptr<storage::Db> db, const LocalStoreOptions& options)
    : db_(std::move(db)), options_(options) {}

LocalStore::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(retention_mu_);
    stopping_ = true;
  }
  retention_cv_.notify_all();
  if (retention_thread_.joinable()) retention_thread_.join();
}

Status LocalStore::Impl::LoadOrCreateInstanceId() {
  const std::string key = ReservedKey("meta/instance");
  std::string value;
  leveldb::Status s = db()->Get(storage::CheckedReads(), key, &value);
  if (s.ok()) {
    instance_id_ = value;
    return Status::OK();
  }
  if (!s.IsNotFound())
    return storage::FromLevelDb(s, "reading the instance id of the local store at " + path());
  instance_id_ = NewUuidV7();
  leveldb::WriteOptions wo;
  wo.sync = true;
  return storage::FromLevelDb(db()->Put(wo, key, instance_id_), "writing the store's instance id");
}

LocalStore::Impl::KeyGuard LocalStore::Impl::LockKey(const std::string& key) {
  std::unique_lock<std::mutex> lock(key_locks_mu_);
  auto& slot = key_locks_[key];
  if (!slot) slot = std::make_unique<KeyLockEntry>();
  KeyLockEntry* entry = slot.get();  // stays while users > 0
  entry->users++;
  if (entry->held) {
    entry->waiters++;
    entry->released.wait(lock, [entry] { return !entry->held; });
    entry->waiters--;
  }
  entry->held = true;
  return KeyGuard(this, key);
}

int LocalStore::Impl::TEST_KeyLockWaiters(const std::string& key) {
  std::lock_guard<std::mutex> lock(key_locks_mu_);
  auto it = key_locks_.find(key);
  return it == key_locks_.end() ? 0 : it->second->waiters;
}

LocalStore::Impl::KeyGuard::~KeyGuard() {
  if (table_ == nullptr) return;
  std::lock_guard<std::mutex> lock(table_->key_locks_mu_);
  auto it = table_->key_locks_.find(key_);
  KeyLockEntry& entry = *it->second;
  entry.held = false;
  if (--entry.users == 0) {
    table_->key_locks_.erase(it);
  } else {
    entry.released.notify_one();
  }
}

uint64_t LocalStore::Impl::TakeSeqs(uint64_t n) {
  std::lock_guard<std::mutex> lock(seq_mu_);
  const uint64_t first = commit_seq_ + 1;
  commit_seq_ += n;
  // The first is enough for SafeSeq (the lowest in flight): the rest are
  // done together with it.
  in_flight_.insert(first);
  return first;
}

void LocalStore::Impl::SeqsDone(uint64_t first) {
  std::lock_guard<std::mutex> lock(seq_mu_);
  in_flight_.erase(first);
}

Status LocalStore::Impl::SeedCommitSeq() {
  uint64_t highest = 0;
  std::unique_ptr<leveldb::Iterator> it(db()->NewIterator(storage::CheckedReads()));
  for (std::string_view table : {kOutboxPendingTable, kOutboxParkedTable}) {
    const std::string prefix = ReservedKey(table);
    std::string after = prefix;
    after.back()++;  // the first key past every key with the prefix
    it->Seek(after);
    if (it->Valid()) {
      it->Prev();
    } else {
      it->SeekToLast();
    }
    if (!it->status().ok()) break;
    if (!it->Valid() || !it->key().starts_with(prefix)) continue;
    std::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    uint64_t seq;
    if (storage::GetBe64(&rest, &seq) && rest.empty()) highest = std::max(highest, seq);
  }
  if (!it->status().ok()) {
    return storage::FromLevelDb(it->status(), "reading the commit sequence of " + path());
  }
  std::lock_guard<std::mutex> lock(seq_mu_);
  commit_seq_ = std::max(commit_seq_, highest);
  return Status::OK();
}

uint64_t LocalStore::Impl::SafeSeq() {
  std::lock_guard<std::mutex> lock(seq_mu_);
  return in_flight_.empty() ? commit_seq_ : *in_flight_.begin() - 1;
}

Status LocalStore::Impl::Write(leveldb::WriteBatch& batch) {
  leveldb::WriteOptions wo;
  wo.sync = options_.sync;
  return storage::FromLevelDb(db()->Write(wo, &batch), "writing to the local store at " + path());
}

void LocalStore::Impl::AddRetention(const std::string& table, std::chrono::milliseconds horizon,
                                    size_t batch) {
  std::lock_guard<std::mutex> lock(retention_mu_);
  for (auto& t : retention_) {
    if (t.table == table) {
      // Several users of one table (two producers on one store): records
      // stay as long as the one that needs them longest says. A checker's
      // "no record, but older than my horizon" then stays on the safe side.
      t.horizon = std::max(t.horizon, horizon);
      t.batch = batch;
      return;
    }
  }
  retention_.push_back({table, horizon, batch});
  if (!retention_thread_.joinable()) {
    retention_thread_ = std::thread([this] {
      SetThreadName("txmq-local-gc");
      RetentionLoop();
    });
  }
}

size_t LocalStore::Impl::RunRetentionPass() {
  std::vector<RetentionTable> tables;
  {
    std::lock_guard<std::mutex> lock(retention_mu_);
    tables = retention_;
  }
  size_t deleted = 0;
  const int64_t now = NowMs();
  for (const RetentionTable& t : tables) {
    const std::string index_prefix = ReservedKey(t.table + "e/");
    const std::string record_prefix = ReservedKey(t.table + "r/");
    const uint64_t cutoff = static_cast<uint64_t>(std::max<int64_t>(0, now - t.horizon.count()));
    leveldb::WriteBatch batch;
    size_t n = 0;
    std::unique_ptr<leveldb::Iterator> it(db()->NewIterator(storage::CheckedReads()));
    for (it->Seek(index_prefix); it->Valid() && it->key().starts_with(index_prefix) && n < t.batch;
         it->Next()) {
      std::string_view rest(it->key().data() + index_prefix.size(),
                            it->key().size() - index_prefix.size());
      uint64_t time_ms;
      if (!storage::GetBe64(&rest, &time_ms)) continue;
      if (time_ms >= cutoff) break;  // the index is in time order: the rest is younger
      batch.Delete(it->key());
      batch.Delete(record_prefix + std::string(rest));
      ++n;
    }
    if (n == 0) continue;
    leveldb::WriteOptions wo;  // losing a deletion to a crash only delays it
    if (db()->Write(wo, &batch).ok()) deleted += n;
  }
  retention_deleted_ += deleted;
  retention_passes_++;
  return deleted;
}

void LocalStore::Impl::RetentionLoop() {
  std::unique_lock<std::mutex> lock(retention_mu_);
  while (!stopping_) {
    lock.unlock();
    const size_t deleted = RunRetentionPass();
    lock.lock();
    // A full pass means more is waiting: come back soon, not in a second.
    retention_cv_.wait_for(lock,
                           deleted > 0 ? std::chrono::milliseconds(10) : std::chrono::seconds(1),
                           [this] { return stopping_; });
  }
}

// ---- LocalTxn ----

LocalTxn::LocalTxn(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalTxn::LocalTxn(LocalTxn&&) noexcept = default;
LocalTxn& LocalTxn::operator=(LocalTxn&&) noexcept = default;
LocalTxn::~LocalTxn() = default;

Result<std::string> LocalStore::Impl::Get(std::string_view key) const {
  std::string value;
  leveldb::Status s = db()->Get(storage::CheckedReads(), LocalTxn::Impl::key_slice(key), &value);
  if (s.IsNotFound()) return Status::NotFound("no value under the key");
  if (!s.ok()) return storage::FromLevelDb(s, "reading the local store");
  return value;
}

Result<std::string> LocalTxn::Get(std::string_view key) const {
  Result<std::string> value = impl_->store->Get(key);
  // Reserved keys are txmq's: their writers check them under their own locks.
  if (impl_->done || key.empty() || key.starts_with(LocalStore::kReservedPrefix)) return value;
  if (value.ok()) {
    impl_->reads.emplace(std::string(key), *value);  // keeps the first value seen
  } else if (value.status().code() == StatusCode::kNotFound) {
    impl_->reads.emplace(std::string(key), std::nullopt);
  }
  return value;
}

Status LocalTxn::Put(std::string_view key, std::string_view value) {
  if (impl_->done) return Status::FailedPrecondition("transaction already committed or aborted");
  if (Status s = CheckBusinessKey(key); !s.ok()) return s;
  impl_->PutInternal(key, value);
  impl_->written.emplace(key);
  return Status::OK();
}

Status LocalTxn::Delete(std::string_view key) {
  if (impl_->done) return Status::FailedPrecondition("transaction already committed or aborted");
  if (Status s = CheckBusinessKey(key); !s.ok()) return s;
  impl_->DeleteInternal(key);
  impl_->written.emplace(key);
  return Status::OK();
}

void LocalTxn::Abort() { impl_->done = true; }
bool LocalTxn::committed() const { return impl_->committed; }

Status LocalTxn::Commit() {
  Impl& t = *impl_;
  if (t.done) return Status::FailedPrecondition("transaction already committed or aborted");
  t.done = true;
  LocalStore::Impl& store = *t.store;
  // Key locks in key order, each once: no two commits can deadlock.
  std::vector<std::string> keys = t.lock_keys;
  for (const auto& [key, value] : t.reads) keys.push_back(key);
  keys.insert(keys.end(), t.written.begin(), t.written.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<LocalStore::Impl::KeyGuard> held;
  held.reserve(keys.size());
  for (const auto& k : keys) held.push_back(store.LockKey(k));
  // Every key read is as it was when read: the transaction's decisions
  // still hold, and it takes effect as if it ran alone, now.
  for (const auto& [key, seen] : t.reads) {
    Result<std::string> now = store.Get(key);
    if (!now.ok() && now.status().code() != StatusCode::kNotFound) return now.status();
    const bool same = now.ok() ? seen.has_value() && *seen == *now : !seen.has_value();
    if (!same) {
      return Status::Aborted("key '" + key +
                             "' changed after this transaction read it (another commit wrote "
                             "it); nothing was written: run the transaction again");
    }
  }
  for (const auto& condition : t.conditions) {
    if (Status s = condition(); !s.ok()) return s;
  }
  // One sequence number per sequenced write: two outbox rows of one
  // commit must not share a key.
  const uint64_t sequenced = t.at_commit.size();
  const uint64_t first = sequenced > 0 ? store.TakeSeqs(sequenced) : 0;
  for (uint64_t i = 0; i < sequenced; ++i) t.at_commit[i].write(t.batch, first + i);
  Status s = store.Write(t.batch);
  if (sequenced > 0) store.SeqsDone(first);
  held.clear();
  if (!s.ok()) return s;
  t.committed = true;
  for (uint64_t i = 0; i < sequenced; ++i) {
    if (t.at_commit[i].committed) t.at_commit[i].committed(first + i);
  }
  return Status::OK();
}

// ---- LocalStore ----

Result<std::unique_ptr<LocalStore>> LocalStore::Open(const std::string& path,
                                                     LocalStoreOptions options) {
  return Impl::Open(path, options, nullptr);
}

Result<std::unique_ptr<LocalStore>> LocalStore::Impl::Open(const std::string& path,
                                                           const LocalStoreOptions& options,
                                                           leveldb::Env* env) {
  if (path.empty()) return Status::InvalidArgument("local store path is empty");
  if (!options.create_if_missing) {
    // Checked here because LevelDB, told not to create a database, still
    // creates the directory and its LOCK file: a mistyped path would leave
    // an empty store behind.
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) {
      return Status::NotFound("no local store at '" + path + "': no such directory");
    }
    if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) {
      return Status::NotFound("no local store at '" + path +
                              "': the directory holds no LevelDB database (no CURRENT file)");
    }
  }
  storage::DbOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.compress = options.compress;
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.block_cache_bytes = 8 * 1024 * 1024;
  db_options.env = env;
  auto db = storage::Db::Open(path, db_options);
  if (!db.ok()) return db.status();
  auto impl = std::make_unique<Impl>(std::move(db.value()), options);
  if (Status s = impl->LoadOrCreateInstanceId(); !s.ok()) return s;
  if (Status s = impl->SeedCommitSeq(); !s.ok()) return s;
  return std::unique_ptr<LocalStore>(new LocalStore(std::move(impl)));
}

LocalStore::LocalStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalStore::~LocalStore() = default;

const std::string& LocalStore::instance_id() const { return impl_->instance_id(); }
const std::string& LocalStore::path() const { return impl_->path(); }

LocalTxn LocalStore::Begin() { return LocalTxn(std::make_unique<LocalTxn::Impl>(impl_.get())); }

Result<std::string> LocalStore::Get(std::string_view key) const { return impl_->Get(key); }

void LocalStore::Scan(std::string_view prefix,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<leveldb::Iterator> it(impl_->db()->NewIterator(storage::CheckedReads()));
  for (it->Seek(LocalTxn::Impl::key_slice(prefix)); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(prefix) || key.starts_with(kReservedPrefix)) break;
    if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
  }
}

}  // namespace txmq
