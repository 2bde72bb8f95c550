// Moving a queue between broker groups under keyed load (DESIGN.md
// "Moving a queue between groups"): sends of the queue go to the new group
// at once, the old group delivers what it held of it, and a consumer group
// is handed the new group's messages only once it has finished the old
// group's, so every key is handled in the order it was sent.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/cluster/keyed_load.h"
#include "tests/cluster/op_history.h"
#include "tests/cluster/two_groups_fixture.h"

namespace txmq::testing {
namespace {

using namespace std::chrono_literals;

class TxmqdQueueMove : public TwoGroupsFixture {
 protected:
  // `txmqctl --broker URL --json topic move TOPIC --queue Q --to GROUP`.
  CommandResult Move(const std::string& url, const std::string& topic, uint32_t queue,
                     const std::string& to, bool dry_run = false) {
    std::vector<std::string> argv = {BinPath("txmqctl"),
                                     "--broker",
                                     url,
                                     "--timeout",
                                     "10s",
                                     "--json",
                                     "topic",
                                     "move",
                                     topic,
                                     "--queue",
                                     std::to_string(queue),
                                     "--to",
                                     to};
    if (dry_run) argv.push_back("--dry-run");
    return RunCommand(argv, "", 30s);
  }
};

// The sequence number of a KeyedLoad message id, PREFIX-KEY-SEQ.
int SeqOf(const std::string& id) { return std::stoi(id.substr(id.rfind('-') + 1)); }

TEST_F(TxmqdQueueMove, AQueueMovedUnderKeyedLoadKeepsEveryKeysOrder) {
  StartTwoGroups();
  // Queue 0 on g1, queue 1 on g2: the consumer below reads from both
  // groups from the start, so nothing but the hold keeps it from reading
  // g2's part of queue 0 before g1's.
  std::string topic;
  for (int i = 0; i < 1000 && topic.empty(); ++i) {
    auto p = cluster::PlaceQueues("moving-" + std::to_string(i), 2, {{"g1", 1}, {"g2", 1}});
    if (p.ok() && p->groups == std::vector<std::string>{"g1", "g2"})
      topic = "moving-" + std::to_string(i);
  }
  ASSERT_FALSE(topic.empty());
  const CommandResult created = RunCommand(
      {BinPath("txmqctl"), "--broker", nodes_[0].url(), "topic", "create", topic, "--queues", "2"},
      "", 30s);
  ASSERT_EQ(created.exit_code, 0) << created.err;

  // One consumer, one message at a time, held up until the move is done
  // and the new group has messages too: the old group keeps a backlog
  // that this consumer group has not read when the queue moves.
  std::mutex mu;
  std::condition_variable released_cv;
  bool released = false;
  std::vector<std::string> handled;  // ids, in the order the handler ran
  auto release = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      released = true;
    }
    released_cv.notify_all();
  };
  Consumer consumer({.broker = nodes_[0].url(),
                     .group = "readers",
                     .handler_threads = 1,
                     .max_in_flight = 4,
                     .pull_batch = 4,
                     .long_poll = 500ms});
  ASSERT_TRUE(consumer
                  .Subscribe(topic,
                             [&](const Received& m) {
                               std::unique_lock<std::mutex> lock(mu);
                               released_cv.wait_for(lock, 60s, [&] { return released; });
                               handled.push_back(m.id);
                               return ConsumeResult::Success();
                             })
                  .ok());
  // Declared after the consumer, so destroyed before it: a failed
  // assertion returns early, and the handler must not hold up shutdown.
  std::shared_ptr<void> release_on_return(nullptr, [&](void*) { release(); });
  ASSERT_TRUE(consumer.Start().ok());

  OpHistory history;
  KeyedLoad load({.brokers = nodes_[0].url() + "," + nodes_[1].url(),
                  .topic = topic,
                  .keys = 8,
                  .per_second = 200},
                 history);
  ASSERT_TRUE(WaitFor([&] { return history.acknowledged() >= 150; }, 30s));

