#include "tests/cluster/etcd_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include "broker/src/cluster/etcd_coordinator.h"

namespace txmq::testing {

std::unique_ptr<EtcdServer> EtcdServer::Start(std::chrono::milliseconds timeout) {
  // The ports are free when picked but not reserved: if etcd exits because
  // another process took one meanwhile, try again with new ones.
  std::string logs;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::unique_ptr<EtcdServer> etcd(new EtcdServer());
    bool exited = false;
    if (etcd->Launch(timeout, exited)) return etcd;
    logs += etcd->log();
    if (!exited) break;
  }
  ADD_FAILURE() << "etcd did not serve within " << timeout.count() << " ms; log:\n" << logs;
  return nullptr;
}

bool EtcdServer::Launch(std::chrono::milliseconds timeout, bool& exited) {
  const int client_port = FreeLoopbackPort();
  int peer_port = FreeLoopbackPort();
  for (int i = 0; i < 10 && peer_port == client_port; ++i) peer_port = FreeLoopbackPort();
  endpoint_ = "http://127.0.0.1:" + std::to_string(client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
  process_ =
      Process::Spawn({TXMQ_ETCD_BIN, "--name", "txmq-test", "--data-dir", dir_.Sub("data"),
                      "--listen-client-urls", endpoint_, "--advertise-client-urls", endpoint_,
                      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                      "--initial-cluster", "txmq-test=" + peer, "--initial-cluster-state", "new",
                      // Lease TTL minimum = ceil(1.5 election timeouts) = 1 s.
                      "--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap",
                      "--log-outputs", "stderr"},
                     dir_.Sub("etcd.log"));
  if (!process_) return false;
  cluster::EtcdOptions options;
  options.endpoints = {endpoint_};
  options.connect_timeout = std::chrono::milliseconds(200);
  options.request_timeout = std::chrono::milliseconds(500);
  auto client = cluster::OpenEtcdCoordinator(options);
  if (!client.ok()) return false;
  WaitFor(
      [&] {
        exited = process_->Wait(std::chrono::milliseconds(0)).has_value();
        return exited || (*client)->Get("/txmq-test/ready").ok();
      },
      timeout);
  return !exited && (*client)->Get("/txmq-test/ready").ok();
}

EtcdServer::~EtcdServer() { Stop(); }

void EtcdServer::Stop() {
  if (!process_) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(std::chrono::seconds(5))) {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(5));
  }
  process_.reset();
}

}  // namespace txmq::testing
