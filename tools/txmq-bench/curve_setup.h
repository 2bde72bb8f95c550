// txmq-bench --curve: keys and an ACL for the broker txmq-bench starts, so
// the run pays for CURVE (encryption, authentication, authorization) the
// way a secured deployment does. The files live in a temporary directory,
// removed when the object goes away.
#pragma once

#include <string>
#include <vector>

namespace txmq::bench {

class CurveSetup {
 public:
  // Makes a broker key pair, a client key pair and an ACL that lets the
  // client do everything. Throws BenchError when it cannot.
  CurveSetup();
  ~CurveSetup();
  CurveSetup(const CurveSetup&) = delete;
  CurveSetup& operator=(const CurveSetup&) = delete;

  // txmqd's --curve-secret-key and --acl.
  std::vector<std::string> broker_args() const;
  const std::string& client_key_file() const { return client_key_; }
  const std::string& server_key_file() const { return server_pub_; }

 private:
  std::string dir_;
  std::string broker_key_, server_pub_, client_key_, acl_;
};

}  // namespace txmq::bench
