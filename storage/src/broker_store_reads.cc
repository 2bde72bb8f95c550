// The broker store's reads: messages, halves and delayed messages from the
// log (each record's checksum verified), small state from the index (every
// block's checksum verified), iteration, and the log as a whole. All on the
// core thread (see broker_store.h).
#include <algorithm>

#include "protocol/src/log.h"
#include "storage/src/broker_store.h"
#include "storage/src/broker_store_internal.h"
#include "storage/src/coding.h"

namespace txmq::storage {

using detail::AsSlice;

namespace {

bool ReadFixed64(std::string_view in, uint64_t* v) { return GetFixed64(&in, v) && in.empty(); }

}  // namespace

// ---------------- reads ----------------

Result<StoredMessage> BrokerStore::ReadMessage(uint32_t topic_id, uint32_t queue, uint64_t offset) {
  if (!removed_.empty()) {
    if (auto it = removed_.find({topic_id, queue});
        it != removed_.end() && it->second.count(offset)) {
      return Status::NotFound("offset " + std::to_string(offset) + " was removed");
    }
  }
  store::QueueRun* run = nullptr;
  if (auto it = run_cache_.find({topic_id, queue}); it != run_cache_.end() &&
                                                    offset >= it->second.first_offset &&
                                                    offset < it->second.end_offset()) {
    run = &it->second;
  } else {
    // The run holding `offset`: the last run that starts at or before it.
    std::unique_ptr<leveldb::Iterator> iter(db_->get()->NewIterator(reads_));
    const std::string prefix = store::QueueRunPrefix(topic_id, queue);
    iter->Seek(store::QueueRunKey(topic_id, queue, offset + 1));
    if (iter->Valid()) {
      iter->Prev();
    } else if (iter->status().ok()) {
      iter->SeekToLast();
    }
    if (!iter->status().ok()) return IndexDamaged(iter->status(), "reading a queue's index");
    if (!iter->Valid() || !iter->key().starts_with(prefix)) {
      return Status::NotFound("offset " + std::to_string(offset) + " is not stored");
    }
    uint32_t t, q;
    uint64_t first;
    store::QueueRun found;
    const std::string key = iter->key().ToString();
    if (!store::ParseQueueRunKey(key, &t, &q, &first) ||
        !store::DecodeQueueRun(first, {iter->value().data(), iter->value().size()}, &found)) {
      return Status::Corruption("damaged queue index entry for topic " + std::to_string(topic_id) +
                                " queue " + std::to_string(queue));
    }
    if (offset >= found.end_offset()) {
      return Status::NotFound("offset " + std::to_string(offset) + " is not stored");
    }
    run = &(run_cache_[{topic_id, queue}] = std::move(found));
  }
  const uint64_t position = run->positions[offset - run->first_offset];
  const std::string what = "message " + std::to_string(topic_id) + "/" + std::to_string(queue) +
                           "/" + std::to_string(offset) + " (topic id/queue/offset)";
  auto record = RecordAt(position, store::kMessage, what);
  StoredMessage out;
  out.position = position;
  if (record.ok() &&
      (!store::DecodeMessageBody(record->body, &out.body) || out.body.offset != offset ||
       out.body.topic_id != topic_id || out.body.queue != queue)) {
    record = RecordDamaged(position, what + ": the record there is another message");
  }
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kCorruption)
      damaged_[{topic_id, queue}].insert(offset);
    return record.status();
  }
  return out;
}

Status BrokerStore::RecordDamaged(uint64_t position, const std::string& what) const {
  std::string where = "log position " + std::to_string(position);
  for (const SegmentInfo& seg : log_->Segments()) {
    if (position >= seg.base && position < seg.base + seg.size) {
      where += " (" + options_.dir + "/log/" + SegmentFileName(seg.base) + ", byte " +
               std::to_string(position - seg.base) + ")";
    }
  }
  std::string message = what + " at " + where + " is damaged (its checksum does not match)";
  if (!repairing_) {
    message += ": not served; txmqd --repair takes it out of its queue and lists it";
  }
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = damaged_positions_.insert(position).second;
  }
  if (first && !repairing_) Logger("storage")->error("{}", message);
  return Status::Corruption(std::move(message));
}

