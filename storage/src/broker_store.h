// The broker's storage: a commit log of write rounds (the data) and a
// LevelDB index derived from it (where things are, and the small state
// that changes: cursors, retries, transactions, schedules, topics). The
// broker's services use this typed API only; no key layout, record codec
// or leveldb::DB* leaves this module.
//
// Durability: a round is one log entry, appended and made durable with one
// fdatasync (flush sync), then applied to the index with an unsynced
// LevelDB write, then its completions run. The index may lag the log after
// a crash; it never leads it (flush sync). A checkpoint (every
// checkpoint_bytes of log or checkpoint_interval) flushes LevelDB's
// memtable to synced table files and records the log cursor it covers;
// recovery drops LevelDB's own write-ahead log (never written:
// index_env.h), opens the index as of its table files, and replays the log
// from the checkpoint. Replay applies entries in order, and each entry's
// effect on the index is a function of the entry alone, so the index ends
// the same whichever later effects its table files already held. See DESIGN.md, "Recovery
// invariant".
//
// Nothing read back is trusted unchecked: the log walk at Open checks
// every entry (commit_log.h), every index block is read with its checksum
// verified, and each record read from the log checks its own CRC. Damage
// found at Open is CORRUPTION naming the file and the position, unless
// options.repair (store_repair.h): then what can be read is kept, what
// cannot is reported and taken out of its queue. Damage found later: a
// damaged record is a CORRUPTION read (logged once, counted in stats, never
// served as valid); a damaged index stops all further writes (the broker
// then stops: only a repair rebuilds the index).
//
// Data directory (format 2):
//   FORMAT        "txmq-data 2"
//   CHECKPOINT    the log cursor recovery starts from
//   REPAIRS       stretches of log a repair gave up on (store_check.h)
//   log/          commit-log segments (commit_log.h)
//   index/        LevelDB
//   repair-*.json what each repair found (store_repair.h)
//
// Threads: the core thread (the broker's) builds rounds, reads, and runs
// completions; thread "txmq-storage" writes, syncs and applies rounds;
// thread "txmq-checkpoint" takes checkpoints. Shared under mu_: the round
// slots, the applied/durable cursors, the stats.
#pragma once

#include <leveldb/db.h>
#include <leveldb/env.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "protocol/src/event_fd.h"
#include "storage/src/commit_log.h"
#include "storage/src/db.h"
#include "storage/src/file_system.h"
#include "storage/src/index_env.h"
#include "storage/src/index_overlay.h"
#include "storage/src/latency_histogram.h"
#include "storage/src/records.h"
#include "storage/src/store_format.h"
#include "storage/src/store_repair.h"
#include "storage/src/store_round.h"
#include "storage/src/tx_records.h"
#include "txmq/status.h"

namespace txmq {

// See txmq/broker.h: the file layers a broker's store uses.
struct StorageLayers {
  storage::FileSystem* fs = nullptr;
  leveldb::Env* env = nullptr;
};

}  // namespace txmq

