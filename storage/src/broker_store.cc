// Thread "txmq-storage" (started by Open) writes, syncs and applies the
// rounds it is handed; thread "txmq-checkpoint" flushes the index and
// records the checkpoint. The core thread owns round_, busy_, run_cache_.
// Recovery and the index's side of a round: broker_store_recovery.cc;
// reads: broker_store_reads.cc.
#include "storage/src/broker_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/broker_store_internal.h"
#include "storage/src/coding.h"
#include "storage/src/crc32c.h"

namespace txmq::storage {

using detail::EncodeCheckpoint;
using detail::Fixed64;
using detail::kCheckpointFile;
using detail::MicrosSince;

namespace detail {

std::string EncodeCheckpoint(const LogCursor& c) {
  char line[128];
  std::snprintf(line, sizeof line, "txmq-checkpoint 1 %" PRIu64 " %" PRIu64 " %" PRIu32, c.position,
                c.index, c.prev_crc);
  std::string text = line;
  char crc[16];
  std::snprintf(crc, sizeof crc, " %08x\n", crc32c::Value(text));
  return text + crc;
}

bool DecodeCheckpoint(const std::string& text, LogCursor* c) {
  unsigned version = 0;
  unsigned crc = 0;
  if (std::sscanf(text.c_str(), "txmq-checkpoint %u %" SCNu64 " %" SCNu64 " %" SCNu32 " %x",
                  &version, &c->position, &c->index, &c->prev_crc, &crc) != 5 ||
      version != 1) {
    return false;
  }
  const size_t cut = text.rfind(' ');
  return cut != std::string::npos && crc32c::Value(std::string_view(text).substr(0, cut)) == crc;
}

}  // namespace detail

BrokerStore::BrokerStore(const StoreOptions& options, EventFd* round_done)
    : options_(options), round_done_(round_done), round_(std::make_unique<Round>()) {}

Result<std::unique_ptr<BrokerStore>> BrokerStore::Open(const StoreOptions& options,
                                                       EventFd* round_done) {
  if (options.dir.empty()) return Status::InvalidArgument("store directory is empty");
  if (options.segment_bytes < options.max_round_bytes * 2) {
    return Status::InvalidArgument("segment_bytes " + std::to_string(options.segment_bytes) +
                                   " must be at least twice max_round_bytes " +
                                   std::to_string(options.max_round_bytes));
  }
  auto store = std::unique_ptr<BrokerStore>(new BrokerStore(options, round_done));
  if (Status s = store->Recover(); !s.ok()) return s;
  store->recovered_ = true;
  store->overlay_live_ = options.index_overlay_bytes > 0;
  store->storage_thread_ = std::thread([s = store.get()] {
    SetThreadName("txmq-storage");
    s->StorageLoop();
  });
  store->checkpoint_thread_ = std::thread([s = store.get()] {
    SetThreadName("txmq-checkpoint");
    s->CheckpointLoop();
  });
  return store;
}

BrokerStore::~BrokerStore() {
  if (auto round = WaitFinished()) round->Complete();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (storage_thread_.joinable()) storage_thread_.join();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  // A clean stop leaves nothing to replay. A store whose start refused
  // (damage) changes nothing: it said so.
  if (recovered_ && log_ && db_) {
    if (Status s = Checkpoint(); !s.ok()) {
      Logger("storage")->warn("final checkpoint failed ({}); the next start replays the log",
                              s.ToString());
    }
  }
  std::lock_guard<std::mutex> lock(log_for_index_mu_);
  log_for_index_ = nullptr;  // the log goes before the index (member order)
}

// ---------------- writes ----------------

void BrokerStore::PutTopic(std::string_view name, const store::TopicEntry& entry) {
  round_->Put(store::TopicKey(name), store::EncodeTopicEntry(entry));
}

void BrokerStore::PutGroup(std::string_view name, const store::GroupEntry& entry) {
  round_->Put(store::GroupKey(name), store::EncodeGroupEntry(entry));
}

void BrokerStore::DeleteGroup(std::string_view name) { round_->Delete(store::GroupKey(name)); }

void BrokerStore::AppendMessage(uint32_t topic_id, uint32_t queue, uint64_t offset,
                                const MessageView& message, bool indexed) {
  store::MessageBody m;
  m.topic_id = topic_id;
  m.queue = queue;
  m.offset = offset;
  m.flags = indexed ? store::kFlagIndexed : 0;
  m.message = message;
  round_->AppendMessage(m);
}

void BrokerStore::SetQueueStart(uint32_t topic_id, uint32_t queue, uint64_t first_offset) {
  round_->Put(store::QueueStartKey(topic_id, queue), Fixed64(first_offset));
  if (auto it = removed_.find({topic_id, queue}); it != removed_.end()) {
    auto& offsets = it->second;
    for (auto o = offsets.begin(); o != offsets.end() && *o < first_offset;) {
      round_->Delete(store::RemovedKey(topic_id, queue, *o));
      o = offsets.erase(o);
    }
    if (offsets.empty()) removed_.erase(it);
  }
}

void BrokerStore::RemoveMessage(uint32_t topic_id, uint32_t queue, uint64_t offset) {
  round_->Put(store::RemovedKey(topic_id, queue, offset), "");
  removed_[{topic_id, queue}].insert(offset);
}

void BrokerStore::PutCursor(std::string_view group, std::string_view topic, uint32_t queue,
                            uint64_t floor) {
  round_->Put(store::CursorKey(group, topic, queue), Fixed64(floor));
}

void BrokerStore::PutRetry(std::string_view group, int64_t due_ms, uint64_t retry_id,
                           const RetryRecord& r) {
  round_->Put(store::RetryKey(group, due_ms, retry_id), EncodeRetry(r));
}

void BrokerStore::DeleteRetry(std::string_view group, int64_t due_ms, uint64_t retry_id) {
  round_->Delete(store::RetryKey(group, due_ms, retry_id));
}

void BrokerStore::PutDelayed(const store::DelayedBody& delayed) { round_->AppendDelayed(delayed); }

void BrokerStore::DeleteDelayed(int64_t due_ms, uint64_t seq) {
  round_->Delete(store::DelayedKey(due_ms, seq));
}

void BrokerStore::PutHalf(const store::HalfBody& half) {
  round_->AppendHalf(half);
  round_->MarkNew(store::HalfKey(half.tx_id, half.index));
}

void BrokerStore::MoveHalf(const store::HalfBody& half) { round_->AppendHalf(half); }

void BrokerStore::DeleteHalf(std::string_view tx_id, uint32_t index) {
  round_->Delete(store::HalfKey(tx_id, index));
}

void BrokerStore::PutTx(std::string_view tx_id, const TxRecord& record) {
  round_->Put(store::TxKey(tx_id), EncodeTx(record));
}

void BrokerStore::DeleteTx(std::string_view tx_id) { round_->Delete(store::TxKey(tx_id)); }

void BrokerStore::ScheduleCheck(int64_t next_check_ms, std::string_view tx_id) {
  // A slot is put only where none is (the old one is deleted first).
  std::string key = store::TimedTxKey(store::kCheck, next_check_ms, tx_id);
  round_->Put(key, "");
  round_->MarkNew(std::move(key));
}

void BrokerStore::UnscheduleCheck(int64_t next_check_ms, std::string_view tx_id) {
  round_->Delete(store::TimedTxKey(store::kCheck, next_check_ms, tx_id));
}

void BrokerStore::ScheduleTxExpiry(int64_t expire_ms, std::string_view tx_id) {
  round_->Put(store::TimedTxKey(store::kTxExpiry, expire_ms, tx_id), "");
}

void BrokerStore::DeleteTxExpiry(int64_t expire_ms, std::string_view tx_id) {
  round_->Delete(store::TimedTxKey(store::kTxExpiry, expire_ms, tx_id));
}

void BrokerStore::DeleteId(uint64_t bucket, std::string_view message_id) {
  round_->Delete(store::IdKey(bucket, message_id));
}

void BrokerStore::PutMeta(std::string_view name, std::string_view value) {
  round_->Put(store::MetaKey(name), value);
}

void BrokerStore::DeleteRunByPosition(uint64_t position, uint32_t topic_id, uint32_t queue,
                                      uint64_t first_offset) {
  round_->Delete(store::RunByPositionKey(position, topic_id, queue, first_offset));
  round_->Delete(store::QueueRunKey(topic_id, queue, first_offset));
  run_cache_.erase({topic_id, queue});
}

// ---------------- the pipeline ----------------

void BrokerStore::WriteRound(Round& round, bool sync) {
  // Even completions alone wait on what came before them, which may be lost.
  if (!write_error_.ok() || !refused_.ok()) {
    round.set_status(!write_error_.ok() ? write_error_ : refused_);
    return;
  }
  if (round.writes_nothing()) return;  // completions alone: nothing to make durable
  if (Status s = round.RunBeforeWrite(); !s.ok()) {
    refused_ = s;
    failed_ = true;
    round.set_status(s);
    return;
  }
  const auto start = SteadyClock::now();
  PendingEntry& e = round.entry();
  Status s = log_->Write(e);
  uint64_t sync_micros = 0;
  const bool syncs = s.ok() && sync;
  if (syncs) {
    const auto sync_start = SteadyClock::now();
    s = log_->Sync();
    sync_micros = static_cast<uint64_t>(MicrosSince(sync_start));
  }
  if (!s.ok()) {
    write_error_ = s;
    failed_ = true;
  }
  if (s.ok()) s = ApplyToIndex(e.position, round.records(), round.ops_record(), &round.new_keys());
  if (s.ok()) s = log_->PrepareNextSegment();
  round.set_status(s);
  std::lock_guard<std::mutex> lock(mu_);
  if (s.ok()) {
    applied_ = log_->written_end();
    if (syncs) synced_ = applied_;
    bytes_since_checkpoint_ += e.bytes();
  }
  stats_.rounds++;
  stats_.completions += round.completions();
  stats_.bytes += e.bytes();
  const auto write_micros = static_cast<uint64_t>(MicrosSince(start));
  stats_.write_micros += write_micros;
  stats_.write_latency.Observe(write_micros);
  stats_.sync_micros_max = std::max(stats_.sync_micros_max, sync_micros);
  if (syncs) stats_.sync_latency.Observe(sync_micros);
  if (bytes_since_checkpoint_ >= options_.checkpoint_bytes || OverlayFull()) cv_.notify_all();
}

void BrokerStore::Submit(int64_t time_ms, const SealedFn& sealed) {
  std::unique_ptr<Round> round = std::exchange(round_, std::make_unique<Round>());
  round->Seal(time_ms, options_.epoch);
  if (!round->writes_nothing()) {
    if (Status s = log_->Place(round->entry()); !s.ok()) round->set_status(s);
    if (round->status().ok() && sealed && !failed_) sealed(*round);
  }
  busy_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = std::move(round);
  }
  cv_.notify_all();
}

