// txmqctl topic delete, group delete, group reset, dlq purge: each does
// what it says, a dry run says exactly that and changes nothing, each
// change (and each refusal) leaves one audit line, and the unsafe cases
// are refused with their reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "protocol/src/log.h"
#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using testing::SplitLines;
using testing::WaitFor;

using testing::Has;
class Lifecycle : public CtlTest {
 protected:
  void SetUp() override {
    CtlTest::SetUp();
    audit_ = dir_.Sub("audit.log");
    ASSERT_TRUE(SetAuditFile(audit_).ok());
  }
  void TearDown() override { (void)SetAuditFile(""); }

  // The audit lines written so far.
  std::vector<std::string> AuditLines() {
    std::vector<std::string> out;
    for (const auto& line : SplitLines(testing::ReadFile(audit_))) {
      if (Has(line, "[txmq.audit]")) out.push_back(line);
    }
    return out;
  }

  // The one audit line about `action`, checked to name the operator and
  // to end with `result`.
  std::string AuditOf(const std::string& action, const std::string& result) {
    std::string found;
    for (const auto& line : AuditLines()) {
      if (!Has(line, "action=" + action + " ")) continue;
      EXPECT_TRUE(found.empty()) << "two audit lines for " << action << ":\n"
                                 << found << "\n"
                                 << line;
      found = line;
    }
    EXPECT_TRUE(Has(found, "operator='tester'")) << found;
    EXPECT_TRUE(Has(found, "result=" + result)) << found;
    return found;
  }

  // Messages a topic holds; -1 when it does not exist.
  int64_t Messages(const std::string& topic) { return admin_->TopicMessages(topic); }

  nlohmann::json Status() { return Json({"status"}); }

