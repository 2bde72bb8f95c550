// Deleting topics from the broker store: the writes of the round that
// deletes one, and the scans that sweep, batch by batch, what the index
// derived from its messages (see "deleting topics" in broker_store.h).
//
// Core thread only, like every other read and write of the open round.
#include <leveldb/iterator.h>

#include <memory>
#include <set>

#include "storage/src/broker_store.h"
#include "storage/src/coding.h"

namespace txmq::storage {

namespace {

leveldb::Slice AsSlice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view AsView(const leveldb::Slice& s) { return {s.data(), s.size()}; }

std::string IdPrefix(char tag, uint32_t topic_id) {
  std::string k(1, tag);
  PutBe32(&k, topic_id);
  return k;
}

}  // namespace

void BrokerStore::DeleteTopic(std::string_view name) { round_->Delete(store::TopicKey(name)); }

void BrokerStore::DeleteCursor(std::string_view group, std::string_view topic, uint32_t queue) {
  round_->Delete(store::CursorKey(group, topic, queue));
}

void BrokerStore::DeleteMeta(std::string_view name) { round_->Delete(store::MetaKey(name)); }

Status BrokerStore::ForEachQueueTopicId(const std::function<bool(uint32_t)>& fn) {
  // Keys of these keyspaces start with the topic id: a seek past each id
  // visits one key per id, however many runs it has.
  std::set<uint32_t> ids;
  std::unique_ptr<leveldb::Iterator> it(db_->get()->NewIterator(reads_));
  for (char tag : {store::kQueueRun, store::kQueueStart, store::kRemoved}) {
    const std::string prefix(1, tag);
    it->Seek(prefix);
    while (it->Valid() && it->key().starts_with(AsSlice(prefix))) {
      std::string_view rest = AsView(it->key()).substr(1);
      uint32_t id;
      if (!GetBe32(&rest, &id)) {
        return Status::Corruption("damaged key in index keyspace '" + prefix + "'");
      }
      ids.insert(id);
      if (id == UINT32_MAX) break;
      it->Seek(IdPrefix(tag, id + 1));
    }
    if (!it->status().ok()) return IndexDamaged(it->status(), "scanning the index");
  }
  for (uint32_t id : ids) {
    if (!fn(id)) break;
  }
  return Status::OK();
}

Status BrokerStore::ForEachRunOf(uint32_t topic_id,
                                 const std::function<bool(uint32_t, const store::QueueRun&)>& fn) {
  Status bad;
  Status s = Scan(
      IdPrefix(store::kQueueRun, topic_id), {}, [&](std::string_view key, std::string_view value) {
        uint32_t t, queue;
        uint64_t first;
        store::QueueRun run;
        if (!store::ParseQueueRunKey(key, &t, &queue, &first) ||
            !store::DecodeQueueRun(first, value, &run)) {
          bad =
              Status::Corruption("damaged queue index entry for topic " + std::to_string(topic_id));
          return false;
        }
        return fn(queue, run);
      });
  return bad.ok() ? s : bad;
}

void BrokerStore::DeleteRun(uint32_t topic_id, uint32_t queue, const store::QueueRun& run) {
  round_->Delete(store::QueueRunKey(topic_id, queue, run.first_offset));
  run_cache_.erase({topic_id, queue});
  if (run.positions.empty()) return;
  // The run's key by log position names the entry that appended it: the
  // last entry that starts before the run's first record, so the last
  // 'E' key below that record's position carries the entry's position.
  std::unique_ptr<leveldb::Iterator> it(db_->get()->NewIterator(reads_));
  it->Seek(store::RunByPositionKey(run.positions[0], 0, 0, 0));
  if (it->Valid()) {
    it->Prev();
  } else {
    it->SeekToLast();
  }
  if (!it->Valid()) return;
  uint64_t entry, first;
  uint32_t t, q;
  const std::string found = it->key().ToString();
  if (!store::ParseRunByPositionKey(found, &entry, &t, &q, &first)) return;
  const std::string key = store::RunByPositionKey(entry, topic_id, queue, run.first_offset);
  std::string value;
  if (db_->get()->Get(reads_, key, &value).ok()) round_->Delete(key);
}

Result<uint64_t> BrokerStore::DeleteQueueMarks(uint32_t topic_id) {
  uint64_t n = 0;
  for (char tag : {store::kQueueStart, store::kRemoved}) {
    Status s = Scan(IdPrefix(tag, topic_id), {}, [&](std::string_view key, std::string_view) {
      round_->Delete(key);
      ++n;
      return true;
    });
    if (!s.ok()) return s;
  }
  std::erase_if(removed_, [&](const auto& kv) { return kv.first.topic_id == topic_id; });
  std::erase_if(run_cache_, [&](const auto& kv) { return kv.first.topic_id == topic_id; });
  std::erase_if(damaged_, [&](const auto& kv) { return kv.first.topic_id == topic_id; });
  return n;
}

}  // namespace txmq::storage
