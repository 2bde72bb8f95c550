// The relay of an outbox table in the service's own SQL database, shared by
// the PostgreSQL and the SQLite outbox: one library thread that claims due
// rows through a RelayTable (the backend's statements), sends them with a
// Producer, and writes what the broker answered under the claim's fence.
//
// The backend decides how a claim is made safe between relays (PostgreSQL:
// FOR UPDATE SKIP LOCKED; SQLite: one writer at a time); this class owns
// what does not depend on it: how many rows are in flight, backoff and
// parking of failed rows, outcomes handed over from the producer's I/O
// thread, sleeping until a row is due, giving claims back at shutdown.
//
// When the database fails the relay retries with backoff; the outcomes it
// could not write are dropped, and the rows are sent again once their
// claim runs out (the broker's dedup window stores them once, so the lease
// must stay well inside that window, 10 min by default).
//
// Thread safety: Start and Shutdown run one at a time (the owner's
// lifecycle); sent() and last_error() from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "producer/src/sweep_throttle.h"
#include "protocol/src/log.h"
#include "txmq/message.h"
#include "txmq/producer.h"
#include "txmq/status.h"

namespace txmq::sql {

struct ClaimedRow {
  Message message;  // message.id is the row id
  int64_t seq = 0;
  int64_t fence = 0;
  uint32_t attempts = 0;  // failed attempts before this one
  int64_t age_ms = 0;     // since the row was inserted (the database's clock)
};

// A backend's relay statements, on a connection of the relay's own. Called
// from the relay thread only (and from Shutdown once it ended).
class RelayTable {
 public:
  virtual ~RelayTable() = default;
  // OK when the connection works, reconnecting a broken one.
  virtual Status Connect() = 0;
  virtual bool broken() const = 0;
  virtual Result<std::vector<ClaimedRow>> Claim(const std::string& owner,
                                                std::chrono::milliseconds lease, int limit,
                                                bool hold_key_behind_parked) = 0;
  // false when the row's fence moved on (or it is gone).
  virtual Result<bool> MarkSent(const std::string& id, int64_t fence) = 0;
  virtual Result<bool> MarkFailed(const std::string& id, int64_t fence, bool park,
                                  std::chrono::milliseconds retry_in, const std::string& error) = 0;
  virtual Status Release(const std::string& owner) = 0;
  // Deletes the sent rows of one batch, each under its fence: one
  // statement (one commit) where the backend can, instead of one per row;
  // for each row, false when its fence moved on. The default calls
  // MarkSent row by row.
  virtual Result<std::vector<bool>> MarkSentMany(
      const std::vector<std::pair<std::string, int64_t>>& rows) {
    std::vector<bool> deleted;
    for (const auto& [id, fence] : rows) {
      auto one = MarkSent(id, fence);
      if (!one.ok()) return one.status();
      deleted.push_back(*one);
    }
    return deleted;
  }
  // Removes origin records (txmq_origin, sql/origin_check.h) older than
  // `horizon` whose row is no longer in the outbox (kOriginStillInOutbox),
  // as DeleteOlderThan does (*more: some are left); how many.
  virtual Result<int64_t> RemoveExpiredOrigins(std::chrono::milliseconds horizon, bool* more) = 0;
  // Starts the horizon of these messages' origin records again, now: their
  // rows waited in the outbox (retried, parked), and a record is kept for
  // the horizon after its message was sent.
  virtual Status RestartOriginHorizon(const std::vector<std::string>& ids) = 0;
  // Until the next pending row is due (0: now; -1: none).
  virtual Result<std::chrono::milliseconds> NextDueIn() = 0;
  // A descriptor that becomes readable when rows were added (NOTIFY), or
  // -1; Drain consumes what it signalled.
  virtual int wake_fd() { return -1; }
  // True when a wake-up was there (read off wake_fd, or already taken in
  // by the connection while it ran a statement: then wake_fd does not
  // show it).
  virtual bool Drain() { return false; }
  // "database 'orders'", and the txmqctl flag that finds it, for logs.
  virtual std::string where() const = 0;
  virtual std::string ctl_flag() const = 0;
};

struct RelayOptions {
  ProducerOptions producer{};
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{60000};
  int max_attempts = 0;
  std::chrono::milliseconds max_age{0};
  int max_in_flight = 256;
  bool hold_key_behind_parked = true;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds record_horizon = std::chrono::hours(24 * 7);
  std::string instance{};
  std::string thread_name{};  // "txmq-pg-relay"
};

// The relay fields of a backend's OutboxOptions (pg::, sqlite::).
template <class BackendOptions>
RelayOptions ToRelayOptions(const BackendOptions& o, std::string thread_name) {
  return {.producer = o.producer,
          .lease = o.lease,
          .backoff_initial = o.backoff_initial,
          .backoff_max = o.backoff_max,
          .max_attempts = o.max_attempts,
          .max_age = o.max_age,
          .max_in_flight = o.max_in_flight,
          .hold_key_behind_parked = o.hold_key_behind_parked,
          .poll_interval = o.poll_interval,
          .record_horizon = o.record_horizon,
          .instance = o.instance,
          .thread_name = std::move(thread_name)};
}

// Counts of a whole outbox table.
struct Counts {
  uint64_t pending = 0;
  uint64_t parked = 0;
  uint64_t blocked = 0;  // pending behind a parked row of their key
  std::chrono::milliseconds oldest_pending_age{0};
};

// Outbox::Flush of every backend: polls `count` until no pending row is
// left (OK), the rows left all wait behind parked rows and
// `hold_key_behind_parked` (FAILED_PRECONDITION), or `timeout` (TIMEOUT).
Status WaitUntilFlushed(const std::function<Result<Counts>()>& count, bool hold_key_behind_parked,
                        std::chrono::milliseconds timeout);

// INVALID_ARGUMENT naming the first bad option, else OK. `who` starts the
// message ("pg outbox options").
Status ValidateRelayOptions(const RelayOptions& o, const std::string& who);

// host:pid:random, the default instance name.
std::string DefaultInstance();

class Relay {
 public:
  Relay(RelayOptions options, std::unique_ptr<RelayTable> table);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Starts the producer and the thread; the table must be connected.
  Status Start();
  // Stops claiming, waits for the sends in flight (at most the producer's
  // send timeout), records their outcomes and gives back this relay's
  // claims. Idempotent.
  void Shutdown();
  // Wakes the thread (rows were added in this process).
  void Wake();