namespace txmq::storage {

inline constexpr int kDataFormat = 2;

struct StoreOptions {
  std::string dir;
  // fdatasync each round before it is acknowledged; without it a round is
  // acknowledged once the OS has it (survives a process crash only) and
  // the log is synced in the background every async_sync_interval.
  bool sync = true;
  std::chrono::milliseconds async_sync_interval{100};
  uint64_t segment_bytes = 128ull << 20;
  // LogOptions::cached_tail_bytes: the log's tail the page cache keeps.
  uint64_t cached_log_bytes = 256ull << 20;
  // A round stops taking more once it holds this much.
  size_t max_round_bytes = 16u << 20;
  // Log written between checkpoints (what a crash recovery replays at most).
  uint64_t checkpoint_bytes = 512ull << 20;
  std::chrono::milliseconds checkpoint_interval{60'000};
  // The index.
  size_t write_buffer_bytes = 32u << 20;
  size_t table_file_bytes = 8u << 20;
  size_t block_cache_bytes = 32u << 20;
  // Short-lived transaction keys kept in memory before the index takes
  // them (index_overlay.h); written to LevelDB at each checkpoint and once
  // this many bytes were applied. 0: straight to LevelDB.
  size_t index_overlay_bytes = 16u << 20;
  uint64_t epoch = 1;
  // At Open, read the whole log and index and refuse damage anywhere
  // (false: only what recovery replays; damage elsewhere is found when it
  // is read).
  bool verify_all = true;
  // Open a damaged directory anyway: salvage what can be read, take out of
  // their queues the messages that cannot, rebuild a damaged index from
  // the log, and report (repair_report()).
  bool repair = false;
  // File layers (tests swap in ones that lose power).
  FileSystem* fs = FileSystem::Default();
  leveldb::Env* env = nullptr;  // null: leveldb::Env::Default()
};

// A message read back from the log; the views point into the log mapping
// and stay valid until retention deletes that part of the log.
struct StoredMessage {
  uint64_t position = 0;
  store::MessageBody body;
};
struct StoredHalf {
  uint64_t position = 0;
  store::HalfBody body;
};
struct StoredDelayed {
  uint64_t position = 0;
  store::DelayedBody body;
};

// A record at a log position (salvage and replay).
struct PlacedRecord {
  uint64_t position = 0;
  store::RecordView record;
};

struct StoreStats {
  uint64_t rounds = 0;
  uint64_t completions = 0;
  uint64_t bytes = 0;            // log bytes written
  uint64_t write_micros = 0;     // writing and syncing rounds
  uint64_t sync_micros_max = 0;  // the slowest fdatasync
  uint64_t checkpoints = 0;
  uint64_t replayed_entries = 0;  // at the last start
  uint64_t log_start = 0;
  uint64_t log_end = 0;
  uint64_t damaged_records = 0;    // found failing their checksum since start
  uint64_t overlay_dropped = 0;    // index puts deleted before they reached LevelDB
  uint64_t overlay_written = 0;    // index operations the overlay handed to LevelDB
  LatencyHistogram write_latency;  // each round: write, fsync, index update
  LatencyHistogram sync_latency;   // each fdatasync (--flush sync)
};

class BrokerStore {
 public:
  // Opens (creating if missing) and recovers. `round_done` is raised after
  // each submitted round finished; the core thread polls it.
  static Result<std::unique_ptr<BrokerStore>> Open(const StoreOptions& options,
                                                   EventFd* round_done);
  // Finishes the round in flight, takes a checkpoint, stops the threads.
  ~BrokerStore();
  BrokerStore(const BrokerStore&) = delete;
  BrokerStore& operator=(const BrokerStore&) = delete;

  // ---------------- writes (core thread; into the open round) ----------------
  void PutTopic(std::string_view name, const store::TopicEntry& entry);
  void PutGroup(std::string_view name, const store::GroupEntry& entry);
  void DeleteGroup(std::string_view name);
  void AppendMessage(uint32_t topic_id, uint32_t queue, uint64_t offset, const MessageView& message,
                     bool indexed);
  // Sets where a queue now starts (retention); removal marks below it go.
  void SetQueueStart(uint32_t topic_id, uint32_t queue, uint64_t first_offset);
  // Takes one message out of its queue (a dead letter resent): reads of it
  // are NOT_FOUND from now on; its bytes go with their log segment.
  void RemoveMessage(uint32_t topic_id, uint32_t queue, uint64_t offset);
  void PutCursor(std::string_view group, std::string_view topic, uint32_t queue, uint64_t floor);
  void PutRetry(std::string_view group, int64_t due_ms, uint64_t retry_id, const RetryRecord& r);
  void DeleteRetry(std::string_view group, int64_t due_ms, uint64_t retry_id);
  void PutDelayed(const store::DelayedBody& delayed);
  void DeleteDelayed(int64_t due_ms, uint64_t seq);
  // A new half (its key is new to the index).
  void PutHalf(const store::HalfBody& half);
  // A stored half written again further on (retention keeps it).
  void MoveHalf(const store::HalfBody& half);
  void DeleteHalf(std::string_view tx_id, uint32_t index);
  void PutTx(std::string_view tx_id, const TxRecord& record);
  void DeleteTx(std::string_view tx_id);
  void ScheduleCheck(int64_t next_check_ms, std::string_view tx_id);
  void UnscheduleCheck(int64_t next_check_ms, std::string_view tx_id);
  void ScheduleTxExpiry(int64_t expire_ms, std::string_view tx_id);
  void DeleteTxExpiry(int64_t expire_ms, std::string_view tx_id);
  void DeleteId(uint64_t bucket, std::string_view message_id);
  void PutMeta(std::string_view name, std::string_view value);
  // Deletes an index key found by iteration (retention of queue runs).
  void DeleteRunByPosition(uint64_t position, uint32_t topic_id, uint32_t queue,
                           uint64_t first_offset);

