// The txmq tables in a service's PostgreSQL database, created and migrated
// by txmq. Every name starts with txmq_; the version of each component's
// tables is a row of txmq_schema:
//
//   txmq_schema (component text primary key, version int, migrated_at)
//
//   outbox, version 1:
//   txmq_outbox (
//     id              text primary key,  -- also the message id
//     seq             bigserial,         -- insert order; per key, commit
//                                        -- order (Add serializes a key's
//                                        -- writers, see pg/outbox.h)
//     topic, msg_key  text,
//     state           smallint,          -- 0 pending, 1 parked
//     attempts        int,
//     next_attempt_at timestamptz,
//     last_error      text,
//     created_at      timestamptz,
//     lease_owner     text,              -- the relay instance that claimed it
//     lease_until     timestamptz,       -- claimable by others after this
//     fence           bigint,            -- +1 per claim; a relay's writes
//                                        -- name the fence they claimed at
//     payload         bytea)             -- the message, txmq row format
//
//   outbox, version 2 adds, on an upgrade from 1, the txmq_schema row
//   'outbox.origins', whose migrated_at says since when every Add records
//   its origin, and:
//   txmq_origin (
//     message_id      text primary key,  -- an outbox message's id
//     state           char(1),           -- 'C' committed with its outbox
//                                        -- row, 'F' fenced: a compensation
//                                        -- came first (the row's Add then
//                                        -- fails on this key)
//     note            text,              -- who fenced it
//     recorded_at     timestamptz)       -- records go after the horizon
//
//   outbox, version 3: txmq_outbox WITH (fillfactor = 50), so a claim's
//   UPDATE finds room on its row's page and is heap-only (no new index
//   entries, a WAL record of the changed bytes only); and the function
//   txmq_outbox_add(id, topic, key, payload) that Add calls: the key's
//   advisory lock, the outbox row, its txmq_origin record, with plans
//   kept per session.
//
//   inbox, version 1:
//   txmq_inbox (
//     group_name      text,              -- the consumer group: a dedup
//     message_id      text,              -- namespace; primary key of both
//     state           char(1),           -- 'P' processed, 'X' compensated,
//                                        -- 'U' undone, 'F' fenced (its undo
//                                        -- came first), 'S' skipped (came
//                                        -- after its undo; not run)
//     note            text,              -- the compensation's reason
//     processed_at    timestamptz)       -- records go after the horizon
//
//   transactions, version 1:
//   txmq_tx (
//     tx_id           text primary key,
//     state           char(1),           -- 'C' committed by the local
//                                        -- transaction, 'R' rolled back
//                                        -- by a check (a tombstone)
//     recorded_at     timestamptz)       -- records go after the horizon
//
// Migration runs in one transaction under an advisory lock, so service
// instances starting together migrate once; a database whose tables are
// newer than this txmq knows is refused, naming both versions.
#pragma once

#include <libpq-fe.h>

#include "txmq/status.h"

namespace txmq::pg {

inline constexpr int kOutboxSchemaVersion = 3;
inline constexpr int kInboxSchemaVersion = 1;
inline constexpr int kTransactionsSchemaVersion = 1;

// Create or upgrade the outbox (inbox) tables on `conn` (not inside a
// transaction of the caller's). FAILED_PRECONDITION when the database's
// tables are newer than this txmq's version.
Status MigrateOutbox(PGconn* conn);
Status MigrateInbox(PGconn* conn);
Status MigrateTransactions(PGconn* conn);

}  // namespace txmq::pg
