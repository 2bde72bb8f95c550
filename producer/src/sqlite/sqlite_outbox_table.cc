#include "producer/src/sqlite/sqlite_outbox_table.h"

#include <algorithm>

#include "producer/src/outbox_row.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "protocol/src/log.h"

namespace txmq::sqlite {

namespace {

std::string Now() { return std::string("(") + kNowMs + ")"; }

std::string EncodePayload(const Message& message) {
  outbox::StoredRow row;
  row.message = message;
  return outbox::EncodeRow(row);
}

void Audit(const std::string& operator_name, const char* action, sqlite3* db, const std::string& id,
           const std::string& result) {
  Logger("audit")->warn("operator='{}' action={} database='{}' row={} result={}", operator_name,
                        action, FileName(db), id, result);
}

// One statement in a BEGIN IMMEDIATE transaction of its own.
Result<Rows> Immediately(sqlite3* db, const std::string& sql, const std::vector<Value>& params) {
  if (auto b = Exec(db, "BEGIN IMMEDIATE"); !b.ok()) return b.status();
  auto r = Exec(db, sql, params);
  if (r.ok()) {
    if (auto c = Exec(db, "COMMIT"); !c.ok()) r = c.status();
  }
  RollbackIfOpen(db);
  return r;
}

}  // namespace

Status InsertRow(sqlite3* db, const Message& message) {
  if (!InTransaction(db)) {
    return Status::FailedPrecondition(
        "outbox Add runs inside the caller's open transaction (BEGIN IMMEDIATE first, on the "
        "same sqlite3* as the business rows); this connection is not in one");
  }
  auto r = Exec(db, "INSERT INTO txmq_outbox (id, topic, msg_key, payload) VALUES (?1, ?2, ?3, ?4)",
                {Value::Text(message.id), Value::Text(message.topic), Value::Text(message.key),
                 Value::Blob(EncodePayload(message))});
  if (!r.ok()) return r.status();
  // The origin record a compensation asks about later (sql/origin_check.h);
  // SQLite's single writer orders it against a compensation's fence.
  auto origin = Exec(db, "INSERT OR IGNORE INTO txmq_origin (message_id, state) VALUES (?1, 'C')",
                     {Value::Text(message.id)});
  if (!origin.ok()) return origin.status();
  if (origin->changes == 1) return Status::OK();
  auto was = Exec(db, "SELECT state, note FROM txmq_origin WHERE message_id = ?1",
                  {Value::Text(message.id)});
  const bool fenced = was.ok() && !was->rows.empty() && was->rows[0][0].AsText() == "F";
  return Status::Aborted("outbox Add of message " + message.id +
                         (fenced ? ": a compensation fenced this id before it committed (" +
                                       was->rows[0][1].AsText() + ")"
                                 : ": a message with this id was added before") +
                         "; roll the transaction back");
}

Result<std::vector<sql::ClaimedRow>> ClaimDue(sqlite3* db, const std::string& owner,
                                              std::chrono::milliseconds lease, int limit,
                                              bool hold_key_behind_parked) {
  const std::string earlier_blocks = hold_key_behind_parked ? "" : " AND e.state = 0";
  const std::string sql =
      "UPDATE txmq_outbox SET lease_owner = ?1, fence = fence + 1, lease_until = " + Now() +
      " + ?2 WHERE seq IN (SELECT o.seq FROM txmq_outbox o"
      "  WHERE o.state = 0 AND o.next_attempt_at <= " +
      Now() + "    AND (o.lease_until IS NULL OR o.lease_until < " + Now() +
      ")"
      "    AND (o.msg_key = '' OR NOT EXISTS (SELECT 1 FROM txmq_outbox e"
      "         WHERE e.msg_key = o.msg_key AND e.seq < o.seq" +
      earlier_blocks +
      "))"
      "  ORDER BY o.seq LIMIT ?3) "
      "RETURNING seq, fence, attempts, " +
      Now() + " - created_at, payload";
  auto r = Immediately(db, sql, {Value::Text(owner), Value::Int(lease.count()), Value::Int(limit)});
  if (!r.ok()) return r.status();
  std::vector<sql::ClaimedRow> rows;
  for (const Row& c : r->rows) {
    outbox::StoredRow stored;
    if (!outbox::DecodeRow(c[4].AsText(), &stored)) {
      Logger("outbox")->error(
          "unreadable payload of outbox row seq {} in SQLite database '{}'; left as is",
          c[0].AsInt(), FileName(db));
      continue;
    }
    sql::ClaimedRow row;
    row.message = std::move(stored.message);
    row.seq = c[0].AsInt();
    row.fence = c[1].AsInt();
    row.attempts = static_cast<uint32_t>(c[2].AsInt());
    row.age_ms = c[3].AsInt();
    rows.push_back(std::move(row));
  }
  // RETURNING does not promise the subquery's order.
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return rows;
}

Status RestartOriginHorizon(sqlite3* db, const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    auto r = Exec(
        db,
        std::string("UPDATE txmq_origin SET recorded_at = ") + kNowMs + " WHERE message_id = ?1",
        {Value::Text(id)});
    if (!r.ok()) return r.status();
  }
  return Status::OK();
}

Result<bool> MarkSent(sqlite3* db, const std::string& id, int64_t fence) {
  auto r = Exec(db, "DELETE FROM txmq_outbox WHERE id = ?1 AND fence = ?2",
                {Value::Text(id), Value::Int(fence)});
  if (!r.ok()) return r.status();
  return r->changes == 1;
}