Status BrokerStore::IndexDamaged(const leveldb::Status& s, const std::string& what) {
  const Status status = FromLevelDb(s, what);
  if (!s.IsCorruption()) return status;
  std::lock_guard<std::mutex> writer(writer_mu_);
  if (write_error_.ok()) {
    failed_ = true;
    write_error_ = Status::Corruption(
        "the index is damaged (" + status.message() +
        "); nothing more is written. Stop txmqd and start it with --repair to rebuild the index "
        "from the commit log");
    Logger("storage")->critical("{}", write_error_.message());
  }
  return status;
}

Status BrokerStore::IndexGet(std::string_view key, std::string* value, const std::string& what) {
  if (overlay_live_ && IndexOverlay::Holds(key)) {
    switch (overlay_.Get(key, value)) {
      case IndexOverlay::Found::kValue:
        return Status::OK();
      case IndexOverlay::Found::kDeleted:
        return Status::NotFound(what + ": not found");
      case IndexOverlay::Found::kNotHere:
        break;
    }
  }
  leveldb::Status s = db_->get()->Get(reads_, AsSlice(key), value);
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(what + ": not found");
  return IndexDamaged(s, what);
}

bool BrokerStore::IsRemoved(uint32_t topic_id, uint32_t queue, uint64_t offset) const {
  auto it = removed_.find({topic_id, queue});
  return it != removed_.end() && it->second.count(offset) > 0;
}

uint64_t BrokerStore::unreadable_messages(uint32_t topic_id, uint32_t queue) const {
  uint64_t n = 0;
  if (auto it = removed_.find({topic_id, queue}); it != removed_.end()) n += it->second.size();
  if (auto it = damaged_.find({topic_id, queue}); it != damaged_.end()) {
    for (uint64_t o : it->second) n += !IsRemoved(topic_id, queue, o);
  }
  return n;
}

uint64_t BrokerStore::unreadable_messages() const {
  uint64_t n = 0;
  for (const auto& [key, offsets] : removed_) n += offsets.size();
  for (const auto& [key, offsets] : damaged_) {
    for (uint64_t o : offsets) n += !IsRemoved(key.topic_id, key.queue, o);
  }
  return n;
}

Result<store::RecordView> BrokerStore::RecordAt(uint64_t position, store::RecordType type,
                                                const std::string& what) const {
  auto bytes = log_->ReadFrom(position);
  if (!bytes.ok()) return bytes.status();
  store::RecordView r;
  if (!store::ParseRecordAt(*bytes, &r) || r.type != type) return RecordDamaged(position, what);
  log_->NoteRead(position, r.size());
  return r;
}

Result<StoredHalf> BrokerStore::ReadHalf(std::string_view tx_id, uint32_t index) {
  std::string value;
  const std::string what =
      "half message " + std::to_string(index) + " of transaction " + std::string(tx_id);
  if (Status s = IndexGet(store::HalfKey(tx_id, index), &value, what); !s.ok()) return s;
  StoredHalf out;
  if (!ReadFixed64(value, &out.position)) {
    return Status::Corruption("damaged index entry of half message " + std::to_string(index) +
                              " of transaction " + std::string(tx_id));
  }
  auto record = RecordAt(out.position, store::kHalf, what);
  if (!record.ok()) return record.status();
  if (!store::DecodeHalfBody(record->body, &out.body) || out.body.tx_id != tx_id ||
      out.body.index != index) {
    return RecordDamaged(out.position, what + ": the record there is another message");
  }
  return out;
}

Result<StoredDelayed> BrokerStore::ReadDelayed(int64_t due_ms, uint64_t seq) {
  std::string value;
  const std::string what = "delayed message " + std::to_string(seq);
  if (Status s = IndexGet(store::DelayedKey(due_ms, seq), &value, what); !s.ok()) return s;
  StoredDelayed out;
  if (!ReadFixed64(value, &out.position)) {
    return Status::Corruption("damaged index entry of delayed message " + std::to_string(seq));
  }
  auto record = RecordAt(out.position, store::kDelayed, what);
  if (!record.ok()) return record.status();
  if (!store::DecodeDelayedBody(record->body, &out.body) || out.body.seq != seq) {
    return RecordDamaged(out.position, what + ": the record there is another message");
  }
  return out;
}

std::optional<TxRecord> BrokerStore::GetTx(std::string_view tx_id) {
  std::string value;
  TxRecord record;
  if (!IndexGet(store::TxKey(tx_id), &value, "transaction " + std::string(tx_id)).ok() ||
      !DecodeTx(value, &record)) {
    return std::nullopt;
  }
  return record;
}

