// The relay thread of the PostgreSQL outbox ("txmq-pg-relay"): claims due
// rows, sends them, writes what the broker answered. What it shares is in
// pg_outbox_impl.h.
//
// When the database is unreachable the relay retries with backoff; the
// outcomes it could not write are dropped, and the rows are sent again
// once their claim runs out (the broker's dedup window stores them once,
// so the lease must stay well inside that window, 10 min by default).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "producer/src/backoff.h"
#include "producer/src/library_send.h"
#include "producer/src/pg/pg_outbox_impl.h"
#include "protocol/src/util.h"

namespace txmq::pg {

int64_t Outbox::Impl::BackoffMs(uint32_t failures) {
  return producer::JitteredBackoffMs(options_.backoff_initial, options_.backoff_max, failures,
                                     rng_);
}
void Outbox::Impl::Wake() {
  if (wake_pipe_[1] >= 0) {
    const char byte = 1;
    (void)!write(wake_pipe_[1], &byte, 1);
  }
}

// The relay's writes (claims, deletions of sent rows, failed attempts)
// commit without waiting for the WAL flush: a database crash may lose the
// last few hundred milliseconds of them, and then a row is claimed and sent
// again, which the broker's dedup window stores once, in the same place in
// its key's order. So the relay adds no fsync of its own to the database
// the service's transactions wait on. The service's Add commits as the
// service's transaction says (synchronous by default): that is the write
// that must not be lost.
Result<Connection> Outbox::Impl::OpenRelayConnection(const std::string& conninfo) {
  auto c = Connection::Open(conninfo);
  if (!c.ok()) return c.status();
  for (const char* sql : {"SET synchronous_commit = off", "LISTEN txmq_outbox"}) {
    if (auto r = Exec(c->get(), sql); !r.ok()) return r.status();
  }
  return c;
}

bool Outbox::Impl::EnsureConnected() {
  if (!relay_conn_.broken()) return true;
  auto c = OpenRelayConnection(options_.conninfo);
  if (c.ok()) {
    relay_conn_ = std::move(*c);
    log_->info("pg outbox relay {}: connected to database '{}' again", instance_,
               PQdb(relay_conn_.get()));
    db_failures_ = 0;
    return true;
  }
  ++db_failures_;
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = c.status().ToString();
  log_->warn("pg outbox relay {}: {} ({} failures in a row)", instance_, last_error_, db_failures_);
  return false;
}

void Outbox::Impl::Relay() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!running_) return;
    }
    if (!EnsureConnected()) {
      Wait(std::chrono::milliseconds(BackoffMs(db_failures_)));
      continue;
    }
    const bool written = ApplyOutcomes();
    const int sent = written ? ClaimAndSend() : 0;
    if (sent > 0) continue;  // more may be due: claim again before sleeping
    std::chrono::milliseconds sleep = options_.poll_interval;
    if (written && !relay_conn_.broken()) {
      if (auto due = NextDueIn(relay_conn_.get()); due.ok() && due->count() >= 0) {
        sleep = std::clamp(*due, std::chrono::milliseconds(1), sleep);
      }
    }
    Wait(sleep);
  }
}

int Outbox::Impl::ClaimAndSend() {
  int room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    room = options_.max_in_flight - in_flight_;
  }
  if (room <= 0) return 0;
  auto claimed =
      ClaimDue(relay_conn_.get(), instance_, options_.lease, room, options_.hold_key_behind_parked);
  if (!claimed.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = claimed.status().ToString();
    log_->warn("pg outbox relay {}: claiming rows failed: {}", instance_, last_error_);
    return 0;
  }
  if (claimed->empty()) return 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ += static_cast<int>(claimed->size());
  }
  for (ClaimedRow& row : *claimed) {
    Message message = row.message;
    producer::SendStamped(*producer_, std::move(message),
                          [this, row = std::move(row)](Result<SendResult> r) mutable {
                            {
                              std::lock_guard<std::mutex> lock(mu_);
                              outcomes_.push_back({std::move(row), r.status()});
                            }
                            Wake();
                          });
  }
  return static_cast<int>(claimed->size());
}

