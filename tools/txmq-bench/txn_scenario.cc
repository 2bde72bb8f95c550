#include "tools/txmq-bench/txn_scenario.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <thread>

#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/payload.h"
#include "txmq/transaction_producer.h"

namespace txmq::bench {

namespace {

struct ProducerOutcome {
  std::string setup_error;  // non-empty: never reached the start gate
  uint64_t committed = 0;
  uint64_t unknown = 0;
  uint64_t errors = 0;
  SteadyTime last_return{};
  std::vector<int64_t> latencies_ns;
  std::vector<int64_t> half_ns;
  std::vector<int64_t> end_ns;
};

int64_t Nanos(SteadyTime from, SteadyTime to) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
}

// True for transaction `seq` when `percent` of them are to be left
// undecided: the integer part of seq * percent / 100 steps up exactly
// `percent` times per hundred, evenly spread (not ten in a row).
bool LeaveUnknown(int64_t seq, int percent) {
  return (seq + 1) * percent / 100 != seq * percent / 100;
}

// Counts one result; true when it is what the run asked for.
bool Count(const TransactionResult& r, bool leave_unknown, ProducerOutcome* out) {
  const bool committed =
      r.outcome == TxState::kCommit || (r.end_pending && r.local == TxState::kCommit);
  const bool ok = r.ok() && (leave_unknown ? r.local == TxState::kUnknown : committed);
  if (!ok) {
    ++out->errors;
    return false;
  }
  ++(leave_unknown ? out->unknown : out->committed);
  return true;
}

// Background ends: the run is over when the broker has confirmed them.
void FlushEnds(const TxnPlan& plan, TransactionProducer& producer, ProducerOutcome* out) {
  if (!plan.background_end) return;
  if (Status s = producer.FlushEnds(std::chrono::seconds(30)); !s.ok()) {
    fprintf(stderr, "txmq-bench: %s\n", s.ToString().c_str());
    ++out->errors;
  }
  out->last_return = SteadyClock::now();
}

// Up to plan.window transactions in flight (SendInTransactionAsync).
// Latency = from the call to the moment its future is found complete
// (collected oldest first, so a little late at times).
void RunWindowed(const TxnPlan& plan, TransactionProducer& producer, std::string& body,
                 SteadyTime deadline, int64_t quota, ProducerOutcome* out) {
  struct InFlight {
    std::future<TransactionResult> result;
    SteadyTime sent;
    bool leave_unknown;
  };
  std::deque<InFlight> in_flight;
  const auto collect = [&] {
    InFlight& f = in_flight.front();
    auto r = f.result.get();
    const SteadyTime now = SteadyClock::now();
    out->last_return = now;
    if (Count(r, f.leave_unknown, out)) out->latencies_ns.push_back(Nanos(f.sent, now));
    in_flight.pop_front();
  };
  const std::function<TxState(const Message&)> commit = [](const Message&) {
    return TxState::kCommit;
  };
  const std::function<TxState(const Message&)> unknown = [](const Message&) {
    return TxState::kUnknown;
  };
  for (int64_t seq = 0; seq < quota && SteadyClock::now() < deadline; ++seq) {
    while (!in_flight.empty() && (in_flight.size() >= static_cast<size_t>(plan.window) ||
                                  in_flight.front().result.wait_for(std::chrono::seconds(0)) ==
                                      std::future_status::ready)) {
      collect();
    }
    StampPayload(body, static_cast<uint64_t>(seq));
    const bool leave_unknown = LeaveUnknown(seq, plan.unknown_percent);
    const SteadyTime sent = SteadyClock::now();
    in_flight.push_back({producer.SendInTransactionAsync({.topic = plan.topic, .body = body},
                                                         leave_unknown ? unknown : commit),
                         sent, leave_unknown});
  }
  while (!in_flight.empty()) collect();
  FlushEnds(plan, producer, out);
}

void RunProducer(const TxnPlan& plan, int index, TransactionProducer& producer, StartGate& gate,
                 ProducerOutcome* out) {
  std::string body = MakePayload(static_cast<size_t>(plan.size), 700 + index);
  // Setup, untimed: connect, and one committed transaction, which also
  // creates the topic.
  if (Status s = producer.Start(); !s.ok()) {
    out->setup_error =
        "transaction producer " + std::to_string(index) + " cannot start: " + s.ToString();
    return gate.Abort();
  }
  auto commit = [](const Message&) { return TxState::kCommit; };
  auto warm_up = producer.SendInTransaction({.topic = plan.topic, .body = body}, commit);
  if (warm_up.ok() && plan.background_end)
    warm_up.status = producer.FlushEnds(std::chrono::seconds(10));
  if (!warm_up.ok() || !(warm_up.outcome == TxState::kCommit || warm_up.end_pending)) {
    out->setup_error = "warm-up transaction of producer " + std::to_string(index) + " on " +
                       plan.broker + " failed: " + warm_up.status.ToString();
    return gate.Abort();
  }
  std::optional<SteadyTime> start = gate.ArriveAndWait();
  if (!start) return;

  // The local transactions only note when they ran: the half message was
  // acknowledged just before.
  SteadyTime local_ran{};
  const std::function<TxState(const Message&)> timed_commit = [&local_ran](const Message&) {
    local_ran = SteadyClock::now();
    return TxState::kCommit;
  };
  const std::function<TxState(const Message&)> unknown = [&local_ran](const Message&) {
    local_ran = SteadyClock::now();
    return TxState::kUnknown;
  };
  const SteadyTime deadline = *start + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(plan.duration_s));
  out->latencies_ns.reserve(1 << 16);
  out->half_ns.reserve(1 << 16);
  out->end_ns.reserve(1 << 16);
  const int64_t quota = ShareOf(plan.count, plan.producers, index);
  if (plan.window > 1) return RunWindowed(plan, producer, body, deadline, quota, out);
  for (int64_t seq = 0; seq < quota && SteadyClock::now() < deadline; ++seq) {
    StampPayload(body, static_cast<uint64_t>(seq));
    const bool leave_unknown = LeaveUnknown(seq, plan.unknown_percent);
    const SteadyTime before = SteadyClock::now();
    // Returns after the broker's durable answer to the half message and,
    // unless left unknown, to the commit.
    auto r = producer.SendInTransaction({.topic = plan.topic, .body = body},
                                        leave_unknown ? unknown : timed_commit);
    const SteadyTime now = SteadyClock::now();
    out->last_return = now;
    if (!Count(r, leave_unknown, out)) continue;
    out->latencies_ns.push_back(Nanos(before, now));
    out->half_ns.push_back(Nanos(before, local_ran));
    if (!leave_unknown) out->end_ns.push_back(Nanos(local_ran, now));
  }
  FlushEnds(plan, producer, out);
}

}  // namespace