  // A dry run (asked of g1, which placed the topic) says what a move
  // would write and writes nothing.
  const CommandResult dry = Move(nodes_[0].url(), topic, 0, "g2", /*dry_run=*/true);
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  auto would = nlohmann::json::parse(dry.out, nullptr, false);
  EXPECT_EQ(would.value("dry_run", false), true) << dry.out;
  EXPECT_EQ(would.value("generation", 0), 1) << dry.out;
  EXPECT_EQ(StoredPlacement(topic).groups, (std::vector<std::string>{"g1", "g2"}));

  const CommandResult moved = Move(nodes_[1].url(), topic, 0, "g2");
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  auto answer = nlohmann::json::parse(moved.out, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << moved.out;
  EXPECT_EQ(answer["from"], "g1");
  EXPECT_EQ(answer["to"], "g2");
  EXPECT_EQ(answer["generation"], 1);
  const cluster::TopicPlacement placed = StoredPlacement(topic);
  EXPECT_EQ(placed.groups, (std::vector<std::string>{"g2", "g2"}));
  EXPECT_EQ(placed.DrainingFrom(0), "g1");

  // Keys keep being sent, now to g2 (g1 answers WRONG_GROUP).
  const size_t acked_at_move = history.acknowledged();
  ASSERT_TRUE(WaitFor([&] { return history.acknowledged() >= acked_at_move + 150; }, 30s))
      << "sends stopped after the move: " << history.acknowledged() - acked_at_move;
  load.Stop();
  release();

  std::set<std::string> acknowledged;
  for (const Op& op : history.Snapshot()) {
    if (op.state == OpState::kOk) acknowledged.insert(op.id);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        std::set<std::string> seen(handled.begin(), handled.end());
        return std::includes(seen.begin(), seen.end(), acknowledged.begin(), acknowledged.end());
      },
      60s))
      << "not every acknowledged send was handled";
  consumer.Shutdown();

  // Per key, the first handling of each message in send order.
  std::lock_guard<std::mutex> lock(mu);
  std::set<std::string> first_seen;
  std::map<std::string, int> last_seq;  // by key
  int inversions = 0;
  std::string example;
  for (const std::string& id : handled) {
    if (!first_seen.insert(id).second) continue;  // a redelivery
    const std::string key = id.substr(0, id.rfind('-'));
    const int seq = SeqOf(id);
    auto [it, fresh] = last_seq.try_emplace(key, seq);
    if (!fresh && seq < it->second) {
      if (++inversions == 1) example = id + " after seq " + std::to_string(it->second);
      continue;
    }
    it->second = seq;
  }
  EXPECT_EQ(inversions, 0) << "a key's messages handled out of order, e.g. " << example;
  EXPECT_GT(acknowledged.size(), 300u);

  // topic show on the new group says where the queue drains from, and
  // that nobody waits any more once the consumer group finished it.
  nlohmann::json shown;
  EXPECT_TRUE(WaitFor(
      [&] {
        const CommandResult r = RunCommand(
            {BinPath("txmqctl"), "--broker", nodes_[1].url(), "--json", "topic", "show", topic}, "",
            30s);
        shown = nlohmann::json::parse(r.out, nullptr, false);
        if (shown.is_discarded() || !shown.contains("queues")) return false;
        const nlohmann::json& d = shown["queues"][0]["draining"];
        return d.is_object() && d.value("reported", false) && d["pending"].empty();
      },
      20s))
      << shown.dump();
  EXPECT_EQ(shown["queues"][0]["draining"].value("from", ""), "g1") << shown.dump();

  // The move's refusals name what is wrong.
  const CommandResult again = Move(nodes_[0].url(), topic, 0, "g2");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(Has(again.err, "served by group g2 already")) << again.err;
  const CommandResult unknown = Move(nodes_[0].url(), topic, 0, "g9");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Has(unknown.err, "no broker group g9")) << unknown.err;
  const CommandResult no_queue = Move(nodes_[0].url(), topic, 5, "g1");
  EXPECT_NE(no_queue.exit_code, 0);
  EXPECT_TRUE(Has(no_queue.err, "has queues 0-1, not 5")) << no_queue.err;
}

}  // namespace
}  // namespace txmq::testing
