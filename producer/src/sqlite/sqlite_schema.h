// The txmq tables in a service's SQLite database, created and migrated by
// txmq; the same shapes as in PostgreSQL (pg/pg_schema.h), with times as
// integer milliseconds since the epoch:
//
//   txmq_schema (component text primary key, version int, migrated_at)
//
//   outbox, version 1:
//   txmq_outbox (
//     seq             integer primary key autoincrement,  -- insert order,
//                                        -- which is commit order: SQLite
//                                        -- runs one writer at a time
//     id              text unique,       -- also the message id
//     topic, msg_key  text,
//     state           integer,           -- 0 pending, 1 parked
//     attempts        integer,
//     next_attempt_at integer,
//     last_error      text,
//     created_at      integer,
//     lease_owner     text,              -- the relay instance that claimed it
//     lease_until     integer,           -- claimable by others after this
//     fence           integer,           -- +1 per claim; a relay's writes
//                                        -- name the fence they claimed at
//     payload         blob)              -- the message, txmq row format
//
//   outbox, version 2 adds, on an upgrade from 1, the txmq_schema row
//   'outbox.origins', whose migrated_at says since when every Add records
//   its origin, and:
//   txmq_origin (message_id primary key, state 'C' committed with its
//                outbox row / 'F' fenced by a compensation that came
//                first, note, recorded_at)
//
//   inbox, version 1:
//   txmq_inbox (group_name, message_id  -- primary key
//               state 'P' processed / 'X' compensated / 'U' undone /
//               'F' fenced / 'S' skipped, note, processed_at)
//
//   transactions, version 1:
//   txmq_tx (tx_id primary key, state 'C' committed / 'R' rolled back by a
//            check (a tombstone), recorded_at)
//
// Migration runs in one BEGIN IMMEDIATE transaction: SQLite's write lock
// makes processes starting together migrate once. A database whose tables
// are newer than this txmq knows is refused, naming both versions.
#pragma once

#include <sqlite3.h>

#include "txmq/status.h"

namespace txmq::sqlite {

inline constexpr int kOutboxSchemaVersion = 2;
inline constexpr int kInboxSchemaVersion = 1;
inline constexpr int kTransactionsSchemaVersion = 1;

// Create or upgrade the tables on `db` (outside any transaction of the
// caller's). FAILED_PRECONDITION when the database's tables are newer.
Status MigrateOutbox(sqlite3* db);
Status MigrateInbox(sqlite3* db);
Status MigrateTransactions(sqlite3* db);

}  // namespace txmq::sqlite
