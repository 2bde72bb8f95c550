// Reads the broker's transaction counters the way `txmqctl status` does (an
// admin connection and one `status` request), for scenarios that must know
// what the broker still holds open, which no client library call says.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace txmq::net {
class Connection;
}  // namespace txmq::net

namespace txmq::bench {

// Counters since the broker started (TxCounters of the status reply).
struct TxCounters {
  uint64_t open = 0;  // prepared, no outcome yet (stuck ones included)
  uint64_t committed = 0;
  uint64_t rolled_back = 0;
  uint64_t checks_sent = 0;
  uint64_t answers_commit = 0;
  uint64_t stuck = 0;
};

// Thread safety: one thread at a time.
class BrokerStatus {
 public:
  // Connects as an admin client (in the background; the first call waits).
  // Throws BenchError when the connection cannot be set up.
  explicit BrokerStatus(const std::string& broker, const std::string& curve_key = "",
                        const std::string& server_key = "");
  ~BrokerStatus();
  BrokerStatus(const BrokerStatus&) = delete;
  BrokerStatus& operator=(const BrokerStatus&) = delete;

  // One status round trip. Throws BenchError when it fails.
  TxCounters Transactions();

 private:
  std::string broker_;
  std::unique_ptr<net::Connection> connection_;
};

}  // namespace txmq::bench
