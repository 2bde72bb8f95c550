// txmqd as an operator meets it: its config file, its logs, its signals.
// Real txmqd processes throughout.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/testutil/testutil.h"
#include "txmq/version.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BinPath;
using testing::BrokerProcess;
using testing::RunCommand;
using testing::TempDir;

// txmqd with a config file holding `config`, on a free port. A bad file
// must stop it at once; a broker that starts anyway runs until the
// deadline and is killed, which fails the exit-code check.
testing::CommandResult StartWithConfig(const TempDir& dir, const std::string& config) {
  std::ofstream(dir.Sub("txmqd.toml")) << config;
  return RunCommand({BinPath("txmqd"), "--config", dir.Sub("txmqd.toml"), "--data-dir",
                     dir.Sub("data"), "--listen", "tcp://127.0.0.1:*"},
                    "", 15s);
}

void ExpectConfigError(const testing::CommandResult& r, const std::string& path,
                       const std::string& text) {
  EXPECT_EQ(r.exit_code, 2) << "bad usage, and the broker must not start\n" << r.err;
  EXPECT_EQ(r.err.rfind("txmqd: config file '" + path + "' line ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
  EXPECT_EQ(testing::SplitLines(r.err).size(), 1u) << r.err;
}

TEST(TxmqdCommandLine, AnUnknownOptionIsAnErrorNamingItAndTheNearestOne) {
  TempDir dir;
  auto r = RunCommand(
      {BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--lisen", "tcp://127.0.0.1:*"}, "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "txmqd: unknown option '--lisen' (did you mean '--listen'?) (see --help)\n");
  r = RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--flsh=sync"}, "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "txmqd: unknown option '--flsh' (did you mean '--flush'?) (see --help)\n");
}

TEST(TxmqdConfigFile, AnUnknownKeyIsAnErrorNamingTheKeyAndTheNearestFlag) {
  TempDir dir;
  auto r = StartWithConfig(dir, "# a typo\nflsh = \"async\"\n");
  ExpectConfigError(r, dir.Sub("txmqd.toml"), "line 2: unknown key 'flsh' (did you mean 'flush'?)");
  r = StartWithConfig(dir, "data_dir = \"/tmp/x\"\n");
  ExpectConfigError(r, dir.Sub("txmqd.toml"), "unknown key 'data_dir' (did you mean 'data-dir'?)");
}

TEST(TxmqdConfigFile, AMissingFileIsAnErrorNamingTheFlagAndTheFile) {
  TempDir dir;
  auto r = RunCommand({BinPath("txmqd"), "--config", dir.Sub("nope.toml"), "--data-dir",
                       dir.Sub("data"), "--listen", "tcp://127.0.0.1:*"},
                      "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "txmqd: --config " + dir.Sub("nope.toml") +
                       ": cannot read it (No such file or directory)\n");
}

TEST(TxmqdConfigFile, AFileThatIsNotKeyEqualsValueIsAnErrorNamingTheLine) {
  TempDir dir;
  const std::string path = dir.Sub("txmqd.toml");
  ExpectConfigError(StartWithConfig(dir, "{\"listen\": \"tcp://127.0.0.1:7900\"}\n"), path,
                    "line 1: '{\"listen\": \"tcp://127.0.0.1:7900\"}' is not key = value");
  ExpectConfigError(StartWithConfig(dir, "queues = 2\n[broker]\nflush = \"async\"\n"), path,
                    "line 2: '[broker]': txmqd's config has no sections");
  ExpectConfigError(StartWithConfig(dir, "name = \"unterminated\n"), path,
                    "line 1: the value of 'name' has no closing \"");
  ExpectConfigError(StartWithConfig(dir, "flush = \"async\"\nqueues = 2\nflush = \"sync\"\n"), path,
                    "line 3: 'flush' is set twice (also on line 1)");
}

// A value the file set that txmqd cannot take is told where it is: the
// file and line, then what is wrong with it. The same value given on the
// command line (which wins over the file) is told as a flag.
TEST(TxmqdConfigFile, ABadValueIsAnErrorNamingTheFileAndLine) {
  TempDir dir;
  const std::string path = dir.Sub("txmqd.toml");
  ExpectConfigError(StartWithConfig(dir, "queues = 2\nretention = \"forever\"\n"), path,
                    "line 2: --retention = 'forever' is not a duration");
  ExpectConfigError(StartWithConfig(dir, "flush = \"sometimes\"\n"), path,
                    "line 1: --flush: sometimes not in {sync,async}");
  ExpectConfigError(StartWithConfig(dir, "# size\n\nmin-free-disk = \"lots\"\n"), path,
                    "line 3: --min-free-disk = 'lots' is not a size");
  ExpectConfigError(StartWithConfig(dir, "queues = \"many\"\n"), path, "line 1: ");
  ExpectConfigError(StartWithConfig(dir, "max-connections = \"lots\"\n"), path,
                    "line 1: Could not convert: --max-connections");

  std::ofstream(path) << "retention = \"72h\"\n";
  auto r = RunCommand({BinPath("txmqd"), "--config", path, "--data-dir", dir.Sub("data"),
                       "--listen", "tcp://127.0.0.1:*", "--retention", "forever"},
                      "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("txmqd: --retention = 'forever' is not a duration", 0), 0u) << r.err;
  // A typo on the command line that suggests a key the file set is the
  // command line's.
  r = RunCommand({BinPath("txmqd"), "--config", path, "--data-dir", dir.Sub("data"), "--listen",
                  "tcp://127.0.0.1:*", "--retentoin", "1h"},
                 "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("txmqd: unknown option '--retentoin'", 0), 0u) << r.err;
}

// As txmqctl: one line that names the program and the bad flag, exit 2,
// and --help still prints the usage and exits 0.
TEST(TxmqdFlags, AnUnknownFlagIsOneLineNamingTxmqdAndTheFlag) {
  TempDir dir;
  auto r =
      RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--flsuh", "async"}, "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("txmqd: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--flsuh"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("see --help"), std::string::npos) << r.err;
  EXPECT_EQ(testing::SplitLines(r.err).size(), 1u) << r.err;
  auto bad_value = RunCommand({BinPath("txmqd"), "--queues", "many"}, "", 15s);
  EXPECT_EQ(bad_value.exit_code, 2) << bad_value.err;
  EXPECT_EQ(bad_value.err.rfind("txmqd: ", 0), 0u) << bad_value.err;
  EXPECT_NE(bad_value.err.find("many"), std::string::npos) << bad_value.err;
  auto help = RunCommand({BinPath("txmqd"), "--help"}, "", 15s);
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("--data-dir"), std::string::npos);
}

TEST(TxmqdConfigFile, CommentsFlagsAndQuotedValuesAreRead) {
  TempDir dir;
  std::ofstream(dir.Sub("txmqd.toml")) << "\xEF\xBB\xBF# txmqd.toml\n"
                                          "; INI comments too\n"
                                          "\n"
                                          "flush = \"async\"   # survives a crash only\n"
                                          "name = 'from-config'\n"
                                          "no-auto-create-topics = true\n"
                                          "retention = 48h\n";
  BrokerProcess broker(dir.Sub("data"), {"--config", dir.Sub("txmqd.toml")});
  ASSERT_TRUE(broker.Start());
  auto s = RunCommand({BinPath("txmqctl"), "--broker", broker.endpoint(), "--json", "status"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto j = nlohmann::json::parse(s.out);
  EXPECT_EQ(j["flush"], "async");
  EXPECT_EQ(j["broker"], "from-config");
  auto send = RunCommand({BinPath("txmqctl"), "--broker", broker.endpoint(), "send", "t", "x"});
  EXPECT_NE(send.exit_code, 0) << "no-auto-create-topics = true was applied";
  EXPECT_NE(send.err.find("NOT_FOUND"), std::string::npos) << send.err;
}

// txmqctl against `broker`; fails the test unless it exits 0.
std::string Ctl(const BrokerProcess& broker, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {BinPath("txmqctl"), "--broker", broker.endpoint()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

bool LogHas(const std::string& path, const std::string& text) {
  return testing::ReadFile(path).find(text) != std::string::npos;
}

TEST(TxmqdLimits, FlagsAndTheConfigFileSetThemAndARefusalNamesTheFlag) {
  auto help = RunCommand({BinPath("txmqd"), "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  for (const char* flag :
       {"max-reply-bytes-per-client", "max-reply-bytes", "max-parked-pulls-per-client",
        "max-parked-pulls", "max-in-flight-per-client", "max-open-transactions-per-group",
        "max-open-transactions", "max-topics", "topic-creates-per-second", "max-groups",
        "group-creates-per-second"}) {
    EXPECT_NE(help.out.find(std::string("--") + flag + " "), std::string::npos) << flag;
  }

  TempDir dir;
  std::ofstream(dir.Sub("txmqd.toml")) << "max-topics = 2\n";
  BrokerProcess broker(dir.Sub("data"),
                       {"--config", dir.Sub("txmqd.toml"), "--max-parked-pulls-per-client", "3"});
  ASSERT_TRUE(broker.Start());
  Ctl(broker, {"send", "first", "x"});
  Ctl(broker, {"send", "second", "x"});
  auto third =
      RunCommand({BinPath("txmqctl"), "--broker", broker.endpoint(), "send", "third", "x"});
  EXPECT_NE(third.exit_code, 0);
  EXPECT_NE(third.err.find("RESOURCE_EXHAUSTED"), std::string::npos) << third.err;
  EXPECT_NE(third.err.find("--max-topics"), std::string::npos) << third.err;
  Ctl(broker, {"send", "first", "y"});  // an existing topic still takes messages

  auto j = nlohmann::json::parse(Ctl(broker, {"--json", "status"}));
  EXPECT_EQ(j["limits"]["max-topics"]["limit"], 2);
  EXPECT_EQ(j["limits"]["max-topics"]["used"], 2);
  EXPECT_EQ(j["limits"]["max-topics"]["refused"], 1);
  EXPECT_EQ(j["limits"]["max-parked-pulls-per-client"]["limit"], 3);
  EXPECT_EQ(j["settings"]["max-topics"], "2");
  EXPECT_TRUE(testing::WaitFor([&] {
    return LogHas(broker.log_path(), "limit --max-topics refused 1 request");
  })) << testing::ReadFile(broker.log_path());

  // A deleted topic makes room for a new one.
  Ctl(broker, {"topic", "delete", "second", "--force"});
  Ctl(broker, {"send", "third", "x"});
  j = nlohmann::json::parse(Ctl(broker, {"--json", "status"}));
  EXPECT_EQ(j["limits"]["max-topics"]["used"], 2);
}

TEST(TxmqdLimits, ADeletedConsumerGroupMakesRoomForANewOne) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"), {"--max-groups", "2"});
  ASSERT_TRUE(broker.Start());
  Ctl(broker, {"send", "orders", "x"});
  for (const char* group : {"billing", "shipping"}) {
    Ctl(broker, {"consume", "orders", "--group", group, "--max", "1", "--wait", "5s"});
  }
  auto third = RunCommand({BinPath("txmqctl"), "--broker", broker.endpoint(), "consume", "orders",
                           "--group", "audit", "--max", "1", "--wait", "5s"});
  EXPECT_NE(third.exit_code, 0);
  EXPECT_NE(third.err.find("RESOURCE_EXHAUSTED"), std::string::npos) << third.err;
  EXPECT_NE(third.err.find("--max-groups"), std::string::npos) << third.err;

  Ctl(broker, {"group", "delete", "billing", "--force"});
  Ctl(broker, {"consume", "orders", "--group", "audit", "--max", "1", "--wait", "5s"});
  auto j = nlohmann::json::parse(Ctl(broker, {"--json", "status"}));
  EXPECT_EQ(j["limits"]["max-groups"]["used"], 2);
  EXPECT_EQ(j["limits"]["max-groups"]["refused"], 1);
}

TEST(TxmqdLogs, TimesAreUtcAndSaySo) {
  TempDir dir;
  // A local time zone five and a half hours east of UTC, so a local
  // timestamp cannot pass for a UTC one.
  BrokerProcess broker(dir.Sub("data"), {}, {"TZ=TXMQ-05:30"});
  ASSERT_TRUE(broker.Start());
  const std::string log = testing::ReadFile(broker.log_path());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      log, m, std::regex(R"(^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{3}Z info )")))
      << log;
  std::tm utc{};
  utc.tm_year = std::stoi(m[1]) - 1900;
  utc.tm_mon = std::stoi(m[2]) - 1;
  utc.tm_mday = std::stoi(m[3]);
  utc.tm_hour = std::stoi(m[4]);
  utc.tm_min = std::stoi(m[5]);
  utc.tm_sec = std::stoi(m[6]);
  const auto logged = std::chrono::system_clock::from_time_t(timegm(&utc));
  const auto off = std::chrono::abs(std::chrono::system_clock::now() - logged);
  EXPECT_LT(off, 10min) << "the first log line is not UTC: " << log.substr(0, 80);
}

TEST(TxmqdLogs, StartUpLogsTheVersionAndEveryEffectiveSetting) {
  TempDir dir;
  std::ofstream(dir.Sub("txmqd.toml")) << "flush = \"async\"\ncheck-max = 7\n";
  BrokerProcess broker(dir.Sub("data"), {"--config", dir.Sub("txmqd.toml"), "--retention", "36h"});
  ASSERT_TRUE(broker.Start());
  const std::string log = testing::ReadFile(broker.log_path());
  EXPECT_NE(log.find(std::string("txmqd ") + kVersion + " starting"), std::string::npos) << log;
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"flush", "async"},
                                                        {"check-max", "7"},
                                                        {"retention", "36h"},
                                                        {"data-dir", dir.Sub("data")},
                                                        {"dedup-window", "10m"},
                                                        {"config", dir.Sub("txmqd.toml")},
                                                        {"log-level", "info"}}) {
    EXPECT_TRUE(std::regex_search(log, std::regex("\n  " + name + " +" + value + "\n")))
        << name << " = " << value << " not in the start-up block:\n"
        << log;
  }
}

TEST(TxmqdLogs, AuditLinesAppearWhateverTheLogLevel) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"), {"--log-level", "error"});
  ASSERT_TRUE(broker.Start());
  Ctl(broker, {"--operator", "alice", "topic", "create", "orders"});
  EXPECT_TRUE(testing::WaitFor([&] {
    return LogHas(broker.log_path(),
                  "[txmq.audit] operator='alice' principal='(unauthenticated)'") &&
           LogHas(broker.log_path(), "action=topic-create topic=orders");
  })) << testing::ReadFile(broker.log_path());
  EXPECT_FALSE(LogHas(broker.log_path(), " info ")) << "--log-level error still applies";
}

TEST(TxmqdSignals, SighupIsLoggedAndIgnoredAndNeverStopsTheBroker) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"));
  ASSERT_TRUE(broker.Start());
  broker.Signal(SIGHUP);
  EXPECT_TRUE(testing::WaitFor([&] {
    return LogHas(broker.log_path(), "SIGHUP: ignored (nothing to reopen: no --audit-log)");
  })) << testing::ReadFile(broker.log_path());
  EXPECT_FALSE(broker.WaitExit(200ms).has_value()) << "SIGHUP ended txmqd";
  Ctl(broker, {"status"});
  EXPECT_EQ(broker.Stop(SIGTERM), 0);
}

TEST(TxmqdSignals, SighupReopensTheAuditLogForRotation) {
  TempDir dir;
  const std::string audit = dir.Sub("audit.log");
  BrokerProcess broker(dir.Sub("data"), {"--audit-log", audit});
  ASSERT_TRUE(broker.Start());
  Ctl(broker, {"--operator", "alice", "topic", "create", "before"});
  ASSERT_TRUE(testing::WaitFor([&] { return LogHas(audit, "topic=before"); }))
      << testing::ReadFile(audit);
  EXPECT_NE(
      testing::ReadFile(audit).find("[txmq.audit] operator='alice' principal='(unauthenticated)'"),
      std::string::npos);

  // What logrotate does: move the file away, then tell the broker.
  ASSERT_EQ(std::rename(audit.c_str(), (audit + ".1").c_str()), 0);
  broker.Signal(SIGHUP);
  ASSERT_TRUE(testing::WaitFor([&] {
    return LogHas(broker.log_path(), "SIGHUP: reopened audit log " + audit);
  })) << testing::ReadFile(broker.log_path());
  Ctl(broker, {"--operator", "bob", "topic", "create", "after"});
  EXPECT_TRUE(testing::WaitFor([&] { return LogHas(audit, "topic=after"); }))
      << testing::ReadFile(audit);
  EXPECT_FALSE(LogHas(audit, "topic=before")) << "the new file starts empty";
  EXPECT_TRUE(LogHas(audit + ".1", "topic=before"));
  EXPECT_FALSE(LogHas(audit + ".1", "topic=after")) << "nothing more goes to the rotated file";
  EXPECT_EQ(broker.Stop(SIGTERM), 0);
}

TEST(TxmqdLogs, AnAuditLogThatCannotBeOpenedIsBadUsage) {
  TempDir dir;
  // A directory is no file to append to.
  auto r = RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen",
                       "tcp://127.0.0.1:*", "--audit-log", dir.path()},
                      "", 15s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("txmqd: --audit-log: cannot open audit log '" + dir.path() + "'"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace txmq