  // ---------------- deleting topics (core thread; broker_store_sweep.cc) ----------------
  // A topic goes in two steps. One round deletes its entry and whatever
  // names it (cursors, retries: the broker's services know them); a topic
  // id is never used again, so what the index derived from its messages
  // (queue runs, starts, removal marks, message ids, delayed messages) is
  // then swept in batches, once that round is applied (broker/src/
  // topic_sweeper.h). Its log bytes go with their segments (retention).
  void DeleteTopic(std::string_view name);
  void DeleteCursor(std::string_view group, std::string_view topic, uint32_t queue);
  void DeleteMeta(std::string_view name);
  // Every topic id with queue runs, queue starts or removal marks in the
  // index, ascending; one seek per id.
  Status ForEachQueueTopicId(const std::function<bool(uint32_t topic_id)>& fn);
  // The queue runs of one topic id, by queue and first offset.
  Status ForEachRunOf(uint32_t topic_id,
                      const std::function<bool(uint32_t queue, const store::QueueRun&)>& fn);
  // Deletes a run from the index, by offset and by log position.
  void DeleteRun(uint32_t topic_id, uint32_t queue, const store::QueueRun& run);
  // Deletes a topic id's queue starts and removal marks; how many there were.
  Result<uint64_t> DeleteQueueMarks(uint32_t topic_id);

  void OnDurable(Round::Completion fn) { round_->OnDurable(std::move(fn)); }
  void OnDurableFirst(Round::Completion fn) { round_->OnDurableFirst(std::move(fn)); }
  bool round_empty() const { return round_->empty(); }
  bool round_writes_nothing() const { return round_->writes_nothing(); }
  size_t round_completions() const { return round_->completions(); }
  size_t round_bytes() const { return round_->bytes(); }
  bool round_full() const { return round_->bytes() >= options_.max_round_bytes; }

  // ---------------- the write pipeline (core thread) ----------------
  // True while a submitted round has not been taken back.
  bool busy() const { return busy_; }
  // Called with a round once it is sealed and placed, before any of it is
  // written, when it writes something: a cluster leader hands it to
  // replication then, so that its log append runs beside this write.
  using SealedFn = std::function<void(Round&)>;
  // Seals the open round (log time `time_ms`) and hands it to the storage
  // thread. Requires !busy().
  void Submit(int64_t time_ms, const SealedFn& sealed = {});
  // Writes the open round on the calling thread (its status set) and
  // returns it: for a small round nobody waits behind. Requires !busy().
  std::unique_ptr<Round> WriteInline(int64_t time_ms, const SealedFn& sealed = {});
  // Writes a round another store sealed (a replica's committed entry:
  // its time, records and operations record) on the calling thread, with
  // the same write and index update as a round of this store. Requires
  // !busy() and an empty open round; positions come out as on the store
  // that sealed it when both applied the same rounds from empty.
  // With `sync` false the round is not made durable here: a store rebuilt
  // from a replica log (whose entries are durable already, and which is
  // rebuilt again from empty after a crash) syncs once at the end with
  // SyncReplicated instead of once per round.
  // With `leader_position`, the round must land there (kCorruption
  // otherwise, and the store writes nothing more).
  Status WriteReplicated(int64_t time_ms, std::string records, std::string ops_record,
                         bool sync = true, std::optional<uint64_t> leader_position = std::nullopt);
  Status SyncReplicated();
  // Raised after each submitted round from now on, instead of Open's: for
  // a store that changes hands (broker/src/standby_store.h) while no round
  // is submitted.
  void set_round_done(EventFd* round_done);
  // The finished round (run its completions with Complete()), or null.
  std::unique_ptr<Round> TakeFinished();
  // Blocks until the round in flight finished; null if none.
  std::unique_ptr<Round> WaitFinished();

