// txmq-bench-pg-outbox: what the PostgreSQL outbox costs a service.
//
// Each of --writers threads runs --transactions / writers local
// transactions on its own connection: BEGIN; INSERT a business row; (with
// --mode outbox) txmq::pg::Outbox::Add of a message; COMMIT. --mode bare
// is the same transaction without the outbox row, the service's cost
// without reliability; --mode outbox-notify is outbox with notify_on_add
// on (relays woken by NOTIFY instead of polling every 100 ms); --mode
// outbox-add inserts the outbox rows with no relay running (what the
// insert itself costs, apart from the relay's work on the same database). In outbox mode the relay
// (one per process, as in a service instance) sends the rows to a txmqd and a consumer in this
// process receives them; the run ends when the consumer has every message.
//
// Reported: commits per second (timed from the start gate to the last
// COMMIT), in outbox mode also relayed per second (to the last message
// received) and the relay lag: from COMMIT returning in the writer to the
// consumer receiving the message (p50, p99). tools/txmq-bench/pg-outbox.sh
// starts a throwaway PostgreSQL and runs the matrix BENCHMARKS.md quotes.
//
// Threads: the writers (each owns its PGconn), the outbox's relay thread,
// the consumer's threads (LagLog is their only shared state, under its
// mutex) and main, which owns the broker process and waits.
#include <libpq-fe.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "protocol/src/util.h"
#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/broker_process.h"
#include "tools/txmq-bench/payload.h"
#include "tools/txmq-bench/report.h"
#include "tools/txmq-bench/start_gate.h"
#include "txmq/consumer.h"
#include "txmq/pg/outbox.h"

namespace txmq::bench {
namespace {

constexpr const char* kTopic = "bench-pg-orders";
constexpr const char* kWarmUpKey = "txmq-bench-warm-up";
constexpr auto kReceiveBound = std::chrono::seconds(120);

struct PgBenchOptions {
  std::string conninfo;
  std::string broker;                 // empty: start txmqd
  std::string curve_key, server_key;  // CURVE, with --broker
  std::string txmqd;
  std::string mode = "outbox";
  int writers = 1;
  int transactions = 5000;
  size_t size = 1024;
  bool json = false;
};

// Commit times of the writers and receive times of the consumer, paired by
// message id. Either may come first: the relay can send a row (woken by
// NOTIFY) before the writer's COMMIT call has returned to it.
class LagLog {
 public:
  void Committed(const std::string& id, SteadyTime t) {
    std::lock_guard<std::mutex> lock(mu_);
    Pair(id, t, /*committed=*/true);
  }
  void Received(const txmq::Received& m, SteadyTime t) {
    std::lock_guard<std::mutex> lock(mu_);
    if (m.key == kWarmUpKey) {
      warm_up_ = true;
    } else if (m.delivery_count == 1) {
      ++received_;
      last_received_ = std::max(last_received_, t);
      Pair(m.id, t, /*committed=*/false);
    }
    cv_.notify_all();
  }
  bool WaitFor(SteadyTime deadline, uint64_t received, bool warm_up) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] {
      return warm_up ? warm_up_ : received_ >= received && pending_.empty();
    });
  }
  std::vector<int64_t> TakeLatencies() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(latencies_ns_);
  }
  SteadyTime last_received() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_received_;
  }

 private:
  void Pair(const std::string& id, SteadyTime t, bool committed) {
    auto [it, inserted] = pending_.try_emplace(id, t, committed);
    if (inserted) return;
    const SteadyTime commit = committed ? t : it->second.first;
    const SteadyTime received = committed ? it->second.first : t;
    // Received before COMMIT returned: no lag to speak of, counted as 0.
    latencies_ns_.push_back(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(received - commit).count()));
    pending_.erase(it);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, std::pair<SteadyTime, bool>> pending_;
  std::vector<int64_t> latencies_ns_;
  uint64_t received_ = 0;
  SteadyTime last_received_{};
  bool warm_up_ = false;
};

// One connection, closed on scope exit; throws when it cannot connect.
struct Connection {
  explicit Connection(const std::string& conninfo) : conn(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string why = PQerrorMessage(conn);
      PQfinish(conn);
      throw BenchError("cannot connect to PostgreSQL (" + conninfo + "): " + why);
    }
  }
  ~Connection() { PQfinish(conn); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Exec(const char* sql) const {
    PGresult* r = PQexec(conn, sql);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string why = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) throw BenchError(std::string(sql) + ": " + why);
  }

  PGconn* conn;
};

