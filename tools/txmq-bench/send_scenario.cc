#include "tools/txmq-bench/send_scenario.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/payload.h"
#include "tools/txmq-bench/start_gate.h"
#include "txmq/producer.h"

namespace txmq::bench {

namespace {

// After the last send, how long a producer waits for its outstanding acks
// (the peers' harness waits as long).
constexpr auto kDrainTimeout = std::chrono::seconds(30);

// The sends of one producer that are not acknowledged yet, and what the
// acknowledgements measured. The callbacks run on the producer's I/O
// thread, so they only record and signal; the sending thread waits here.
class AckWindow {
 public:
  explicit AckWindow(int size) : size_(size) { latencies_ns_.reserve(1 << 18); }

  // Blocks until fewer than `size` sends are in flight, then counts one more.
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return in_flight_ < size_; });
    ++in_flight_;
  }

  // From the callback of a send started at `sent`.
  void Complete(bool ok, SteadyTime sent) {
    const SteadyTime now = SteadyClock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
      if (ok) {
        ++acked_;
        last_ack_ = now;
        latencies_ns_.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count());
      } else {
        ++errors_;
      }
    }
    cv_.notify_one();
  }

  // Gives back a slot taken by Acquire without sending.
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
    }
    cv_.notify_one();
  }

  // True when every send was answered within `timeout`.
  bool WaitUntilEmpty(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return in_flight_ == 0; });
  }

  // Moves the measurements out (late callbacks count as errors in no one's
  // result; their messages were not acknowledged in time).
  void TakeResults(uint64_t* acked, uint64_t* errors, SteadyTime* last_ack,
                   std::vector<int64_t>* latencies) {
    std::lock_guard<std::mutex> lock(mu_);
    *acked = acked_;
    *errors = errors_ + static_cast<uint64_t>(in_flight_);
    *last_ack = last_ack_;
    *latencies = std::move(latencies_ns_);
    latencies_ns_.clear();
  }

 private:
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  uint64_t acked_ = 0;
  uint64_t errors_ = 0;
  SteadyTime last_ack_{};
  std::vector<int64_t> latencies_ns_;
};

struct ProducerOutcome {
  std::string setup_error;  // non-empty: never reached the start gate
  uint64_t acked = 0;
  uint64_t errors = 0;
  SteadyTime last_ack{};
  std::vector<int64_t> latencies_ns;
};

// Counts producers still running; the last one to finish ends the broker
// CPU measurement (before the producers' own shutdown, which is untimed).
class FinishLine {
 public:
  FinishLine(int producers, CpuMeter* meter) : running_(producers), meter_(meter) {}
  void Cross() {
    if (running_.fetch_sub(1) == 1 && meter_ != nullptr) meter_->Stop();
  }

 private:
  std::atomic<int> running_;
  CpuMeter* meter_;
};

void RunProducer(const SendPlan& plan, int index, StartGate& gate, FinishLine& finish,
                 ProducerOutcome* out) {
  // Declared before the producer, so it outlives every callback: the
  // producer's destructor completes what is still in flight.
  AckWindow window(plan.window);
  txmq::Producer producer({.broker = plan.broker,
                           .curve_key = plan.curve_key,
                           .server_key = plan.server_key,
                           .group = "txmq-bench"});
  std::string body = MakePayload(static_cast<size_t>(plan.size), 300 + index);

  // Setup, untimed: connect, and one send that also creates the topic.
  if (Status s = producer.Start(); !s.ok()) {
    out->setup_error = "producer " + std::to_string(index) + " cannot start: " + s.ToString();
    return gate.Abort();
  }
  if (auto r = producer.Send({.topic = plan.topic, .body = body}); !r.ok()) {
    out->setup_error = "warm-up send of producer " + std::to_string(index) + " to " + plan.broker +
                       " failed: " + r.status().ToString();
    return gate.Abort();
  }
  std::optional<SteadyTime> start = gate.ArriveAndWait();
  if (!start) return;

  const SteadyTime deadline = *start + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(plan.duration_s));
  const int64_t quota = ShareOf(plan.count, plan.producers, index);
  for (int64_t seq = 0; seq < quota; ++seq) {
    window.Acquire();
    if (SteadyClock::now() >= deadline) {
      window.Release();
      break;
    }
    StampPayload(body, static_cast<uint64_t>(seq));
    const SteadyTime sent = SteadyClock::now();
    producer.SendAsync({.topic = plan.topic, .body = body},
                       [&window, sent](Result<SendResult> r) { window.Complete(r.ok(), sent); });
  }
  window.WaitUntilEmpty(kDrainTimeout);
  finish.Cross();
  window.TakeResults(&out->acked, &out->errors, &out->last_ack, &out->latencies_ns);
}

}  // namespace

BenchResult RunSend(const SendPlan& plan, CpuMeter* meter) {
  StartGate gate(plan.producers, [meter] {
    if (meter) meter->Start();
  });
  FinishLine finish(plan.producers, meter);
  std::vector<ProducerOutcome> outcomes(static_cast<size_t>(plan.producers));
  std::vector<std::thread> threads;
  for (int i = 0; i < plan.producers; ++i) {
    threads.emplace_back(
        [&, i] { RunProducer(plan, i, gate, finish, &outcomes[static_cast<size_t>(i)]); });
  }
  for (auto& t : threads) t.join();

  for (const auto& o : outcomes) {
    if (!o.setup_error.empty()) throw BenchError(o.setup_error);
  }
  BenchResult result;
  SteadyTime end = gate.start();
  for (auto& o : outcomes) {
    result.messages += o.acked;
    result.errors += o.errors;
    if (o.acked > 0) end = std::max(end, o.last_ack);
    result.latencies_ns.insert(result.latencies_ns.end(), o.latencies_ns.begin(),
                               o.latencies_ns.end());
  }
  result.secs = std::chrono::duration<double>(end - gate.start()).count();
  return result;
}

}  // namespace txmq::bench
