// txmqctl topic, msg and group: what is stored and who reads it.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>

#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using testing::SplitLines;
using Inspect = CtlTest;

using testing::Has;
TEST_F(Inspect, TopicCreateListShow) {
  auto r = Ctl({"topic", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "(no topics)\n");

  // --dry-run creates nothing.
  r = Ctl({"topic", "create", "orders", "--queues", "3", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "would create topic 'orders' with 3 queues")) << r.out;
  EXPECT_EQ(Json({"topic", "list"})["topics"].size(), 0u);

  r = Ctl({"topic", "create", "orders", "--queues", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "created topic 'orders' with 3 queues\n");
  auto j = Json({"topic", "create", "orders", "--queues", "5"});
  EXPECT_EQ(j["created"], false);
  EXPECT_EQ(j["queues"], 3);
  r = Ctl({"topic", "create", "orders", "--dry-run"});
  EXPECT_TRUE(Has(r.out, "exists already with 3 queues")) << r.out;

  Send("orders", "k1", "one");
  Send("orders", "k1", "two");
  r = Ctl({"topic", "list"});
  auto lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].rfind("NAME    QUEUES  MESSAGES  CREATED", 0), 0u) << r.out;
  EXPECT_EQ(lines[1].rfind("orders  3       2         ", 0), 0u) << r.out;

  ASSERT_EQ(Consume("orders", "audit").size(), 2u);
  j = Json({"topic", "show", "orders"});
  EXPECT_EQ(j["name"], "orders");
  EXPECT_EQ(j["messages"], 2);
  ASSERT_EQ(j["queues"].size(), 3u);
  uint64_t stored = 0;
  for (const auto& q : j["queues"]) stored += q["end_offset"].get<uint64_t>();
  EXPECT_EQ(stored, 2u);
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["group"], "audit");
  EXPECT_EQ(j["groups"][0]["lag"], 0);

  r = Ctl({"topic", "show", "orders"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "QUEUE  MIN OFFSET  MAX OFFSET  MESSAGES  GROUP  LEADER")) << r.out;
  EXPECT_TRUE(Has(r.out, "GROUP  LAG  IN FLIGHT  RETRYING\naudit  0")) << r.out;

  ExpectFails({"topic", "show", "nope"}, kExitNotFound, "NOT_FOUND");
}