std::unique_ptr<Round> BrokerStore::WriteInline(int64_t time_ms, const SealedFn& sealed) {
  std::unique_ptr<Round> round = std::exchange(round_, std::make_unique<Round>());
  round->Seal(time_ms, options_.epoch);
  if (!round->writes_nothing()) {
    if (Status s = log_->Place(round->entry()); !s.ok()) {
      round->set_status(s);
      return round;
    }
    if (sealed && !failed_) sealed(*round);
  }
  // The storage thread is idle (not busy), so this thread is the writer.
  std::lock_guard<std::mutex> writer(writer_mu_);
  WriteRound(*round, options_.sync);
  return round;
}

Status BrokerStore::WriteReplicated(int64_t time_ms, std::string records, std::string ops_record,
                                    bool sync, std::optional<uint64_t> leader_position) {
  if (busy_ || !round_->empty()) {
    return Status::FailedPrecondition("a replicated round must not overtake this store's own");
  }
  Round round;
  round.SealReplicated(time_ms, options_.epoch, std::move(records), std::move(ops_record));
  if (round.writes_nothing()) return Status::OK();
  if (Status s = log_->Place(round.entry()); !s.ok()) return s;
  std::lock_guard<std::mutex> writer(writer_mu_);
  if (leader_position && *leader_position != round.entry().position && refused_.ok()) {
    refused_ = Status::Corruption(
        "this store places the round at log position " + std::to_string(round.entry().position) +
        ", the leader's store at " + std::to_string(*leader_position) +
        ": the stores differ, and the round's index operations would apply to other records "
        "(every node of a group must run with the same --segment-mb; this one has " +
        std::to_string(options_.segment_bytes >> 20) + ")");
    failed_ = true;
  }
  WriteRound(round, sync && options_.sync);
  return round.status();
}