void AddPhaseDetails(TxnRun& run, BenchResult* result) {
  auto ms = [](std::optional<double> v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f", v.value_or(0.0));
    return std::string(buf);
  };
  if (run.half_ns.empty()) return;  // windowed: the parts are not measured
  const auto half50 = PercentileMs(run.half_ns, 0.50), half99 = PercentileMs(run.half_ns, 0.99);
  const auto end50 = PercentileMs(run.end_ns, 0.50), end99 = PercentileMs(run.end_ns, 0.99);
  auto& d = result->details;
  d.push_back({"half_p50_ms", half50.value_or(0.0), ""});
  d.push_back({"half_p99_ms", half99.value_or(0.0),
               "half p50/p99 " + ms(half50) + "/" + ms(half99) + " ms"});
  d.push_back({"end_p50_ms", end50.value_or(0.0), ""});
  d.push_back(
      {"end_p99_ms", end99.value_or(0.0), "commit p50/p99 " + ms(end50) + "/" + ms(end99) + " ms"});
}

TxnRun RunTransactions(const TxnPlan& plan, CpuMeter* meter,
                       const std::function<void(const TxnRun&)>& after) {
  // The checker runs on library threads. It answers COMMIT: every local
  // transaction of this benchmark commits, some only tell nobody.
  std::atomic<uint64_t> checks{0};
  TransactionChecker checker = [&checks](const CheckRequest&) {
    checks.fetch_add(1);
    return TxState::kCommit;
  };
  // Owned here rather than by their threads, so that they are still
  // connected, and answer checks, after the threads are done. Declared
  // after `checks`, so they are gone before it.
  std::vector<std::unique_ptr<TransactionProducer>> producers;
  for (int i = 0; i < plan.producers; ++i) {
    producers.push_back(std::make_unique<TransactionProducer>(
        ProducerOptions{.broker = plan.broker,
                        .group = plan.group,
                        .end_mode = plan.background_end ? TransactionEndMode::kBackground
                                                        : TransactionEndMode::kConfirmed,
                        .transaction_window = plan.window},
        checker));
  }
  StartGate gate(plan.producers, [meter] {
    if (meter) meter->Start();
  });
  std::vector<ProducerOutcome> outcomes(static_cast<size_t>(plan.producers));
  std::vector<std::thread> threads;
  for (int i = 0; i < plan.producers; ++i) {
    threads.emplace_back([&, i] {
      const auto k = static_cast<size_t>(i);
      RunProducer(plan, i, *producers[k], gate, &outcomes[k]);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& o : outcomes) {
    if (!o.setup_error.empty()) throw BenchError(o.setup_error);
  }

  TxnRun run;
  run.start = gate.start();
  run.last_return = run.start;
  for (auto& o : outcomes) {
    run.committed += o.committed;
    run.unknown += o.unknown;
    run.errors += o.errors;
    run.last_return = std::max(run.last_return, o.last_return);
    run.latencies_ns.insert(run.latencies_ns.end(), o.latencies_ns.begin(), o.latencies_ns.end());
    run.half_ns.insert(run.half_ns.end(), o.half_ns.begin(), o.half_ns.end());
    run.end_ns.insert(run.end_ns.end(), o.end_ns.begin(), o.end_ns.end());
  }
  if (after) after(run);
  producers.clear();  // waits for checkers still running
  run.checks_answered = checks.load();
  return run;
}

BenchResult RunTxn(const TxnPlan& plan, CpuMeter* meter) {
  // The timed part ends with the last producer's last answer; closing the
  // connections is not part of it.
  TxnRun run = RunTransactions(plan, meter, [meter](const TxnRun&) {
    if (meter) meter->Stop();
  });
  BenchResult result;
  // Undecided transactions are what a --leave-open run asks for; in any
  // other txn run one would be a bug in the run itself: a failure.
  const bool leave_open = plan.unknown_percent == 100;
  result.messages = run.committed + (leave_open ? run.unknown : 0);
  result.errors = run.errors + (leave_open ? 0 : run.unknown);
  if (leave_open) {
    result.details.push_back({"left_open", static_cast<double>(run.unknown),
                              std::to_string(run.unknown) + " transactions left open"});
  }
  result.secs = std::chrono::duration<double>(run.last_return - run.start).count();
  result.latencies_ns = std::move(run.latencies_ns);
  AddPhaseDetails(run, &result);
  if (run.checks_answered > 0) {
    // Only a commit the broker did not confirm in time gets checked.
    result.details.push_back({"checks_answered", static_cast<double>(run.checks_answered),
                              std::to_string(run.checks_answered) + " checks answered"});
  }
  return result;
}

}  // namespace txmq::bench