std::optional<store::IdEntry> BrokerStore::GetId(uint64_t bucket, std::string_view message_id) {
  std::string value;
  store::IdEntry entry;
  if (!IndexGet(store::IdKey(bucket, message_id), &value, "message id " + std::string(message_id))
           .ok() ||
      !store::DecodeIdEntry(value, &entry)) {
    return std::nullopt;
  }
  return entry;
}

std::optional<std::string> BrokerStore::GetMeta(std::string_view name) {
  std::string value;
  if (!IndexGet(store::MetaKey(name), &value, "broker record " + std::string(name)).ok()) {
    return std::nullopt;
  }
  return value;
}

std::optional<uint64_t> BrokerStore::GetQueueStart(uint32_t topic_id, uint32_t queue) {
  std::string value;
  uint64_t first;
  if (!IndexGet(store::QueueStartKey(topic_id, queue), &value, "queue start").ok() ||
      !ReadFixed64(value, &first)) {
    return std::nullopt;
  }
  return first;
}

BrokerStore::QueueBounds BrokerStore::GetQueueBounds(uint32_t topic_id, uint32_t queue) {
  QueueBounds b;
  const uint64_t kept_from = GetQueueStart(topic_id, queue).value_or(0);
  b.first = b.end = kept_from;
  const std::string prefix = store::QueueRunPrefix(topic_id, queue);
  std::unique_ptr<leveldb::Iterator> it(db_->get()->NewIterator(reads_));
  it->Seek(prefix);
  if (!it->status().ok()) (void)IndexDamaged(it->status(), "reading a queue's bounds");
  if (!it->Valid() || !it->key().starts_with(prefix)) return b;
  uint32_t t, q;
  uint64_t first;
  const std::string first_key = it->key().ToString();
  if (store::ParseQueueRunKey(first_key, &t, &q, &first)) b.first = std::max(kept_from, first);
  it->Seek(store::PrefixEnd(prefix));
  if (it->Valid()) {
    it->Prev();
  } else {
    it->SeekToLast();
  }
  store::QueueRun last;
  const std::string last_key = it->Valid() ? it->key().ToString() : std::string();
  if (store::ParseQueueRunKey(last_key, &t, &q, &first) &&
      store::DecodeQueueRun(first, {it->value().data(), it->value().size()}, &last)) {
    b.end = std::max(kept_from, last.end_offset());
  }
  if (!it->status().ok()) (void)IndexDamaged(it->status(), "reading a queue's bounds");
  return b;
}

// ---------------- iteration ----------------

Status BrokerStore::Scan(
    std::string_view prefix, std::string_view from,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) {
  const std::string_view start = from.empty() ? prefix : from;
  // The overlay first: a key it hands to LevelDB meanwhile is then in
  // both, and the overlay's copy wins.
  const std::vector<IndexOverlay::Entry> over =
      overlay_live_ && IndexOverlay::Holds(prefix)
          ? overlay_.Range(start, store::PrefixEnd(std::string(prefix)))
          : std::vector<IndexOverlay::Entry>{};
  auto o = over.begin();
  std::unique_ptr<leveldb::Iterator> it(db_->get()->NewIterator(reads_));
  it->Seek(AsSlice(start));
  while (true) {
    const bool db_more = it->Valid() && it->key().starts_with(AsSlice(prefix));
    if (!db_more && o == over.end()) break;
    const std::string_view db_key =
        db_more ? std::string_view(it->key().data(), it->key().size()) : std::string_view();
    if (o != over.end() && (!db_more || o->first <= db_key)) {
      if (db_more && o->first == db_key) it->Next();  // the overlay's is newer
      const IndexOverlay::Entry& e = *o++;
      if (e.second && !fn(e.first, *e.second)) break;
      continue;
    }
    if (!fn(db_key, {it->value().data(), it->value().size()})) break;
    it->Next();
  }
  return it->status().ok() ? Status::OK() : IndexDamaged(it->status(), "scanning the index");
}

