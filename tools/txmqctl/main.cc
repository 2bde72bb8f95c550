// txmqctl: the operator's command line for a txmq broker.
//   txmqctl [--broker URL] [--json] NOUN [VERB] [ARGS]
#include <cstdlib>
#include <iostream>

#include "protocol/src/edit_distance.h"
#include "protocol/src/unknown_option.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "txmq/logging.h"
#include "txmq/version.h"

// The commands given, outermost (the app) first.
std::vector<const CLI::App*> CommandsGiven(const CLI::App& app) {
  std::vector<const CLI::App*> given = {&app};
  while (!given.back()->get_subcommands().empty()) {
    given.push_back(given.back()->get_subcommands().front());
  }
  return given;
}

// "unknown command 'tpoic' (did you mean 'topic'?)" when the parse stopped
// at a word that is not a command of the deepest command given; "" when
// the error is another.
std::string UnknownCommand(const CLI::App& app) {
  // A word the deepest command does not take falls through
  // (fallthrough()) to the ones above it.
  const std::vector<const CLI::App*> given = CommandsGiven(app);
  const std::vector<const CLI::App*> commands = given.back()->get_subcommands({});
  if (commands.empty()) return "";
  std::vector<std::string> names;
  for (const CLI::App* c : commands) names.push_back(c->get_name());
  for (auto at = given.rbegin(); at != given.rend(); ++at) {
    for (const std::string& word : (*at)->remaining()) {
      if (word.empty() || word[0] == '-') continue;
      const std::string nearest = txmq::Nearest(word, names);
      return "unknown command '" + word + "'" +
             (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)");
    }
  }
  return "";
}

// "txmqctl tx" alone: which commands it takes, not just that one is needed.
std::string MissingCommand(const CLI::App& app) {
  const std::vector<const CLI::App*> given = CommandsGiven(app);
  const std::vector<const CLI::App*> commands = given.back()->get_subcommands({});
  if (commands.empty()) return "";
  std::string path = "txmqctl", names;  // the root's name is argv[0], a path
  for (size_t i = 1; i < given.size(); ++i) path += " " + given[i]->get_name();
  for (const CLI::App* c : commands) names += (names.empty() ? "" : ", ") + c->get_name();
  return "'" + path + "' needs a command: " + names;
}

int main(int argc, char** argv) {
  using namespace txmq::ctl;
  Globals globals;
  if (const char* env = std::getenv("TXMQ_BROKER"); env != nullptr && *env != '\0') {
    globals.broker = env;
  }
  globals.operator_name = DefaultOperator();
  if (const char* env = std::getenv("TXMQ_CURVE_KEY"); env != nullptr) globals.curve_key = env;
  if (const char* env = std::getenv("TXMQ_SERVER_KEY"); env != nullptr) globals.server_key = env;
  CLI::App app{std::string("txmqctl: inspect and operate a txmq broker.\n") + kExitCodesHelp +
               "Examples:\n"
               "  txmqctl status\n"
               "  txmqctl send orders --key 42 'hello'\n"
               "  txmqctl consume orders --group audit --max 10\n"
               "  txmqctl tx list --state stuck\n"
               "  txmqctl --broker 7001,7002,7003 cluster status\n"
               "  txmqctl --operator alice tx commit <id> --reason 'order 42 is paid'\n"
               "  txmqctl keygen alice    # alice.key (secret) and alice.pub\n"
               "  txmqctl --curve-key alice.key --server-key broker.pub status\n"};
  auto* broker_flag =
      app.add_option(
             "--broker,-b", globals.broker,
             "Broker address: tcp://HOST:PORT, HOST:PORT or a port (also TXMQ_BROKER); for a "
             "replicated group, its nodes comma-separated (the leader is found)")
          ->capture_default_str();
  app.add_option("--broker-group", globals.broker_group,
                 "In a cluster of several broker groups: talk to this group, found through "
                 "--broker's cluster status (default: the group of the --broker node). "
                 "Transactions, dead letters and consumer groups are each group's own")
      ->capture_default_str();
  app.add_flag("--json", globals.json, "Machine-readable output (JSON; JSON lines for streams)");
  app.add_option("--timeout", globals.timeout,
                 "How long a command waits for the broker in all: connecting, replies, a "
                 "send's retries (consume: beyond its --wait)")
      ->capture_default_str();
  app.add_option("--operator", globals.operator_name,
                 "A name for the broker's audit log of changes (with CURVE the log names your "
                 "key's principal first; this is an extra label)")
      ->capture_default_str();
  app.add_option("--curve-key", globals.curve_key,
                 "CURVE: your secret key file (txmqctl keygen NAME writes NAME.key; also "
                 "TXMQ_CURVE_KEY). Needs --server-key");
  app.add_option("--server-key", globals.server_key,
                 "CURVE: the broker's public key file (its NAME.pub; also TXMQ_SERVER_KEY)");
  // The client library's own log lines (reconnects, failed hellos) would be
  // a second voice on stderr beside txmqctl's one line; they are there for
  // debugging a connection.
  std::string log_level = "error";
  app.add_option("--log-level", log_level,
                 "Client library logging: trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.set_version_flag("--version", std::string("txmqctl ") + txmq::kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // global flags also after the command: txmqctl status --json

  Ctl ctl(globals);
  Runner run;
  AddStatusCommand(app, ctl, run);
  AddSendCommand(app, ctl, run);
  AddConsumeCommand(app, ctl, run);
  AddTopicCommand(app, ctl, run);
  AddMsgCommand(app, ctl, run);
  AddTxCommand(app, ctl, run);
  AddGroupCommand(app, ctl, run);
  AddDlqCommand(app, ctl, run);
  AddOutboxCommand(app, ctl, run);
  AddKeygenCommand(app, ctl, run);
  AddClusterCommand(app, ctl, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A mistyped option first: the value after it is left over too and
    // would read as a mistyped command.
    std::string unknown = txmq::UnknownOption(app);
    if (unknown.empty()) unknown = UnknownCommand(app);
    if (unknown.empty() && dynamic_cast<const CLI::RequiredError*>(&e) != nullptr &&
        std::string(e.what()).find("subcommand") != std::string::npos) {
      unknown = MissingCommand(app);
    }
    std::cerr << "txmqctl: " << (unknown.empty() ? e.what() : unknown) << " (see --help)\n";
    return kExitUsage;
  }
  txmq::SetLogLevel(txmq::ParseLogLevel(log_level).value());
  if (!run) return ctl.Usage("no command given");
  if (globals.operator_name.empty()) return ctl.Usage("--operator must not be empty");
  for (unsigned char c : globals.operator_name) {
    // The name lands in audit lines: one line each, nothing hidden.
    if (c < 0x20 || c == 0x7f) {
      return ctl.Usage("--operator '" + OneLine(globals.operator_name, 60) +
                       "' has a control character; a name is printable text");
    }
  }
  if (const int64_t ms = txmq::ParseDurationMs(globals.timeout); ms < 0) {
    return ctl.Usage("--timeout '" + globals.timeout + "' is not a duration (e.g. 10s)");
  } else if (ms == 0) {
    return ctl.Usage("--timeout '" + globals.timeout + "' must be more than 0 (e.g. 10s)");
  }
  auto broker =
      NormalizeBrokerUrl(broker_flag->count() > 0 ? "--broker" : "TXMQ_BROKER", globals.broker);
  if (!broker.ok()) return ctl.Usage(broker.status().message());
  globals.broker = *broker;
  ctl.StartClock();
  return run();
}
