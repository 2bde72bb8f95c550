// Operator access to outbox rows: list, requeue, delete. Works on a store
// whose relay is not running (txmqctl opens the store offline; LevelDB's
// lock refuses while the service has it open).
#include <memory>
#include <unordered_map>

#include "producer/src/outbox_row.h"
#include "protocol/src/log.h"
#include "storage/src/db.h"
#include "storage/src/local_store_impl.h"
#include "txmq/outbox.h"

namespace txmq {

namespace outbox {

void ForEachRow(LocalStore& store, bool parked,
                const std::function<void(uint64_t seq, StoredRow row)>& fn) {
  const std::string prefix = parked ? ParkedPrefix() : PendingPrefix();
  std::unique_ptr<leveldb::Iterator> it(store.impl().db()->NewIterator(storage::CheckedReads()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    uint64_t seq;
    StoredRow row;
    if (!ParseSeq(std::string_view(it->key().data(), it->key().size()), prefix, &seq) ||
        !DecodeRow(std::string_view(it->value().data(), it->value().size()), &row)) {
      Logger("outbox")->error("unreadable outbox row under a key of {} bytes in {}; left as is",
                              it->key().size(), store.path());
      continue;
    }
    fn(seq, std::move(row));
  }
}

}  // namespace outbox

namespace {

// The row with `id`, pending or parked.
struct Found {
  uint64_t seq = 0;
  bool parked = false;
  outbox::StoredRow row;
};

std::optional<Found> FindRow(LocalStore& store, const std::string& id) {
  std::optional<Found> found;
  for (bool parked : {true, false}) {
    outbox::ForEachRow(store, parked, [&](uint64_t seq, outbox::StoredRow row) {
      if (!found && row.message.id == id) found = Found{seq, parked, std::move(row)};
    });
    if (found) break;
  }
  return found;
}

}  // namespace

namespace outbox {

Result<uint64_t> RequeueRow(LocalStore& store, const std::string& id,
                            const std::string& operator_name) {
  auto found = FindRow(store, id);
  if (!found || !found->parked) {
    return Status::NotFound("no parked outbox row has id '" + id + "'" +
                            (found ? " (it is pending already)" : ""));
  }
  found->row.attempts = 0;
  found->row.next_attempt_ms = 0;
  leveldb::WriteBatch batch;
  batch.Delete(outbox::ParkedKey(found->seq));
  // Its old seq puts it first in line again, before later rows of its key.
  batch.Put(outbox::PendingKey(found->seq), outbox::EncodeRow(found->row));
  Status s = store.impl().Write(batch);
  Logger("audit")->warn(
      "operator='{}' action=outbox-requeue store='{}' row={} topic={} key='{}' result={}",
      AuditField(operator_name), AuditField(store.path()), AuditToken(id), found->row.message.topic,
      AuditField(found->row.message.key),
      s.ok() ? std::string("applied") : "failed: " + AuditField(s.ToString()));
  if (!s.ok()) return s;
  return found->seq;
}

Result<uint64_t> DeleteRow(LocalStore& store, const std::string& id, bool parked_only,
                           const std::string& operator_name) {
  auto found = FindRow(store, id);
  if (!found || (parked_only && !found->parked)) {
    return Status::NotFound("no " + std::string(parked_only ? "parked " : "") +
                            "outbox row has id '" + id + "'" +
                            (found ? " (it is pending: the running relay owns it)" : ""));
  }
  leveldb::WriteBatch batch;
  batch.Delete(found->parked ? outbox::ParkedKey(found->seq) : outbox::PendingKey(found->seq));
  Status s = store.impl().Write(batch);
  Logger("audit")->warn(
      "operator='{}' action=outbox-delete store='{}' row={} topic={} key='{}' was={} result={}",
      AuditField(operator_name), AuditField(store.path()), AuditToken(id), found->row.message.topic,
      AuditField(found->row.message.key), found->parked ? "parked" : "pending",
      s.ok() ? std::string("applied") : "failed: " + AuditField(s.ToString()));
  if (!s.ok()) return s;
  return found->seq;
}

}  // namespace outbox

std::vector<OutboxRow> Outbox::List(LocalStore& store, bool parked) {
  // The first parked row of each key: later pending rows of that key wait
  // behind it (when the service holds keys behind parked rows, the default).
  std::unordered_map<std::string, std::pair<uint64_t, std::string>> held;
  outbox::ForEachRow(store, true, [&](uint64_t seq, outbox::StoredRow row) {
    if (!row.message.key.empty()) held.try_emplace(row.message.key, seq, row.message.id);
  });
  std::vector<OutboxRow> rows;
  outbox::ForEachRow(store, parked, [&](uint64_t seq, outbox::StoredRow row) {
    OutboxRow r = outbox::ToPublic(row, seq, parked);
    auto it = parked ? held.end() : held.find(row.message.key);
    if (it != held.end() && it->second.first < seq) r.blocked_by = it->second.second;
    rows.push_back(std::move(r));
  });
  return rows;
}

Status Outbox::Requeue(LocalStore& store, const std::string& id, const std::string& operator_name) {
  return outbox::RequeueRow(store, id, operator_name).status();
}

Status Outbox::Delete(LocalStore& store, const std::string& id, const std::string& operator_name) {
  return outbox::DeleteRow(store, id, false, operator_name).status();
}

}  // namespace txmq
