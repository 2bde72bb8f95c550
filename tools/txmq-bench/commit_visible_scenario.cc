#include "tools/txmq-bench/commit_visible_scenario.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/payload.h"
#include "tools/txmq-bench/start_gate.h"
#include "txmq/consumer.h"
#include "txmq/transaction_producer.h"

namespace txmq::bench {

namespace {

// One transaction is in flight at a time, so the consumer never holds more
// than a few messages; a small pull keeps its long poll cheap.
constexpr int kPullBatch = 16;
// Bounds of the untimed waits: the warm-up message reaching the consumer,
// and, after the last commit, the consumer seeing every committed message.
constexpr auto kWarmUpBound = std::chrono::seconds(30);
constexpr auto kSeenBound = std::chrono::seconds(30);
// The warm-up message's key, so the handler can tell it from timed ones.
constexpr const char* kWarmUpKey = "txmq-bench-warm-up";

// Pairs each commit acknowledgement with the consumer seeing the message.
// Either can come first: the broker makes a commit visible and answers the
// producer after the same fsync, so the consumer may win the race.
// Thread safety: Acked (producer thread) and Seen (handler thread) may run
// concurrently; everything is guarded by mu_.
class VisibilityLog {
 public:
  void Acked(const std::string& id, SteadyTime t) {
    std::lock_guard<std::mutex> lock(mu_);
    ++acked_;
    Times& times = pending_[id];
    times.acked = t;
    MatchLocked(id, times);
  }

  void Seen(const Received& m, SteadyTime t) {
    std::lock_guard<std::mutex> lock(mu_);
    if (m.key == kWarmUpKey) {
      warm_up_seen_ = true;
    } else if (m.delivery_count == 1) {  // a redelivery is no new visibility
      Times& times = pending_[m.id];
      times.seen = t;
      MatchLocked(m.id, times);
    }
    cv_.notify_all();
  }

  // True once the warm-up message arrived, before `deadline`.
  bool WaitForWarmUp(SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return warm_up_seen_; });
  }

  // True once every acknowledged message was seen, before `deadline`.
  bool WaitForAll(SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return matched_ == acked_; });
  }

  struct Summary {
    uint64_t acked = 0;
    uint64_t matched = 0;
    uint64_t seen_first = 0;  // seen before SendInTransaction returned
    SteadyTime last_seen{};
    std::vector<int64_t> latencies_ns;
  };
  Summary Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return Summary{acked_, matched_, seen_first_, last_seen_, std::move(latencies_ns_)};
  }

 private:
  struct Times {
    std::optional<SteadyTime> acked;
    std::optional<SteadyTime> seen;
  };

  void MatchLocked(const std::string& id, const Times& times) {
    if (!times.acked || !times.seen) return;
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(*times.seen - *times.acked).count();
    // Seen before the producer had the ack (the consumer's wake-up won the
    // race with the producer's): counted apart, not as a zero latency, so
    // the percentiles are those of the messages seen after their ack.
    if (ns < 0) {
      ++seen_first_;
    } else {
      latencies_ns_.push_back(ns);
    }
    last_seen_ = std::max(last_seen_, *times.seen);
    ++matched_;
    pending_.erase(id);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Times> pending_;  // one side known so far
  std::vector<int64_t> latencies_ns_;
  uint64_t acked_ = 0;
  uint64_t matched_ = 0;
  uint64_t seen_first_ = 0;
  SteadyTime last_seen_{};
  bool warm_up_seen_ = false;
};

std::string Ms(std::optional<double> ms) {
  if (!ms) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, "%.2f ms", *ms);
  return buf;
}

}  // namespace