  // Consumes `n` messages of `topic` as `group` (acknowledged).
  void Read(const std::string& topic, const std::string& group, int n) {
    auto r = Ctl({"consume", topic, "-g", group, "--max", std::to_string(n), "--wait", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(SplitLines(r.out).size(), static_cast<size_t>(n)) << r.out;
  }

  // Up to `n` bodies `group` receives from `topic` (acknowledged), sorted;
  // returns as soon as `n` arrived.
  std::vector<std::string> Take(const std::string& topic, const std::string& group, int n) {
    auto r = Ctl(
        {"--json", "consume", topic, "--group", group, "--max", std::to_string(n), "--wait", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> bodies;
    for (const auto& line : SplitLines(r.out))
      bodies.push_back(nlohmann::json::parse(line)["body"]);
    std::sort(bodies.begin(), bodies.end());
    return bodies;
  }

  std::string audit_;
};

TEST_F(Lifecycle, TopicDeleteDryRunChangesNothingThenDeleteRemovesItForGood) {
  // Five messages without a key, and one waiting for an hour.
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Ctl({"send", "old", "m" + std::to_string(i)}).exit_code, 0);
  ASSERT_EQ(Ctl({"send", "old", "--delay", "1h", "later"}).exit_code, 0);
  Send("kept", "k", "stays");
  // Group billing read two; group retrier failed each once and waits an
  // hour to retry.
  Read("old", "billing", 2);
  {
    Consumer retrier({.broker = broker_->endpoint(),
                      .group = "retrier",
                      .long_poll = std::chrono::milliseconds(200)});
    ASSERT_TRUE(retrier
                    .Subscribe("old",
                               [](const Received&) {
                                 return ConsumeResult::RetryLater(std::chrono::hours(1));
                               })
                    .ok());
    ASSERT_TRUE(retrier.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return JsonIfOk({"group", "show", "retrier"})["retrying"] == 5; }));
    retrier.Shutdown();
  }
  const auto before = Status();
  ASSERT_EQ(before["topics"], 2);
  ASSERT_EQ(before["messages_stored"], 6);

  auto dry = Ctl({"topic", "delete", "old", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(Has(dry.out,
                  "dry run: would delete topic 'old' with 5 messages, the cursors of 2 groups "
                  "(billing, retrier), 5 scheduled redeliveries and 1 delayed message; nothing "
                  "changed"))
      << dry.out;
  EXPECT_TRUE(Has(dry.out, "billing  3")) << "the group's lag\n" << dry.out;
  auto j = Json({"topic", "delete", "old", "--dry-run"});
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["messages"], 5);
  EXPECT_EQ(j["delayed"], 1);
  EXPECT_EQ(j["queues"].size(), 4u);
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["group"], "billing");
  EXPECT_EQ(j["groups"][0]["lag"], 3);
  EXPECT_EQ(j["groups"][1]["retrying"], 5);
  // Nothing changed: the topic, its messages, the groups' places in it.
  EXPECT_EQ(Messages("old"), 5);
  EXPECT_EQ(Status()["topics"], 2);
  EXPECT_EQ(Json({"group", "show", "billing"})["topics"], nlohmann::json::array({"old"}));
  EXPECT_EQ(Json({"group", "show", "retrier"})["retrying"], 5);
  EXPECT_TRUE(AuditLines().empty()) << "a dry run is not a change";

  auto done = Ctl({"topic", "delete", "old"});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(done.out,
            "deleted topic 'old' with 5 messages, the cursors of 2 groups (billing, retrier), 5 "
            "scheduled redeliveries and 1 delayed message; its storage is freed in the "
            "background\n");
  EXPECT_TRUE(Has(AuditOf("topic-delete", "applied"), "topic=old messages=5 groups=2"));

  // Gone: not listed, not counted, not readable, nobody's cursor or retry.
  EXPECT_EQ(Messages("old"), -1);
  const auto after = Status();
  EXPECT_EQ(after["topics"], 1);
  EXPECT_EQ(after["messages_stored"], 1);
  ExpectFails({"topic", "show", "old"}, kExitNotFound, "NOT_FOUND");
  EXPECT_EQ(Json({"group", "show", "billing"})["topics"], nlohmann::json::array());
  EXPECT_EQ(Json({"group", "show", "retrier"})["retrying"], 0);
  EXPECT_TRUE(Consume("old", "billing", "0.3").empty());
  EXPECT_TRUE(Consume("old", "fresh-group", "0.3").empty());

  // The same name again is a new topic: it starts at offset 0, and the old
  // group reads only what was sent since.
  auto sent = Json({"send", "old", "--key", "k0", "again"});
  EXPECT_EQ(sent["offset"], 0);
  EXPECT_EQ(Take("old", "billing", 1), std::vector<std::string>{"again"});
  EXPECT_EQ(Take("kept", "billing", 1), std::vector<std::string>{"stays"});
}

TEST_F(Lifecycle, TopicDeleteIsRefusedWhileUnsafeAndSaysWhy) {
  ExpectFails({"topic", "delete", "nope"}, kExitNotFound, "topic 'nope' does not exist");
  AuditOf("topic-delete", "refused");
  ExpectFails({"topic", "delete", "%DLQ%billing"}, kExitUsage, "the broker's own");
  ExpectFails({"topic", "delete", "bad name"}, kExitUsage, "bad name");

  // An open transaction with a message for it: its commit would bring the
  // topic back. Refused, dry run or not, and nothing changes.
  Send("orders", "k", "first");
  TransactionProducer producer({.broker = broker_->endpoint(), .group = "order-service"},
                               [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(producer.Start().ok());
  auto open = producer.SendInTransaction({.topic = "orders", .body = "x"},
                                         [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(open.ok()) << open.status.ToString();
  const std::string tx = open.transaction_id;
  auto r = ExpectFails({"topic", "delete", "orders"}, kExitFailed, "1 open transaction");
  EXPECT_TRUE(Has(r.err, tx)) << r.err;
  EXPECT_TRUE(Has(r.err, "txmqctl tx list --topic orders")) << r.err;
  ExpectFails({"topic", "delete", "orders", "--dry-run"}, kExitFailed, "1 open transaction");
  ExpectFails({"topic", "delete", "orders", "--force"}, kExitFailed, "1 open transaction");
  EXPECT_EQ(Messages("orders"), 1);
  ASSERT_EQ(Ctl({"tx", "rollback", tx}).exit_code, 0);
  producer.Shutdown();

  // A connected consumer of a group that reads it: refused unless forced.
  Consumer c({.broker = broker_->endpoint(),
              .group = "billing",
              .long_poll = std::chrono::milliseconds(200)});
  std::atomic<int> got{0};
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received&) {
                 ++got;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return got == 1; }));
  r = ExpectFails({"topic", "delete", "orders"}, kExitFailed,
                  "is being consumed: 1 connected consumer");
  EXPECT_TRUE(Has(r.err, "of group 'billing'")) << r.err;
  EXPECT_TRUE(Has(r.err, "--force")) << r.err;
  EXPECT_EQ(Messages("orders"), 1);
  auto forced = Json({"topic", "delete", "orders", "--force"});
  ASSERT_EQ(forced["live_consumers"].size(), 1u);
  EXPECT_EQ(forced["live_consumers"][0]["group"], "billing");
  EXPECT_EQ(Messages("orders"), -1);
  c.Shutdown();

  auto lines = AuditLines();
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return Has(l, "result=refused"); }),
            4)  // nope, orders (open transaction) twice, orders (consumer); dry runs are not
      << testing::ReadFile(audit_);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) {
                            return Has(l, "topic=orders") && Has(l, "force=yes") &&
                                   Has(l, "result=applied");
                          }),
            1)
      << testing::ReadFile(audit_);
}

TEST_F(Lifecycle, EveryVerbExplainsItselfAndItsRefusals) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"topic", "delete", "--help"},
                                                                {"group", "delete", "--help"},
                                                                {"group", "reset", "--help"},
                                                                {"dlq", "purge", "--help"}}) {
    auto r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1];
    EXPECT_TRUE(Has(r.out, "Example")) << r.out;
    EXPECT_TRUE(Has(r.out, "--dry-run")) << r.out;
    EXPECT_TRUE(Has(r.out, "audit-logged")) << r.out;
  }
  EXPECT_TRUE(Has(Ctl({"topic", "delete", "--help"}).out, "open transaction"));
  EXPECT_TRUE(Has(Ctl({"group", "delete", "--help"}).out, "dead"));
  EXPECT_TRUE(Has(Ctl({"group", "reset", "--help"}).out, "now-30m"));
}

}  // namespace
}  // namespace txmq
