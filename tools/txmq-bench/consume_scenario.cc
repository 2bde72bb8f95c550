#include "tools/txmq-bench/consume_scenario.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "protocol/src/util.h"
#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/send_scenario.h"
#include "tools/txmq-bench/start_gate.h"
#include "txmq/consumer.h"

namespace txmq::bench {

namespace {

// Preloading is not measured; it only has to finish.
constexpr double kPreloadBoundS = 600.0;

}  // namespace

void Preload(const ConsumePlan& plan) {
  // Like the peers' prefill: one producer, the scenario's window. Its
  // untimed warm-up send is the first of the `count` messages, so the topic
  // ends up holding exactly `count`.
  SendPlan fill{.broker = plan.broker,
                .curve_key = plan.curve_key,
                .server_key = plan.server_key,
                .topic = plan.topic,
                .producers = 1,
                .window = plan.window,
                .size = plan.size,
                .duration_s = kPreloadBoundS,
                .count = plan.count - 1};
  BenchResult r = RunSend(fill, nullptr);
  if (r.messages != static_cast<uint64_t>(fill.count)) {
    throw BenchError("preloading " + std::to_string(plan.count) + " messages into '" + plan.topic +
                     "' failed: " + std::to_string(r.messages + 1) + " acknowledged, " +
                     std::to_string(r.errors) + " errors");
  }
}

namespace {

// Counts handled messages and wakes the waiting thread at the target.
class DrainCounter {
 public:
  explicit DrainCounter(uint64_t target) : target_(target) {}

  void Handled() {
    if (handled_.fetch_add(1) + 1 == target_) {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_all();
    }
  }

  // True when the target was reached before `deadline`.
  bool WaitUntil(SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return done_; });
  }

  uint64_t handled() const { return handled_.load(); }

 private:
  const uint64_t target_;
  std::atomic<uint64_t> handled_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace

BenchResult RunConsume(const ConsumePlan& plan, CpuMeter* meter) {
  if (plan.preload) Preload(plan);

  DrainCounter counter(static_cast<uint64_t>(plan.count));
  // A fresh group starts at the topic's oldest message.
  txmq::Consumer consumer({.broker = plan.broker,
                           .curve_key = plan.curve_key,
                           .server_key = plan.server_key,
                           .group = "bench-" + NewUuidV7(),
                           .handler_threads = plan.handler_threads,
                           .max_in_flight = plan.max_in_flight,
                           .pull_batch = plan.window});
  Status s = consumer.Subscribe(plan.topic, [&counter](const Received&) {
    counter.Handled();
    // The library acknowledges each message on its own when this returns.
    return ConsumeResult::Success();
  });
  if (!s.ok()) throw BenchError("cannot subscribe to '" + plan.topic + "': " + s.ToString());

  const SteadyTime start = SteadyClock::now();
  if (meter) meter->Start();
  if (s = consumer.Start(); !s.ok()) throw BenchError("consumer cannot start: " + s.ToString());
  const SteadyTime deadline = start + std::chrono::duration_cast<SteadyClock::duration>(
                                          std::chrono::duration<double>(plan.duration_s));
  counter.WaitUntil(deadline);
  // The closing round trip, timed: Shutdown waits for the broker's answers
  // to every ack (each answered once the ack is durable), then says goodbye.
  consumer.Shutdown();
  const SteadyTime end = SteadyClock::now();
  if (meter) meter->Stop();

  const ConsumerStats stats = consumer.stats();
  BenchResult result;
  result.messages = counter.handled();
  result.errors = stats.ack_errors + stats.retried;
  result.secs = std::chrono::duration<double>(end - start).count();
  if (result.messages == 0) {
    throw BenchError("no message of '" + plan.topic + "' arrived within " +
                     std::to_string(plan.duration_s) + " s");
  }
  return result;
}

}  // namespace txmq::bench