bool Outbox::Impl::ApplyOutcomes() {
  std::deque<Outcome> outcomes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes.swap(outcomes_);
  }
  // The outcomes of a batch are written in one transaction: one commit
  // (one WAL flush) instead of one per row, which capped a relay at the
  // database's commit rate.
  PGconn* conn = relay_conn_.get();
  const bool batch = outcomes.size() > 1 && Exec(conn, "BEGIN").ok();
  for (const Outcome& o : outcomes) {
    if (relay_conn_.broken()) break;
    Record(o);
  }
  if (batch && !relay_conn_.broken()) {
    // A statement that failed aborted the transaction: COMMIT would only
    // roll it back (and report success), so say what was lost instead.
    const bool aborted = PQtransactionStatus(conn) == PQTRANS_INERROR;
    auto ended = Exec(conn, aborted ? "ROLLBACK" : "COMMIT");
    if (aborted || !ended.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ended.ok()) last_error_ = ended.status().ToString();
      log_->warn(
          "pg outbox relay {}: the outcomes of {} rows were not written ({}); they are sent "
          "again after their claim runs out and stored once",
          instance_, outcomes.size(), last_error_);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ -= static_cast<int>(outcomes.size());
  return !relay_conn_.broken();
}

void Outbox::Impl::Record(const Outcome& o) {
  const std::string& id = o.row.message.id;
  if (o.status.ok()) {
    auto deleted = MarkSent(relay_conn_.get(), id, o.row.fence);
    std::lock_guard<std::mutex> lock(mu_);
    ++sent_;
    if (!deleted.ok()) {
      last_error_ = deleted.status().ToString();
      log_->warn(
          "pg outbox relay {}: row {} was acknowledged but its deletion failed ({}); it "
          "is sent again after its claim runs out and stored once",
          instance_, id, last_error_);
    } else if (!*deleted) {
      log_->info(
          "pg outbox relay {}: row {} was acknowledged after its claim ran out; the relay "
          "that took it over settles it",
          instance_, id);
    }
    return;
  }
  const uint32_t attempts = o.row.attempts + 1;
  const bool permanent = !o.status.IsRetryable();
  const bool too_many =
      options_.max_attempts > 0 && attempts >= static_cast<uint32_t>(options_.max_attempts);
  const bool too_old = options_.max_age.count() > 0 && o.row.age_ms >= options_.max_age.count();
  const bool park = permanent || too_many || too_old;
  const std::string error = o.status.ToString();
  auto written = MarkFailed(relay_conn_.get(), id, o.row.fence, park,
                            std::chrono::milliseconds(park ? 0 : BackoffMs(attempts)), error);
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = written.ok() ? error : written.status().ToString();
  if (park && written.ok() && *written) {
    log_->error(
        "outbox row {} (topic '{}', key '{}') parked after {} attempts: {}. Requeue or "
        "delete it: txmqctl outbox list --pg '<conninfo of database {}>' --state parked",
        id, o.row.message.topic, o.row.message.key, attempts, error, PQdb(relay_conn_.get()));
  }
}

void Outbox::Impl::Wait(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{wake_pipe_[0], POLLIN, 0}, {-1, POLLIN, 0}};
  nfds_t n = 1;
  if (!relay_conn_.broken()) {
    fds[1].fd = PQsocket(relay_conn_.get());
    n = fds[1].fd >= 0 ? 2 : 1;
  }
  (void)poll(fds, n, static_cast<int>(std::max<int64_t>(timeout.count(), 0)));
  if (fds[0].revents & POLLIN) {
    char buf[256];
    while (read(wake_pipe_[0], buf, sizeof(buf)) > 0) {
    }
  }
  if (n == 2 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
    PQconsumeInput(relay_conn_.get());  // a broken link shows in PQstatus
    while (PGnotify* note = PQnotifies(relay_conn_.get())) PQfreemem(note);
  }
}

}  // namespace txmq::pg
