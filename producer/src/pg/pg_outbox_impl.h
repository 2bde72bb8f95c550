// pg::Outbox::Impl. pg_outbox.cc has the calls users make; the relay is
// sql::Relay (producer/src/sql/sql_relay.h) over PgRelayTable
// (pg_outbox_relay.cc): the PostgreSQL statements on the relay's own
// connection, which LISTENs so a committed Add wakes it.
//
// admin_conn_ (under mu_) serves Flush and stats from any thread;
// relay_ runs the relay between Start and Shutdown.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_outbox_table.h"
#include "producer/src/sql/relay_holder.h"
#include "producer/src/sql/sql_relay.h"
#include "txmq/pg/outbox.h"

namespace txmq::pg {

// Makes `conn` the relay's: its commits do not wait for the WAL flush
// (pg_outbox_relay.cc says why that is safe) and it LISTENs for Adds.
Status PrepareRelayConnection(PGconn* conn);

// The relay's connection: reconnects and prepares again after a failure;
// its socket wakes the relay on NOTIFY.
std::unique_ptr<sql::RelayTable> MakeRelayTable(std::string conninfo, Connection conn,
                                                bool hold_key_behind_parked);

class Outbox::Impl {
 public:
  explicit Impl(OutboxOptions options);
  ~Impl();

  Status Start();
  void Shutdown();
  Status Add(PGconn* conn, Message message);
  Status Flush(std::chrono::milliseconds timeout);
  OutboxStats stats() const;

 private:
  Result<Counts> Count() const;

  const OutboxOptions options_;
  mutable std::mutex mu_;
  mutable Connection admin_conn_;  // guarded by mu_
  sql::RelayHolder relay_;
};

}  // namespace txmq::pg