void BrokerStore::set_round_done(EventFd* round_done) {
  std::lock_guard<std::mutex> lock(mu_);
  round_done_ = round_done;
}

Status BrokerStore::SyncReplicated() {
  std::lock_guard<std::mutex> writer(writer_mu_);
  if (!write_error_.ok()) return write_error_;
  if (Status s = log_->Sync(); !s.ok()) {
    failed_ = true;
    return write_error_ = s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  synced_ = applied_;
  return Status::OK();
}

std::unique_ptr<Round> BrokerStore::TakeFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) busy_ = false;
  return std::move(finished_);
}

std::unique_ptr<Round> BrokerStore::WaitFinished() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!busy_) return nullptr;
  cv_.wait(lock, [this] { return finished_ != nullptr; });
  busy_ = false;
  return std::move(finished_);
}

void BrokerStore::StorageLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto last_sync = SteadyClock::now();
  while (true) {
    cv_.wait_for(lock, options_.async_sync_interval,
                 [this] { return in_flight_ != nullptr || stopping_; });
    if (in_flight_) {
      std::unique_ptr<Round> round = std::move(in_flight_);
      lock.unlock();
      {
        std::lock_guard<std::mutex> writer(writer_mu_);
        if (round->status().ok()) WriteRound(*round, options_.sync);
      }
      lock.lock();
      finished_ = std::move(round);
      cv_.notify_all();
      round_done_->Notify();
      // On to the background sync when it is due: rounds that keep coming
      // must not put it off until the next checkpoint.
    }
    if (!options_.sync && synced_ != applied_ &&
        SteadyClock::now() - last_sync >= options_.async_sync_interval) {
      // flush async: the background fdatasync behind acknowledged rounds.
      const LogCursor target = applied_;
      lock.unlock();
      Status s;
      {
        std::lock_guard<std::mutex> writer(writer_mu_);
        s = log_->Sync();
        if (!s.ok() && write_error_.ok()) {
          write_error_ = s;
          failed_ = true;
        }
      }
      lock.lock();
      last_sync = SteadyClock::now();
      if (s.ok()) {
        synced_ = target;
      } else {
        Logger("storage")->error("background sync of the log failed: {}", s.ToString());
      }
    }
    if (stopping_ && !in_flight_) return;
  }
}

