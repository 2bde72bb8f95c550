// txmqctl group delete, group reset, dlq purge: what each changes, its dry
// run, its audit line, and its refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "protocol/src/log.h"
#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using testing::SplitLines;
using testing::WaitFor;

using testing::Has;
// "2026-01-31T12:00:00.250Z".
std::string UtcMs(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

class GroupChange : public CtlTest {
 protected:
  void SetUp() override {
    CtlTest::SetUp();
    audit_ = dir_.Sub("audit.log");
    ASSERT_TRUE(SetAuditFile(audit_).ok());
  }
  void TearDown() override { (void)SetAuditFile(""); }

  // Until the broker lists no connected member of `group` (bounded): a
  // txmqctl consume that just exited may still be there for a moment when
  // its goodbye was not confirmed before it closed (a loaded machine), and
  // a reset then is refused as for a live group, rightly.
  void WaitUntilNoMembers(const std::string& group) {
    EXPECT_TRUE(WaitFor(
        [&] {
          return Json({"group", "show", group})["members"].empty();
        },
        std::chrono::seconds(15)))
        << "group " << group << " still lists members";
  }

  std::vector<std::string> AuditLinesOf(const std::string& action) {
    std::vector<std::string> out;
    for (const auto& line : SplitLines(testing::ReadFile(audit_))) {
      if (Has(line, "[txmq.audit]") && Has(line, "action=" + action + " ")) out.push_back(line);
    }
    return out;
  }

  // `n` messages on one queue of `topic` (one key keeps them in order).
  void SendSome(const std::string& topic, int n, const std::string& prefix = "m") {
    for (int i = 0; i < n; ++i) Send(topic, "k", prefix + std::to_string(i));
  }

  // A message of `topic` that group "billing" failed past its limit: in
  // %DLQ%billing. Returns its id.
  std::string DeadLetter(const std::string& topic, const std::string& body) {
    const std::string id = Send(topic, "k-" + body, body);
    Consumer failing({.broker = broker_->endpoint(),
                      .group = "billing",
                      .long_poll = std::chrono::milliseconds(200),
                      .max_reconsume_times = 1});
    EXPECT_TRUE(failing
                    .Subscribe(topic,
                               [](const Received&) {
                                 return ConsumeResult::RetryLater(std::chrono::milliseconds(10));
                               })
                    .ok());
    EXPECT_TRUE(failing.Start().ok());
    EXPECT_TRUE(WaitFor([&] {
      // NOT_FOUND until the consumer registered its group.
      const nlohmann::json list = JsonIfOk({"dlq", "list", "billing"});
      if (list.is_null()) return false;
      for (const auto& m : list["messages"]) {
        if (m["id"] == id) return true;
      }
      return false;
    }));
    failing.Shutdown();
    return id;
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

TEST_F(GroupChange, ResetToEarliestLatestTimeAndOffsets) {
  SendSome("orders", 4);
  EXPECT_EQ(Take("orders", "billing", 4).size(), 4u);

  // Dry run: the plan, and nothing moves.
  auto dry =
      Ctl({"group", "reset", "billing", "--topic", "orders", "--to", "earliest", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(Has(dry.out,
                  "dry run: would move group 'billing' on 'orders' to earliest: 4 messages to "
                  "deliver again, 0 skipped, 0 scheduled redeliveries dropped; nothing changed"))
      << dry.out;
  EXPECT_TRUE(Consume("orders", "billing", "0.3").empty());
  EXPECT_TRUE(AuditLinesOf("group-reset").empty());

  // Earliest: everything again.
  WaitUntilNoMembers("billing");
  auto j = Json({"group", "reset", "billing", "--topic", "orders", "--to", "earliest"});
  EXPECT_EQ(j["dry_run"], false);
  EXPECT_EQ(j["delivered_again"], 4);
  ASSERT_EQ(AuditLinesOf("group-reset").size(), 1u);
  EXPECT_TRUE(Has(AuditLinesOf("group-reset")[0],
                  "operator='tester' principal='(unauthenticated)' client="))
      << AuditLinesOf("group-reset")[0];
  EXPECT_TRUE(
      Has(AuditLinesOf("group-reset")[0], "group=billing topic=orders to=earliest result=applied"));
  EXPECT_EQ(Take("orders", "billing", 4).size(), 4u);

  // A time: what was stored from then on (the first late one's time, as
  // the broker stored it).
  SendSome("orders", 2, "late");
  auto late = Ctl({"--json", "consume", "orders", "-g", "billing", "--wait", "2"});
  ASSERT_EQ(late.exit_code, 0) << late.err;
  int64_t cut = INT64_MAX;
  for (const auto& line : SplitLines(late.out)) {
    cut = std::min(cut, nlohmann::json::parse(line)["stored_ms"].get<int64_t>());
  }
  ASSERT_EQ(SplitLines(late.out).size(), 2u) << late.out;
  WaitUntilNoMembers("billing");
  auto r = Ctl({"group", "reset", "billing", "--topic", "orders", "--to", UtcMs(cut)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Take("orders", "billing", 2), (std::vector<std::string>{"late0", "late1"}));

  // Latest: nothing old again.
  WaitUntilNoMembers("billing");
  ASSERT_EQ(Ctl({"group", "reset", "billing", "--topic", "orders", "--to", "earliest"}).exit_code,
            0);
  ASSERT_EQ(Ctl({"group", "reset", "billing", "--topic", "orders", "--to", "latest"}).exit_code, 0);
  EXPECT_TRUE(Consume("orders", "billing", "0.3").empty());

  // Offsets: the key's queue back to offset 4 (the two late ones); the
  // other queues stay.
  int key_queue = -1;
  const nlohmann::json shown = Json({"topic", "show", "orders"});
  for (const auto& q : shown["queues"]) {
    if (q["end_offset"] == 6) key_queue = q["queue"];
  }
  ASSERT_GE(key_queue, 0);
  j = Json(
      {"group", "reset", "billing", "--topic", "orders", "--to", std::to_string(key_queue) + ":4"});
  ASSERT_EQ(j["queues"].size(), 1u);
  EXPECT_EQ(j["queues"][0]["from"], 6);
  EXPECT_EQ(j["queues"][0]["to"], 4);
  EXPECT_EQ(Take("orders", "billing", 2), (std::vector<std::string>{"late0", "late1"}));
  const auto resets = AuditLinesOf("group-reset");
  ASSERT_EQ(resets.size(), 5u);
  EXPECT_TRUE(Has(resets[1], "to=" + UtcMs(cut) + " result=applied")) << resets[1];
  EXPECT_TRUE(Has(resets[4], "to=" + std::to_string(key_queue) + ":4 result=applied")) << resets[4];

  // Bad targets are named.
  ExpectFails({"group", "reset", "billing", "--topic", "orders", "--to", "yesterday"}, kExitUsage,
              "--to 'yesterday' is not one of: earliest, latest");
  ExpectFails({"group", "reset", "billing", "--topic", "orders", "--to", "9:0"}, kExitUsage,
              "queue 9 does not exist");
  ExpectFails(
      {"group", "reset", "billing", "--topic", "orders", "--to", std::to_string(key_queue) + ":99"},
      kExitUsage, "offset 99 of queue");
  ExpectFails({"group", "reset", "nobody", "--topic", "orders", "--to", "latest"}, kExitNotFound,
              "has never consumed here");
  ExpectFails({"group", "reset", "billing", "--topic", "nope", "--to", "latest"}, kExitNotFound,
              "topic 'nope' does not exist");
}

TEST_F(GroupChange, ResetAndDeleteAreRefusedWhileConsumersAreLive) {
  SendSome("orders", 2);
  Consumer c({.broker = broker_->endpoint(),
              .group = "billing",
              .long_poll = std::chrono::milliseconds(200)});
  std::atomic<int> got{0};
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received&) {
                 ++got;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return got == 2; }));

  auto r = ExpectFails({"group", "reset", "billing", "--topic", "orders", "--to", "earliest"},
                       kExitFailed, "consumer group 'billing' is live: 1 connected consumer");
  EXPECT_TRUE(Has(r.err, "--force")) << r.err;
  ExpectFails({"group", "delete", "billing"}, kExitFailed, "consumer group 'billing' is live");
  ExpectFails({"group", "delete", "billing", "--dry-run"}, kExitFailed, "is live");
  EXPECT_EQ(AuditLinesOf("group-reset").size(), 1u);
  EXPECT_TRUE(Has(AuditLinesOf("group-reset")[0], "result=refused"))
      << AuditLinesOf("group-reset")[0];
  EXPECT_EQ(AuditLinesOf("group-delete").size(), 1u) << "the dry run is not audited";

  // Forced: the running consumer gets everything again.
  ASSERT_EQ(Ctl({"group", "reset", "billing", "--topic", "orders", "--to", "earliest", "--force"})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor([&] { return got == 4; })) << got;
  c.Shutdown();
  EXPECT_TRUE(Has(AuditLinesOf("group-reset")[1], "force=yes result=applied"))
      << AuditLinesOf("group-reset")[1];
}

TEST_F(GroupChange, DeleteRemovesCursorsRedeliveriesAndDeadLettersOnlyWhenAllowed) {
  const std::string dead = DeadLetter("orders", "poison");
  SendSome("orders", 3);
  EXPECT_EQ(Take("orders", "billing", 3).size(), 3u);
  const auto groups_before = Json({"status"})["consumer_groups"].get<int>();

  // Dead letters are kept unless the operator says otherwise.
  auto r = ExpectFails({"group", "delete", "billing"}, kExitFailed, "has 1 dead letter");
  EXPECT_TRUE(Has(r.err, "txmqctl dlq purge billing --all")) << r.err;

  auto dry = Ctl({"group", "delete", "billing", "--force", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(
      Has(dry.out,
          "dry run: would delete consumer group 'billing': its cursors on 1 topic (orders), "
          "0 scheduled redeliveries and 1 dead letter; nothing changed"))
      << dry.out;
  EXPECT_EQ(Json({"dlq", "list", "billing"})["total"], 1);
  EXPECT_EQ(Json({"status"})["consumer_groups"], groups_before);

  auto done = Ctl({"group", "delete", "billing", "--force"});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(done.out,
            "deleted consumer group 'billing': its cursors on 1 topic (orders), 0 scheduled "
            "redeliveries and 1 dead letter\n");
  ASSERT_EQ(AuditLinesOf("group-delete").size(), 2u);
  EXPECT_TRUE(Has(AuditLinesOf("group-delete")[1], "group=billing"));
  EXPECT_TRUE(Has(AuditLinesOf("group-delete")[1], "dead-letters=1 force=yes result=applied"))
      << AuditLinesOf("group-delete")[1];
  EXPECT_EQ(Json({"status"})["consumer_groups"], groups_before - 1);
  ExpectFails({"group", "show", "billing"}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"dlq", "list", "billing"}, kExitNotFound,
              "consumer group 'billing' is not known and has no dead-letter queue here");
  EXPECT_EQ(admin_->TopicMessages("%DLQ%billing"), -1);
  // A group of that name starts over: from the topic's start.
  EXPECT_EQ(Take("orders", "billing", 4).size(), 4u);
  ExpectFails({"group", "delete", "ghosts"}, kExitNotFound, "consumer group 'ghosts' is not known");
  (void)dead;
}

TEST_F(GroupChange, DlqPurgeByIdAndAll) {
  const std::string a = DeadLetter("orders", "a");
  const std::string b = DeadLetter("orders", "b");
  const std::string c = DeadLetter("orders", "c");

  auto dry = Ctl({"dlq", "purge", "billing", a, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, a + "\ndry run: would purge 1 dead letter of group 'billing' (2 left); "
                         "nothing changed\n");
  EXPECT_EQ(Json({"dlq", "list", "billing"})["total"], 3);
  EXPECT_TRUE(AuditLinesOf("dlq-purge").empty());

  auto r = Ctl({"dlq", "purge", "billing", a, "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"});
  EXPECT_EQ(r.exit_code, kExitNotFound);
  EXPECT_EQ(r.out, a + "\npurged 1 dead letter of group 'billing' (2 left)\n");
  EXPECT_TRUE(Has(r.err, "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")) << r.err;
  auto list = Json({"dlq", "list", "billing"});
  EXPECT_EQ(list["total"], 2);
  for (const auto& m : list["messages"]) EXPECT_NE(m["id"], a);
  ASSERT_EQ(AuditLinesOf("dlq-purge").size(), 1u);
  EXPECT_TRUE(Has(AuditLinesOf("dlq-purge")[0], "group=billing messages=1 result=applied"))
      << AuditLinesOf("dlq-purge")[0];

  auto all = Json({"dlq", "purge", "billing", "--all"});
  EXPECT_EQ(all["purged"].size(), 2u);
  EXPECT_EQ(all["remaining"], 0);
  EXPECT_EQ(Json({"dlq", "list", "billing"})["total"], 0);
  EXPECT_EQ(admin_->TopicMessages("%DLQ%billing"), -1) << "the whole dead-letter topic went";
  EXPECT_EQ(Json({"group", "show", "billing"})["dead_letters"], 0);
  ExpectFails({"dlq", "purge", "billing"}, kExitUsage, "or --all");
  (void)b;
  (void)c;
}

}  // namespace
}  // namespace txmq
