// BrokerStore's recovery at Open (the log's tail from the checkpoint, the
// index opened, checked against the log, or rebuilt from it) and the
// index's side of every round (ApplyToIndex, ApplyRecords), which the
// storage thread runs for live rounds and recovery for replayed ones.
// Threads: Open's caller during recovery, then thread "txmq-storage"
// (broker_store.cc).
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/broker_store.h"
#include "storage/src/broker_store_internal.h"
#include "storage/src/coding.h"
#include "storage/src/fd_shortage.h"
#include "storage/src/store_check.h"

namespace txmq::storage {

using detail::AsSlice;
using detail::DecodeCheckpoint;
using detail::Fixed64;
using detail::kCheckpointFile;
using detail::MicrosSince;

namespace {

constexpr const char* kFormatFile = "FORMAT";
constexpr const char* kRepairsFile = "REPAIRS";

}  // namespace

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
  index_env_ = std::make_unique<WalDiscardingEnv>(waiting_env_.get(), [this] {
    // Rounds are applied to the index before they are synced only without
    // a sync per round; then what a table file holds must be in the log.
    if (options_.sync) return leveldb::Status::OK();
    std::lock_guard<std::mutex> lock(log_for_index_mu_);
    if (log_for_index_ == nullptr) return leveldb::Status::OK();
    Status s = log_for_index_->SyncWrittenFromAnyThread();
    return s.ok()
               ? leveldb::Status::OK()
               : leveldb::Status::IOError("syncing the commit log before the index", s.ToString());
  });
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
  {
    std::lock_guard<std::mutex> lock(log_for_index_mu_);
    log_for_index_ = log_.get();
  }
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
  if (replayed > 0 && rebuild) {
    Logger("storage")->info("replayed {} log entries into the rebuilt index in {} ms", replayed,
                            MicrosSince(start) / 1000);
  } else if (replayed > 0) {
    // A clean stop checkpoints last (~BrokerStore): entries after the
    // checkpoint mean the previous run ended without one.
    Logger("storage")->info(
        "the previous run did not stop cleanly (a crash, kill -9, power loss, or a failed final "
        "checkpoint): replayed the {} log entries it wrote after its last checkpoint in {} ms",
        replayed, MicrosSince(start) / 1000);
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
    // Nothing the index names lies past the end: what follows it is a torn
    // or unsynced entry's bytes, which new entries must not be written over.
    if (Status s = log_->ZeroAfterEnd(); !s.ok()) return s;
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
                                 std::string_view ops_record,
                                 const std::vector<std::string>* new_keys) {
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
  return ApplyRecords(entry_position, placed, new_keys);
}

Status BrokerStore::ApplyRecords(uint64_t entry_position, const std::vector<PlacedRecord>& records,
                                 const std::vector<std::string>* new_keys) {
  leveldb::WriteBatch batch;
  // Keys the overlay holds go there (index_overlay.h), the rest to LevelDB.
  const auto put = [&](std::string_view key, std::string_view value) {
    if (!overlay_live_ || !IndexOverlay::Holds(key)) return batch.Put(AsSlice(key), AsSlice(value));
    const bool is_new =
        new_keys != nullptr &&
        std::binary_search(new_keys->begin(), new_keys->end(), key,
                           [](std::string_view a, std::string_view b) { return a < b; });
    overlay_.Put(key, value, is_new);
  };
  const auto del = [&](std::string_view key) {
    if (!overlay_live_ || !IndexOverlay::Holds(key)) return batch.Delete(AsSlice(key));
    overlay_.Delete(key);
  };
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
        put(store::HalfKey(h.tx_id, h.index), Fixed64(position));
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
            put(key, value);
          } else {
            del(key);
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

}  // namespace txmq::storage