// ---------------- checkpoints ----------------

Status BrokerStore::FlushIndex() {
  // CompactRange first flushes the memtable into a synced table file and
  // records it in the (synced) manifest; the range covers no key, so no
  // other compaction runs.
  const std::string nothing = "\xff\xff\xff\xff txmq-checkpoint";
  leveldb::Slice begin(nothing), end(nothing);
  // CompactRange's flush is a write without a batch; queued behind a
  // round's write that is waiting for room (LevelDB releases its mutex to
  // slow writers down when level 0 fills up), it is folded into that
  // write's group and returns with the memtable unflushed. The checkpoint
  // would then name a cover whose index changes are only in memory
  // (LevelDB's own log is not written: index_env.h), and a crash would
  // lose them for good. So the flush that counts runs with no round's
  // write at LevelDB's door. CompactRange also waits for a compaction
  // already running: a first call, with rounds going on, takes that wait
  // and most of the memtable, so rounds wait only for the rest.
  db_->get()->CompactRange(&begin, &end);
  {
    std::lock_guard<std::mutex> writer(writer_mu_);
    db_->get()->CompactRange(&begin, &end);
  }
  // LevelDB reports a failed background flush only through its properties
  // and later writes; a tiny unsynced write surfaces it.
  leveldb::WriteOptions wo;
  return FromLevelDb(db_->get()->Put(wo, store::MetaKey("checkpoint-probe"), ""),
                     "flushing the index");
}

