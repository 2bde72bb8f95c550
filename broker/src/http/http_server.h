// txmqd's HTTP endpoint (--http HOST:PORT): GET /metrics (Prometheus text,
// metrics_text.h), /healthz (200 while the process serves HTTP), /readyz
// (readiness.h) and the operators' web console at / with its API under
// /api/ (console_routes.h), served by cpp-httplib.
//
// Threads and who owns what:
//   "txmq-http"   runs cpp-httplib's accept loop: owns the listening socket.
//   kWorkers pool threads (cpp-httplib's ThreadPool) read requests, answer
//                 them and own their connections while they do.
// None of them touches the broker's state. To answer /metrics or /readyz a
// worker asks the SnapshotSource (Broker::Metrics): the core thread copies
// its state into a MetricsSnapshot between batches of requests and hands
// it over (snapshot_mailbox.h), and the worker renders that copy. A core
// that does not answer within kSnapshotTimeout makes /readyz say so (503)
// instead of hanging the scrape. The console's reads and actions go the
// same way in the other direction: a worker hands the operator request to
// the core (Broker::Operate, operator_mailbox.h) and waits for its reply.
//
// The server starts before the broker recovers, so /healthz answers during
// a long recovery while /readyz says "starting" (503); Attach() hands it
// the broker once it serves.
//
// Thread safety: Start, Attach, address and Stop from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "broker/src/cluster/cluster_health.h"
#include "broker/src/http/console_routes.h"
#include "broker/src/metrics_snapshot.h"
#include "txmq/status.h"

namespace httplib {
class Server;
}

namespace txmq::broker::http {

// "HOST:PORT" (IPv6 in brackets: "[::1]:9100"); port 0 picks a free one.
// INVALID_ARGUMENT naming --http when it is not that.
Status ParseHttpAddress(const std::string& address, std::string* host, int* port);
// Whether only this machine can reach HOST (127.0.0.0/8, ::1, localhost).
bool IsLoopbackHttpAddress(const std::string& address);

class HttpServer {
 public:
  using SnapshotSource = std::function<Result<std::shared_ptr<const MetricsSnapshot>>(
      std::chrono::milliseconds timeout)>;
  using ClusterSource = std::function<cluster::ClusterHealth()>;
  static constexpr int kWorkers = 4;
  static constexpr std::chrono::milliseconds kSnapshotTimeout{2000};

  // Binds `address` (ParseHttpAddress) and starts serving. UNAVAILABLE
  // when it cannot bind.
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& address);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The broker serves: /readyz and /metrics ask `source` from now on.
  void Attach(SnapshotSource source);
  // A member of a replicated group, from the start (also while it
  // follows): /readyz decides with the group's view (readiness.h) and
  // /metrics adds it.
  void AttachCluster(ClusterSource source);
  // The broker serves: the console's API sends operator requests to
  // `call` (Broker::Operate) for whoever presents `token`.
  void AttachConsole(OperatorCall call, ConsoleToken token);
  // The bound address, "HOST:PORT" with the real port.
  const std::string& address() const { return address_; }
  // Stops accepting, finishes the requests being answered, joins the
  // threads. Idempotent; the destructor calls it.
  void Stop();

 private:
  HttpServer();
  void Route();
  // The attached source, or null before Attach.
  SnapshotSource Source();

  std::unique_ptr<httplib::Server> server_;
  std::string address_;
  std::thread thread_;
  std::mutex mu_;
  // The attached cluster source, or null (a lone broker).
  ClusterSource Cluster();

  SnapshotSource source_;                        // guarded by mu_
  ClusterSource cluster_;                        // guarded by mu_
  std::shared_ptr<const ConsoleState> console_;  // null before AttachConsole (guarded by mu_)
};

}  // namespace txmq::broker::http