  uint64_t sent() const;
  std::string last_error() const;
  const std::string& instance() const { return options_.instance; }

 private:
  struct Outcome {
    ClaimedRow row;
    Status status;
  };

  void Run();
  // Claims due rows up to max_in_flight and sends them; how many it sent.
  // `room`: how many it could have claimed.
  int ClaimAndSend(int* room);
  // Writes the outcomes handed over so far; false when the database failed.
  bool ApplyOutcomes();
  // Deletes the rows the broker acknowledged.
  void RecordSent(const std::vector<const Outcome*>& sent);
  // Schedules a failed row again, or parks it.
  void RecordFailed(const Outcome& o);
  void Wait(std::chrono::milliseconds timeout);
  bool EnsureConnected();
  int64_t BackoffMs(uint32_t failures);

  RelayOptions options_;
  std::unique_ptr<RelayTable> table_;  // relay thread (Shutdown once it is gone)
  producer::SweepThrottle origin_sweeps_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Producer> producer_;
  std::thread thread_;
  int wake_pipe_[2] = {-1, -1};  // [0] relay reads, [1] anyone writes
  std::mt19937_64 rng_;          // relay thread
  uint32_t db_failures_ = 0;     // relay thread: failed connects in a row
  // Relay thread: when a claim last found rows. Within a poll_interval of
  // it the relay looks again after poll_interval / 10.
  std::chrono::steady_clock::time_point last_found_{};

  mutable std::mutex mu_;
  std::deque<Outcome> outcomes_;  // guarded by mu_
  int in_flight_ = 0;             // guarded by mu_
  uint64_t sent_ = 0;             // guarded by mu_
  std::string last_error_;        // guarded by mu_
  bool running_ = false;          // guarded by mu_
};

}  // namespace txmq::sql
