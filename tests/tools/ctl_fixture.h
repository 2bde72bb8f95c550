// Shared by the txmqctl tests: an embedded broker with fast transaction
// checks, the real txmqctl binary pointed at it, and ways to put the broker
// into the states an operator meets (a stuck transaction, a dead letter).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/transaction_producer.h"

namespace txmq {

// txmqctl's exit codes as `txmqctl --help` documents them: scripts rely on
// these numbers, so the tests spell them out rather than share the tool's
// constants.
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitNotFound = 4;
inline constexpr int kExitConflict = 5;

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::StartBroker(Options());
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<testing::AdminClient>(broker_->endpoint());
  }

  // The broker's options; a fixture may change the test defaults.
  virtual BrokerOptions Options() { return testing::TestBrokerOptions(dir_.Sub("data")); }

  // txmqctl --broker <ours> --operator tester ARGS...
  testing::CommandResult Ctl(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {testing::BinPath("txmqctl"), "--broker", broker_->endpoint(),
                                     "--operator", "tester"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, input);
  }

  // txmqctl --json ARGS..., expected to succeed with one JSON document.
  nlohmann::json Json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << args[1] << ": " << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  // As Json, for polling: a failed run is not a test failure, just null.
  nlohmann::json JsonIfOk(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = Ctl(args);
    if (r.exit_code != 0) return nullptr;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
  }

  // A failure as txmqctl reports it: `code`, and one "txmqctl: " line on
  // stderr that contains `text`. Returns the run for further checks.
  testing::CommandResult ExpectFails(const std::vector<std::string>& args, int code,
                                     const std::string& text) {
    auto r = Ctl(args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(r.exit_code, code) << what << "\n" << r.out << r.err;
    EXPECT_EQ(testing::SplitLines(r.err).size(), 1u) << what << r.err;
    EXPECT_EQ(r.err.rfind("txmqctl: ", 0), 0u) << what << r.err;
    EXPECT_NE(r.err.find(text), std::string::npos) << what << r.err;
    return r;
  }

  // A transaction whose producer said "unknown" and went away (shut down,
  // or with `killed`, a producer process SIGKILLed): nobody can answer its
  // checks, so after the broker's 3 checks (a second or two with the test
  // timings) it is stuck. Returns its id.
  std::string LeaveStuckTransaction(const std::string& group, Message message,
                                    bool killed = false) {
    std::string id;
    if (killed) {
      // The producer process dies holding the undecided transaction.
      const std::string ready = dir_.Sub("half-" + message.key + ".ready");
      std::istringstream(testing::RunUntilReadyThenKill(
          {testing::BinPath("txmq-test-txtool"), "half", broker_->endpoint(), group, message.topic,
           "1", ready, message.key, message.body},
          ready, dir_.Sub("txtool.log"))) >>
          id;
    } else {
      TransactionProducer p({.broker = broker_->endpoint(), .group = group},
                            [](const CheckRequest&) { return TxState::kUnknown; });
      EXPECT_TRUE(p.Start().ok());
      auto r =
          p.SendInTransaction(std::move(message), [](const Message&) { return TxState::kUnknown; });
      EXPECT_TRUE(r.ok()) << r.status.ToString();
      p.Shutdown();
      if (r.ok()) id = r.transaction_id;
    }
    if (id.empty()) return "";
    EXPECT_TRUE(testing::WaitFor([&] {
      auto t = admin_->Show(id);
      return t.ok() && t->stuck;
    })) << "transaction never became stuck";
    return id;
  }

  // Sends one message and returns its id.
  std::string Send(const std::string& topic, const std::string& key, const std::string& body) {
    auto r = Ctl({"send", topic, "--key", key, body});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto lines = testing::SplitLines(r.out);
    return lines.empty() ? "" : lines[0];
  }

  // Bodies `group` receives from `topic` (and acknowledges) within `wait`.
  std::vector<std::string> Consume(const std::string& topic, const std::string& group,
                                   const std::string& wait = "1") {
    auto r = Ctl({"--json", "consume", topic, "--group", group, "--wait", wait});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> bodies;
    for (const auto& line : testing::SplitLines(r.out)) {
      bodies.push_back(nlohmann::json::parse(line)["body"]);
    }
    return bodies;
  }

  testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<testing::AdminClient> admin_;
};

}  // namespace txmq
