// Shared plumbing of txmqctl commands: the global flags, the connection to
// the broker, how results and failures are printed, and exit codes:
//   0 success, 1 the broker refused or the operation failed, 2 bad usage.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "protocol/src/connection.h"
#include "txmq/status.h"

namespace txmq::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct Globals {
  std::string broker = "tcp://127.0.0.1:7800";  // --broker or TXMQ_BROKER
  bool json = false;
  std::string timeout = "10s";
};

class Ctl {
 public:
  explicit Ctl(Globals& globals) : globals_(globals) {}

  // Connects (as an admin client) on first use.
  Result<net::Connection*> Connection();
  // One request/response with the global timeout; `fill` sets the request.
  Result<wire::Frame> Call(const std::function<void(wire::Envelope::Builder)>& fill);
  std::chrono::milliseconds timeout() const;
  bool json() const { return globals_.json; }
  const std::string& broker() const { return globals_.broker; }

  // Prints "txmqctl: <message>" on stderr; returns the exit code for it.
  int Fail(const Status& status) const;
  int Usage(const std::string& message) const;

 private:
  Globals& globals_;
  std::unique_ptr<net::Connection> connection_;
};

// A command registers its subcommand and sets `run` to what executes it.
using Runner = std::function<int()>;

void AddStatusCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddSendCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddConsumeCommand(CLI::App& app, Ctl& ctl, Runner& run);

// Text in JSON output: as is when valid UTF-8, else base64 under
// "<field>_base64".
void PutBytes(nlohmann::json& out, const std::string& field, const std::string& bytes);
// Body for a person: printable ASCII/UTF-8 shown (cut at `max`), else a
// note of its size.
std::string Preview(const std::string& bytes, size_t max);

}  // namespace txmq::ctl