Status BrokerStore::FlushOverlay() {
  Status s;
  for (leveldb::WriteBatch& batch : overlay_.Seal(1u << 20)) {
    leveldb::WriteOptions wo;  // unsynced: the log is the durable copy
    s = FromLevelDb(db_->get()->Write(wo, &batch), "writing the index overlay");
    if (!s.ok()) break;
  }
  if (s.ok()) {
    overlay_.DropSealed();
    return s;
  }
  // The sealed operations stay where reads find them, and no checkpoint
  // may cover their rounds now (Checkpoint refuses after write_error_):
  // the store stops, and the next start replays them from the log.
  std::lock_guard<std::mutex> writer(writer_mu_);
  if (write_error_.ok()) write_error_ = s;
  failed_ = true;
  return s;
}

Status BrokerStore::Checkpoint() {
  std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
  {
    // After a failed write, the index may lack what the rounds it would
    // cover did (an overlay write failed): never record it as covered.
    std::lock_guard<std::mutex> writer(writer_mu_);
    if (!write_error_.ok()) return write_error_;
  }
  LogCursor cover;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Covered: applied to the index and durable in the log.
    cover = applied_.index <= synced_.index ? applied_ : synced_;
  }
  // Every round before `cover` was applied, so what it put in the overlay
  // is in the batch the flush writes now (rounds applied meanwhile may be
  // too: more than the cover, which replay tolerates).
  if (Status s = FlushOverlay(); !s.ok()) return s;
  if (!options_.sync) {
    // The cover must be durable in the log before the checkpoint names it.
    std::lock_guard<std::mutex> writer(writer_mu_);
    if (!write_error_.ok()) return write_error_;
    if (Status s = log_->Sync(); !s.ok()) {
      failed_ = true;
      return write_error_ = s;
    }
  }
  // Concurrent rounds may keep applying meanwhile: the flushed table files
  // then hold more than `cover`, which replay from `cover` tolerates.
  if (Status s = FlushIndex(); !s.ok()) return s;
  if (Status s = options_.fs->WriteFileAtomically(options_.dir + "/" + kCheckpointFile,
                                                  EncodeCheckpoint(cover));
      !s.ok()) {
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  checkpointed_position_ = cover.position;
  bytes_since_checkpoint_ = 0;
  stats_.checkpoints++;
  return Status::OK();
}

Status BrokerStore::CheckpointNow() { return Checkpoint(); }

void BrokerStore::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto last = SteadyClock::now();
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500), [this] {
      return stopping_ || checkpoint_requested_ ||
             bytes_since_checkpoint_ >= options_.checkpoint_bytes || OverlayFull();
    });
    if (stopping_) return;
    const bool due =
        checkpoint_requested_ || bytes_since_checkpoint_ >= options_.checkpoint_bytes ||
        (bytes_since_checkpoint_ > 0 && SteadyClock::now() - last >= options_.checkpoint_interval);
    if (!due) {
      if (OverlayFull()) {
        lock.unlock();
        {
          std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
          if (Status s = FlushOverlay(); !s.ok()) {
            Logger("storage")->error("writing the index overlay failed: {}", s.ToString());
          }
        }
        lock.lock();
      }
      continue;
    }
    checkpoint_requested_ = false;
    lock.unlock();
    Status s = Checkpoint();
    if (!s.ok()) Logger("storage")->error("checkpoint failed: {}", s.ToString());
    lock.lock();
    last = SteadyClock::now();
  }
}

}  // namespace txmq::storage
