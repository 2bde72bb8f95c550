#include "tools/txmq-bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tools/txmq-bench/cli.h"

namespace txmq::bench {

std::string WithThousands(double value) {
  std::string digits = std::to_string(static_cast<long long>(std::llround(value)));
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

namespace {

// Three significant digits are plenty for a latency and keep the line short.
std::string HumanMs(std::optional<double> ms) {
  if (!ms) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, *ms >= 100 ? "%.0f ms" : *ms >= 10 ? "%.1f ms" : "%.2f ms", *ms);
  return buf;
}

// The peers' format (bench_common.hpp pct_ms): "%.3f", or "-".
std::string PeersMs(std::optional<double> ms) {
  if (!ms) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, "%.3f", *ms);
  return buf;
}

// The --scenario value, as named in the JSON object.
const char* ScenarioFlag(Scenario s) {
  switch (s) {
    case Scenario::kSend:
      return "send";
    case Scenario::kConsume:
      return "consume";
    case Scenario::kPreload:
      return "preload";
    case Scenario::kTxn:
      return "txn";
    case Scenario::kCommitVisible:
      return "commit-visible";
    case Scenario::kCheckback:
      return "checkback";
  }
  return "?";
}

// What ran, at the start of the human line.
std::string HumanWhat(const BenchOptions& o) {
  const std::string p = std::to_string(o.producers);
  switch (o.scenario) {
    case Scenario::kConsume:
      return "consume w=" + std::to_string(o.window);
    case Scenario::kTxn:
      return DefaultScenarioName(o);
    case Scenario::kCommitVisible:
      return "commit-visible";
    case Scenario::kCheckback:
      return "checkback p=" + p + " (" + std::to_string(o.unknown_percent) + "% unknown)";
    case Scenario::kSend:
    case Scenario::kPreload:
      break;
  }
  return "send p=" + p + " w=" + std::to_string(o.window);
}

// Producers and window as the peers would state them: a transaction
// producer has --txn-window transactions in flight (1 unless given);
// commit-visible has one producer.
int Producers(const BenchOptions& o) {
  return o.scenario == Scenario::kConsume || o.scenario == Scenario::kCommitVisible ? 1
                                                                                    : o.producers;
}
int Window(const BenchOptions& o) {
  if (o.scenario == Scenario::kTxn || o.scenario == Scenario::kCheckback) return o.txn_window;
  return o.scenario == Scenario::kCommitVisible ? 1 : o.window;
}

void PrintHumanLine(const BenchOptions& o, const BenchResult& r, std::optional<double> p50,
                    std::optional<double> p99) {
  const std::string what = HumanWhat(o);
  char tail[160];
  snprintf(tail, sizeof tail, "(n=%llu, %.2f s, ", static_cast<unsigned long long>(r.messages),
           r.secs);
  std::string cpu = "broker CPU n/a";
  if (r.broker_cpu) {
    char buf[48];
    snprintf(buf, sizeof buf, "broker CPU %.2f cores", *r.broker_cpu);
    cpu = buf;
  }
  if (r.client_cpu) {
    char buf[48];
    snprintf(buf, sizeof buf, ", client %.2f", *r.client_cpu);
    cpu += buf;
  }
  std::string errors = r.errors ? ", " + std::to_string(r.errors) + " errors" : "";
  const char* label = o.scenario == Scenario::kCommitVisible ? "commit->visible " : "";
  std::string latency =
      o.scenario != Scenario::kConsume
          ? std::string("  ") + label + "p50 " + HumanMs(p50) + "  p99 " + HumanMs(p99)
          : "";
  std::string details;
  for (const ResultDetail& d : r.details) {
    if (!d.human.empty()) details += (details.empty() ? "  [" : ", ") + d.human;
  }
  if (!details.empty()) details += "]";
  printf("%s size=%d: %s msgs/s%s%s  %s%s%s)\n", what.c_str(), o.size,
         WithThousands(r.msgs_per_s()).c_str(), latency.c_str(), details.c_str(), tail, cpu.c_str(),
         errors.c_str());
}

void PrintResultLine(const BenchOptions& o, const BenchResult& r, std::optional<double> p50,
                     std::optional<double> p99, const std::string& notes) {
  // Byte for byte what the peers' report() prints, so aggregate.py reads it.
  std::string extra = r.errors ? "\terrors=" + std::to_string(r.errors) : "";
  printf(
      "RESULT\tsystem=%s\tscenario=%s\tmsgs_s=%.1f\tp50_ms=%s\tp99_ms=%s\tn=%llu\tsecs=%.3f%s"
      "\tnotes=%s\n",
      o.system.c_str(), o.scenario_name.c_str(), r.msgs_per_s(), PeersMs(p50).c_str(),
      PeersMs(p99).c_str(), static_cast<unsigned long long>(r.messages), r.secs, extra.c_str(),
      notes.c_str());
}

void PrintJson(const BenchOptions& o, const BenchResult& r, std::optional<double> p50,
               std::optional<double> p99, const std::string& notes) {
  auto or_null = [](std::optional<double> v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json j{
      {"scenario", ScenarioFlag(o.scenario)},
      {"scenario_name", o.scenario_name},
      {"system", o.system},
      {"producers", Producers(o)},
      {"window", Window(o)},
      {"size", o.size},
      {"msgs_per_s", r.msgs_per_s()},
      {"p50_ms", or_null(p50)},
      {"p99_ms", or_null(p99)},
      {"n", r.messages},
      {"secs", r.secs},
      {"errors", r.errors},
      {"broker_cpu", or_null(r.broker_cpu)},
      {"client_cpu", or_null(r.client_cpu)},
      {"broker", o.broker.empty() ? "started by txmq-bench" : o.broker},
      {"flush", o.broker.empty() ? nlohmann::json(o.flush) : nlohmann::json()},
      {"notes", notes},
  };
  if (!o.broker_args.empty()) j["broker_args"] = o.broker_args;
  for (const ResultDetail& d : r.details) j[d.key] = d.value;
  printf("%s\n", j.dump().c_str());
}

}  // namespace

std::optional<double> PercentileMs(std::vector<int64_t>& samples, double p) {
  if (samples.empty()) return std::nullopt;
  size_t k = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
  k = std::clamp<size_t>(k, 1, samples.size());
  std::nth_element(samples.begin(), samples.begin() + static_cast<ptrdiff_t>(k - 1), samples.end());
  return static_cast<double>(samples[k - 1]) / 1e6;
}

void PrintReport(const BenchOptions& o, BenchResult& r) {
  std::optional<double> p50 = PercentileMs(r.latencies_ns, 0.50);
  std::optional<double> p99 = PercentileMs(r.latencies_ns, 0.99);
  std::string notes = o.notes;
  if (notes.empty()) {
    notes = o.broker.empty() ? "txmqd --flush " + o.flush +
                                   (o.flush == "sync" ? " (fsync before ack, group commit)" : "")
                             : "broker " + o.broker;
    if (o.scenario == Scenario::kConsume) notes += "; one ack per message";
    if (o.scenario == Scenario::kTxn) {
      notes += o.txn_background_end
                   ? "; half per message carrying earlier commits, commits confirmed durably in "
                     "the background (timed until all confirmed)"
                   : "; half + commit per message, each acked durably";
      if (o.txn_window > 1)
        notes += "; " + std::to_string(o.txn_window) + " in flight per producer";
    }
  }
  PrintHumanLine(o, r, p50, p99);
  if (o.result_line) PrintResultLine(o, r, p50, p99, notes);
  if (o.json) PrintJson(o, r, p50, p99, notes);
  fflush(stdout);
}

}  // namespace txmq::bench