BenchResult RunCommitVisible(const CommitVisiblePlan& plan, CpuMeter* meter) {
  VisibilityLog log;
  // Declared after `log`, so it is gone (handlers finished) before it.
  txmq::Consumer consumer({.broker = plan.broker,
                           .curve_key = plan.curve_key,
                           .server_key = plan.server_key,
                           .group = plan.group,
                           .handler_threads = 1,
                           .max_in_flight = kPullBatch,
                           .pull_batch = kPullBatch});
  Status s = consumer.Subscribe(plan.topic, [&log](const Received& m) {
    log.Seen(m, SteadyClock::now());
    return ConsumeResult::Success();
  });
  if (!s.ok()) throw BenchError("cannot subscribe to '" + plan.topic + "': " + s.ToString());
  // A fresh group on a topic that does not exist yet: its first pull waits
  // at the broker until the warm-up commit creates the topic.
  if (s = consumer.Start(); !s.ok()) throw BenchError("consumer cannot start: " + s.ToString());

  auto commit = [](const Message&) { return TxState::kCommit; };
  TransactionProducer producer({.broker = plan.broker,
                                .curve_key = plan.curve_key,
                                .server_key = plan.server_key,
                                .group = plan.group},
                               [](const CheckRequest&) { return TxState::kCommit; });
  if (s = producer.Start(); !s.ok()) {
    throw BenchError("transaction producer cannot start: " + s.ToString());
  }
  std::string body = MakePayload(static_cast<size_t>(plan.size), 900);
  // Setup, untimed: the topic exists and the consumer receives from it.
  auto warm_up =
      producer.SendInTransaction({.topic = plan.topic, .key = kWarmUpKey, .body = body}, commit);
  if (!warm_up.ok() || warm_up.outcome != TxState::kCommit) {
    throw BenchError("warm-up transaction on " + plan.broker +
                     " failed: " + warm_up.status.ToString());
  }
  if (!log.WaitForWarmUp(SteadyClock::now() + kWarmUpBound)) {
    throw BenchError("the consumer did not receive the committed warm-up message within 30 s");
  }

  const SteadyTime start = SteadyClock::now();
  if (meter) meter->Start();
  const SteadyTime deadline = start + std::chrono::duration_cast<SteadyClock::duration>(
                                          std::chrono::duration<double>(plan.duration_s));
  uint64_t failed = 0;
  std::vector<int64_t> commit_ns;
  commit_ns.reserve(static_cast<size_t>(std::min<int64_t>(plan.count, 1 << 20)));
  for (int64_t seq = 0; seq < plan.count && SteadyClock::now() < deadline; ++seq) {
    StampPayload(body, static_cast<uint64_t>(seq));
    const SteadyTime before = SteadyClock::now();
    auto r = producer.SendInTransaction({.topic = plan.topic, .body = body}, commit);
    // SendInTransaction returned: the broker has made the commit durable.
    const SteadyTime acked = SteadyClock::now();
    if (!r.ok() || r.outcome != TxState::kCommit) {
      ++failed;
      continue;
    }
    log.Acked(r.message_ids.front(), acked);
    commit_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(acked - before).count());
  }
  log.WaitForAll(SteadyClock::now() + kSeenBound);
  if (meter) meter->Stop();
  consumer.Shutdown();

  VisibilityLog::Summary seen = log.Take();
  BenchResult result;
  result.messages = seen.matched;
  // Failed transactions, and committed messages the consumer never saw.
  result.errors = failed + (seen.acked - seen.matched);
  result.secs =
      seen.matched > 0 ? std::chrono::duration<double>(seen.last_seen - start).count() : 0.0;
  result.latencies_ns = std::move(seen.latencies_ns);
  const std::optional<double> commit_p50 = PercentileMs(commit_ns, 0.50);
  result.details.push_back({"commit_p50_ms", commit_p50.value_or(0.0),
                            "transaction (half + commit) p50 " + Ms(commit_p50)});
  result.details.push_back({"seen_before_ack", static_cast<double>(seen.seen_first),
                            seen.seen_first > 0
                                ? std::to_string(seen.seen_first) + " of " +
                                      std::to_string(seen.matched) +
                                      " seen before the commit ack (not in the percentiles)"
                                : ""});
  return result;
}

}  // namespace txmq::bench
