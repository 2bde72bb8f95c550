// Thread "txmq-storage" (started by Open) writes, syncs and applies the
// rounds it is handed; thread "txmq-checkpoint" flushes the index and
// records the checkpoint. The core thread owns round_, busy_, run_cache_.
#include "storage/src/broker_store.h"

#include <leveldb/write_batch.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/crc32c.h"
#include "storage/src/fd_shortage.h"
#include "storage/src/store_check.h"

namespace txmq::storage {

namespace {

constexpr const char* kFormatFile = "FORMAT";
constexpr const char* kCheckpointFile = "CHECKPOINT";
constexpr const char* kRepairsFile = "REPAIRS";

int64_t MicrosSince(SteadyTime start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();
}

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

std::string Fixed64(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}

leveldb::Slice AsSlice(std::string_view s) { return {s.data(), s.size()}; }

// A stored text quoted in an error: one line, bounded.
std::string OneLineForLog(const std::string& text) {
  std::string out = text.substr(0, 80);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

}  // namespace

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
  // A clean stop leaves nothing to replay.
  if (log_ && db_) {
    if (Status s = Checkpoint(); !s.ok()) {
      Logger("storage")->warn("final checkpoint failed ({}); the next start replays the log",
                              s.ToString());
    }
  }
}

// ---------------- recovery ----------------

Status BrokerStore::Recover() {
  FileSystem* fs = options_.fs;
  const std::string& dir = options_.dir;
  if (Status s = fs->CreateDirs(dir); !s.ok()) return s;
  if (fs->Exists(dir + "/CURRENT")) {
    return Status::FailedPrecondition(
        "data directory '" + dir +
        "' holds txmq data format 1 (txmq 0.1.x, everything in one LevelDB); this txmqd "
        "reads format " +
        std::to_string(kDataFormat) +
        ". Drain it with the txmqd that wrote it, or start this one on an empty directory");
  }
  const std::string format_path = dir + "/" + kFormatFile;
  if (fs->Exists(format_path)) {
    auto text = fs->ReadFile(format_path);
    if (!text.ok()) return text.status();
    int version = 0;
    if (std::sscanf(text->c_str(), "txmq-data %d", &version) != 1 || version != kDataFormat) {
      return Status::FailedPrecondition("data directory '" + dir + "' has format '" +
                                        OneLineForLog(*text) + "'; this txmqd reads format " +
                                        std::to_string(kDataFormat));
    }
  } else {
    if (Status s = fs->WriteFileAtomically(format_path, "txmq-data 2\n"); !s.ok()) return s;
  }

  // LevelDB's own write-ahead log is never replayed: what it held is
  // replayed from the commit log instead (see the header).
  const std::string index_dir = dir + "/index";
  if (Status s = fs->CreateDirs(index_dir); !s.ok()) return s;
  auto names = fs->List(index_dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (!IsLevelDbLogName(name)) continue;
    if (Status s = fs->Remove(index_dir + "/" + name); !s.ok()) return s;
  }
  DbOptions db_options;
  db_options.write_buffer_size = options_.write_buffer_bytes;
  db_options.max_file_size = options_.table_file_bytes;
  db_options.block_cache_bytes = options_.block_cache_bytes;
  // Below 1000 every table file LevelDB keeps open is mapped and holds no
  // descriptor: descriptors stay for connections and the storage reserve
  // (fd_shortage.h).
  db_options.max_open_files = 500;
  waiting_env_ = std::make_unique<DescriptorWaitingEnv>(
      options_.env != nullptr ? options_.env : leveldb::Env::Default());
  index_env_ = std::make_unique<WalDiscardingEnv>(waiting_env_.get());
  db_options.env = index_env_.get();
  db_options.paranoid_checks = true;
  reads_.verify_checksums = true;
  const bool check = options_.verify_all || options_.repair;
  repairing_ = options_.repair;
  const auto index_start = SteadyClock::now();
  bool rebuild = false;
  if (Status s = OpenIndex(db_options, check); !s.ok()) {
    if (s.code() != StatusCode::kCorruption) return s;
    if (!options_.repair) {
      return Status::Corruption(s.message() +
                                ". Nothing was changed. The index is derived from the commit "
                                "log: start txmqd with --repair to rebuild it");
    }
    if (Status r = RebuildIndex(db_options, s.message()); !r.ok()) return r;
    rebuild = true;
  }

  auto skips = LoadSkips(fs, dir + "/" + kRepairsFile);
  if (!skips.ok()) return skips.status();
  LogCursor from;
  const std::string checkpoint_path = dir + "/" + kCheckpointFile;
  LogOptions log_options;
  log_options.dir = dir + "/log";
  log_options.segment_bytes = options_.segment_bytes;
  log_options.cached_tail_bytes = options_.cached_log_bytes;
  log_options.fs = fs;
  log_options.verify_all = check;
  log_options.skips = *skips;
  Status no_checkpoint;
  if (fs->Exists(checkpoint_path)) {
    auto text = fs->ReadFile(checkpoint_path);
    if (!text.ok()) return text.status();
    if (!DecodeCheckpoint(*text, &from)) {
      no_checkpoint = Status::Corruption("checkpoint file '" + checkpoint_path + "' is damaged: '" +
                                         OneLineForLog(*text) + "'");
    }
  } else if (fs->Exists(log_options.dir)) {
    auto segments = fs->List(log_options.dir);
    if (segments.ok() && std::any_of(segments->begin(), segments->end(),
                                     [](const auto& n) { return n.ends_with(".seg"); })) {
      no_checkpoint = Status::Corruption("data directory '" + dir +
                                         "' has a commit log but no CHECKPOINT file: refusing "
                                         "to guess where recovery starts");
    }
  }
  if (!no_checkpoint.ok()) {
    if (!options_.repair) return no_checkpoint;
    // Without the cursor every entry is applied again: the same as for an
    // index rebuilt from the log.
    repair_.index_problem = no_checkpoint.message();
    from = FirstEntryCursor(fs, log_options.dir);
    rebuild = true;
  }
  if (options_.repair) {
    // Entries before the cursor are in the index unless it is rebuilt.
    log_options.replay_before_cursor = rebuild;
    const uint64_t replay_from = rebuild ? 0 : from.position;
    log_options.on_damage = [this, replay_from](const LogDamage& d) {
      SalvageDamaged(d, replay_from);
    };
  }
  const auto start = SteadyClock::now();
  uint64_t replayed = 0;
  auto log = CommitLog::Open(log_options, from, [&](const LogEntry& e) {
    ++replayed;
    return ApplyToIndex(e.position, e.payload, {});
  });
  if (!log.ok()) {
    if (log.status().code() != StatusCode::kCorruption || options_.repair) return log.status();
    return Status::Corruption(log.status().message() +
                              ". Nothing was changed. Start txmqd with --repair to keep what "
                              "can be read and list what is lost");
  }
  log_ = std::move(log.value());
  for (LogDamage& d : repair_.log_damage) d.bytes.clear();
  applied_ = synced_ = log_->placed_end();
  Status bad;
  Status scanned =
      Scan(std::string(1, store::kRemoved), {}, [&](std::string_view key, std::string_view) {
        uint32_t topic_id, queue;
        uint64_t offset;
        if (!store::ParseRemovedKey(key, &topic_id, &queue, &offset)) {
          bad = Status::Corruption("damaged removal mark in the index");
          return false;
        }
        removed_[{topic_id, queue}].insert(offset);
        return true;
      });
  if (!bad.ok()) return bad;
  if (!scanned.ok()) return scanned;
  checkpointed_position_ = from.position;
  stats_.replayed_entries = replayed;
  if (replayed > 0) {
    Logger("storage")->info("replayed {} log entries {} in {} ms", replayed,
                            rebuild ? "into the rebuilt index" : "after the checkpoint",
                            MicrosSince(start) / 1000);
  }
  if (check) {
    Logger("storage")->info(
        "checked the whole commit log ({} MiB) and the index in {} ms (--verify-on-start all)",
        (log_->placed_end().position - log_->start()) >> 20, MicrosSince(index_start) / 1000);
  }
  if (options_.repair) {
    repair_.index_rebuilt = rebuild;
    repair_.replayed_entries = replayed;
    if (Status s = FinishRepair(*skips); !s.ok()) return s;
    repairing_ = false;
    return Checkpoint();
  }
  if (check) {
    if (Status s = CheckIndexAgainstLog(); !s.ok()) {
      return Status::Corruption(s.message() +
                                ". Nothing was changed. Start txmqd with --repair to keep what "
                                "can be read and list what is lost");
    }
  }
  if (replayed > 0 || !fs->Exists(checkpoint_path)) return Checkpoint();
  return Status::OK();
}

Status BrokerStore::OpenIndex(const DbOptions& db_options, bool check) {
  const std::string index_dir = options_.dir + "/index";
  auto db = Db::Open(index_dir, db_options);
  if (!db.ok()) return db.status();
  db_ = std::move(db.value());
  if (!check) return Status::OK();
  const auto start = SteadyClock::now();
  if (Status s = VerifyIndexTables(db_->get(), index_dir, db_options.env); !s.ok()) {
    db_.reset();
    return s;
  }
  Logger("storage")->debug("checked the index in {} ms", MicrosSince(start) / 1000);
  return Status::OK();
}

namespace {

// LevelDB's account of a repair, line by line.
class NoteLogger final : public leveldb::Logger {
 public:
  explicit NoteLogger(std::vector<std::string>* notes) : notes_(notes) {}
  void Logv(const char* format, std::va_list ap) override {
    char line[512];
    std::vsnprintf(line, sizeof line, format, ap);
    std::string text = line;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::lock_guard<std::mutex> lock(mu_);
    notes_->push_back(std::move(text));
  }

