// txmqctl as the real binary against a real (embedded) broker: exit codes,
// tables, JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using testing::RunCommand;
using testing::SplitLines;

class Txmqctl : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::StartBroker(testing::TestBrokerOptions(dir_.Sub("data")));
    ASSERT_NE(broker_, nullptr);
  }

  testing::CommandResult Ctl(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {testing::BinPath("txmqctl"), "--broker", broker_->endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, input);
  }

  testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(Txmqctl, StatusAsTableAndJson) {
  auto r = Ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("flush             sync"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir_.Sub("data")), std::string::npos);
  r = Ctl({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["flush"], "sync");
  EXPECT_EQ(j["storage_healthy"], true);
  EXPECT_EQ(j["listen"], broker_->endpoint());
}

TEST_F(Txmqctl, SendThenConsumeAsJsonLines) {
  auto sent = Ctl(
      {"send", "orders", "--key", "42", "--prop", "source=cli", "--prop", "n=1", "hello world"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  std::string id = SplitLines(sent.out).at(0);
  EXPECT_EQ(id.size(), 36u);

  auto got = Ctl({"--json", "consume", "orders", "--group", "audit", "--max", "1", "--wait", "5"});
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

  // Acknowledged: the group has nothing left.
  auto again = Ctl({"consume", "orders", "--group", "audit", "--wait", "0.5"});
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out, "");
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

TEST_F(Txmqctl, BodyFromStdinAndBinaryBodiesInJson) {
  std::string binary("\x00\xff\x10zz", 5);
  ASSERT_EQ(Ctl({"send", "bin", "-"}, binary).exit_code, 0);
  auto got = Ctl({"--json", "consume", "bin", "-g", "g", "--max", "1"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  auto j = nlohmann::json::parse(SplitLines(got.out).at(0));
  EXPECT_FALSE(j.contains("body"));
  EXPECT_EQ(j["body_base64"], "AP8Qeno=");
}

TEST_F(Txmqctl, BadUsageExitsTwoWithOneLine) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"frobnicate"},
                                             {"send"},
                                             {"send", "bad topic", "x"},
                                             {"consume", "orders"},
                                             {"send", "t", "--prop", "novalue", "x"},
                                             {"consume", "orders", "-g", "g", "--max", "-1"}}) {
    auto r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("txmqctl: ", 0), 0u) << r.err;
  }
}

TEST_F(Txmqctl, UnreachableBrokerExitsOneAndSaysWhere) {
  auto r = RunCommand({testing::BinPath("txmqctl"), "--broker", "tcp://127.0.0.1:1", "--timeout",
                       "500ms", "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("tcp://127.0.0.1:1"), std::string::npos) << r.err;
}

TEST_F(Txmqctl, BrokerFromTheEnvironment) {
  auto r = RunCommand({testing::BinPath("txmqctl"), "status", "--json"}, "",
                      std::chrono::seconds(30), {"TXMQ_BROKER=" + broker_->endpoint()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["listen"], broker_->endpoint());
}

TEST_F(Txmqctl, HelpExplainsWithAnExample) {
  auto r = Ctl({"send", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Example"), std::string::npos);
}

}  // namespace
}  // namespace txmq
