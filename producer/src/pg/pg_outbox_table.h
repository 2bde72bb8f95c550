// The statements of the PostgreSQL outbox (tables: pg_schema.h). Each
// takes the connection to run on; none begins or ends a transaction except
// where it says so.
//
// Claims: a relay claims a batch of due pending rows with FOR UPDATE SKIP
// LOCKED, sets its lease and bumps each row's fence; a row is claimable
// when no earlier row of its key is still in the table (pending, claimed
// by anyone, or parked when parked rows hold their key), so at most one row
// of a key is in flight across all relays and a key's rows go in seq
// order. Marking a row sent or failed names the fence it was claimed at:
// after its lease ran out and another relay claimed it, the first relay's
// late write changes nothing (the other relay sends it again; the broker's
// dedup window stores it once).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "producer/src/pg/pg_connection.h"
#include "producer/src/sql/sql_relay.h"
#include "txmq/message.h"
#include "txmq/outbox.h"
#include "txmq/status.h"

namespace txmq::pg {

using ClaimedRow = sql::ClaimedRow;

// Inserts the row inside the caller's open transaction; with `notify`,
// NOTIFY wakes the relays when it commits. A keyed row first takes a transaction-scoped
// advisory lock of its key, so writers of one key commit one after the
// other and their seq order is their commit order. FAILED_PRECONDITION
// when `conn` is not inside a transaction; CONFLICT when a row with this
// id exists.
Status InsertRow(PGconn* conn, const Message& message, bool notify);

// The relay's statements (ClaimDue, MarkSent, MarkSentMany, MarkFailed,
// NextDueIn) run as prepared statements of `prepared` when it is given:
// the relay's own connection.
Result<std::vector<ClaimedRow>> ClaimDue(PGconn* conn, const std::string& owner,
                                         std::chrono::milliseconds lease, int limit,
                                         bool hold_key_behind_parked,
                                         PreparedStatements* prepared = nullptr);

// Deletes a sent row; false when the row's fence moved on (or it is gone).
Result<bool> MarkSent(PGconn* conn, const std::string& id, int64_t fence,
                      PreparedStatements* prepared = nullptr);
// MarkSent of many rows in one statement (one commit); for each row in
// order, whether it was deleted.
// Sets the origin records of `ids` recorded now (sql::RelayTable).
Status RestartOriginHorizon(PGconn* conn, const std::vector<std::string>& ids,
                            PreparedStatements* prepared);
Result<std::vector<bool>> MarkSentMany(PGconn* conn,
                                       const std::vector<std::pair<std::string, int64_t>>& rows,
                                       PreparedStatements* prepared = nullptr);
// Records a failed attempt: parks the row (`park`) or makes it due again
// in `retry_in`; false when the row's fence moved on.
Result<bool> MarkFailed(PGconn* conn, const std::string& id, int64_t fence, bool park,
                        std::chrono::milliseconds retry_in, const std::string& error,
                        PreparedStatements* prepared = nullptr);
// Gives back the claims of `owner` that are still held (a relay shutting
// down), so other relays need not wait out the lease.
Status ReleaseClaims(PGconn* conn, const std::string& owner);

using Counts = sql::Counts;
Result<Counts> CountRows(PGconn* conn);
// How long until the next pending row can be claimed (0: one can now;
// -1: none), for the relay's sleep: a claimed row when its claim runs out,
// a row behind an earlier one of its key not before that one (which is
// what decides), behind a parked one never when `hold_key_behind_parked`.
// The relay is woken by its own outcomes: while its rows are in flight it
// does not poll.
Result<std::chrono::milliseconds> NextDueIn(PGconn* conn, bool hold_key_behind_parked = true,
                                            PreparedStatements* prepared = nullptr);

// Operator access, also with no relay running. Requeue makes a parked row
// pending again (attempts reset, keeps its seq); Delete removes a parked
// row, or any row unless `parked_only`. NOT_FOUND names the id. Each
// writes one audit line naming `operator_name`.
Result<std::vector<OutboxRow>> ListRows(PGconn* conn, bool parked);
Status RequeueRow(PGconn* conn, const std::string& id, const std::string& operator_name);
Status DeleteRow(PGconn* conn, const std::string& id, bool parked_only,
                 const std::string& operator_name);

}  // namespace txmq::pg
