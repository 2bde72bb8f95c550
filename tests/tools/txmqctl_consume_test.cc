// txmqctl consume --from-latest and --no-ack (--dry-run): where a new group
// starts, and a peek that leaves everything to the group as it was.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using testing::SplitLines;

class CtlConsume : public CtlTest {
 protected:
  BrokerOptions Options() override {
    BrokerOptions o = CtlTest::Options();
    // A counted delivery shows at once: the third failed delivery of a
    // message dead-letters it, and a lease a peek let run out would end
    // within a second.
    o.max_reconsume_times = 2;
    o.default_visibility_timeout = std::chrono::seconds(1);
    return o;
  }

  // The JSON lines `txmqctl --json consume ARGS...` printed; fails the test
  // when it does not exit 0.
  std::vector<nlohmann::json> Printed(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"--json", "consume"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = Ctl(argv);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::vector<nlohmann::json> out;
    for (const auto& line : SplitLines(r.out)) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static std::multiset<std::string> Bodies(const std::vector<nlohmann::json>& printed) {
    std::multiset<std::string> out;
    for (const auto& m : printed) out.insert(m["body"].get<std::string>());
    return out;
  }
};

TEST_F(CtlConsume, FromLatestPrintsOnlyWhatIsSentAfterItStartedAndTheGroupKeepsItsPlace) {
  for (const std::string b : {"before-1", "before-2", "before-3", "before-4"}) Send("orders", b, b);

  std::vector<nlohmann::json> got;
  std::thread consume([&] {
    got = Printed({"orders", "--group", "fresh", "--from-latest", "--max", "2", "--wait", "30s"});
  });
  // Its first pull made the group and put it at the end of every queue.
  nlohmann::json g;
  const bool subscribed = testing::WaitFor([&] {
    g = JsonIfOk({"group", "show", "fresh"});
    return g.is_object() && !g["queues"].empty();
  });
  if (subscribed) {
    EXPECT_EQ(g["lag"], 0) << g;
    for (const auto& q : g["queues"]) EXPECT_EQ(q["next"], q["end"]) << g;
  }
  Send("orders", "after-1", "after-1");
  Send("orders", "after-2", "after-2");
  consume.join();
  ASSERT_TRUE(subscribed) << g;
  EXPECT_EQ(Bodies(got), (std::multiset<std::string>{"after-1", "after-2"}));

  // The group is not new any more: the messages sent before stay skipped,
  // also after a restart (its starting point was stored)...
  EXPECT_TRUE(Printed({"orders", "--group", "fresh", "--wait", "500ms"}).empty());
  broker_->Stop();
  broker_ = testing::StartBroker(Options());
  ASSERT_NE(broker_, nullptr);
  EXPECT_TRUE(Printed({"orders", "--group", "fresh", "--wait", "500ms"}).empty())
      << "the starting point at the end did not survive a restart";

  // ...and --from-latest does not move a group that has read the topic:
  // what came while it was away is still delivered.
  Send("orders", "away", "while-away");
  EXPECT_EQ(Bodies(Printed({"orders", "--group", "fresh", "--from-latest", "--wait", "1s"})),
            (std::multiset<std::string>{"while-away"}));

  // Without the flag a new group starts at the topic's start.
  EXPECT_EQ(Printed({"orders", "--group", "newcomer", "--wait", "1s"}).size(), 7u);
}

TEST_F(CtlConsume, FromLatestOnATopicNotCreatedYetPrintsTheMessageThatCreatesIt) {
  std::vector<nlohmann::json> got;
  std::thread consume([&] {
    got = Printed(
        {"created-later", "--group", "early", "--from-latest", "--max", "1", "--wait", "15s"});
  });
  // The consume waits at the broker (its pull made the group) before
  // anything was sent.
  const bool waiting = testing::WaitFor([&] {
    return JsonIfOk({"group", "show", "early"}).is_object();
  });
  Send("created-later", "k", "first");
  consume.join();
  ASSERT_TRUE(waiting);
  EXPECT_EQ(Bodies(got), (std::multiset<std::string>{"first"}))
      << "the first message was sent after consume started, and created the topic";
}

// Waiting for a topic that does not exist is allowed (a consumer may start
// first), but a typo must not pass unseen: stderr says so, and names the
// group it leaves.
TEST_F(CtlConsume, ATopicThatDoesNotExistIsNamedOnStderr) {
  Send("order-created", "k", "first");
  auto r = Ctl({"consume", "ordr-created", "--group", "typo", "--wait", "0.2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("topic 'ordr-created' does not exist (yet); group 'typo' waits for it"),
            std::string::npos)
      << r.err;
  r = Ctl({"consume", "order-created", "--group", "typo", "--wait", "0.2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("does not exist"), std::string::npos) << r.err;
}

TEST_F(CtlConsume, NoAckPrintsAndLeavesEveryMessageToTheGroupUncounted) {
  std::set<std::string> sent;
  for (const std::string k : {"a", "b", "c"}) sent.insert(Send("orders", k, "body-" + k));

  // More peeks than the group's deliveries before the dead-letter queue
  // (max_reconsume_times 2): were a peek counted, the messages would be
  // dead letters by now.
  for (const std::string flag : {"--no-ack", "--dry-run", "--no-ack", "--dry-run"}) {
    SCOPED_TRACE(flag);
    auto printed = Printed({"orders", "--group", "billing", flag, "--max", "3", "--wait", "10s"});
    std::set<std::string> ids;
    for (const auto& m : printed) {
      ids.insert(m["id"].get<std::string>());
      EXPECT_EQ(m["delivery_count"], 1) << m;
    }
    EXPECT_EQ(ids, sent);
    // Given back when consume ended: nothing held, nothing counted.
    auto g = Json({"group", "show", "billing"});
    EXPECT_EQ(g["in_flight"], 0) << g;
    EXPECT_EQ(g["dead_letters"], 0) << g;
    EXPECT_EQ(g["lag"].get<int>() + g["retrying"].get<int>(), 3) << g;
    for (const auto& r : g["retries"]) EXPECT_EQ(r["delivery_count"], 0) << g;
  }
  auto text = Ctl({"consume", "orders", "--group", "billing", "--no-ack", "--max", "3"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(SplitLines(text.out).size(), 3u) << text.out;
  EXPECT_EQ(text.err, "txmqctl: 3 messages (not acknowledged: given back to group 'billing')\n");

  // The group's real consumer gets every message, as a first delivery.
  std::mutex mu;
  std::map<std::string, uint32_t> delivered;
  Consumer consumer({.broker = broker_->endpoint(),
                     .group = "billing",
                     .long_poll = std::chrono::milliseconds(200)});
  ASSERT_TRUE(consumer
                  .Subscribe("orders",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               delivered.emplace(m.id, m.delivery_count);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(consumer.Start().ok());
  EXPECT_TRUE(testing::WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return delivered.size() == sent.size();
  }));
  consumer.Shutdown();
  for (const auto& id : sent) EXPECT_EQ(delivered[id], 1u) << id;
  // Acknowledged by the consumer now: gone for the group.
  EXPECT_TRUE(Printed({"orders", "--group", "billing", "--no-ack", "--wait", "500ms"}).empty());
  EXPECT_TRUE(Json({"dlq", "list", "billing"})["messages"].empty());
}

TEST_F(CtlConsume, APeekLongerThanALeasePrintsEachMessageOnceAndCountsNothing) {
  std::set<std::string> sent;
  for (const std::string k : {"a", "b"}) sent.insert(Send("orders", k, "body-" + k));
  // No --max: the peek goes on until nothing came for 3 s, three times the
  // broker's default lease.
  const auto start = std::chrono::steady_clock::now();
  auto printed = Printed({"orders", "--group", "billing", "--no-ack", "--wait", "3s"});
  ASSERT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  std::multiset<std::string> ids;
  for (const auto& m : printed) {
    ids.insert(m["id"].get<std::string>());
    EXPECT_EQ(m["delivery_count"], 1) << m;
  }
  EXPECT_EQ(ids, (std::multiset<std::string>(sent.begin(), sent.end())))
      << "a lease ran out during the peek: redelivered to it and counted";
  auto again = Printed({"orders", "--group", "billing", "--max", "2", "--wait", "5s"});
  ASSERT_EQ(again.size(), 2u);
  for (const auto& m : again) EXPECT_EQ(m["delivery_count"], 1) << m;
}

// Each queue of a group has one owner among its consumers (the broker's
// queue_owners.h): group show names it per queue, in the text and the JSON.
TEST_F(CtlConsume, GroupShowNamesEachQueuesOwner) {
  Send("orders", "k", "first");  // the topic, with the broker's 4 queues
  std::vector<std::unique_ptr<Consumer>> consumers;
  for (const std::string id : {"picker-a", "picker-b"}) {
    consumers.push_back(
        std::make_unique<Consumer>(ConsumerOptions{.broker = broker_->endpoint(),
                                                   .group = "pickers",
                                                   .long_poll = std::chrono::milliseconds(200),
                                                   .client_id = id}));
    ASSERT_TRUE(consumers.back()
                    ->Subscribe("orders", [](const Received&) { return ConsumeResult::Success(); })
                    .ok());
    ASSERT_TRUE(consumers.back()->Start().ok());
  }
  std::map<std::string, int> owned;
  ASSERT_TRUE(testing::WaitFor([&] {
    owned.clear();
    auto g = JsonIfOk({"group", "show", "pickers"});
    if (!g.is_object()) return false;
    for (const auto& q : g["queues"]) ++owned[q["owner"].get<std::string>()];
    return owned == std::map<std::string, int>{{"picker-a", 2}, {"picker-b", 2}};
  })) << "owners: "
      << ::testing::PrintToString(owned);
  auto text = Ctl({"group", "show", "pickers"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("OWNER"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("picker-a"), std::string::npos) << text.out;
  for (auto& c : consumers) c->Shutdown();
}

// A consumer killed -9 while it holds messages of every queue: another
// consumer of the group gets none of those queues while it lives (they are
// its), and all of them, with every message, once the broker forgot it
// (client timeout); each key's messages still in order.
TEST_F(CtlConsume, AKilledConsumersQueuesGoToTheOtherOnceTheBrokerForgetsIt) {
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f", "g", "h"};
  for (int i = 0; i < 3; ++i) {
    for (const std::string& key : keys) Send("orders", key, key + "-" + std::to_string(i));
  }
  // The doomed consumer takes everything and holds it (peeks extend their
  // leases until consume ends).
  auto doomed = testing::Process::Spawn(
      {testing::BinPath("txmqctl"), "--broker", broker_->endpoint(), "consume", "orders", "--group",
       "pickers", "--no-ack", "--wait", "60s"},
      dir_.Sub("doomed.log"));
  ASSERT_TRUE(testing::WaitFor([&] {
    auto g = JsonIfOk({"group", "show", "pickers"});
    return g.is_object() && g["in_flight"] == 24;
  })) << "the doomed consumer never held all 24";

  std::mutex mu;
  std::vector<Received> got;
  Consumer survivor({.broker = broker_->endpoint(),
                     .group = "pickers",
                     .long_poll = std::chrono::milliseconds(200),
                     .client_id = "survivor"});
  ASSERT_TRUE(survivor
                  .Subscribe("orders",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got.push_back(m);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(survivor.Start().ok());
  // A member now, with a share of the queues it cannot take yet.
  ASSERT_TRUE(testing::WaitFor([&] {
    auto g = JsonIfOk({"group", "show", "pickers"});
    int waiting = 0;
    if (g.is_object()) {
      for (const auto& q : g["queues"]) waiting += q["owner"] == "survivor" && q["handing_over"];
    }
    return waiting == 2;
  })) << "the survivor was given no queue to wait for";
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(got.empty()) << "a queue's messages went to two consumers at once";
  }

  doomed->Signal(SIGKILL);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return got.size() >= 24;
      },
      std::chrono::seconds(20)))
      << "the survivor got " << got.size() << " of 24";
  auto g = Json({"group", "show", "pickers"});
  for (const auto& q : g["queues"]) EXPECT_EQ(q["owner"], "survivor") << g;
  survivor.Shutdown();
  std::map<std::string, std::vector<std::string>> by_key;
  for (const Received& m : got) by_key[m.key].push_back(m.body);
  for (const std::string& key : keys) {
    EXPECT_EQ(by_key[key], (std::vector<std::string>{key + "-0", key + "-1", key + "-2"}));
  }
}

}  // namespace
}  // namespace txmq