TEST_F(Inspect, MsgShowAndFind) {
  const std::string first = Send("orders", "k1", "first body");
  auto sent = Ctl({"send", "orders", "--key", "k1", "--prop", "source=test", "second body"});
  ASSERT_EQ(sent.exit_code, 0);
  const std::string second = SplitLines(sent.out).at(0);
  Send("orders", "k2", "other key");
  ASSERT_EQ(Consume("orders", "audit").size(), 3u);

  auto r = Ctl({"msg", "show", second});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& part :
       {second, std::string("source=test"), std::string("second body"),
        std::string("orders queue "), std::string("GROUP  STATE     DELIVERIES"),
        std::string("audit  consumed")}) {
    EXPECT_TRUE(Has(r.out, part)) << part << " in\n" << r.out;
  }
  auto j = Json({"msg", "show", second});
  EXPECT_EQ(j["message"]["id"], second);
  EXPECT_EQ(j["message"]["key"], "k1");
  EXPECT_EQ(j["message"]["body"], "second body");
  EXPECT_EQ(j["message"]["properties"]["source"], "test");
  EXPECT_EQ(j["location"]["topic"], "orders");
  ASSERT_EQ(j["deliveries"].size(), 1u);
  EXPECT_EQ(j["deliveries"][0]["group"], "audit");
  EXPECT_EQ(j["deliveries"][0]["state"], "consumed");

  // Newest first.
  j = Json({"msg", "find", "--topic", "orders", "--key", "k1"});
  ASSERT_EQ(j["messages"].size(), 2u) << j;
  EXPECT_EQ(j["messages"][0]["id"], second);
  EXPECT_EQ(j["messages"][1]["id"], first);
  j = Json({"msg", "find", "--topic", "orders", "--key", "k1", "--limit", "1"});
  ASSERT_EQ(j["messages"].size(), 1u);
  EXPECT_EQ(j["messages"][0]["id"], second);
  r = Ctl({"msg", "find", "-t", "orders", "-k", "k1"});
  ASSERT_EQ(r.exit_code, 0);
  auto lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(Has(lines[0], "ID") && Has(lines[0], "OFFSET") && Has(lines[0], "PROPERTIES"));
  EXPECT_TRUE(Has(lines[1], second) && Has(lines[1], "source=test")) << r.out;
  EXPECT_EQ(Ctl({"msg", "find", "-t", "orders", "-k", "none"}).out,
            "(no message with key 'none' in topic 'orders')\n");

  ExpectFails({"msg", "show", "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"msg", "find", "--topic", "nope", "--key", "k"}, kExitNotFound, "NOT_FOUND");
}

// topic peek reads in place: no group, no lease, no cursor. A consumer
// that comes after still gets every message, once.
TEST_F(Inspect, TopicPeekReadsWithoutAGroupOrALease) {
  ASSERT_EQ(Ctl({"topic", "create", "orders", "--queues", "2"}).exit_code, 0);
  std::set<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.insert(Send("orders", "k" + std::to_string(i), "body " + std::to_string(i)));
  }

  // Every queue, merged oldest first.
  auto j = Json({"topic", "peek", "orders"});
  ASSERT_EQ(j["messages"].size(), 6u) << j;
  std::set<std::string> seen;
  int64_t last_stored = 0;
  std::map<uint32_t, uint64_t> per_queue;
  for (const auto& m : j["messages"]) {
    seen.insert(m["id"].get<std::string>());
    EXPECT_GE(m["stored_ms"].get<int64_t>(), last_stored) << "oldest first";
    last_stored = m["stored_ms"].get<int64_t>();
    EXPECT_EQ(m["offset"].get<uint64_t>(), per_queue[m["queue"].get<uint32_t>()]++)
        << "each queue read in order from its start";
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(j["more"], false);
  ASSERT_EQ(j["next"].size(), 2u);

  // Peeking changed nothing: no group appeared, and a peek again sees the same.
  EXPECT_EQ(Ctl({"group", "list"}).out, "(no consumer groups)\n");
  EXPECT_EQ(Json({"topic", "peek", "orders"})["messages"], j["messages"]);

  // One queue, from an offset, at most one message: where to go on.
  const uint32_t q = per_queue[0] >= 2 ? 0 : 1;
  auto one =
      Json({"topic", "peek", "orders", "--queue", std::to_string(q), "--from", "1", "--max", "1"});
  ASSERT_EQ(one["messages"].size(), 1u) << one;
  EXPECT_EQ(one["messages"][0]["queue"], q);
  EXPECT_EQ(one["messages"][0]["offset"], 1);
  ASSERT_EQ(one["next"].size(), 1u);
  EXPECT_EQ(one["next"][0]["offset"], 2);
  EXPECT_EQ(one["more"], per_queue[q] > 2);
  auto r = Ctl({"topic", "peek", "orders", "--max", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(Has(lines[0], "QUEUE") && Has(lines[0], "OFFSET") && Has(lines[0], "BODY")) << r.out;
  EXPECT_TRUE(Has(lines[1], "body ")) << r.out;
  EXPECT_TRUE(Has(r.err, "more messages follow")) << r.err;

  // By time: everything stored in the last hour; nothing from the future.
  EXPECT_EQ(Json({"topic", "peek", "orders", "--from-time", "now-1h"})["messages"].size(), 6u);
  EXPECT_EQ(
      Json({"topic", "peek", "orders", "--from-time", "2999-01-01T00:00:00Z"})["messages"].size(),
      0u);

  ExpectFails({"topic", "peek", "nope"}, kExitNotFound, "topic 'nope' does not exist");
  // A typo of a topic that exists names it.
  ExpectFails({"topic", "peek", "ordrs"}, kExitNotFound,
              "topic 'ordrs' does not exist (did you mean 'orders'?)");
  ExpectFails({"topic", "show", "ordres"}, kExitNotFound, "did you mean 'orders'?");
  ExpectFails({"topic", "delete", "ordrs"}, kExitNotFound, "did you mean 'orders'?");
  ExpectFails({"topic", "peek", "orders", "--queue", "2"}, kExitUsage,
              "queue 2: topic 'orders' has 2 queues (0-1)");
  ExpectFails({"topic", "peek", "orders", "--from-time", "yesterday"}, kExitUsage,
              "--from-time 'yesterday' is not a time");
  EXPECT_EQ(Ctl({"topic", "peek", "orders", "--from", "1", "--from-time", "now-1h"}).exit_code,
            kExitUsage);

  // A consumer gets all of them: peeking took no lease and moved no cursor.
  EXPECT_EQ(Consume("orders", "audit").size(), 6u);
}

TEST_F(Inspect, GroupListAndShowWithLeasesAndRetries) {
  EXPECT_EQ(Ctl({"group", "list"}).out, "(no consumer groups)\n");
  const std::string held = Send("orders", "a", "hold");
  // Without a key: a failed keyed message would be retried in place by the
  // consumer (still in flight), not wait at the broker.
  const std::string failed = Send("orders", "", "fail");
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Consumer consumer({.broker = broker_->endpoint(),
                     .group = "billing",
                     .long_poll = std::chrono::milliseconds(200)});
  ASSERT_TRUE(consumer
                  .Subscribe("orders",
                             [released](const Received& m) {
                               if (m.body == "fail") {
                                 return ConsumeResult::RetryLater(std::chrono::seconds(60));
                               }
                               released.wait();
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(consumer.Start().ok());

  // One leased to the handler that waits, one waiting for its redelivery.
  nlohmann::json g;
  ASSERT_TRUE(testing::WaitFor([&] {
    // The group exists only once the consumer's first pull reached the broker.
    g = JsonIfOk({"group", "show", "billing"});
    return g.is_object() && g["in_flight"] == 1 && g["retrying"] == 1;
  })) << g;
  EXPECT_EQ(g["members"].size(), 1u);
  EXPECT_EQ(g["topics"][0], "orders");
  ASSERT_EQ(g["retries"].size(), 1u);
  EXPECT_EQ(g["retries"][0]["message_id"], failed);
  EXPECT_EQ(g["retries"][0]["leased"], false);
  uint64_t in_flight = 0;
  for (const auto& q : g["queues"]) in_flight += q["in_flight"].get<uint64_t>();
  EXPECT_EQ(in_flight, 1u);

  auto r = Ctl({"group", "show", "billing"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& part :
       {std::string("members:"), std::string("txmq-consumer"), std::string("queues:"),
        std::string("TOPIC   QUEUE  FLOOR  NEXT  END  LAG  IN FLIGHT  EXPIRED"),
        std::string("retrying:"), failed, std::string("  in ")}) {
    EXPECT_TRUE(Has(r.out, part)) << part << " in\n" << r.out;
  }
  r = Ctl({"group", "list"});
  auto lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "GROUP    TOPICS  MEMBERS  LAG  IN FLIGHT  RETRYING  DEAD LETTERS  EXPIRED");
  EXPECT_EQ(lines[1].rfind("billing  orders  1        ", 0), 0u) << r.out;
  auto list = Json({"group", "list"});
  ASSERT_EQ(list["groups"].size(), 1u);
  EXPECT_EQ(list["groups"][0]["retrying"], 1);

  // msg show sees the lease and the retry too.
  auto m = Json({"msg", "show", held});
  EXPECT_EQ(m["deliveries"][0]["state"], "in-flight");
  m = Json({"msg", "show", failed});
  EXPECT_EQ(m["deliveries"][0]["state"], "retrying");

  release.set_value();
  consumer.Shutdown();
  ExpectFails({"group", "show", "nobody"}, kExitNotFound, "NOT_FOUND");
}

// Retention deletes by age whether or not a group read the messages: what a
// group lost that way is "expired", shown in group list, group show (header
// and each queue) and status, and it is not lag; header and rows agree.
class InspectRetention : public CtlTest {
 protected:
  BrokerOptions Options() override {
    BrokerOptions o = CtlTest::Options();
    o.retention = std::chrono::seconds(2);
    return o;
  }
};

TEST_F(InspectRetention, WhatRetentionDeletedUnreadIsExpiredNotLag) {
  ASSERT_EQ(Ctl({"topic", "create", "orders", "--queues", "1"}).exit_code, 0);
  for (int i = 0; i < 3; ++i) Send("orders", "k", "m" + std::to_string(i));
  auto r = Ctl({"consume", "orders", "--group", "slow", "--max", "1", "--wait", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto t = JsonIfOk({"topic", "show", "orders"});
        return t.is_object() && t["queues"][0]["min_offset"] == 3;
      },
      std::chrono::seconds(20)))
      << "retention never deleted the messages";

  auto j = Json({"group", "show", "slow"});
  EXPECT_EQ(j["lag"], 0) << j;
  EXPECT_EQ(j["expired"], 2) << j;
  ASSERT_EQ(j["queues"].size(), 1u);
  EXPECT_EQ(j["queues"][0]["lag"], j["lag"]) << "the row says what the header says";
  EXPECT_EQ(j["queues"][0]["expired"], 2);
  EXPECT_EQ(Json({"group", "list"})["groups"][0]["expired"], 2);
  EXPECT_EQ(Json({"status"})["expired_unconsumed"], 2);
  r = Ctl({"group", "show", "slow"});
  EXPECT_TRUE(Has(r.out, "expired       2 (deleted by retention before the group received them"))
      << r.out;
  r = Ctl({"status"});
  EXPECT_TRUE(Has(r.out, "expired unconsumed")) << r.out;
}

}  // namespace
}  // namespace txmq