  // ---------------- reads (core thread) ----------------
  // NOT_FOUND when the offset is not (or no longer) stored.
  Result<StoredMessage> ReadMessage(uint32_t topic_id, uint32_t queue, uint64_t offset);
  Result<StoredHalf> ReadHalf(std::string_view tx_id, uint32_t index);
  Result<StoredDelayed> ReadDelayed(int64_t due_ms, uint64_t seq);
  std::optional<TxRecord> GetTx(std::string_view tx_id);
  std::optional<store::IdEntry> GetId(uint64_t bucket, std::string_view message_id);
  std::optional<std::string> GetMeta(std::string_view name);
  std::optional<uint64_t> GetQueueStart(uint32_t topic_id, uint32_t queue);
  // A queue's stored offsets: [first, end).
  struct QueueBounds {
    uint64_t first = 0;
    uint64_t end = 0;
  };
  QueueBounds GetQueueBounds(uint32_t topic_id, uint32_t queue);

  // Iteration: fn returns false to stop. Index corruption ends with
  // CORRUPTION naming the keyspace.
  Status ForEachTopic(const std::function<bool(std::string_view, const store::TopicEntry&)>& fn);
  Status ForEachGroup(const std::function<bool(std::string_view, const store::GroupEntry&)>& fn);
  Status ForEachCursor(const std::function<bool(std::string_view group, std::string_view topic,
                                                uint32_t queue, uint64_t floor)>& fn);
  Status ForEachRetry(const std::function<bool(std::string_view group, int64_t due_ms,
                                               uint64_t retry_id, const RetryRecord&)>& fn);
  Status ForEachDelayed(const std::function<bool(int64_t due_ms, uint64_t seq)>& fn);
  Status ForEachScheduledCheck(const std::function<bool(int64_t ms, std::string_view tx_id)>& fn);
  // Transactions due to be forgotten at or before `until_ms`.
  Status ForEachTxExpiry(int64_t until_ms,
                         const std::function<bool(int64_t ms, std::string_view tx_id)>& fn);
  // Message ids in buckets from `first_bucket` on.
  Status ForEachId(uint64_t first_bucket,
                   const std::function<bool(uint64_t bucket, std::string_view id)>& fn);
  Status ForEachHalf(
      const std::function<bool(std::string_view tx_id, uint32_t index, uint64_t position)>& fn);
  Status ForEachDelayedPosition(
      const std::function<bool(int64_t due_ms, uint64_t seq, uint64_t position)>& fn);
  // Queue runs whose entry lies before `position` (what deleting the log
  // before it removes).
  Status ForEachRunBefore(
      uint64_t position,
      const std::function<bool(uint64_t position, uint32_t topic_id, uint32_t queue,
                               uint64_t first_offset, uint64_t end_offset)>& fn);

  // ---------------- the log as a whole (core thread) ----------------
  struct SegmentSummary {
    uint64_t base = 0;
    uint64_t size = 0;
    int64_t first_time_ms = 0;  // of its first entry; 0 if none yet
  };
  std::vector<SegmentSummary> Segments() const;
  // Deletes log segments wholly before `position`, once a checkpoint covers
  // them; returns bytes freed (0 while the checkpoint is behind).
  Result<uint64_t> DeleteLogBefore(uint64_t position);
  // Where the last checkpoint's cover ends: index changes of rounds before
  // it survive any crash (they are in the index's synced files, or
  // replayed from the synced log).
  uint64_t checkpointed_position() const {
    std::lock_guard<std::mutex> lock(mu_);
    return checkpointed_position_;
  }
  // The meta key where a broker that deleted log segments records the
  // position it deleted before, in the round after: a replica's store,
  // which holds the same rounds at the same positions, deletes the same
  // segments when it applies that round (broker/src/standby_store.h).
  static constexpr std::string_view kLogReleasedMeta = "log-released-before";
  uint64_t log_start() const { return log_->start(); }
  // The time of the entry at `position` (a round); none if it is gone.
  // (Of the next whole entry when the one there is damaged.)
  std::optional<int64_t> EntryTime(uint64_t position) const;
  // Asks the checkpoint thread for a checkpoint soon.
  void RequestCheckpoint();
  // Where the next round will go.
  uint64_t log_end() const { return log_->placed_end().position; }
  // Where the next round will go, its number and chain value. Only while
  // no round is in flight (!busy()): the chain value is known once the
  // round before is written.
  LogCursor log_cursor() const { return log_->written_end(); }
  // Rounds 1..this are durable in the log (any thread).
  uint64_t synced_rounds() const {
    std::lock_guard<std::mutex> lock(mu_);
    return synced_.index - 1;
  }
  // Calls `fn` with the time and payload of each round written from
  // `from` (a log_cursor() of before) to the end, in order; NOT_FOUND when
  // `from` is no longer in the log, CORRUPTION when the rounds there do
  // not follow on from `from`. A replica's store checks what it holds
  // against the replicated log this way (broker/src/standby_store.h).
  Status ForEachRound(
      const LogCursor& from,
      const std::function<Status(int64_t time_ms, std::string_view payload)>& fn) const;
  // Bytes of log segments created since open (disk space the log took).
  uint64_t log_allocated_bytes() const { return log_->allocated_bytes(); }

