// txmqd as an operator meets it: its config file, its logs, its signals.
// Real txmqd processes throughout.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testutil/testutil.h"

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

TEST(TxmqdConfigFile, AnUnknownKeyIsAnErrorNamingTheKeyAndTheNearestFlag) {
  TempDir dir;
  auto r = StartWithConfig(dir, "# a typo\nflsh = \"async\"\n");
  ExpectConfigError(r, dir.Sub("txmqd.toml"), "line 2: unknown key 'flsh' (did you mean 'flush'?)");
  r = StartWithConfig(dir, "data_dir = \"/tmp/x\"\n");
  ExpectConfigError(r, dir.Sub("txmqd.toml"), "unknown key 'data_dir' (did you mean 'data-dir'?)");
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

}  // namespace
}  // namespace txmq
