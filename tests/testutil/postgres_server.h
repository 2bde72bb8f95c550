// A real PostgreSQL server (Debian's postgresql package) for tests:
// initdb into a temporary directory, one postmaster on a free loopback
// port (no Unix socket), trust authentication for the user "txmq", fsync
// off (the tests kill clients, never the server's machine). Run as root,
// it runs as "nobody" (PostgreSQL refuses root).
//
// Starting one costs about two seconds: share one per test suite
// (SetUpTestSuite) and give each test its own database (CreateDatabase).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tests/testutil/testutil.h"

namespace txmq::testing {

class PostgresServer {
 public:
  // Starts PostgreSQL and waits, at most `timeout`, until it accepts
  // connections. On failure adds a test failure with its log and returns
  // null.
  static std::unique_ptr<PostgresServer> Start(
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Stop(), then the data directory is removed.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // SIGINT (fast shutdown), then SIGKILL if it has not exited within 5 s.
  void Stop();

  // A new, empty database; its libpq connection string.
  std::string CreateDatabase();
  int port() const { return port_; }
  std::string log() const;

 private:
  PostgresServer() = default;
  bool Launch(std::chrono::milliseconds timeout);

  TempDir dir_;
  int port_ = 0;
  int databases_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace txmq::testing
