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
  // Who asks, sent with every state-changing request for the broker's audit
  // log: --operator, else "$USER@hostname".
  std::string operator_name;
};

// "$USER@hostname" (LOGNAME when USER is unset), or "unknown".
std::string DefaultOperator();

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
  const std::string& operator_name() const { return globals_.operator_name; }

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
void AddTopicCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddMsgCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddTxCommand(CLI::App& app, Ctl& ctl, Runner& run);
// tx commit, rollback, check, recheck: the verbs that change a transaction.
void AddTxResolveCommands(CLI::App& tx, Ctl& ctl, Runner& run);
void AddGroupCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddDlqCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddOutboxCommand(CLI::App& app, Ctl& ctl, Runner& run);

// A message or transaction id as the broker accepts it: printable ASCII
// without spaces. Checked here so a pasted typo is bad usage (exit 2).
Status ValidateId(const std::string& what, const std::string& id);

// "1 message", "3 messages".
std::string Count(uint64_t n, const std::string& noun);

// One JSON document on stdout; bytes that are not UTF-8 are replaced, never
// a crash.
void PrintJson(const nlohmann::json& j);

// "--older-than 5m" and the like: milliseconds, or -1 when `text` is not a
// duration.
int64_t ParseDurationArg(const std::string& text);
// Epoch milliseconds as "2025-01-31T12:00:00Z" (UTC); "-" for 0.
std::string FormatTimeMs(int64_t epoch_ms);
// How long ago `epoch_ms` was ("5m30s"); "-" for 0.
std::string AgeMs(int64_t epoch_ms);
// `text` on one line (newlines and tabs become spaces), cut to `max`
// characters with "..." so a long error does not break a table.
std::string OneLine(const std::string& text, size_t max);

// Text in JSON output: as is when valid UTF-8, else base64 under
// "<field>_base64".
void PutBytes(nlohmann::json& out, const std::string& field, const std::string& bytes);
// Body for a person: printable ASCII/UTF-8 shown (cut at `max`), else a
// note of its size.
std::string Preview(const std::string& bytes, size_t max);

}  // namespace txmq::ctl
