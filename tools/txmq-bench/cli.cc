#include "tools/txmq-bench/cli.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "txmq/version.h"

namespace txmq::bench {

namespace {

constexpr const char* kDescription =
    "txmq-bench: throughput and latency of a txmq broker, measured like the peers\n"
    "harness measures RabbitMQ, Redis and NATS (durable, acknowledged messages).\n"
    "\n"
    "Scenarios:\n"
    "  send     P producers (own connection and thread each) keep up to W sends\n"
    "           unacknowledged; msgs/s = acked / time to the last ack; p50/p99 =\n"
    "           send -> durable ack.\n"
    "  consume  preloads --consume-count messages (untimed), then one consumer\n"
    "           (pull batch W, W in flight, 1 handler thread) receives and acks\n"
    "           each of them; timed until the broker confirmed every ack.\n"
    "  preload  only fills --topic with --consume-count messages, for a later\n"
    "           'consume --no-preload --topic T' run (used by the peers harness).\n"
    "  txn      P transaction producers (own connection and thread each), one\n"
    "           transaction per message, one in flight: half message, empty local\n"
    "           transaction (COMMIT), acknowledged commit; msgs/s = committed\n"
    "           transactions / time; p50/p99 = per transaction.\n"
    "           --txn-end background: the commit is sent in the background (riding\n"
    "           on the next half), the call returns after the local transaction;\n"
    "           the time includes waiting for the last ends to be confirmed.\n"
    "           --txn-window W: W transactions in flight per producer\n"
    "           (SendInTransactionAsync).\n"
    "           --leave-open: every local transaction answers UNKNOWN and the run\n"
    "           ends none; with a broker whose --transaction-timeout outlasts the\n"
    "           run they stay open (what 100k open transactions cost the broker).\n"
    "  commit-visible\n"
    "           one transaction producer commits one at a time while one consumer\n"
    "           receives; p50/p99 = commit acknowledged -> handler sees the message.\n"
    "  checkback\n"
    "           P producers; --unknown-percent (10) of the local transactions answer\n"
    "           UNKNOWN and are ended by the broker's check-back (checker: COMMIT).\n"
    "           Reports the mix's rate while sending, how long until the broker had\n"
    "           nothing open, checks sent; msgs/s = all / time until nothing open.\n"
    "           A broker txmq-bench starts gets short check timing (see --broker-arg).\n"
    "\n"
    "Without --broker, txmqd (next to this binary) is started on a fresh temporary\n"
    "data dir and stopped afterwards; its CPU use during the timed part is reported.\n"
    "\n"
    "Examples:\n"
    "  txmq-bench --scenario send --producers 4 --window 256 --duration 3\n"
    "  txmq-bench --scenario consume --window 256 --json\n"
    "  txmq-bench --scenario txn --producers 4\n"
    "  txmq-bench --scenario txn --producers 4 --txn-end background --txn-window 64\n"
    "  txmq-bench --scenario checkback --producers 4 --broker-arg=--check-interval=1s\n"
    "  txmq-bench --broker tcp://127.0.0.1:7800 --producers 1 --window 1 \\\n"
    "      --result-line --system txmq --scenario-name 'produce p=1 w=1'\n";

}  // namespace

std::string DefaultScenarioName(const BenchOptions& o) {
  const std::string p = std::to_string(o.producers);
  switch (o.scenario) {
    case Scenario::kConsume:
      return "consume w=" + std::to_string(o.window) + " (ack/msg)";
    case Scenario::kTxn:
      return "txn p=" + p + (o.txn_window > 1 ? " w=" + std::to_string(o.txn_window) : "") +
             (o.leave_open           ? " (left open)"
              : o.txn_background_end ? " (commit/msg, background end)"
                                     : " (commit/msg)");
    case Scenario::kCommitVisible:
      return "commit-visible (commit ack -> consumer)";
    case Scenario::kCheckback:
      return "checkback p=" + p + " (" + std::to_string(o.unknown_percent) + "% unknown)";
    case Scenario::kSend:
    case Scenario::kPreload:
      break;
  }
  return "produce p=" + p + " w=" + std::to_string(o.window);
}

int ParseCommandLine(int argc, char** argv, BenchOptions* o) {
  CLI::App app{kDescription, "txmq-bench"};
  app.get_formatter()->column_width(34);
  app.set_version_flag("--version", std::string("txmq-bench ") + kVersion);

  std::string scenario = "send";
  app.add_option("--scenario,-s", scenario,
                 "send, consume, preload (fills --topic only), txn, commit-visible, checkback")
      ->check(CLI::IsMember({"send", "consume", "preload", "txn", "commit-visible", "checkback"}))
      ->capture_default_str();
  app.add_option("--producers,-p", o->producers, "Producers (send, txn, checkback)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--window,-w", o->window,
                 "Max unacknowledged sends per producer; consumer pull batch and in-flight limit")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--size", o->size, "Payload bytes per message (incompressible)")
      ->check(CLI::Range(8, 4 * 1024 * 1024))
      ->capture_default_str();
  CLI::Option* duration = app.add_option("--duration,-d", o->duration_s,
                                         "Time bound of the timed part in seconds (default 15 "
                                         "consume, 10 commit-visible, else 3)")
                              ->check(CLI::Range(0.001, 3600.0));
  CLI::Option* count =
      app.add_option("--count,-n", o->count,
                     "Message (transaction) bound of a run, all producers together (default "
                     "3000 commit-visible, else 1000000)")
          ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}));
  app.add_option("--unknown-percent", o->unknown_percent,
                 "checkback: % of local transactions that answer UNKNOWN")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  std::string txn_end = "confirmed";
  app.add_option("--txn-end", txn_end,
                 "txn, checkback: confirmed (the call waits for the broker's durable answer "
                 "to the commit) or background (it does not)")
      ->check(CLI::IsMember({"confirmed", "background"}))
      ->capture_default_str();
  app.add_option("--txn-window", o->txn_window,
                 "txn, checkback: transactions in flight per producer (1: SendInTransaction; "
                 "more: SendInTransactionAsync)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_flag("--leave-open", o->leave_open,
               "txn: leave every transaction undecided (its half stored, no end sent)");
  app.add_option("--consume-count", o->consume_count, "Messages preloaded and drained (consume)")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->capture_default_str();
  app.add_option("--max-in-flight", o->max_in_flight,
                 "consume: the consumer's in-flight limit (default: --window)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--handler-threads", o->handler_threads, "consume: handler threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  CLI::Option* broker =
      app.add_option("--broker,-b", o->broker,
                     "Use this running broker (e.g. tcp://127.0.0.1:7800) instead of starting one");
  app.add_option("--flush", o->flush, "Flush mode of the broker txmq-bench starts")
      ->check(CLI::IsMember({"sync", "async"}))
      ->capture_default_str()
      ->excludes(broker);
  app.add_option("--txmqd", o->txmqd, "txmqd binary to start (default: next to txmq-bench)")
      ->excludes(broker);
  // One word per use, so flag and value go together with '=':
  // --broker-arg=--check-interval=1s (a value starting with '--' would
  // otherwise be read as one of our own flags).
  app.add_option("--broker-arg", o->broker_args,
                 "One more argument for the txmqd txmq-bench starts (repeatable), e.g.\n"
                 "--broker-arg=--check-interval=1s; replaces txmq-bench's default for that flag")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->excludes(broker);
  app.add_option("--topic", o->topic, "Topic to use (default: a fresh bench-<uuid> per run)");
  app.add_flag("--no-preload", o->no_preload,
               "consume: the topic already holds --consume-count messages; do not preload");
  app.add_flag("--json", o->json, "End the output with one JSON object");
  app.add_flag("--result-line", o->result_line,
               "Also print the peers harness's tab-separated RESULT line");
  app.add_option("--system", o->system, "system= of the RESULT line")->capture_default_str();
  app.add_option("--scenario-name", o->scenario_name,
                 "scenario= of the RESULT line (default: 'produce p=P w=W' / "
                 "'consume w=W (ack/msg)')");
  app.add_option("--notes", o->notes, "notes= of the RESULT line (default: broker settings)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "txmq-bench: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  if ((o->no_preload || scenario == "preload") && o->topic.empty()) {
    std::cerr << "txmq-bench: --no-preload and --scenario preload need --topic\n";
    return kExitUsage;
  }
  for (const std::string& arg : o->broker_args) {
    // txmq-bench needs these to find and clean up the broker it starts.
    for (const char* own : {"--listen", "--data-dir", "--ready-file"}) {
      if (arg == own || arg.starts_with(std::string(own) + "=")) {
        std::cerr << "txmq-bench: --broker-arg " << arg << ": " << own
                  << " is set by txmq-bench itself\n";
        return kExitUsage;
      }
    }
  }
  o->scenario = scenario == "consume"          ? Scenario::kConsume
                : scenario == "preload"        ? Scenario::kPreload
                : scenario == "txn"            ? Scenario::kTxn
                : scenario == "commit-visible" ? Scenario::kCommitVisible
                : scenario == "checkback"      ? Scenario::kCheckback
                                               : Scenario::kSend;
  // The peers' consume runs are bounded by CONSUME_DUR = 15 s, not DUR.
  // commit-visible measures a latency, one transaction at a time: a few
  // thousand samples give a stable p99.
  if (duration->count() == 0) {
    o->duration_s = o->scenario == Scenario::kConsume         ? 15.0
                    : o->scenario == Scenario::kCommitVisible ? 10.0
                                                              : 3.0;
  }
  if (count->count() == 0 && o->scenario == Scenario::kCommitVisible) o->count = 3000;
  if (o->max_in_flight == 0) o->max_in_flight = o->window;
  o->txn_background_end = txn_end == "background";
  if (o->leave_open && o->scenario != Scenario::kTxn) {
    std::cerr << "txmq-bench: --leave-open is for --scenario txn only\n";
    return kExitUsage;
  }
  if (o->scenario_name.empty()) o->scenario_name = DefaultScenarioName(*o);
  return -1;
}

}  // namespace txmq::bench