 private:
  std::mutex mu_;
  std::vector<std::string>* notes_;
};

}  // namespace

Status BrokerStore::RebuildIndex(const DbOptions& db_options, const std::string& problem) {
  const std::string index_dir = options_.dir + "/index";
  repair_.index_problem = problem;
  Logger("repair")->warn("{}; rebuilding the index from the commit log", problem);
  db_.reset();
  {
    // What LevelDB can still read of it keeps state older than the log's
    // first segment (topics, consumer positions); the log is applied again
    // on top. Damaged table files go to index/lost/.
    NoteLogger notes(&repair_.index_notes);
    leveldb::Options o;
    o.env = db_options.env;
    o.paranoid_checks = true;
    o.info_log = &notes;
    leveldb::Status s = leveldb::RepairDB(index_dir, o);
    if (!s.ok()) repair_.index_notes.push_back("LevelDB repair failed: " + s.ToString());
  }
  // The log is the data; keep only LevelDB's own account of what it did.
  std::erase_if(repair_.index_notes, [](const std::string& n) {
    return n.find("Table #") == std::string::npos && n.find("Archiving") == std::string::npos &&
           n.find("failed") == std::string::npos;
  });
  if (OpenIndex(db_options, /*check=*/true).ok()) return Status::OK();
  // Nothing readable: a fresh index, the damaged one kept aside.
  const std::string aside = index_dir + ".damaged-" + std::to_string(NowMs());
  std::error_code ec;
  std::filesystem::rename(index_dir, aside, ec);
  if (ec) return Status::Internal("moving the damaged index aside: " + ec.message());
  repair_.index_notes.push_back("the salvaged index was still unreadable; moved to " + aside +
                                " and built anew from the log alone");
  if (Status s = options_.fs->CreateDirs(index_dir); !s.ok()) return s;
  return OpenIndex(db_options, /*check=*/true);
}

Status BrokerStore::CheckIndexAgainstLog() {
  // Runs name the rounds that hold them: the first and the last.
  uint64_t first = UINT64_MAX, last = 0;
  const std::string prefix(1, store::kRunByPosition);
  std::unique_ptr<leveldb::Iterator> it(db_->get()->NewIterator(reads_));
  it->Seek(prefix);
  uint64_t at, start_offset;
  uint32_t t, q;
  if (it->Valid() && it->key().starts_with(prefix) &&
      store::ParseRunByPositionKey({it->key().data(), it->key().size()}, &at, &t, &q,
                                   &start_offset)) {
    first = at;
  }
  it->Seek(store::PrefixEnd(prefix));
  it->Valid() ? it->Prev() : it->SeekToLast();
  if (it->Valid() && it->key().starts_with(prefix) &&
      store::ParseRunByPositionKey({it->key().data(), it->key().size()}, &at, &t, &q,
                                   &start_offset)) {
    last = at;
  }
  if (!it->status().ok()) return FromLevelDb(it->status(), "checking the index");
  if (first != UINT64_MAX && first < log_->start()) {
    return Status::Corruption("the index names messages at log position " + std::to_string(first) +
                              ", but the log starts at " + std::to_string(log_->start()) +
                              ": a segment file holding acknowledged messages is missing");
  }
  const uint64_t end = log_->placed_end().position;
  if (last != 0 && last >= end) {
    return Status::Corruption(
        "the index names messages at log position " + std::to_string(last) +
        ", but the log ends at " + std::to_string(end) +
        ": acknowledged log data is missing (a segment file was cut or removed; under --flush "
        "async a power loss also loses the last acknowledged writes)");
  }
  return Status::OK();
}

uint64_t BrokerStore::MaxIndexedPosition() {
  uint64_t max = 0;
  (void)ForEachRunBefore(UINT64_MAX,
                         [&](uint64_t position, uint32_t, uint32_t, uint64_t, uint64_t) {
                           max = std::max(max, position);
                           return true;
                         });
  (void)ForEachHalf([&](std::string_view, uint32_t, uint64_t position) {
    max = std::max(max, position);
    return true;
  });
  (void)ForEachDelayedPosition([&](int64_t, uint64_t, uint64_t position) {
    max = std::max(max, position);
    return true;
  });
  return max;
}

Status BrokerStore::ApplyToIndex(uint64_t entry_position, std::string_view records,
                                 std::string_view ops_record) {
  std::vector<PlacedRecord> placed;
  std::vector<store::RecordView> parsed;
  const uint64_t payload_at = entry_position + log::kHeaderBytes;
  std::vector<std::pair<std::string_view, uint64_t>> pieces = {{records, 0}};
  if (!ops_record.empty()) pieces.emplace_back(ops_record, records.size());
  for (const auto& [piece, base] : pieces) {
    if (!store::ParseRecords(piece, &parsed)) {
      return Status::Corruption("log entry at " + std::to_string(entry_position) +
                                " holds a malformed record");
    }
    for (const store::RecordView& r : parsed) {
      placed.push_back({payload_at + base + r.offset_in_payload, r});
    }
  }
  return ApplyRecords(entry_position, placed);
}

Status BrokerStore::ApplyRecords(uint64_t entry_position,
                                 const std::vector<PlacedRecord>& records) {
  leveldb::WriteBatch batch;
  struct Run {
    uint32_t topic_id;
    uint32_t queue;
    store::QueueRun run;
  };
  std::vector<Run> runs;
  auto flush_run = [&](const Run& r) {
    batch.Put(store::QueueRunKey(r.topic_id, r.queue, r.run.first_offset),
              store::EncodeQueueRun(r.run));
    batch.Put(store::RunByPositionKey(entry_position, r.topic_id, r.queue, r.run.first_offset), "");
  };
  for (const auto& [position, r] : records) {
    switch (r.type) {
      case store::kMessage: {
        store::MessageBody m;
        if (!store::DecodeMessageBody(r.body, &m)) {
          return Status::Corruption("undecodable message record at log position " +
                                    std::to_string(position));
        }
        auto it = std::find_if(runs.begin(), runs.end(), [&](const Run& x) {
          return x.topic_id == m.topic_id && x.queue == m.queue;
        });
        if (it != runs.end() && it->run.end_offset() != m.offset) {
          flush_run(*it);  // not contiguous: a new run starts here
          runs.erase(it);
          it = runs.end();
        }
        if (it == runs.end()) {
          runs.push_back({m.topic_id, m.queue, {m.offset, {}}});
          it = std::prev(runs.end());
        }
        it->run.positions.push_back(position);
        if (m.flags & store::kFlagIndexed) {
          store::IdEntry id{m.topic_id, m.queue, true, m.offset, m.message.stored_ms};
          batch.Put(store::IdKey(static_cast<uint64_t>(m.message.stored_ms) / store::kIdBucketMs,
                                 m.message.id),
                    store::EncodeIdEntry(id));
        }
        break;
      }
      case store::kHalf: {
        store::HalfBody h;
        if (!store::DecodeHalfBody(r.body, &h)) {
          return Status::Corruption("undecodable half record at log position " +
                                    std::to_string(position));
        }
        batch.Put(store::HalfKey(h.tx_id, h.index), Fixed64(position));
        break;
      }
      case store::kDelayed: {
        store::DelayedBody d;
        if (!store::DecodeDelayedBody(r.body, &d)) {
          return Status::Corruption("undecodable delayed record at log position " +
                                    std::to_string(position));
        }
        batch.Put(store::DelayedKey(d.due_ms, d.seq), Fixed64(position));
        store::IdEntry id{d.topic_id, d.queue, false, 0, d.message.stored_ms};
        batch.Put(store::IdKey(static_cast<uint64_t>(d.message.stored_ms) / store::kIdBucketMs,
                               d.message.id),
                  store::EncodeIdEntry(id));
        break;
      }
      case store::kIndexOps: {
        std::string_view in = r.body;
        while (!in.empty()) {
          uint8_t op;
          std::string_view key, value;
          if (!GetByte(&in, &op) || !GetLengthPrefixed(&in, &key) ||
              (op == store::kPut && !GetLengthPrefixed(&in, &value)) ||
              (op != store::kPut && op != store::kDelete)) {
            return Status::Corruption("malformed index operations in the log entry at " +
                                      std::to_string(entry_position));
          }
          if (op == store::kPut) {
            batch.Put(AsSlice(key), AsSlice(value));
          } else {
            batch.Delete(AsSlice(key));
          }
        }
        break;
      }
    }
  }
  for (const Run& r : runs) flush_run(r);
  leveldb::WriteOptions wo;  // unsynced: the log is the durable copy
  return FromLevelDb(db_->get()->Write(wo, &batch), "applying a round to the index");
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

void BrokerStore::PutHalf(const store::HalfBody& half) { round_->AppendHalf(half); }

void BrokerStore::DeleteHalf(std::string_view tx_id, uint32_t index) {
  round_->Delete(store::HalfKey(tx_id, index));
}

void BrokerStore::PutTx(std::string_view tx_id, const TxRecord& record) {
  round_->Put(store::TxKey(tx_id), EncodeTx(record));
}

void BrokerStore::DeleteTx(std::string_view tx_id) { round_->Delete(store::TxKey(tx_id)); }

void BrokerStore::ScheduleCheck(int64_t next_check_ms, std::string_view tx_id) {
  round_->Put(store::TimedTxKey(store::kCheck, next_check_ms, tx_id), "");
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
  if (!write_error_.ok()) {
    round.set_status(write_error_);
    return;
  }
  if (round.writes_nothing()) return;  // completions alone: nothing to make durable
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
  if (!s.ok()) write_error_ = s;
  if (s.ok()) s = ApplyToIndex(e.position, round.records(), round.ops_record());
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
  if (bytes_since_checkpoint_ >= options_.checkpoint_bytes) cv_.notify_all();
}

void BrokerStore::Submit(int64_t time_ms) {
  std::unique_ptr<Round> round = std::exchange(round_, std::make_unique<Round>());
  round->Seal(time_ms, options_.epoch);
  if (!round->writes_nothing()) {
    if (Status s = log_->Place(round->entry()); !s.ok()) round->set_status(s);
  }
  busy_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = std::move(round);
  }
  cv_.notify_all();
}

std::unique_ptr<Round> BrokerStore::WriteInline(int64_t time_ms) {
  std::unique_ptr<Round> round = std::exchange(round_, std::make_unique<Round>());
  round->Seal(time_ms, options_.epoch);
  if (!round->writes_nothing()) {
    if (Status s = log_->Place(round->entry()); !s.ok()) {
      round->set_status(s);
      return round;
    }
  }
  // The storage thread is idle (not busy), so this thread is the writer.
  std::lock_guard<std::mutex> writer(writer_mu_);
  WriteRound(*round, options_.sync);
  return round;
}

Status BrokerStore::WriteReplicated(int64_t time_ms, std::string records, std::string ops_record,
                                    bool sync) {
  if (busy_ || !round_->empty()) {
    return Status::FailedPrecondition("a replicated round must not overtake this store's own");
  }
  Round round;
  round.SealReplicated(time_ms, options_.epoch, std::move(records), std::move(ops_record));
  if (round.writes_nothing()) return Status::OK();
  if (Status s = log_->Place(round.entry()); !s.ok()) return s;
  std::lock_guard<std::mutex> writer(writer_mu_);
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
  if (Status s = log_->Sync(); !s.ok()) return write_error_ = s;
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
      continue;
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
        if (!s.ok() && write_error_.ok()) write_error_ = s;
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
  db_->get()->CompactRange(&begin, &end);
  // LevelDB reports a failed background flush only through its properties
  // and later writes; a tiny unsynced write surfaces it.
  leveldb::WriteOptions wo;
  return FromLevelDb(db_->get()->Put(wo, store::MetaKey("checkpoint-probe"), ""),
                     "flushing the index");
}

Status BrokerStore::Checkpoint() {
  std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
  LogCursor cover;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Covered: applied to the index and durable in the log.
    cover = applied_.index <= synced_.index ? applied_ : synced_;
  }
  if (!options_.sync) {
    // The cover must be durable in the log before the checkpoint names it.
    std::lock_guard<std::mutex> writer(writer_mu_);
    if (!write_error_.ok()) return write_error_;
    if (Status s = log_->Sync(); !s.ok()) return write_error_ = s;
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
             bytes_since_checkpoint_ >= options_.checkpoint_bytes;
    });
    if (stopping_) return;
    const bool due =
        checkpoint_requested_ || bytes_since_checkpoint_ >= options_.checkpoint_bytes ||
        (bytes_since_checkpoint_ > 0 && SteadyClock::now() - last >= options_.checkpoint_interval);
    if (!due) continue;
    checkpoint_requested_ = false;
    lock.unlock();
    Status s = Checkpoint();
    if (!s.ok()) Logger("storage")->error("checkpoint failed: {}", s.ToString());
    lock.lock();
    last = SteadyClock::now();
  }
}

}  // namespace txmq::storage