Result<bool> MarkFailed(sqlite3* db, const std::string& id, int64_t fence, bool park,
                        std::chrono::milliseconds retry_in, const std::string& error) {
  auto r = Exec(db,
                "UPDATE txmq_outbox SET attempts = attempts + 1, last_error = ?3, state = ?4,"
                " lease_owner = '', lease_until = NULL, next_attempt_at = " +
                    Now() + " + ?5 WHERE id = ?1 AND fence = ?2",
                {Value::Text(id), Value::Int(fence), Value::Text(error), Value::Int(park ? 1 : 0),
                 Value::Int(retry_in.count())});
  if (!r.ok()) return r.status();
  return r->changes == 1;
}

Status ReleaseClaims(sqlite3* db, const std::string& owner) {
  auto r = Exec(db,
                "UPDATE txmq_outbox SET lease_until = NULL, lease_owner = '' "
                "WHERE lease_owner = ?1 AND lease_until IS NOT NULL",
                {Value::Text(owner)});
  return r.ok() ? Status::OK() : r.status();
}

Result<Counts> CountRows(sqlite3* db) {
  auto r = Exec(db,
                "SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),"
                " count(*) FILTER (WHERE state = 0 AND msg_key <> '' AND EXISTS (SELECT 1 FROM"
                "  txmq_outbox p WHERE p.state = 1 AND p.msg_key = o.msg_key AND p.seq < o.seq)),"
                " coalesce(max(" +
                    Now() + " - created_at) FILTER (WHERE state = 0), 0) FROM txmq_outbox o");
  if (!r.ok()) return r.status();
  const Row& c = r->rows.at(0);
  Counts counts;
  counts.pending = static_cast<uint64_t>(c[0].AsInt());
  counts.parked = static_cast<uint64_t>(c[1].AsInt());
  counts.blocked = static_cast<uint64_t>(c[2].AsInt());
  counts.oldest_pending_age = std::chrono::milliseconds(c[3].AsInt());
  return counts;
}

Result<std::chrono::milliseconds> NextDueIn(sqlite3* db, bool hold_key_behind_parked) {
  // The rows ClaimDue would look at, each due at its next attempt or, when
  // claimed, when the claim runs out.
  const std::string earlier_blocks = hold_key_behind_parked ? "" : " AND e.state = 0";
  auto r = Exec(db,
                "SELECT coalesce(max(0, min(max(o.next_attempt_at, coalesce(o.lease_until,"
                " o.next_attempt_at))) - " +
                    Now() +
                    "), -1) FROM txmq_outbox o WHERE o.state = 0"
                    " AND (o.msg_key = '' OR NOT EXISTS (SELECT 1 FROM txmq_outbox e"
                    "      WHERE e.msg_key = o.msg_key AND e.seq < o.seq" +
                    earlier_blocks + "))");
  if (!r.ok()) return r.status();
  return std::chrono::milliseconds(r->rows.at(0)[0].AsInt());
}

Result<std::vector<OutboxRow>> ListRows(sqlite3* db, bool parked) {
  auto r = Exec(db,
                "SELECT o.seq, o.attempts, o.last_error, o.created_at, o.next_attempt_at,"
                " coalesce((SELECT p.id FROM txmq_outbox p WHERE p.state = 1 AND o.msg_key <> ''"
                "   AND p.msg_key = o.msg_key AND p.seq < o.seq ORDER BY p.seq LIMIT 1), ''),"
                " o.payload FROM txmq_outbox o WHERE o.state = ?1 ORDER BY o.seq",
                {Value::Int(parked ? 1 : 0)});
  if (!r.ok()) return r.status();
  std::vector<OutboxRow> rows;
  for (const Row& c : r->rows) {
    outbox::StoredRow stored;
    if (!outbox::DecodeRow(c[6].AsText(), &stored)) continue;
    stored.attempts = static_cast<uint32_t>(c[1].AsInt());
    stored.last_error = c[2].AsText();
    stored.created_ms = c[3].AsInt();
    stored.next_attempt_ms = c[4].AsInt();
    OutboxRow row = outbox::ToPublic(stored, static_cast<uint64_t>(c[0].AsInt()), parked);
    if (!parked) row.blocked_by = c[5].AsText();
    rows.push_back(std::move(row));
  }
  return rows;
}

Status RequeueRow(sqlite3* db, const std::string& id, const std::string& operator_name) {
  auto r = Exec(db,
                "UPDATE txmq_outbox SET state = 0, attempts = 0, last_error = '',"
                " next_attempt_at = " +
                    Now() +
                    ", lease_owner = '', lease_until = NULL "
                    "WHERE id = ?1 AND state = 1",
                {Value::Text(id)});
  if (!r.ok()) return r.status();
  if (r->changes == 0) {
    Audit(operator_name, "outbox-requeue", db, id, "not-found");
    return Status::NotFound("no parked outbox row '" + id + "' in SQLite database '" +
                            FileName(db) + "'");
  }
  Audit(operator_name, "outbox-requeue", db, id, "applied");
  return Status::OK();
}

Status DeleteRow(sqlite3* db, const std::string& id, bool parked_only,
                 const std::string& operator_name) {
  auto r = Exec(db,
                parked_only ? "DELETE FROM txmq_outbox WHERE id = ?1 AND state = 1"
                            : "DELETE FROM txmq_outbox WHERE id = ?1",
                {Value::Text(id)});
  if (!r.ok()) return r.status();
  if (r->changes == 0) {
    Audit(operator_name, "outbox-delete", db, id, "not-found");
    return Status::NotFound(std::string("no ") + (parked_only ? "parked " : "") + "outbox row '" +
                            id + "' in SQLite database '" + FileName(db) + "'");
  }
  Audit(operator_name, "outbox-delete", db, id, "applied");
  return Status::OK();
}

}  // namespace txmq::sqlite
