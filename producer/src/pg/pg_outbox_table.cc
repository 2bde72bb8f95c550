#include "producer/src/pg/pg_outbox_table.h"

#include <set>

#include "producer/src/outbox_row.h"
#include "producer/src/pg/pg_connection.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::pg {

namespace {

// Milliseconds since `column`, by the database's clock.
std::string AgeMs(const char* column) {
  return std::string("(extract(epoch from clock_timestamp() - ") + column + ") * 1000)::bigint";
}

// The payload: the message in the outbox row format (outbox_row.h); the
// row's columns, not the payload, hold its attempts and state.
std::string EncodePayload(const Message& message) {
  outbox::StoredRow row;
  row.message = message;
  return outbox::EncodeRow(row);
}

void Audit(const std::string& operator_name, const char* action, PGconn* conn,
           const std::string& id, const std::string& result) {
  Logger("audit")->warn("operator='{}' action={} database='{}' row={} result={}", operator_name,
                        action, PQdb(conn), id, result);
}

}  // namespace

Status InsertRow(PGconn* conn, const Message& message, bool notify) {
  if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
    return Status::FailedPrecondition(
        "outbox Add runs inside the caller's open transaction (BEGIN first, on the same "
        "connection as the business rows); this connection is not in one");
  }
  // One round trip for the key's lock, the row and its origin record: at
  // one writer the business transaction is latency-bound, and each extra
  // round trip to the server cost about as much as its commit. The
  // function (schema version 3, pg_schema.cc) keeps its statements' plans
  // for the session, where a statement sent here would be planned anew at
  // each call.
  //  - The key's transaction-scoped lock is taken before the row gets its
  //    sequence number, so rows of one key are numbered in commit order.
  //  - The origin record is what a compensation asks about later
  //    (sql/origin_check.h). Its key conflicts with a compensation's fence,
  //    committed or not, so a fenced message cannot commit.
  auto r = Exec(conn, "SELECT txmq_outbox_add($1::text, $2::text, $3::text, $4::bytea)",
                {Param::Text(message.id), Param::Text(message.topic), Param::Text(message.key),
                 Param::Bytes(EncodePayload(message))});
  if (!r.ok()) {
    if (r.status().code() != StatusCode::kConflict) return r.status();
    return Status::Aborted("outbox Add of message " + message.id +
                           ": a compensation fenced this id before it committed (or a message "
                           "with this id was added before); the transaction has failed, roll "
                           "it back");
  }
  if (!notify) return Status::OK();
  if (auto n = Exec(conn, "SELECT pg_notify('txmq_outbox', '')"); !n.ok()) return n.status();
  return Status::OK();
}

Result<std::vector<ClaimedRow>> ClaimDue(PGconn* conn, const std::string& owner,
                                         std::chrono::milliseconds lease, int limit,
                                         bool hold_key_behind_parked,
                                         PreparedStatements* prepared) {
  const std::string earlier_blocks = hold_key_behind_parked ? "" : " AND e.state = 0";
  const std::string sql =
      "WITH due AS ("
      "  SELECT o.id FROM txmq_outbox o"
      "  WHERE o.state = 0 AND o.next_attempt_at <= clock_timestamp()"
      "    AND (o.lease_until IS NULL OR o.lease_until < clock_timestamp())"
      "    AND (o.msg_key = '' OR NOT EXISTS (SELECT 1 FROM txmq_outbox e"
      "         WHERE e.msg_key = o.msg_key AND e.seq < o.seq" +
      earlier_blocks +
      "))"
      "  ORDER BY o.seq LIMIT $3 FOR UPDATE SKIP LOCKED) "
      "UPDATE txmq_outbox t SET lease_owner = $1, fence = t.fence + 1,"
      "  lease_until = clock_timestamp() + $2::bigint * interval '1 millisecond' "
      "FROM due WHERE t.id = due.id "
      "RETURNING t.seq, t.fence, t.attempts, " +
      AgeMs("t.created_at") + ", t.payload";
  auto r =
      Exec(conn, prepared, sql, {Param::Text(owner), Param::Int(lease.count()), Param::Int(limit)});
  if (!r.ok()) return r.status();
  std::vector<ClaimedRow> rows;
  const PGresult* res = r->get();
  for (int i = 0; i < PQntuples(res); ++i) {
    outbox::StoredRow stored;
    if (!outbox::DecodeRow(BytesField(res, i, 4), &stored)) {
      Logger("outbox")->error(
          "unreadable payload of outbox row seq {} in database '{}'; left as is",
          IntField(res, i, 0), PQdb(conn));
      continue;
    }
    ClaimedRow row;
    row.message = std::move(stored.message);
    row.seq = IntField(res, i, 0);
    row.fence = IntField(res, i, 1);
    row.attempts = static_cast<uint32_t>(IntField(res, i, 2));
    row.age_ms = IntField(res, i, 3);
    rows.push_back(std::move(row));
  }
  // UPDATE ... RETURNING does not keep the CTE's order.
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return rows;
}

