#include "producer/src/sql/sql_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "producer/src/backoff.h"
#include "producer/src/library_send.h"
#include "protocol/src/util.h"

namespace txmq::sql {

namespace {
// A row sent this long after its Add waited (retries, a park, an outage).
constexpr int64_t kWaitedMs = 60'000;
}  // namespace

Status ValidateRelayOptions(const RelayOptions& o, const std::string& who) {
  const auto send_budget = o.producer.send_timeout * (o.producer.retries + 1);
  if (o.lease <= send_budget) {
    return Status::InvalidArgument(
        who + ": lease (" + std::to_string(o.lease.count()) +
        " ms) must exceed the producer's send_timeout times its attempts (" +
        std::to_string(send_budget.count()) + " ms), or rows would be claimed again mid-send");
  }
  if (o.backoff_initial.count() <= 0 || o.backoff_max < o.backoff_initial || o.max_in_flight < 1 ||
      o.max_attempts < 0 || o.poll_interval.count() <= 0) {
    return Status::InvalidArgument(
        who +
        ": backoff_initial must be positive, backoff_max not below it, max_in_flight at least "
        "1, max_attempts not negative, poll_interval positive");
  }
  if (o.record_horizon.count() <= 0) {
    return Status::InvalidArgument(who + ": record_horizon (" +
                                   std::to_string(o.record_horizon.count()) +
                                   " ms) must be positive");
  }
  return Status::OK();
}

Status WaitUntilFlushed(const std::function<Result<Counts>()>& count, bool hold_key_behind_parked,
                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto counts = count();
    if (!counts.ok()) return counts.status();
    if (counts->pending == 0) return Status::OK();
    if (counts->pending == counts->blocked && hold_key_behind_parked) {
      return Status::FailedPrecondition(
          std::to_string(counts->pending) +
          " outbox rows wait behind parked rows of their keys: requeue or delete the parked rows");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Timeout(std::to_string(counts->pending) + " outbox rows still pending after " +
                             FormatDurationMs(timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string DefaultInstance() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + NewSecretHex(4);
}

Relay::Relay(RelayOptions options, std::unique_ptr<RelayTable> table)
    : options_(std::move(options)),
      table_(std::move(table)),
      log_(Logger("outbox")),
      rng_(std::random_device{}()) {
  if (options_.instance.empty()) options_.instance = DefaultInstance();
}

Relay::~Relay() {
  Shutdown();
  if (wake_pipe_[0] >= 0) {
    close(wake_pipe_[0]);
    close(wake_pipe_[1]);
  }
}

Status Relay::Start() {
  auto producer = std::make_unique<Producer>(options_.producer);
  if (Status s = producer->Start(); !s.ok()) return s;
  if (wake_pipe_[0] < 0 && pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::Internal("outbox relay: cannot create its wake-up pipe");
  }
  producer_ = std::move(producer);
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes_.clear();
    in_flight_ = 0;
    running_ = true;
  }
  thread_ = std::thread([this] {
    SetThreadName(options_.thread_name.c_str());
    Run();
  });
  return Status::OK();
}

void Relay::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    running_ = false;
  }
  Wake();
  thread_.join();
  // Sends in flight complete (UNAVAILABLE when not acknowledged yet); their
  // outcomes are written here, and the claims left are given back so
  // another relay takes the rows at once instead of after the lease.
  producer_.reset();
  if (EnsureConnected()) {
    ApplyOutcomes();
    if (Status s = table_->Release(options_.instance); !s.ok()) {
      log_->warn(
          "outbox relay {}: could not give back its claims ({}); other relays take the rows "
          "when the lease ({} ms) runs out",
          options_.instance, s.ToString(), options_.lease.count());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  outcomes_.clear();
  in_flight_ = 0;
  log_->info("outbox relay {} on {} stopped ({} rows sent)", options_.instance, table_->where(),
             sent_);
}

uint64_t Relay::sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

std::string Relay::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

int64_t Relay::BackoffMs(uint32_t failures) {
  return producer::JitteredBackoffMs(options_.backoff_initial, options_.backoff_max, failures,
                                     rng_);
}

void Relay::Wake() {
  if (wake_pipe_[1] >= 0) {
    const char byte = 1;
    (void)!write(wake_pipe_[1], &byte, 1);
  }
}

bool Relay::EnsureConnected() {
  const bool was_broken = table_->broken();
  Status s = table_->Connect();
  if (s.ok()) {
    if (was_broken) {
      log_->info("outbox relay {}: connected to {} again", options_.instance, table_->where());
    }
    db_failures_ = 0;
    return true;
  }
  ++db_failures_;
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = s.ToString();
  log_->warn("outbox relay {}: {} ({} failures in a row)", options_.instance, last_error_,
             db_failures_);
  return false;
}

void Relay::Run() {
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
    int room = 0;
    const int sent = written ? ClaimAndSend(&room) : 0;
    // A claim that filled the room may have left due rows behind: claim
    // again at once. One that did not took every row claimable at that
    // moment; rows committed since are claimed when the outcomes of the
    // rows now in flight wake the relay (within the producer's send
    // timeout), on NOTIFY, or at the next poll. Claiming again at once
    // would mostly find nothing, a round trip per message for nothing.
    if (sent > 0 && sent >= room) continue;
    if (written) {
      // A minute apart (sooner while it falls behind), for at most
      // kSweepTimeBudget: also under steady load, when the relay is never
      // idle. One that fails is tried at the next one.
      if (Status s = origin_sweeps_.RunIfDue([&](bool* more) {
            return table_->RemoveExpiredOrigins(options_.record_horizon, more);
          });
          !s.ok()) {
        log_->warn("outbox relay {}: removing old origin records failed: {}", options_.instance,
                   s.ToString());
      }
    }
    // While rows keep coming (a claim found some within the last poll
    // interval) the relay looks again after a tenth of it: rows committed
    // meanwhile wait a few milliseconds, not half a poll, and each claim
    // still takes what accumulated. An idle relay polls at the interval.
    const auto now = std::chrono::steady_clock::now();
    if (sent > 0) last_found_ = now;
    std::chrono::milliseconds sleep = options_.poll_interval;
    if (now - last_found_ < options_.poll_interval) {
      sleep = std::max(std::chrono::milliseconds(1), options_.poll_interval / 10);
    }
    bool in_flight;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight = in_flight_ > 0;
    }
    // With rows in flight their outcomes wake the relay; without, the next
    // due row (a retry, a claim running out) decides.
    if (written && !table_->broken() && !in_flight) {
      if (auto due = table_->NextDueIn(); due.ok() && due->count() >= 0) {
        sleep = std::clamp(*due, std::chrono::milliseconds(1), sleep);
      }
    }
    Wait(sleep);
  }
}

int Relay::ClaimAndSend(int* room_out) {
  int room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    room = options_.max_in_flight - in_flight_;
  }
  *room_out = room;
  if (room <= 0) return 0;
  auto claimed =
      table_->Claim(options_.instance, options_.lease, room, options_.hold_key_behind_parked);
  if (!claimed.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = claimed.status().ToString();
    log_->warn("outbox relay {}: claiming rows failed: {}", options_.instance, last_error_);
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

bool Relay::ApplyOutcomes() {
  std::deque<Outcome> outcomes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes.swap(outcomes_);
  }
  std::vector<const Outcome*> sent;
  for (const Outcome& o : outcomes) {
    if (o.status.ok()) {
      sent.push_back(&o);
    } else if (!table_->broken()) {
      RecordFailed(o);
    }
  }
  if (!sent.empty() && !table_->broken()) RecordSent(sent);
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ -= static_cast<int>(outcomes.size());
  return !table_->broken();
}

void Relay::RecordSent(const std::vector<const Outcome*>& sent) {
  // Counted before the rows are deleted: a Flush that sees the table empty
  // then finds every acknowledged row in sent().
  {
    std::lock_guard<std::mutex> lock(mu_);
    sent_ += sent.size();
  }
  // A row that waited (its record's horizon runs from its Add) has its
  // record kept from now on: before its row goes, so that no sweep finds
  // the old record without the row. Rare: sent rows are usually
  // milliseconds old.
  std::vector<std::string> waited;
  for (const Outcome* o : sent) {
    if (o->row.age_ms >= kWaitedMs) waited.push_back(o->row.message.id);
  }
  if (!waited.empty()) {
    if (Status s = table_->RestartOriginHorizon(waited); !s.ok()) {
      log_->warn(
          "outbox relay {}: keeping the origin records of {} rows that waited failed ({}); a "
          "compensation of them after the horizon from their Add finds none",
          options_.instance, waited.size(), s.ToString());
    }
  }
  std::vector<std::pair<std::string, int64_t>> rows;
  for (const Outcome* o : sent) rows.emplace_back(o->row.message.id, o->row.fence);
  Result<std::vector<bool>> deleted = std::vector<bool>{};
  if (rows.size() == 1) {
    auto one = table_->MarkSent(rows[0].first, rows[0].second);
    deleted = one.ok() ? Result<std::vector<bool>>(std::vector<bool>{*one})
                       : Result<std::vector<bool>>(one.status());
  } else {
    deleted = table_->MarkSentMany(rows);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!deleted.ok()) {
    last_error_ = deleted.status().ToString();
    log_->warn(
        "outbox relay {}: {} rows were acknowledged but their deletion failed ({}); they are "
        "sent again after their claim runs out and stored once",
        options_.instance, rows.size(), last_error_);
    return;
  }
  for (size_t i = 0; i < rows.size() && i < deleted->size(); ++i) {
    if (!(*deleted)[i]) {
      log_->info(
          "outbox relay {}: row {} was acknowledged after its claim ran out; the relay that "
          "took it over settles it",
          options_.instance, rows[i].first);
    }
  }
}

void Relay::RecordFailed(const Outcome& o) {
  const std::string& id = o.row.message.id;
  const uint32_t attempts = o.row.attempts + 1;
  const bool permanent = !o.status.IsRetryable();
  const bool too_many =
      options_.max_attempts > 0 && attempts >= static_cast<uint32_t>(options_.max_attempts);
  const bool too_old = options_.max_age.count() > 0 && o.row.age_ms >= options_.max_age.count();
  const bool park = permanent || too_many || too_old;
  const std::string error = o.status.ToString();
  auto written = table_->MarkFailed(
      id, o.row.fence, park, std::chrono::milliseconds(park ? 0 : BackoffMs(attempts)), error);
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = written.ok() ? error : written.status().ToString();
  if (park && written.ok() && *written) {
    log_->error(
        "outbox row {} (topic '{}', key '{}') parked after {} attempts: {}. Requeue or delete "
        "it: txmqctl outbox list {} --state parked",
        id, o.row.message.topic, o.row.message.key, attempts, error, table_->ctl_flag());
  }
}

void Relay::Wait(std::chrono::milliseconds timeout) {
  // A NOTIFY that arrived while the relay ran its statements (after the
  // claim's snapshot, so its row was not claimed) was read off the socket
  // with their results: poll would not see it, and the row would wait for
  // the poll interval. Look again at once instead.
  if (!table_->broken() && table_->Drain()) return;
  pollfd fds[2] = {{wake_pipe_[0], POLLIN, 0}, {-1, POLLIN, 0}};
  nfds_t n = 1;
  if (!table_->broken()) {
    fds[1].fd = table_->wake_fd();
    n = fds[1].fd >= 0 ? 2 : 1;
  }
  (void)poll(fds, n, static_cast<int>(std::max<int64_t>(timeout.count(), 0)));
  if (fds[0].revents & POLLIN) {
    char buf[256];
    while (read(wake_pipe_[0], buf, sizeof(buf)) > 0) {
    }
  }
  if (n == 2 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) table_->Drain();
}

}  // namespace txmq::sql
