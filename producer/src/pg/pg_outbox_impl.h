// pg::Outbox::Impl. pg_outbox.cc has the calls users make; pg_outbox_relay.cc
// the relay thread.
//
// Thread "txmq-pg-relay" (started by Start) owns relay_conn_: it claims due
// rows, sends them and writes their outcomes. The producer's I/O thread
// hands outcomes over through outcomes_ and wakes the relay through
// wake_pipe_. admin_conn_ (under admin_mu_) serves Flush and stats from
// any thread. Start and Shutdown run one at a time (lifecycle_mu_); they
// alone create and destroy producer_ and relay_.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_outbox_table.h"
#include "protocol/src/log.h"
#include "txmq/pg/outbox.h"

namespace txmq::pg {

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
  struct Outcome {
    ClaimedRow row;
    Status status;
  };

  // --- pg_outbox_relay.cc (relay thread) ---
  void Relay();
  // Claims due rows up to max_in_flight and sends them; how many it sent.
  int ClaimAndSend();
  // Writes the outcomes handed over so far; false when the database failed.
  bool ApplyOutcomes();
  void Record(const Outcome& o);
  // Sleeps until an outcome or a NOTIFY arrives, or `timeout` passes.
  void Wait(std::chrono::milliseconds timeout);
  bool EnsureConnected();
  // The relay's own connection: listening for Adds, its commits not
  // waiting for the WAL flush (pg_outbox_relay.cc says why that is safe).
  static Result<Connection> OpenRelayConnection(const std::string& conninfo);
  int64_t BackoffMs(uint32_t failures);
  void Wake();

  const OutboxOptions options_;
  std::string instance_;
  std::shared_ptr<spdlog::logger> log_;

  std::mutex lifecycle_mu_;
  std::unique_ptr<Producer> producer_;  // guarded by lifecycle_mu_; used by the relay
  std::thread relay_;                   // guarded by lifecycle_mu_
  int wake_pipe_[2] = {-1, -1};         // [0] relay reads, [1] anyone writes

  Connection relay_conn_;     // relay thread (Shutdown once it is gone)
  std::mt19937_64 rng_;       // relay thread
  uint32_t db_failures_ = 0;  // relay thread: failed database calls in a row

  mutable std::mutex admin_mu_;
  mutable Connection admin_conn_;  // guarded by admin_mu_

  mutable std::mutex mu_;
  std::deque<Outcome> outcomes_;  // guarded by mu_
  int in_flight_ = 0;             // guarded by mu_
  uint64_t sent_ = 0;             // guarded by mu_
  std::string last_error_;        // guarded by mu_
  bool running_ = false;          // guarded by mu_
};

}  // namespace txmq::pg
