// txmqctl as the real binary against a real (embedded) broker: exit codes,
// tables, JSON; status, send, consume and what every command shares.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/tools/ctl_fixture.h"
#include "txmq/version.h"

namespace txmq {
namespace {

using testing::RunCommand;
using testing::SplitLines;

using Txmqctl = CtlTest;

// "name   value" as a Fields block prints it, whatever the padding.
bool HasField(const std::string& out, const std::string& name, const std::string& value) {
  return std::regex_search(out, std::regex("(^|\n)" + name + " +" + value + "\n"));
}

TEST_F(Txmqctl, StatusAsTableAndJson) {
  auto r = Ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(HasField(r.out, "flush", "sync")) << r.out;
  EXPECT_TRUE(HasField(r.out, "data dir", dir_.Sub("data"))) << r.out;
  EXPECT_TRUE(HasField(r.out, "open transactions", "0")) << r.out;
  EXPECT_TRUE(HasField(r.out, "stuck transactions", "0")) << r.out;
  EXPECT_TRUE(HasField(r.out, "oldest open tx", "-")) << r.out;
  r = Ctl({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["flush"], "sync");
  EXPECT_EQ(j["storage_healthy"], true);
  EXPECT_EQ(j["listen"], broker_->endpoint());
  EXPECT_EQ(j["transactions"]["open"], 0);
  EXPECT_EQ(j["transactions"]["stuck"], 0);
  EXPECT_TRUE(j.contains("version") && j.contains("uptime_ms") && j.contains("producers") &&
              j.contains("consumers") && j.contains("messages_stored") && j.contains("topics"));
}

TEST_F(Txmqctl, StatusCountsOpenAndStuckTransactions) {
  Send("orders", "1", "plain");
  LeaveStuckTransaction("shop", {.topic = "orders", .key = "42", .body = "order 42"});
  auto j = Json({"status"});
  EXPECT_EQ(j["transactions"]["open"], 1);
  EXPECT_EQ(j["transactions"]["stuck"], 1);
  EXPECT_GT(j["transactions"]["oldest_open_age_ms"].get<int64_t>(), 0);
  EXPECT_EQ(j["messages_stored"], 1);
  EXPECT_EQ(j["topics"], 1);
  auto r = Ctl({"status"});
  EXPECT_TRUE(HasField(r.out, "open transactions", "1")) << r.out;
  EXPECT_TRUE(HasField(r.out, "stuck transactions", "1 \\(see: txmqctl tx list --state stuck\\)"))
      << r.out;
  EXPECT_TRUE(HasField(r.out, "messages stored", "1")) << r.out;
}

TEST_F(Txmqctl, SendThenConsumeAsJsonLines) {
  auto sent = Ctl(
      {"send", "orders", "--key", "42", "--prop", "source=cli", "--prop", "n=1", "hello world"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  std::string id = SplitLines(sent.out).at(0);
  EXPECT_EQ(id.size(), 36u);

  auto got = Ctl({"--json", "consume", "orders", "--group", "audit", "--max", "1", "--wait", "5s"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  auto lines = SplitLines(got.out);
  ASSERT_EQ(lines.size(), 1u);
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["key"], "42");
  EXPECT_EQ(j["body"], "hello world");
  EXPECT_EQ(j["properties"]["source"], "cli");
  EXPECT_EQ(j["delivery_count"], 1);
  EXPECT_TRUE(j.contains("queue") && j.contains("offset"));

  // Acknowledged: the group has nothing left (--wait also takes seconds).
  auto again = Ctl({"consume", "orders", "--group", "audit", "--wait", "0.5"});
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out, "");
  ExpectFails({"consume", "orders", "--group", "audit", "--wait", "soon"}, 2,
              "--wait 'soon' is not a duration from 1ms to 1d");
}

TEST_F(Txmqctl, LinesModeSendsEachLineAndPrintsEachId) {
  std::string input;
  for (int i = 0; i < 300; ++i) input += "line-" + std::to_string(i) + "\n";
  auto sent = Ctl({"send", "bulk", "--lines"}, input);
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  auto ids = SplitLines(sent.out);
  EXPECT_EQ(ids.size(), 300u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 300u);

  auto got = Ctl({"--json", "consume", "bulk", "-g", "g", "--max", "300", "--wait", "5"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  std::set<std::string> bodies;
  for (const auto& line : SplitLines(got.out)) bodies.insert(nlohmann::json::parse(line)["body"]);
  EXPECT_EQ(bodies.size(), 300u);
  EXPECT_TRUE(bodies.count("line-299"));
}

// A line the broker refuses ends the run: what was acknowledged is on
// stdout, and stderr says how many made it and how many did not.
TEST_F(Txmqctl, LinesModeThatFailsSaysHowManyLinesWereAcknowledged) {
  const std::string too_big(broker_->options().max_message_bytes + 1, 'x');
  auto sent = Ctl({"send", "bulk", "--lines"}, "ok-1\nok-2\n" + too_big + "\n");
  EXPECT_EQ(sent.exit_code, 1) << sent.err;  // TOO_LARGE
  EXPECT_EQ(SplitLines(sent.out).size(), 2u) << sent.out;
  EXPECT_NE(sent.err.find("(2 lines acknowledged, their ids printed; 1 failed)"), std::string::npos)
      << sent.err;
}

TEST_F(Txmqctl, BodyFromStdinAndBinaryBodiesInJson) {
  std::string binary("\x00\xff\x10zz", 5);
  ASSERT_EQ(Ctl({"send", "bin", "-"}, binary).exit_code, 0);
  auto got = Ctl({"--json", "consume", "bin", "-g", "g", "--max", "1"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  auto j = nlohmann::json::parse(SplitLines(got.out).at(0));
  EXPECT_FALSE(j.contains("body"));
  EXPECT_EQ(j["body_base64"], "AP8Qeno=");
}

// A mistyped command is named, with the command meant when one is close.
TEST_F(Txmqctl, AnUnknownCommandIsNamedWithTheNearestOne) {
  ExpectFails({"tpoic", "list"}, 2, "unknown command 'tpoic' (did you mean 'topic'?)");
  ExpectFails({"tx", "lsit"}, 2, "unknown command 'lsit' (did you mean 'list'?)");
  ExpectFails({"--json", "topic", "frobnicate"}, 2, "unknown command 'frobnicate' (see --help)");
  // Nothing mistyped, something missing: the commands it takes.
  auto missing = ExpectFails({"topic"}, 2, "'txmqctl topic' needs a command: ");
  EXPECT_NE(missing.err.find("create"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("list"), std::string::npos) << missing.err;
  ExpectFails({}, 2, "'txmqctl' needs a command: status, send, consume");
}

// A value out of range says what is allowed in words a person reads.
TEST_F(Txmqctl, ABadNumberOrDurationSaysWhatIsAllowed) {
  auto max = ExpectFails({"consume", "orders", "-g", "g", "--max", "-1"}, 2,
                         "not in range 0 to 1000000000");
  EXPECT_LT(max.err.size(), 160u) << max.err;
  ExpectFails({"--timeout", "0", "status"}, 2, "--timeout '0' must be more than 0");
  ExpectFails({"--timeout", "soon", "status"}, 2, "--timeout 'soon' is not a duration");
}

// A mistyped option is named, not the value after it.
TEST_F(Txmqctl, AnUnknownOptionIsNamedWithTheNearestOne) {
  ExpectFails({"--brokr", "tcp://127.0.0.1:1", "topic", "list"}, 2,
              "unknown option '--brokr' (did you mean '--broker'?)");
  ExpectFails({"topic", "list", "--jsn"}, 2, "unknown option '--jsn' (did you mean '--json'?)");
  ExpectFails({"topic", "list", "--frobnicate=1"}, 2, "unknown option '--frobnicate' (see --help)");
  // A positional argument given as a flag is told so.
  ExpectFails({"send", "--topic", "orders", "hello"}, 2,
              "unknown option '--topic' (topic is given by its position, without a flag");
}

TEST_F(Txmqctl, BadUsageExitsTwoWithOneLine) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"frobnicate"},
           {"send"},
           {"send", "bad topic", "x"},
           {"consume", "orders"},
           {"send", "t", "--prop", "novalue", "x"},
           {"consume", "orders", "-g", "g", "--max", "-1"},
           {"topic"},
           {"topic", "frobnicate"},
           {"topic", "create", "bad name"},
           {"topic", "create", "t", "--queues", "0"},
           {"topic", "show"},
           {"msg", "show"},
           {"msg", "find", "--topic", "orders"},
           {"msg", "find", "--topic", "orders", "--key", "k", "--limit", "0"},
           {"tx"},
           {"tx", "list", "--state", "bogus"},
           {"tx", "list", "--older-than", "soon"},
           {"tx", "list", "--group", "bad group"},
           {"tx", "show", "has space"},
           {"tx", "commit"},
           {"tx", "rollback", "id", "--bogus"},
           {"tx", "recheck"},
           {"tx", "recheck", "--stuck", "--group", "bad group"},
           {"group", "show"},
           {"group", "show", "bad group"},
           {"dlq", "list"},
           {"dlq", "resend", "g"},
           {"dlq", "resend", "g", "id", "--all"},
           {"--operator", "", "status"},
           {"--timeout", "soon", "status"},
       }) {
    EXPECT_EQ(ExpectFails(args, 2, "").out, "") << args.back();
  }
}

TEST_F(Txmqctl, StatusShowsTheVersionAndEveryEffectiveSetting) {
  const BrokerOptions& o = broker_->options();
  auto j = Json({"status"});
  EXPECT_EQ(j["version"], kVersion);
  const auto& settings = j["settings"];
  ASSERT_TRUE(settings.is_object()) << j.dump();
  EXPECT_EQ(settings["name"], o.name);
  EXPECT_EQ(settings["data-dir"], dir_.Sub("data"));
  EXPECT_EQ(settings["flush"], "sync");
  EXPECT_EQ(settings["check-max"], std::to_string(o.check_max));
  // Durations in flag syntax, as the test broker has them (2s, 300ms).
  EXPECT_EQ(settings["client-timeout"], "2s");
  EXPECT_EQ(settings["transaction-timeout"], "300ms");
  EXPECT_EQ(settings["retry-backoff"], "100ms,200ms,300ms");
  EXPECT_EQ(settings["retention"], "72h");
  EXPECT_EQ(settings["no-auto-create-topics"], "false");

  // Every flag of txmqd that sets a broker option is there; only the ones
  // about the process itself are not.
  auto help = RunCommand({testing::BinPath("txmqd"), "--help"});
  const std::set<std::string> process_only = {"help",      "version",      "config",
                                              "log-level", "ready-file",   "audit-log",
                                              "http",      "print-config", "http-token-file"};
  // The cluster flags (--etcd ...) are the node's, not the broker's
  // (`txmqctl cluster status` shows the group they make).
  const std::set<std::string> node_only = {"etcd",
                                           "cluster",
                                           "group",
                                           "node",
                                           "replication-listen",
                                           "peers",
                                           "min-isr",
                                           "lease-ttl",
                                           "group-weight",
                                           "replication-key",
                                           "replication-peer-keys"};
  std::regex flag(R"(\n\s+--([a-z-]+))");
  int flags = 0;
  for (std::sregex_iterator it(help.out.begin(), help.out.end(), flag), end; it != end; ++it) {
    const std::string name = (*it)[1];
    if (process_only.count(name) || node_only.count(name)) continue;
    ++flags;
    EXPECT_TRUE(settings.contains(name)) << "txmqctl status does not show --" << name;
  }
  EXPECT_GT(flags, 20) << help.out;

  auto table = Ctl({"status"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(HasField(table.out, "version", kVersion)) << table.out;
  EXPECT_TRUE(HasField(table.out, "  data-dir", dir_.Sub("data"))) << table.out;
  EXPECT_TRUE(HasField(table.out, "  check-max", std::to_string(o.check_max))) << table.out;
}

TEST_F(Txmqctl, UnreachableBrokerExitsThreeAndSaysWhere) {
  auto r = RunCommand({testing::BinPath("txmqctl"), "--broker", "tcp://127.0.0.1:1", "--timeout",
                       "500ms", "status"});
  EXPECT_EQ(r.exit_code, kExitUnreachable);
  EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("tcp://127.0.0.1:1"), std::string::npos) << r.err;
}

TEST_F(Txmqctl, BrokerFromTheEnvironment) {
  auto r = RunCommand({testing::BinPath("txmqctl"), "status", "--json"}, "",
                      std::chrono::seconds(30), {"TXMQ_BROKER=" + broker_->endpoint()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["listen"], broker_->endpoint());
}

TEST_F(Txmqctl, HelpOnEveryLevelExplainsWithAnExample) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"},
                                                                {"status", "--help"},
                                                                {"send", "--help"},
                                                                {"consume", "--help"},
                                                                {"topic", "--help"},
                                                                {"topic", "list", "--help"},
                                                                {"topic", "create", "--help"},
                                                                {"topic", "show", "--help"},
                                                                {"msg", "--help"},
                                                                {"msg", "show", "--help"},
                                                                {"msg", "find", "--help"},
                                                                {"tx", "--help"},
                                                                {"tx", "list", "--help"},
                                                                {"tx", "show", "--help"},
                                                                {"tx", "commit", "--help"},
                                                                {"tx", "rollback", "--help"},
                                                                {"tx", "check", "--help"},
                                                                {"tx", "recheck", "--help"},
                                                                {"group", "--help"},
                                                                {"group", "list", "--help"},
                                                                {"group", "show", "--help"},
                                                                {"dlq", "--help"},
                                                                {"dlq", "list", "--help"},
                                                                {"dlq", "show", "--help"},
                                                                {"dlq", "resend", "--help"},
                                                                {"outbox", "--help"},
                                                                {"outbox", "list", "--help"},
                                                                {"outbox", "requeue", "--help"},
                                                                {"outbox", "delete", "--help"}}) {
    auto r = Ctl(args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(r.exit_code, 0) << what;
    EXPECT_NE(r.out.find("Example"), std::string::npos) << what << r.out;
  }
  // Changes say they take --dry-run.
  EXPECT_NE(Ctl({"tx", "commit", "--help"}).out.find("--dry-run"), std::string::npos);
  EXPECT_NE(Ctl({"--help"}).out.find("--operator"), std::string::npos);
}

TEST_F(Txmqctl, SendDryRunSendsNothing) {
  auto dry = Ctl({"send", "orders", "--key", "k", "--dry-run", "hello"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("nothing sent"), std::string::npos) << dry.out;
  auto got = Ctl({"consume", "orders", "-g", "g", "--wait", "0.5"});
  ASSERT_EQ(got.exit_code, 0);
  EXPECT_EQ(got.out, "");
}

}  // namespace
}  // namespace txmq