Status BrokerStore::ForEachTopic(
    const std::function<bool(std::string_view, const store::TopicEntry&)>& fn) {
  Status bad;
  Status s = Scan(std::string(1, store::kTopic), {}, [&](std::string_view key, std::string_view v) {
    std::string_view name;
    store::TopicEntry entry;
    if (!store::ParseTopicKey(key, &name) || !store::DecodeTopicEntry(v, &entry) ||
        entry.queues == 0) {
      bad = Status::Corruption("damaged topic entry in the index");
      return false;
    }
    return fn(name, entry);
  });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachGroup(
    const std::function<bool(std::string_view, const store::GroupEntry&)>& fn) {
  Status bad;
  Status s = Scan(std::string(1, store::kGroup), {}, [&](std::string_view key, std::string_view v) {
    std::string_view name;
    store::GroupEntry entry;
    if (!store::ParseGroupKey(key, &name) || !store::DecodeGroupEntry(v, &entry)) {
      bad = Status::Corruption("damaged consumer group entry in the index");
      return false;
    }
    return fn(name, entry);
  });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachCursor(
    const std::function<bool(std::string_view, std::string_view, uint32_t, uint64_t)>& fn) {
  Status bad;
  Status s =
      Scan(std::string(1, store::kCursor), {}, [&](std::string_view key, std::string_view v) {
        std::string_view group, topic;
        uint32_t queue;
        uint64_t floor;
        if (!store::ParseCursorKey(key, &group, &topic, &queue) || !ReadFixed64(v, &floor)) {
          bad = Status::Corruption("damaged consumer cursor in the index");
          return false;
        }
        return fn(group, topic, queue, floor);
      });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachRetry(
    const std::function<bool(std::string_view, int64_t, uint64_t, const RetryRecord&)>& fn) {
  Status bad;
  Status s = Scan(std::string(1, store::kRetry), {}, [&](std::string_view key, std::string_view v) {
    std::string_view group;
    int64_t due;
    uint64_t id;
    RetryRecord r;
    if (!store::ParseRetryKey(key, &group, &due, &id) || !DecodeRetry(v, &r)) {
      bad = Status::Corruption("damaged retry entry in the index");
      return false;
    }
    return fn(group, due, id, r);
  });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachDelayed(const std::function<bool(int64_t, uint64_t)>& fn) {
  return ForEachDelayedPosition([&](int64_t due, uint64_t seq, uint64_t) { return fn(due, seq); });
}

Status BrokerStore::ForEachDelayedPosition(
    const std::function<bool(int64_t, uint64_t, uint64_t)>& fn) {
  Status bad;
  Status s =
      Scan(std::string(1, store::kDelayedRef), {}, [&](std::string_view key, std::string_view v) {
        int64_t due;
        uint64_t seq, position;
        if (!store::ParseDelayedKey(key, &due, &seq) || !ReadFixed64(v, &position)) {
          bad = Status::Corruption("damaged delayed-message entry in the index");
          return false;
        }
        return fn(due, seq, position);
      });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachScheduledCheck(
    const std::function<bool(int64_t, std::string_view)>& fn) {
  Status bad;
  Status s = Scan(std::string(1, store::kCheck), {}, [&](std::string_view key, std::string_view) {
    int64_t ms;
    std::string_view tx;
    if (!store::ParseTimedTxKey(key, store::kCheck, &ms, &tx)) {
      bad = Status::Corruption("damaged transaction check schedule entry in the index");
      return false;
    }
    return fn(ms, tx);
  });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachTxExpiry(int64_t until_ms,
                                    const std::function<bool(int64_t, std::string_view)>& fn) {
  Status bad;
  Status s =
      Scan(std::string(1, store::kTxExpiry), {}, [&](std::string_view key, std::string_view) {
        int64_t ms;
        std::string_view tx;
        if (!store::ParseTimedTxKey(key, store::kTxExpiry, &ms, &tx)) {
          bad = Status::Corruption("damaged transaction expiry entry in the index");
          return false;
        }
        if (ms > until_ms) return false;
        return fn(ms, tx);
      });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachId(uint64_t first_bucket,
                              const std::function<bool(uint64_t, std::string_view)>& fn) {
  Status bad;
  Status s = Scan(std::string(1, store::kId), store::IdBucketPrefix(first_bucket),
                  [&](std::string_view key, std::string_view) {
                    uint64_t bucket;
                    std::string_view id;
                    if (!store::ParseIdKey(key, &bucket, &id)) {
                      bad = Status::Corruption("damaged message id entry in the index");
                      return false;
                    }
                    return fn(bucket, id);
                  });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachHalf(
    const std::function<bool(std::string_view, uint32_t, uint64_t)>& fn) {
  Status bad;
  Status s =
      Scan(std::string(1, store::kHalfRef), {}, [&](std::string_view key, std::string_view v) {
        std::string_view tx;
        uint32_t index;
        uint64_t position;
        if (!store::ParseHalfKey(key, &tx, &index) || !ReadFixed64(v, &position)) {
          bad = Status::Corruption("damaged half-message entry in the index");
          return false;
        }
        return fn(tx, index, position);
      });
  return bad.ok() ? s : bad;
}

Status BrokerStore::ForEachRunBefore(
    uint64_t position,
    const std::function<bool(uint64_t, uint32_t, uint32_t, uint64_t, uint64_t)>& fn) {
  Status bad;
  Status s =
      Scan(std::string(1, store::kRunByPosition), {}, [&](std::string_view key, std::string_view) {
        uint64_t at, first;
        uint32_t topic_id, queue;
        if (!store::ParseRunByPositionKey(key, &at, &topic_id, &queue, &first)) {
          bad = Status::Corruption("damaged queue-run entry in the index");
          return false;
        }
        if (at >= position) return false;
        std::string value;
        store::QueueRun run;
        uint64_t end = first;
        if (db_->get()->Get(reads_, store::QueueRunKey(topic_id, queue, first), &value).ok() &&
            store::DecodeQueueRun(first, value, &run)) {
          end = run.end_offset();
        }
        return fn(at, topic_id, queue, first, end);
      });
  return bad.ok() ? s : bad;
}

// ---------------- the log as a whole ----------------

std::vector<BrokerStore::SegmentSummary> BrokerStore::Segments() const {
  std::vector<SegmentSummary> out;
  for (const SegmentInfo& seg : log_->Segments()) {
    SegmentSummary summary{seg.base, seg.size, 0};
    auto head = log_->Read(seg.base, log::kHeaderBytes);
    log::Header h;
    if (head.ok() && log::DecodeHeader(head->data(), &h)) summary.first_time_ms = h.time_ms;
    out.push_back(summary);
  }
  return out;
}

std::optional<int64_t> BrokerStore::EntryTime(uint64_t position) const {
  return log_->TimeAt(position);
}

Status BrokerStore::ForEachRound(
    const LogCursor& from,
    const std::function<Status(int64_t time_ms, std::string_view payload)>& fn) const {
  const LogCursor end = log_->placed_end();
  if (from.index > end.index || from.position > end.position) {
    return Status::Corruption("log cursor at entry " + std::to_string(from.index) +
                              " is past the log's end (entry " + std::to_string(end.index) + ")");
  }
  if (from.position < log_->start()) {
    return Status::NotFound("log position " + std::to_string(from.position) +
                            " was deleted (the log starts at " + std::to_string(log_->start()) +
                            ")");
  }
  LogCursor at = from;
  while (at.index < end.index) {
    auto e = log_->ReadEntry(at.position);
    if (!e.ok() || e->header.index != at.index) {
      // The rest of a segment an entry did not fit in: it is in the next.
      uint64_t next = UINT64_MAX;
      for (const SegmentInfo& seg : log_->Segments()) {
        if (seg.base > at.position) next = std::min(next, seg.base);
      }
      if (next == UINT64_MAX || (e.ok() && e->header.index != at.index)) {
        return Status::Corruption("log entry " + std::to_string(at.index) + " not found at " +
                                  std::to_string(at.position) + " or after it");
      }
      at.position = next;
      continue;
    }
    if (e->header.prev_crc != at.prev_crc) {
      return Status::Corruption("log entry " + std::to_string(at.index) + " at " +
                                std::to_string(at.position) +
                                " does not chain to the entry before it");
    }
    if (Status s = fn(e->header.time_ms, e->payload); !s.ok()) return s;
    at = {e->end(), at.index + 1, e->header.crc};
  }
  // Also when no round follows `from`: it must name this log's end.
  if (at != end) {
    return Status::Corruption("the log ends at entry " + std::to_string(end.index) + ", position " +
                              std::to_string(end.position) + ", not where the rounds from " +
                              std::to_string(from.position) + " lead");
  }
  return Status::OK();
}

void BrokerStore::RequestCheckpoint() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    checkpoint_requested_ = true;
  }
  cv_.notify_all();
}

Result<uint64_t> BrokerStore::DeleteLogBefore(uint64_t position) {
  uint64_t covered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    covered = checkpointed_position_;
  }
  return log_->DeleteBefore(std::min(position, covered));
}

StoreStats BrokerStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  StoreStats s = stats_;
  s.log_start = log_->start();
  s.log_end = applied_.position;
  s.damaged_records = damaged_positions_.size();
  const IndexOverlay::Stats overlay = overlay_.stats();
  s.overlay_dropped = overlay.dropped;
  s.overlay_written = overlay.written;
  return s;
}

}  // namespace txmq::storage
