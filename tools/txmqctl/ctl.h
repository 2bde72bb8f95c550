// Shared plumbing of txmqctl commands: the global flags, the connection to
// the broker, the time budget of a command, how results and failures are
// printed, and exit codes (kExit*, below; `txmqctl --help` lists them).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "protocol/src/connection.h"
#include "protocol/src/curve_keys.h"
#include "protocol/src/util.h"
#include "txmq/status.h"

namespace txmq::ctl {

// Every command exits with one of these, so a script can tell "try again
// later" from "fix the command" from "it is not there".
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // refused or failed for another reason
inline constexpr int kExitUsage = 2;        // bad arguments (also the broker's INVALID_ARGUMENT)
inline constexpr int kExitUnreachable = 3;  // no broker at the address, or no answer in time
inline constexpr int kExitNotFound = 4;     // NOT_FOUND: no such topic, message, transaction
inline constexpr int kExitConflict = 5;     // CONFLICT: already decided the other way
inline constexpr int kExitDenied = 6;       // PERMISSION_DENIED: key refused, or no right

// The exit-code lines of `txmqctl --help`.
inline constexpr const char* kExitCodesHelp =
    "Exit codes: 0 done; 1 refused or failed; 2 bad usage; 3 broker unreachable\n"
    "(nothing listens at --broker, or no answer within --timeout); 4 not found;\n"
    "5 conflict (e.g. a transaction already ended the other way); 6 permission\n"
    "denied (the broker refused the --curve-key, or its ACL does not allow this).\n"
    "Failures print one line on stderr.\n";

// The exit code for a failure with `status`. UNAVAILABLE and TIMEOUT mean
// "unreachable" only when `from_broker` (an offline command's UNAVAILABLE,
// such as a locked store, is just a failure).
int ExitCodeOf(const Status& status, bool from_broker);

// --broker as txmqctl accepts it: "tcp://HOST:PORT" and "ipc://PATH" as
// they are, "HOST:PORT" as tcp://HOST:PORT, a bare "PORT" as
// tcp://127.0.0.1:PORT. Anything else is INVALID_ARGUMENT naming `flag`,
// the value and the forms that work. A comma-separated list (a replicated
// group's nodes) has each entry normalized so; the connection follows the
// group's leader from there.
Result<std::string> NormalizeBrokerUrl(const std::string& flag, const std::string& text);

struct Globals {
  std::string broker = "tcp://127.0.0.1:7800";  // --broker or TXMQ_BROKER
  // --broker-group: in a cluster of several broker groups, the group to
  // talk to, found through --broker's cluster status ("" = --broker's own).
  std::string broker_group;
  bool json = false;
  // The whole command's time budget for the broker: connecting, every
  // request, a send's retries.
  std::string timeout = "10s";
  // Who asks, sent with every state-changing request for the broker's audit
  // log: --operator, else "$USER@hostname".
  std::string operator_name;
  // CURVE: this client's secret key file and the broker's public key file
  // (--curve-key, --server-key; TXMQ_CURVE_KEY, TXMQ_SERVER_KEY).
  std::string curve_key;
  std::string server_key;
};

// "$USER@hostname" (LOGNAME when USER is unset), or "unknown".
std::string DefaultOperator();

class Ctl {
 public:
  explicit Ctl(Globals& globals) : globals_(globals) {}

  // Starts the command's --timeout budget; main calls it before the command
  // runs.
  void StartClock();
  // What is left of the budget (at least 1 ms, so a call still fails by
  // itself with TIMEOUT rather than never being made).
  std::chrono::milliseconds Left() const;
  // Connects (as an admin client) on first use and waits until the broker
  // is reachable: a refused connection fails at once ("no broker at URL"),
  // not after the whole budget.
  Result<net::Connection*> Connection();
  // The same for a connection a command opened itself (consume), within
  // `budget` when given (else what is left).
  Status WaitReachable(net::Connection& connection,
                       std::optional<std::chrono::milliseconds> budget = std::nullopt);
  // An admin connection of its own to `broker` (a URL or a node list),
  // with the command's keys, once reachable within `budget` (else what is
  // left); `follow_leader` false stays on the node asked.
  Result<std::unique_ptr<net::Connection>> OpenAdmin(
      const std::string& broker, std::optional<std::chrono::milliseconds> budget = std::nullopt,
      bool follow_leader = true);
  // One request/response within the budget; `fill` sets the request.
  Result<wire::Frame> Call(const std::function<void(wire::Envelope::Builder)>& fill);
  // --timeout as given (the budget's size).
  std::chrono::milliseconds timeout() const;
  bool json() const { return globals_.json; }
  // --broker as given.
  const std::string& broker() const { return globals_.broker; }
  // --broker-group as given ("": --broker's own).
  const std::string& broker_group() const { return globals_.broker_group; }
  // Where the command's broker calls go: --broker, or with --broker-group
  // that group's live nodes (leader first) as --broker's node lists them
  // in cluster status. Resolved once; NOT_FOUND naming the groups there
  // are when the cluster has no such group.
  Result<std::string> Broker();
  const std::string& operator_name() const { return globals_.operator_name; }
  // The keys of --curve-key and --server-key (empty: plaintext); read once.
  Result<curve::ClientKeys> Keys();
  const std::string& curve_key_file() const { return globals_.curve_key; }
  const std::string& server_key_file() const { return globals_.server_key; }

  // Prints "txmqctl: <message>" on stderr; returns the exit code for it
  // (ExitCodeOf).
  int Fail(const Status& status) const;
  int Usage(const std::string& message) const;

 private:
  Globals& globals_;
  std::unique_ptr<net::Connection> connection_;
  std::optional<curve::ClientKeys> keys_;
  std::string resolved_broker_;  // Broker()'s answer, once known
  SteadyTime deadline_{};
  bool used_broker_ = false;  // a failure may be the broker's absence
};

// What another broker group of the cluster answered: each keeps the
// cursors, leases and owners of the queues it serves.
struct BrokerGroupView {
  std::string broker_group;
  Result<wire::Frame> reply;  // the answer, or why there is none
};

// In a cluster of several broker groups (and without --broker-group), the
// request `fill` makes, asked of each other broker group at its nodes
// (leader first) as --broker's cluster status lists them. Sets `home` to
// --broker's own group ("" for a single broker).
std::vector<BrokerGroupView> OtherBrokerGroups(
    Ctl& ctl, const std::function<void(wire::Envelope::Builder)>& fill, std::string* home);

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
// The verbs that delete or rewind (cmd_lifecycle.cc): topic delete, group
// delete and reset, dlq purge.
void AddTopicDeleteCommand(CLI::App& topic, Ctl& ctl, Runner& run);
// topic move and rebalance (cmd_topic_move.cc): queues to other broker
// groups.
void AddTopicMoveCommand(CLI::App& topic, Ctl& ctl, Runner& run);
void AddGroupChangeCommands(CLI::App& group, Ctl& ctl, Runner& run);
void AddDlqPurgeCommand(CLI::App& dlq, Ctl& ctl, Runner& run);
void AddOutboxCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddKeygenCommand(CLI::App& app, Ctl& ctl, Runner& run);
void AddClusterCommand(CLI::App& app, Ctl& ctl, Runner& run);

// A message or transaction id as the broker accepts it: printable ASCII
// without spaces. Checked here so a pasted typo is bad usage (exit 2).
Status ValidateId(const std::string& what, const std::string& id);

// "1 message", "3 messages".
std::string Count(uint64_t n, const std::string& noun);

// A consumer group's row on a topic (topic show, topic delete).
nlohmann::json GroupLagJson(wire::GroupLag::Reader g);

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