  StoreStats stats() const;
  const StoreOptions& options() const { return options_; }
  // Messages counted in their queues' offset ranges that cannot be read:
  // taken out (resent dead letters, losses a repair recorded) or found
  // damaged since start. Core thread.
  uint64_t unreadable_messages() const;
  // The same for one queue.
  uint64_t unreadable_messages(uint32_t topic_id, uint32_t queue) const;
  // What Open with options.repair found and did.
  const RepairReport& repair_report() const { return repair_; }
  // Takes a checkpoint now (tests; shutdown does it by itself).
  Status CheckpointNow();

 private:
  BrokerStore(const StoreOptions& options, EventFd* round_done);
  Status Recover();
  // Opens the index; with `check`, reads all of it first (store_check.h).
  Status OpenIndex(const DbOptions& db_options, bool check);
  // Repair: salvages what LevelDB can read of a damaged index, then the
  // whole log is applied to it again.
  Status RebuildIndex(const DbOptions& db_options, const std::string& problem);
  // The index must not name log positions the log does not hold.
  Status CheckIndexAgainstLog();
  uint64_t MaxIndexedPosition();
  // `new_keys` (sorted; null when unknown): Round::MarkNew.
  Status ApplyToIndex(uint64_t entry_position, std::string_view records,
                      std::string_view ops_record,
                      const std::vector<std::string>* new_keys = nullptr);
  // Derived keys for `records`; runs are keyed under `entry_position`.
  Status ApplyRecords(uint64_t entry_position, const std::vector<PlacedRecord>& records,
                      const std::vector<std::string>* new_keys = nullptr);
  // store_repair.cc
  void SalvageDamaged(const LogDamage& damage, uint64_t replay_from);
  Status CheckQueues();
  Status CheckHalvesAndDelayed();
  Status FinishRepair(const std::vector<LogSkip>& old_skips);
  bool IsRemoved(uint32_t topic_id, uint32_t queue, uint64_t offset) const;
  // A record failed its checksum (or is not what the index says): logged
  // once, counted; the read is CORRUPTION.
  Status RecordDamaged(uint64_t position, const std::string& what) const;
  // An index read failed on a damaged block: no more rounds are written
  // (the broker stops; a repair rebuilds the index).
  Status IndexDamaged(const leveldb::Status& s, const std::string& what);
  // leveldb Get with the checksums verified: NOT_FOUND, or CORRUPTION
  // after IndexDamaged.
  Status IndexGet(std::string_view key, std::string* value, const std::string& what);
  // `sync`: fdatasync the log before applying (--flush sync).
  void WriteRound(Round& round, bool sync);
  void StorageLoop();
  void CheckpointLoop();
  Status Checkpoint();
  // Writes what the overlay holds into LevelDB (unsynced, as every index
  // write); under checkpoint_mu_.
  Status FlushOverlay();
  bool OverlayFull() const {
    return overlay_live_ && overlay_.bytes() >= options_.index_overlay_bytes;
  }
  Status FlushIndex();
  // The record of `type` at a log position.
  // (`what` names it in errors: "message 3/1/17").
  Result<store::RecordView> RecordAt(uint64_t position, store::RecordType type,
                                     const std::string& what) const;
  // Calls fn(key, value) for every index key starting with `prefix` (from
  // `from`, if given) until it returns false.
  Status Scan(std::string_view prefix, std::string_view from,
              const std::function<bool(std::string_view key, std::string_view value)>& fn);

