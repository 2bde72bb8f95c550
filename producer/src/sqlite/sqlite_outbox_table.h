// The statements of the SQLite outbox (tables: sqlite_schema.h). Each takes
// the database handle to run on.
//
// Claims: SQLite has no row locks and no SKIP LOCKED; it has one writer
// per database at a time. A relay claims in a short BEGIN IMMEDIATE
// transaction (it takes the write lock first, so the rows it reads are the
// latest committed ones): due pending rows whose lease is free and which
// have no earlier row of their key left in the table get its lease and a
// fence one higher. A key's later row waits while an earlier one is in
// the table (claimed by anyone, or parked when parked rows hold their
// key), so at most one row of a key is in flight across all relays and a
// key's rows go in seq order. Marking a row sent or failed names the fence
// it was claimed at: after its lease ran out and another relay claimed it,
// the first relay's late write changes nothing.
//
// No gap: a row's seq is taken at its INSERT, while its transaction holds
// the database's write lock, which it keeps until COMMIT or ROLLBACK. No
// other transaction can insert a row (or claim: a claim writes) in
// between, so when a claim sees seq N committed, every smaller seq is
// committed too or will never be. The PostgreSQL gap (A takes 10, B takes
// 11 and commits first) cannot happen here.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "producer/src/sql/sql_relay.h"
#include "txmq/message.h"
#include "txmq/outbox.h"
#include "txmq/status.h"

namespace txmq::sqlite {

// Inserts the row inside the caller's open transaction.
// FAILED_PRECONDITION when `db` has no transaction open; CONFLICT when a
// row with this id exists.
Status InsertRow(sqlite3* db, const Message& message);

// The claim (see above), in its own BEGIN IMMEDIATE transaction.
Result<std::vector<sql::ClaimedRow>> ClaimDue(sqlite3* db, const std::string& owner,
                                              std::chrono::milliseconds lease, int limit,
                                              bool hold_key_behind_parked);
Result<bool> MarkSent(sqlite3* db, const std::string& id, int64_t fence);
// Sets the origin records of `ids` recorded now (sql::RelayTable).
Status RestartOriginHorizon(sqlite3* db, const std::vector<std::string>& ids);
Result<bool> MarkFailed(sqlite3* db, const std::string& id, int64_t fence, bool park,
                        std::chrono::milliseconds retry_in, const std::string& error);
Status ReleaseClaims(sqlite3* db, const std::string& owner);

using Counts = sql::Counts;
Result<Counts> CountRows(sqlite3* db);
// How long until the next pending row can be claimed (0: one can now;
// -1: none), as pg::NextDueIn: a claimed row (and a row behind an earlier
// one of its key) when the claim runs out, not now.
Result<std::chrono::milliseconds> NextDueIn(sqlite3* db, bool hold_key_behind_parked = true);

// Operator access, also with no relay running (as pg_outbox_table.h).
Result<std::vector<OutboxRow>> ListRows(sqlite3* db, bool parked);
Status RequeueRow(sqlite3* db, const std::string& id, const std::string& operator_name);
Status DeleteRow(sqlite3* db, const std::string& id, bool parked_only,
                 const std::string& operator_name);

}  // namespace txmq::sqlite