void InsertOrder(const Connection& c, const std::string& customer, const std::string& body) {
  const char* values[] = {customer.c_str(), body.data()};
  const int lengths[] = {0, static_cast<int>(body.size())};
  const int formats[] = {0, 1};
  PGresult* r = PQexecParams(c.conn,
                             "INSERT INTO bench_orders (customer, amount, payload) "
                             "VALUES ($1, 42, $2)",
                             2, nullptr, values, lengths, formats, 0);
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string why = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  if (!ok) throw BenchError("INSERT INTO bench_orders: " + why);
}

// The business transaction; with `outbox`, its outbox row too. Returns the
// message id (empty in bare mode).
std::string OneTransaction(const Connection& c, pg::Outbox* outbox, const std::string& customer,
                           std::string body, const std::string& key) {
  c.Exec("BEGIN");
  InsertOrder(c, customer, body);
  std::string id;
  if (outbox != nullptr) {
    Message m{.topic = kTopic, .key = key, .body = std::move(body)};
    m.id = NewUuidV7();
    id = m.id;
    if (Status s = outbox->Add(c.conn, std::move(m)); !s.ok()) {
      throw BenchError("outbox Add: " + s.ToString());
    }
  }
  c.Exec("COMMIT");
  return id;
}

BenchResult Run(const PgBenchOptions& o) {
  const bool adds = o.mode != "bare";
  const bool with_outbox = adds && o.mode != "outbox-add";  // relayed and received
  {
    Connection admin(o.conninfo);
    admin.Exec(
        "CREATE TABLE IF NOT EXISTS bench_orders (id bigserial PRIMARY KEY, customer text NOT "
        "NULL, amount bigint NOT NULL, payload bytea NOT NULL)");
    admin.Exec("TRUNCATE bench_orders");
    if (Status s = pg::Outbox::Migrate(admin.conn); !s.ok()) throw BenchError(s.ToString());
    admin.Exec("TRUNCATE txmq_outbox");  // nothing left from an earlier run
  }
  std::unique_ptr<BrokerProcess> broker;
  std::string url = o.broker;
  if (with_outbox && url.empty()) {
    broker = std::make_unique<BrokerProcess>(o.txmqd, std::vector<std::string>{});
    url = broker->endpoint();
  }

  LagLog lag;
  std::unique_ptr<Consumer> consumer;
  std::unique_ptr<pg::Outbox> outbox;
  if (adds && !with_outbox) {  // Add works without a running relay
    outbox = std::make_unique<pg::Outbox>(pg::OutboxOptions{.conninfo = o.conninfo});
  }
  if (with_outbox) {
    consumer = std::make_unique<Consumer>(ConsumerOptions{.broker = url,
                                                          .curve_key = o.curve_key,
                                                          .server_key = o.server_key,
                                                          .group = "bench-pg",
                                                          .handler_threads = 1,
                                                          .pull_batch = 64});
    if (Status s = consumer->Subscribe(kTopic,
                                       [&lag](const txmq::Received& m) {
                                         lag.Received(m, SteadyClock::now());
                                         return ConsumeResult::Success();
                                       });
        !s.ok()) {
      throw BenchError("subscribe: " + s.ToString());
    }
    if (Status s = consumer->Start(); !s.ok()) throw BenchError("consumer: " + s.ToString());
    outbox =
        std::make_unique<pg::Outbox>(pg::OutboxOptions{.conninfo = o.conninfo,
                                                       .producer = {.broker = url,
                                                                    .curve_key = o.curve_key,
                                                                    .server_key = o.server_key,
                                                                    .group = "bench-pg"},
                                                       .notify_on_add = o.mode == "outbox-notify"});
    if (Status s = outbox->Start(); !s.ok()) throw BenchError("outbox: " + s.ToString());
    // Warm-up: the topic exists, the relay and the consumer are connected.
    Connection c(o.conninfo);
    (void)OneTransaction(c, outbox.get(), "warm-up", MakePayload(o.size, 1), kWarmUpKey);
    if (!lag.WaitFor(SteadyClock::now() + kReceiveBound, 0, /*warm_up=*/true)) {
      throw BenchError("the warm-up message did not arrive within 120 s");
    }
  }

  StartGate gate(o.writers, nullptr);
  std::atomic<uint64_t> errors{0};
  std::mutex done_mu;
  SteadyTime last_commit{};
  std::vector<std::thread> writers;
  for (int w = 0; w < o.writers; ++w) {
    writers.emplace_back([&, w] {
      try {
        Connection c(o.conninfo);
        std::string body = MakePayload(o.size, 1000 + static_cast<uint64_t>(w));
        const int count = o.transactions / o.writers + (w < o.transactions % o.writers ? 1 : 0);
        if (!gate.ArriveAndWait()) return;
        for (int i = 0; i < count; ++i) {
          StampPayload(body, (static_cast<uint64_t>(w) << 32) | static_cast<uint64_t>(i));
          // Keys of their own per writer: writers stepping through the same
          // keys in step would queue on each key's lock (Add serializes a
          // key's writers), which measures the bench, not the outbox.
          const std::string customer = "c" + std::to_string(w * 1000 + i % 1000);
          std::string id = OneTransaction(c, outbox.get(), customer, body, customer);
          if (!id.empty()) lag.Committed(id, SteadyClock::now());
        }
        std::lock_guard<std::mutex> lock(done_mu);
        last_commit = std::max(last_commit, SteadyClock::now());
      } catch (const BenchError& e) {
        std::cerr << "writer " << w << ": " << e.what() << "\n";
        ++errors;
        gate.Abort();
      }
    });
  }
  const std::optional<SteadyTime> start = gate.ArriveAndWait();
  for (auto& t : writers) t.join();
  if (!start || errors > 0) throw BenchError("a writer failed; no result");

  BenchResult result;
  result.messages = static_cast<uint64_t>(o.transactions);
  result.secs = std::chrono::duration<double>(last_commit - *start).count();
  if (with_outbox) {
    if (!lag.WaitFor(SteadyClock::now() + kReceiveBound, result.messages, false)) {
      throw BenchError("not every committed message arrived within 120 s");
    }
    const double relayed_secs = std::chrono::duration<double>(lag.last_received() - *start).count();
    result.latencies_ns = lag.TakeLatencies();
    const double relayed = relayed_secs > 0 ? result.messages / relayed_secs : 0;
    result.details.push_back(
        {"relayed_per_s", relayed, "relayed and received " + WithThousands(relayed) + "/s"});
    outbox->Shutdown();
    consumer->Shutdown();
  }
  return result;
}

