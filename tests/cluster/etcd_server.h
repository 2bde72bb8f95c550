// A real etcd (/usr/bin/etcd, Debian etcd-server 3.4) for tests: one
// member on free loopback ports with its data in a temporary directory,
// short raft timings (so its minimum lease TTL is 1 s, not 2 s) and its log
// in that directory.
//
// Tests share one per test binary (the contract suite starts it in
// SetUpTestSuite): starting etcd costs about a second.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/testutil/testutil.h"

namespace txmq::testing {

class EtcdServer {
 public:
  // Starts etcd and waits, at most `timeout`, until it serves a read. On
  // failure adds a test failure with etcd's log and returns null.
  static std::unique_ptr<EtcdServer> Start(
      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Stop(), then the data directory is removed.
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // SIGTERM, then SIGKILL if etcd has not exited within 5 s. Idempotent.
  void Stop();

  // "http://127.0.0.1:PORT"
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  std::string log() const { return ReadFile(dir_.Sub("etcd.log")); }

 private:
  EtcdServer() = default;
  // One try on fresh ports; `exited` tells whether etcd gave up by itself.
  bool Launch(std::chrono::milliseconds timeout, bool& exited);

  TempDir dir_;
  std::string endpoint_;
  std::unique_ptr<Process> process_;
};

}  // namespace txmq::testing