Result<bool> MarkSent(PGconn* conn, const std::string& id, int64_t fence,
                      PreparedStatements* prepared) {
  auto r = Exec(conn, prepared, "DELETE FROM txmq_outbox WHERE id = $1 AND fence = $2",
                {Param::Text(id), Param::Int(fence)});
  if (!r.ok()) return r.status();
  return RowsChanged(r->get()) == 1;
}

namespace {

// A PostgreSQL array literal of texts: every element double-quoted, with
// backslash and double quote escaped (the array input syntax), so an id
// with commas or braces stays one element.
std::string TextArray(const std::vector<std::pair<std::string, int64_t>>& rows) {
  std::string out = "{";
  for (size_t i = 0; i < rows.size(); ++i) {
    out += i == 0 ? "\"" : ",\"";
    for (char c : rows[i].first) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string FenceArray(const std::vector<std::pair<std::string, int64_t>>& rows) {
  std::string out = "{";
  for (size_t i = 0; i < rows.size(); ++i) {
    out += (i == 0 ? "" : ",") + std::to_string(rows[i].second);
  }
  return out + "}";
}

}  // namespace

Result<std::vector<bool>> MarkSentMany(PGconn* conn,
                                       const std::vector<std::pair<std::string, int64_t>>& rows,
                                       PreparedStatements* prepared) {
  auto r = Exec(conn, prepared,
                "DELETE FROM txmq_outbox o USING unnest($1::text[], $2::bigint[]) AS s(id, fence) "
                "WHERE o.id = s.id AND o.fence = s.fence RETURNING o.id",
                {Param::Text(TextArray(rows)), Param::Text(FenceArray(rows))});
  if (!r.ok()) return r.status();
  std::set<std::string> deleted;
  for (int i = 0; i < PQntuples(r->get()); ++i) deleted.insert(std::string(Field(r->get(), i, 0)));
  std::vector<bool> out;
  for (const auto& row : rows) out.push_back(deleted.count(row.first) > 0);
  return out;
}

Status RestartOriginHorizon(PGconn* conn, const std::vector<std::string>& ids,
                            PreparedStatements* prepared) {
  std::vector<std::pair<std::string, int64_t>> rows;
  for (const std::string& id : ids) rows.emplace_back(id, 0);
  auto r = Exec(conn, prepared,
                "UPDATE txmq_origin SET recorded_at = clock_timestamp()"
                " WHERE message_id = ANY($1::text[])",
                {Param::Text(TextArray(rows))});
  return r.ok() ? Status::OK() : r.status();
}

Result<bool> MarkFailed(PGconn* conn, const std::string& id, int64_t fence, bool park,
                        std::chrono::milliseconds retry_in, const std::string& error,
                        PreparedStatements* prepared) {
  auto r = Exec(conn, prepared,
                "UPDATE txmq_outbox SET attempts = attempts + 1, last_error = $3, state = $4,"
                " lease_owner = '', lease_until = NULL,"
                " next_attempt_at = clock_timestamp() + $5::bigint * interval '1 millisecond' "
                "WHERE id = $1 AND fence = $2",
                {Param::Text(id), Param::Int(fence), Param::Text(error), Param::Int(park ? 1 : 0),
                 Param::Int(retry_in.count())});
  if (!r.ok()) return r.status();
  return RowsChanged(r->get()) == 1;
}

Status ReleaseClaims(PGconn* conn, const std::string& owner) {
  auto r = Exec(conn,
                "UPDATE txmq_outbox SET lease_until = NULL, lease_owner = '' "
                "WHERE lease_owner = $1 AND lease_until IS NOT NULL",
                {Param::Text(owner)});
  return r.ok() ? Status::OK() : r.status();
}

Result<Counts> CountRows(PGconn* conn) {
  auto r = Exec(conn,
                "SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),"
                " count(*) FILTER (WHERE state = 0 AND msg_key <> '' AND EXISTS (SELECT 1 FROM "
                "  txmq_outbox p WHERE p.state = 1 AND p.msg_key = o.msg_key AND p.seq < o.seq)),"
                " coalesce(max(" +
                    AgeMs("created_at") + ") FILTER (WHERE state = 0), 0) FROM txmq_outbox o");
  if (!r.ok()) return r.status();
  const PGresult* res = r->get();
  Counts c;
  c.pending = static_cast<uint64_t>(IntField(res, 0, 0));
  c.parked = static_cast<uint64_t>(IntField(res, 0, 1));
  c.blocked = static_cast<uint64_t>(IntField(res, 0, 2));
  c.oldest_pending_age = std::chrono::milliseconds(IntField(res, 0, 3));
  return c;
}

Result<std::chrono::milliseconds> NextDueIn(PGconn* conn, bool hold_key_behind_parked,
                                            PreparedStatements* prepared) {
  // The rows ClaimDue would look at, each due at its next attempt or, when
  // claimed, when the claim runs out.
  const std::string earlier_blocks = hold_key_behind_parked ? "" : " AND e.state = 0";
  auto r = Exec(conn, prepared,
                // No row: -1 (greatest() skips NULLs, so the NULL of an
                // empty min() is tested first; it made 0, due now).
                "SELECT CASE WHEN due IS NULL THEN -1 ELSE greatest(0, (extract(epoch from"
                " due - clock_timestamp()) * 1000)::bigint) END FROM ("
                " SELECT min(greatest(o.next_attempt_at, coalesce(o.lease_until,"
                " o.next_attempt_at))) AS due FROM txmq_outbox o WHERE o.state = 0"
                " AND (o.msg_key = '' OR NOT EXISTS (SELECT 1 FROM txmq_outbox e"
                "      WHERE e.msg_key = o.msg_key AND e.seq < o.seq" +
                    earlier_blocks + "))) AS next",
                {});
  if (!r.ok()) return r.status();
  return std::chrono::milliseconds(IntField(r->get(), 0, 0));
}

Result<std::vector<OutboxRow>> ListRows(PGconn* conn, bool parked) {
  auto r = Exec(conn,
                "SELECT o.seq, o.attempts, o.last_error,"
                " (extract(epoch from o.created_at) * 1000)::bigint,"
                " (extract(epoch from o.next_attempt_at) * 1000)::bigint,"
                " coalesce((SELECT p.id FROM txmq_outbox p WHERE p.state = 1 AND o.msg_key <> ''"
                "   AND p.msg_key = o.msg_key AND p.seq < o.seq ORDER BY p.seq LIMIT 1), ''),"
                " o.payload FROM txmq_outbox o WHERE o.state = $1 ORDER BY o.seq",
                {Param::Int(parked ? 1 : 0)});
  if (!r.ok()) return r.status();
  const PGresult* res = r->get();
  std::vector<OutboxRow> rows;
  for (int i = 0; i < PQntuples(res); ++i) {
    outbox::StoredRow stored;
    if (!outbox::DecodeRow(BytesField(res, i, 6), &stored)) continue;
    stored.attempts = static_cast<uint32_t>(IntField(res, i, 1));
    stored.last_error = std::string(Field(res, i, 2));
    stored.created_ms = IntField(res, i, 3);
    stored.next_attempt_ms = IntField(res, i, 4);
    OutboxRow row = outbox::ToPublic(stored, static_cast<uint64_t>(IntField(res, i, 0)), parked);
    if (!parked) row.blocked_by = std::string(Field(res, i, 5));
    rows.push_back(std::move(row));
  }
  return rows;
}

Status RequeueRow(PGconn* conn, const std::string& id, const std::string& operator_name) {
  auto r = Exec(conn,
                "UPDATE txmq_outbox SET state = 0, attempts = 0, last_error = '',"
                " next_attempt_at = clock_timestamp(), lease_owner = '', lease_until = NULL "
                "WHERE id = $1 AND state = 1",
                {Param::Text(id)});
  if (!r.ok()) return r.status();
  if (RowsChanged(r->get()) == 0) {
    Audit(operator_name, "outbox-requeue", conn, id, "not-found");
    return Status::NotFound("no parked outbox row '" + id + "' in database '" + PQdb(conn) + "'");
  }
  (void)Exec(conn, "SELECT pg_notify('txmq_outbox', '')");
  Audit(operator_name, "outbox-requeue", conn, id, "applied");
  return Status::OK();
}

Status DeleteRow(PGconn* conn, const std::string& id, bool parked_only,
                 const std::string& operator_name) {
  auto r = Exec(conn,
                parked_only ? "DELETE FROM txmq_outbox WHERE id = $1 AND state = 1"
                            : "DELETE FROM txmq_outbox WHERE id = $1",
                {Param::Text(id)});
  if (!r.ok()) return r.status();
  if (RowsChanged(r->get()) == 0) {
    Audit(operator_name, "outbox-delete", conn, id, "not-found");
    return Status::NotFound(std::string("no ") + (parked_only ? "parked " : "") + "outbox row '" +
                            id + "' in database '" + PQdb(conn) + "'");
  }
  (void)Exec(conn, "SELECT pg_notify('txmq_outbox', '')");
  Audit(operator_name, "outbox-delete", conn, id, "applied");
  return Status::OK();
}

}  // namespace txmq::pg