int Main(int argc, char** argv) {
  PgBenchOptions o;
  CLI::App app{
      "What the PostgreSQL outbox costs: business transactions with and without an outbox row, "
      "relayed through a txmqd to a consumer (BENCHMARKS.md; tools/txmq-bench/pg-outbox.sh runs "
      "the matrix against a throwaway PostgreSQL)"};
  app.add_option("--pg", o.conninfo, "libpq connection string of the database to use")->required();
  app.add_option("--mode", o.mode,
                 "outbox: business row + outbox row (the defaults); outbox-notify: the same with "
                 "notify_on_add on; outbox-add: the rows added, no relay running; bare: "
                 "business row only")
      ->check(CLI::IsMember({"outbox", "outbox-notify", "outbox-add", "bare"}))
      ->capture_default_str();
  app.add_option("--writers,-w", o.writers, "Concurrent writer connections")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--transactions,-n", o.transactions, "Transactions in all")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--size", o.size, "Bytes of the business row's payload and the message body")
      ->check(CLI::Range(8, 1 << 20))
      ->capture_default_str();
  app.add_option("--broker", o.broker, "Use this txmqd instead of starting one");
  auto* curve_key = app.add_option("--curve-key", o.curve_key,
                                   "With --broker: this client's CURVE secret key file");
  app.add_option("--server-key", o.server_key, "With --broker: the broker's CURVE public key file")
      ->needs(curve_key);
  curve_key->needs("--server-key")->needs("--broker");
  app.add_option("--txmqd", o.txmqd, "The txmqd to start (default: the one beside this tool)");
  app.add_flag("--json", o.json, "Print one JSON object");
  CLI11_PARSE(app, argc, argv);
  BrokerProcess::StopOnSignals();
  try {
    BenchResult r = Run(o);
    const auto p50 = PercentileMs(r.latencies_ns, 0.50);
    const auto p99 = PercentileMs(r.latencies_ns, 0.99);
    if (o.json) {
      std::printf("{\"mode\":\"%s\",\"writers\":%d,\"transactions\":%llu,\"commits_per_s\":%.1f",
                  o.mode.c_str(), o.writers, static_cast<unsigned long long>(r.messages),
                  r.msgs_per_s());
      for (const auto& d : r.details) std::printf(",\"%s\":%.1f", d.key.c_str(), d.value);
      if (p50) std::printf(",\"lag_p50_ms\":%.3f,\"lag_p99_ms\":%.3f", *p50, *p99);
      std::printf("}\n");
    } else {
      std::printf("pg-outbox mode=%s writers=%d: %s commits/s", o.mode.c_str(), o.writers,
                  WithThousands(r.msgs_per_s()).c_str());
      for (const auto& d : r.details) std::printf(", %s", d.human.c_str());
      if (p50) std::printf(", relay lag p50 %.2f ms p99 %.2f ms", *p50, *p99);
      std::printf("\n");
    }
    return 0;
  } catch (const BenchError& e) {
    std::cerr << "txmq-bench-pg-outbox: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace
}  // namespace txmq::bench

int main(int argc, char** argv) { return txmq::bench::Main(argc, argv); }
