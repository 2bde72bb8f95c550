#include "tools/txmq-bench/checkback_scenario.h"

#include <cstdio>
#include <thread>

#include "tools/txmq-bench/broker_status.h"

namespace txmq::bench {

namespace {

// How long to wait, after the producers stop, for the broker to end what
// they left open. With txmqd's default timing (6 s timeout, checks every 10
// s growing to 60 s) a check that goes unanswered once takes a minute.
constexpr auto kDrainBound = std::chrono::seconds(120);
// Status polls while waiting: the resolution of the drain time.
constexpr auto kPollInterval = std::chrono::milliseconds(10);

double Secs(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string Fixed(const char* format, double value) {
  char buf[64];
  snprintf(buf, sizeof buf, format, value);
  return buf;
}

}  // namespace

BenchResult RunCheckback(const TxnPlan& plan, CpuMeter* meter) {
  BrokerStatus status(plan.broker, plan.curve_key, plan.server_key);
  // Before the run (and its warm-up transactions): a shared broker may hold
  // other open transactions, so "nothing open" means "no more than now".
  const TxCounters before = status.Transactions();
  TxCounters last;
  SteadyTime drained{};
  bool all_ended = false;

  TxnRun run = RunTransactions(plan, meter, [&](const TxnRun& r) {
    // Every half message is stored (each SendInTransaction has returned),
    // so the broker counts every transaction left open from here on. It
    // stops counting one when it decides it, one group commit (an fsync)
    // before the decision is durable: the drain ends that much early.
    const SteadyTime give_up = r.last_return + kDrainBound;
    while (true) {
      last = status.Transactions();
      drained = SteadyClock::now();
      if (last.open <= before.open) {
        all_ended = true;
        break;
      }
      if (drained >= give_up) break;
      std::this_thread::sleep_for(kPollInterval);
    }
    if (meter) meter->Stop();
  });

  const uint64_t transactions = run.committed + run.unknown;
  const uint64_t left_open = last.open > before.open ? last.open - before.open : 0;
  // The broker's own count, less the producers' untimed warm-up commits.
  const uint64_t broker_committed =
      last.committed - before.committed -
      std::min<uint64_t>(last.committed - before.committed, static_cast<uint64_t>(plan.producers));
  BenchResult result;
  result.messages = transactions - std::min(transactions, left_open);
  result.errors = run.errors + left_open;
  result.secs = Secs(run.start, drained);
  result.latencies_ns = std::move(run.latencies_ns);
  AddPhaseDetails(run, &result);

  const double sending_s = Secs(run.start, run.last_return);
  const double mix = sending_s > 0 ? static_cast<double>(transactions) / sending_s : 0.0;
  const double drain_s = Secs(run.last_return, drained);
  const uint64_t checks_sent = last.checks_sent - before.checks_sent;
  auto& d = result.details;
  d.push_back(
      {"mix_txn_per_s", mix,
       "mix " + WithThousands(mix) + " txn/s while sending (" + Fixed("%.2f s", sending_s) + ")"});
  d.push_back(
      {"unknown", static_cast<double>(run.unknown), std::to_string(run.unknown) + " left UNKNOWN"});
  d.push_back({"drain_s", drain_s,
               all_ended
                   ? "nothing open " + Fixed("%.2f s", drain_s) + " after the producers stopped"
                   : std::to_string(left_open) + " STILL OPEN " + Fixed("%.0f s", drain_s) +
                         " after the producers stopped"});
  d.push_back({"checks_sent", static_cast<double>(checks_sent),
               std::to_string(checks_sent) + " checks sent, " +
                   std::to_string(run.checks_answered) + " answered"});
  d.push_back({"checks_answered", static_cast<double>(run.checks_answered), ""});
  d.push_back({"broker_committed", static_cast<double>(broker_committed), ""});
  d.push_back({"broker_stuck", static_cast<double>(last.stuck), ""});
  return result;
}

}  // namespace txmq::bench