  StoreOptions options_;
  EventFd* round_done_;  // guarded by mu_
  // log_ for the index's file layer (index_env.h), which LevelDB's own
  // threads call; null before the log is open and once the store stops.
  // Declared before db_: LevelDB's threads may call until db_ is gone.
  std::mutex log_for_index_mu_;
  CommitLog* log_for_index_ = nullptr;         // guarded by log_for_index_mu_
  std::unique_ptr<leveldb::Env> waiting_env_;  // outlives index_env_
  std::unique_ptr<leveldb::Env> index_env_;    // outlives db_
  leveldb::ReadOptions reads_;                 // every index read: checksums verified
  RepairReport repair_;                        // Open with options.repair
  bool repairing_ = false;                     // while Open repairs (its reads are checks)
  // Repair: what the damaged message records of salvaged rounds still say
  // of themselves (unverified), to name them in the report.
  std::vector<LostMessage> damaged_peeks_;
  std::unique_ptr<Db> db_;
  // In front of db_ once recovery is done (recovery writes LevelDB itself).
  IndexOverlay overlay_;
  bool overlay_live_ = false;  // set before the threads start
  std::unique_ptr<CommitLog> log_;
  bool recovered_ = false;        // Recover succeeded: a stop checkpoints
  std::unique_ptr<Round> round_;  // core thread: the open round
  bool busy_ = false;             // core thread

  // Read cache (core thread): the last queue run each queue was read from.
  struct RunCacheKey {
    uint32_t topic_id;
    uint32_t queue;
    bool operator==(const RunCacheKey&) const = default;
  };
  struct RunCacheHash {
    size_t operator()(const RunCacheKey& k) const {
      return (static_cast<size_t>(k.topic_id) << 32) ^ k.queue;
    }
  };
  std::unordered_map<RunCacheKey, store::QueueRun, RunCacheHash> run_cache_;
  // Messages removed from their queue (few: resent dead letters); loaded at
  // open, mirrors the 'G' keys.
  std::unordered_map<RunCacheKey, std::set<uint64_t>, RunCacheHash> removed_;
  // Messages whose record failed its checksum when read (core thread).
  std::unordered_map<RunCacheKey, std::set<uint64_t>, RunCacheHash> damaged_;
  mutable std::set<uint64_t> damaged_positions_;  // guarded by mu_: logged once each

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Round> in_flight_;     // guarded by mu_
  std::unique_ptr<Round> finished_;      // guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  LogCursor applied_;                    // guarded by mu_: the index reflects entries before it
  LogCursor synced_;                     // guarded by mu_: entries before it are durable
  uint64_t checkpointed_position_ = 0;   // guarded by mu_
  uint64_t bytes_since_checkpoint_ = 0;  // guarded by mu_
  bool checkpoint_requested_ = false;    // guarded by mu_
  StoreStats stats_;                     // guarded by mu_
  // Whoever writes or syncs the log holds it: the storage thread, the core
  // thread in WriteInline (while the storage thread idles), a checkpoint's
  // sync under flush async.
  std::mutex writer_mu_;
  // The first failed write or sync of the log (guarded by writer_mu_).
  // Every later round fails with it: the kernel may have dropped the
  // failed bytes while a later fdatasync succeeds, so a round written
  // behind them would be acknowledged and unreadable. Only reopening
  // (recovery finds where the durable log ends) clears it.
  Status write_error_;
  // The first round refused before its write (Round::RunBeforeWrite: a
  // cluster node whose replica log could not take it); guarded by
  // writer_mu_. Every later round is refused too, so the store never
  // holds a round after one it lacks; what it holds stays whole, so
  // syncs and checkpoints go on.
  Status refused_;
  // Set once write_error_ or refused_ is: Submit hands no more rounds to
  // `sealed` (they would only fail here).
  std::atomic<bool> failed_{false};
  std::mutex checkpoint_mu_;  // one checkpoint at a time
  std::thread storage_thread_;
  std::thread checkpoint_thread_;
};

}  // namespace txmq::storage
