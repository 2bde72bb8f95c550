#include "broker/src/http/http_server.h"

#include <httplib.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "broker/src/auth/security.h"
#include "broker/src/http/metrics_text.h"
#include "broker/src/http/process_stats.h"
#include "broker/src/http/readiness.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker::http {

namespace {

// Requests are GETs and small JSON bodies; anything bigger is not for
// this endpoint.
constexpr size_t kMaxPayload = 64 * 1024;
// A client that goes quiet mid-request (or never reads the answer) holds a
// worker at most this long.
constexpr time_t kIoTimeoutSeconds = 5;

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

}  // namespace

Status ParseHttpAddress(const std::string& address, std::string* host, int* port) {
  auto bad = [&] {
    return Status::InvalidArgument("--http '" + address +
                                   "' is not HOST:PORT (examples: 127.0.0.1:9464, [::1]:9464; "
                                   "port 0 picks a free one)");
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad();
  std::string h = address.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return bad();
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return bad();  // IPv6 without brackets: the port is ambiguous
  }
  const std::string p = address.substr(colon + 1);
  int value = -1;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535) {
    return bad();
  }
  *host = h;
  *port = value;
  return Status::OK();
}

bool IsLoopbackHttpAddress(const std::string& address) {
  std::string host;
  int port = 0;
  return ParseHttpAddress(address, &host, &port).ok() && auth::IsLoopbackHost(host);
}

HttpServer::HttpServer() : server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address) {
  std::string host;
  int port = 0;
  if (Status s = ParseHttpAddress(address, &host, &port); !s.ok()) return s;
  std::unique_ptr<HttpServer> http(new HttpServer());
  httplib::Server& server = *http->server_;
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  server.set_payload_max_length(kMaxPayload);
  server.set_read_timeout(kIoTimeoutSeconds);
  server.set_write_timeout(kIoTimeoutSeconds);
  server.set_keep_alive_timeout(kIoTimeoutSeconds);
  http->Route();
  const int bound = port == 0 ? server.bind_to_any_port(host) : port;
  if (bound < 0 || (port != 0 && !server.bind_to_port(host, port))) {
    return Status::Unavailable("--http: cannot listen on " + address + ": " + std::strerror(errno));
  }
  http->address_ =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  http->thread_ = std::thread([server = http->server_.get()] {
    SetThreadName("txmq-http");
    server->listen_after_bind();
  });
  // httplib's stop() does nothing before its loop runs: wait for the loop,
  // so a Stop() right after Start() cannot miss it and hang the join.
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return http;
}

void HttpServer::Attach(SnapshotSource source) {
  std::lock_guard<std::mutex> lock(mu_);
  source_ = std::move(source);
}

void HttpServer::AttachConsole(OperatorCall call, ConsoleToken token) {
  auto state = std::make_shared<ConsoleState>();
  state->api = std::make_shared<ConsoleApi>(std::move(call));
  state->token = std::move(token);
  std::lock_guard<std::mutex> lock(mu_);
  console_ = std::move(state);
}

void HttpServer::AttachCluster(ClusterSource source) {
  std::lock_guard<std::mutex> lock(mu_);
  cluster_ = std::move(source);
}

HttpServer::ClusterSource HttpServer::Cluster() {
  std::lock_guard<std::mutex> lock(mu_);
  return cluster_;
}

HttpServer::SnapshotSource HttpServer::Source() {
  std::lock_guard<std::mutex> lock(mu_);
  return source_;
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void HttpServer::Route() {
  httplib::Server& server = *server_;
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", kTextPlain);
  });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    SnapshotSource source = Source();
    ClusterSource group_view = Cluster();
    std::optional<cluster::ClusterHealth> health;
    if (group_view) health = group_view();
    const Readiness r = DecideReadiness(
        source != nullptr, source ? source(kSnapshotTimeout) : Status::Unavailable("not started"),
        health ? &*health : nullptr);
    res.status = r.ready ? 200 : 503;
    res.set_content(r.reason + "\n", kTextPlain);
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    SnapshotSource source = Source();
    ClusterSource group_view = Cluster();
    // A follower has no broker to ask (it serves once it leads), but its
    // view of the group is what an operator watches it for.
    if (!source && !group_view) {
      res.status = 503;
      res.set_content("starting: recovering the data directory, no metrics yet\n", kTextPlain);
      return;
    }
    std::shared_ptr<const MetricsSnapshot> snapshot;
    if (source) {
      auto asked = source(kSnapshotTimeout);
      if (!asked.ok()) {
        res.status = 503;
        res.set_content(asked.status().message() + "\n", kTextPlain);
        return;
      }
      snapshot = std::move(asked.value());
    }
    std::optional<cluster::ClusterHealth> health;
    if (group_view) health = group_view();
    res.set_content(RenderMetrics(snapshot.get(), health ? &*health : nullptr, ReadProcessStats()),
                    kExpositionContentType);
  });
  RouteConsole(server, [this]() -> std::shared_ptr<const ConsoleState> {
    std::lock_guard<std::mutex> lock(mu_);
    return console_;
  });
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Logger("http")->error("{} {} failed: {}", req.method, req.path, what);
        res.status = 500;
        res.set_content("internal error: " + what + "\n", kTextPlain);
      });
}

}  // namespace txmq::broker::http
