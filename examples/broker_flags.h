// The broker connection flags every example program takes: --broker, and
// for a broker that runs CURVE (README "Security") --curve-key and
// --server-key, passed on to each producer, consumer and outbox.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace txmq::examples {

struct BrokerFlags {
  std::string url = "tcp://127.0.0.1:7800";
  std::string curve_key{};   // this service's secret key file (NAME.key)
  std::string server_key{};  // the broker's public key file
};

inline void AddBrokerFlags(CLI::App& app, BrokerFlags& flags) {
  app.add_option("--broker", flags.url,
                 "txmqd endpoint, or a replicated group's endpoints comma-separated")
      ->capture_default_str();
  app.add_option("--curve-key", flags.curve_key,
                 "CURVE: this service's secret key file (txmqctl keygen NAME writes NAME.key); "
                 "with --server-key, for a broker run with --curve-secret-key");
  app.add_option("--server-key", flags.server_key, "CURVE: the broker's public key file");
}

}  // namespace txmq::examples
