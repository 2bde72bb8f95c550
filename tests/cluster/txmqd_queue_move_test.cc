// Moving queues between broker groups under keyed load (DESIGN.md "Moving
// a queue between groups"): sends of a moved queue go to the new group at
// once, the old group delivers what it held of it, and a consumer group is
// handed the new group's messages only once it has finished the old
// group's, so every key is handled in the order it was sent. One queue
// moved by name (txmqctl topic move), and a topic rebalanced onto a group
// that joined after it was placed (txmqctl topic rebalance).
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

// A consumer of group "readers" that runs one message at a time and holds
// each until Release(): what it has not run stays a backlog in the group
// that stored it, read before nothing else once released.
class HeldConsumer {
 public:
  HeldConsumer(const std::string& url, const std::string& topic)
      : consumer_({.broker = url,
                   .group = "readers",
                   .handler_threads = 1,
                   .max_in_flight = 4,
                   .pull_batch = 4,
                   .long_poll = 500ms}) {
    EXPECT_TRUE(consumer_
                    .Subscribe(topic,
                               [this](const Received& m) {
                                 std::unique_lock<std::mutex> lock(mu_);
                                 released_cv_.wait_for(lock, 60s, [&] { return released_; });
                                 handled_.push_back(m.id);
                                 return ConsumeResult::Success();
                               })
                    .ok());
    EXPECT_TRUE(consumer_.Start().ok());
  }
  ~HeldConsumer() {
    Release();  // a failed assertion returned early: shutdown must not wait on a handler
    consumer_.Shutdown();
  }

  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    released_cv_.notify_all();
  }

  bool WaitHandled(const std::set<std::string>& ids, std::chrono::seconds timeout) {
    return WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu_);
          std::set<std::string> seen(handled_.begin(), handled_.end());
          return std::includes(seen.begin(), seen.end(), ids.begin(), ids.end());
        },
        timeout);
  }

  // The messages of a key run out of the order they were sent (KeyedLoad
  // ids: PREFIX-KEY-SEQ), first runs only; "" when none did.
  std::string FirstInversion() {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> first_seen;
    std::map<std::string, int> last_seq;  // by key
    for (const std::string& id : handled_) {
      if (!first_seen.insert(id).second) continue;  // a redelivery
      const std::string key = id.substr(0, id.rfind('-'));
      const int seq = std::stoi(id.substr(id.rfind('-') + 1));
      auto [it, fresh] = last_seq.try_emplace(key, seq);
      if (!fresh && seq < it->second) return id + " after seq " + std::to_string(it->second);
      it->second = seq;
    }
    return "";
  }

 private:
  Consumer consumer_;
  std::mutex mu_;
  std::condition_variable released_cv_;
  bool released_ = false;             // guarded by mu_
  std::vector<std::string> handled_;  // ids in the order the handler ran; guarded by mu_
};

std::set<std::string> Acknowledged(const OpHistory& history) {
  std::set<std::string> ids;
  for (const Op& op : history.Snapshot()) {
    if (op.state == OpState::kOk) ids.insert(op.id);
  }
  return ids;
}

class TxmqdQueueMove : public TwoGroupsFixture {
 protected:
  // `txmqctl --broker URL --json topic ARGS...`.
  CommandResult Topic(const std::string& url, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("txmqctl"), "--broker", url, "--timeout", "10s",
                                     "--json",           "topic"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", 30s);
  }
  CommandResult Move(const std::string& url, const std::string& topic, uint32_t queue,
                     const std::string& to, bool dry_run = false) {
    std::vector<std::string> args = {"move", topic, "--queue", std::to_string(queue), "--to", to};
    if (dry_run) args.push_back("--dry-run");
    return Topic(url, args);
  }

  // A key whose messages go to `queue` of a topic with `queues` queues.
  static std::string KeyOf(uint32_t queue, uint32_t queues) {
    for (int i = 0; i < 1000; ++i) {
      const std::string key = "k" + std::to_string(i);
      if (StableHash(key) % queues == queue) return key;
    }
    ADD_FAILURE() << "no key of queue " << queue;
    return "";
  }

  // Message `id` with `key` sent to the broker `connection` talks to and
  // nowhere else (no route asked), as one attempt of a producer's.
  static Result<wire::Frame> SendOnce(net::Connection& connection, const std::string& topic,
                                      const std::string& key, const std::string& id) {
    auto request = connection.NewRequest();
    auto m = request.envelope().initSend().initMessage();
    m.setId(id);
    m.setTopic(topic);
    m.setKey(key);
    m.setBody(kj::StringPtr("x").asBytes());
    return connection.CallSync(std::move(request), 10s);
  }

  // Keyed sends go on until `more` further ones were acknowledged.
  static void WaitForMoreAcks(const OpHistory& history, size_t more) {
    const size_t from = history.acknowledged();
    ASSERT_TRUE(WaitFor([&] { return history.acknowledged() >= from + more; }, 30s))
        << "sends stopped: " << history.acknowledged() - from << " of " << more;
  }

  // Waits until the broker at `url` itself stored messages of `queue`:
  // the old group has seen the move (it learns it at its next read of
  // etcd) and refuses them, so keys go on in the new group while the old
  // one still holds a backlog of them.
  void WaitForStoredAt(const std::string& url, const std::string& topic, uint32_t queue) {
    nlohmann::json shown;
    ASSERT_TRUE(WaitFor(
        [&] {
          shown = nlohmann::json::parse(Topic(url, {"show", topic}).out, nullptr, false);
          return !shown.is_discarded() && shown.contains("queues") &&
                 shown["queues"][queue].value("end_offset", 0) > 0;
        },
        30s))
        << "queue " << queue << " never got messages at " << url << ": " << shown.dump();
  }

  // Every acknowledged send ran, each key in the order it was sent.
  static void ExpectEveryKeyInOrder(HeldConsumer& consumer, const OpHistory& history) {
    const std::set<std::string> acknowledged = Acknowledged(history);
    EXPECT_GT(acknowledged.size(), 300u);
    EXPECT_TRUE(consumer.WaitHandled(acknowledged, 60s)) << "not every acknowledged send ran";
    const std::string inversion = consumer.FirstInversion();
    EXPECT_EQ(inversion, "") << "a key's messages ran out of order";
  }
};

TEST_F(TxmqdQueueMove, AQueueMovedUnderKeyedLoadKeepsEveryKeysOrder) {
  StartTwoGroups();
  // Queue 0 on g1, queue 1 on g2: the consumer reads from both groups from
  // the start, so nothing but the hold keeps it from reading g2's part of
  // queue 0 before g1's (without the hold keys ran out of order in every
  // run).
  const std::string topic = TopicPlacedAs("moving-", {"g1", "g2"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  const CommandResult created = Topic(nodes_[0].url(), {"create", topic, "--queues", "2"});
  ASSERT_EQ(created.exit_code, 0) << created.err;

  HeldConsumer consumer(nodes_[0].url(), topic);
  OpHistory history;
  KeyedLoad load({.brokers = nodes_[0].url() + "," + nodes_[1].url(),
                  .topic = topic,
                  .keys = 8,
                  .per_second = 200},
                 history);
  WaitForMoreAcks(history, 150);

  // A dry run says what a move would write and writes nothing.
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

  WaitForStoredAt(nodes_[1].url(), topic, 0);  // g1 answers WRONG_GROUP now
  // Asked of g1, the row is g1's part of the queue, and says where it went.
  const auto at_old =
      nlohmann::json::parse(Topic(nodes_[0].url(), {"show", topic}).out, nullptr, false);
  ASSERT_TRUE(!at_old.is_discarded() && at_old.contains("queues")) << at_old.dump();
  EXPECT_EQ(at_old["queues"][0]["group"], "g1") << at_old.dump();
  EXPECT_EQ(at_old["queues"][0]["moved_to"], "g2") << at_old.dump();
  EXPECT_EQ(at_old["queues"][0]["draining"]["from"], "g1") << at_old.dump();
  EXPECT_EQ(at_old["queues"][1]["moved_to"], nullptr) << at_old.dump();
  WaitForMoreAcks(history, 100);
  load.Stop();
  consumer.Release();
  ExpectEveryKeyInOrder(consumer, history);

  // topic show on the new group says where the queue drains from, and
  // that nobody waits any more once the consumer group finished it.
  nlohmann::json shown;
  EXPECT_TRUE(WaitFor(
      [&] {
        const CommandResult r = Topic(nodes_[1].url(), {"show", topic});
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

// A group that joins takes part in topics placed after it; `topic
// rebalance` gives it its share of an older topic's queues, keys in order.
TEST_F(TxmqdQueueMove, ARebalanceGivesAJoiningGroupItsShareUnderKeyedLoad) {
  MakeNodes(2);
  StartAlone(nodes_[0], "g1");
  WaitReady(nodes_[0]);
  const std::string topic = "older";
  const CommandResult created = Topic(nodes_[0].url(), {"create", topic, "--queues", "4"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  ASSERT_EQ(StoredPlacement(topic).QueuesOf("g1").size(), 4u);

  HeldConsumer consumer(nodes_[0].url(), topic);
  OpHistory history;
  KeyedLoad load({.brokers = nodes_[0].url(), .topic = topic, .keys = 8, .per_second = 200},
                 history);
  WaitForMoreAcks(history, 150);

  StartAlone(nodes_[1], "g2");
  WaitReady(nodes_[1]);
  const CommandResult dry = Topic(nodes_[0].url(), {"rebalance", topic, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(StoredPlacement(topic).QueuesOf("g1").size(), 4u) << "a dry run writes nothing";
  const CommandResult rebalanced = Topic(nodes_[0].url(), {"rebalance", topic});
  ASSERT_EQ(rebalanced.exit_code, 0) << rebalanced.err;
  auto answer = nlohmann::json::parse(rebalanced.out, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << rebalanced.out;
  EXPECT_EQ(answer["moved"], nlohmann::json::parse(dry.out)["moved"]);
  EXPECT_EQ(answer["moved"].size(), 2u) << rebalanced.out;
  const cluster::TopicPlacement placed = StoredPlacement(topic);
  EXPECT_EQ(placed.QueuesOf("g2").size(), 2u);
  EXPECT_EQ(placed.QueuesDrainingFrom("g1"), placed.QueuesOf("g2"));

  for (uint32_t q : placed.QueuesOf("g2")) WaitForStoredAt(nodes_[1].url(), topic, q);
  WaitForMoreAcks(history, 100);
  load.Stop();
  consumer.Release();
  ExpectEveryKeyInOrder(consumer, history);
  const CommandResult again = Topic(nodes_[0].url(), {"rebalance", topic});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out, nullptr, false)["moved"].size(), 0u) << again.out;
}

// A queue moved away from a group that never stored a message of its
// topic: that group owes nothing and says so, so the new group's messages
// of the queue are not held back for good.
TEST_F(TxmqdQueueMove, AQueueMovedFromAGroupThatNeverHadTheTopicIsNotHeldBack) {
  StartTwoGroups();
  const std::string topic = TopicPlacedAs("quiet-", {"g1", "g2"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  // Created (and placed) through g2: g1 never hears of the topic.
  const CommandResult created = Topic(nodes_[1].url(), {"create", topic, "--queues", "2"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const CommandResult moved = Move(nodes_[1].url(), topic, 0, "g2");
  ASSERT_EQ(moved.exit_code, 0) << moved.err;

  Producer producer({.broker = nodes_[1].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(producer.Send({.topic = topic, .key = "k" + std::to_string(i), .body = "x"}).ok());
  }
  producer.Shutdown();
  const std::vector<Received> got = Consume(nodes_[1].url(), {topic}, 20);
  EXPECT_EQ(got.size(), 20u) << "the moved queue's messages were held back";
}

// A queue moved away from a group that is gone for good: no drain report
// will ever come, so the new group holds the queue's messages back from
// every consumer group until an operator releases it (txmqctl topic move
// --release; refused while that group still has a live node); then they
// are delivered.
TEST_F(TxmqdQueueMove, AQueueMovedFromAGroupGoneForGoodIsHeldUntilReleased) {
  StartTwoGroups();
  const std::string topic = TopicPlacedAs("stranded-", {"g1", "g1", "g2"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  const CommandResult created = Topic(nodes_[1].url(), {"create", topic, "--queues", "3"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto release = [&](uint32_t queue) {
    return Topic(nodes_[1].url(), {"move", topic, "--queue", std::to_string(queue), "--release"});
  };

  // While g1 lives it reports by itself: a release is refused.
  ASSERT_EQ(Move(nodes_[1].url(), topic, 0, "g2").exit_code, 0);
  const CommandResult alive = release(0);
  EXPECT_NE(alive.exit_code, 0);
  EXPECT_TRUE(Has(alive.err, "group g1 still has live nodes (a)")) << alive.err;

  Kill9(nodes_[0]);  // g1, for good
  const CommandResult moved = Move(nodes_[1].url(), topic, 1, "g2");
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  const std::string key1 = KeyOf(1, 3);
  Producer producer({.broker = nodes_[1].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(producer.Send({.topic = topic, .key = key1, .body = std::to_string(i)}).ok());
  }
  producer.Shutdown();

  std::mutex mu;
  size_t received = 0;  // guarded by mu
  Consumer consumer({.broker = nodes_[1].url(), .group = "readers", .long_poll = 500ms});
  ASSERT_TRUE(consumer
                  .Subscribe(topic,
                             [&](const Received&) {
                               std::lock_guard<std::mutex> lock(mu);
                               ++received;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(consumer.Start().ok());
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return received;
  };
  // Held: a bounded look (the queue waits for a report that never comes).
  EXPECT_FALSE(WaitFor([&] { return count() > 0; }, 3s))
      << "delivered before the group it moved from drained or was released";

  // Refusals: --release with --to, a queue that never moved.
  const CommandResult both =
      Topic(nodes_[1].url(), {"move", topic, "--queue", "1", "--release", "--to", "g2"});
  EXPECT_NE(both.exit_code, 0);
  const CommandResult unmoved = release(2);
  EXPECT_NE(unmoved.exit_code, 0);
  EXPECT_TRUE(Has(unmoved.err, "not draining")) << unmoved.err;

  // Once g1's lease has run out (its live-node key gone), it is released.
  CommandResult released;
  ASSERT_TRUE(WaitFor(
      [&] {
        released = release(1);
        return released.exit_code == 0;
      },
      30s))
      << released.err;
  auto answer = nlohmann::json::parse(released.out, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << released.out;
  EXPECT_EQ(answer["from"], "g1");
  EXPECT_EQ(answer["to"], "g2");
  EXPECT_EQ(answer["released"], true);
  EXPECT_EQ(StoredPlacement(topic).DrainingFrom(1), "");
  EXPECT_TRUE(WaitFor([&] { return count() == 10; }, 30s))
      << "released, yet " << count() << " of 10 delivered";
  consumer.Shutdown();
}

// A send whose answer was lost, resent after its queue moved: the group
// that stored it answers the resend with what it stored (a duplicate), so
// it is never stored in the new group as well; a message it never stored
// is refused there, naming the new group.
TEST_F(TxmqdQueueMove, AResendOfAMessageTheOldGroupStoredIsAnsweredThereNotStoredAgain) {
  StartTwoGroups();
  const std::string topic = TopicPlacedAs("resent-", {"g1", "g2"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  const CommandResult created = Topic(nodes_[0].url(), {"create", topic, "--queues", "2"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string key0 = KeyOf(0, 2);
  auto g1 = net::Connection::Open({.broker = nodes_[0].url()});
  ASSERT_TRUE(g1.ok());
  auto send_to_g1 = [&](const std::string& id) { return SendOnce(**g1, topic, key0, id); };
  auto first = send_to_g1("stored-before-the-move");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_FALSE(first->envelope().getSendOk().getDuplicate());

  ASSERT_EQ(Move(nodes_[1].url(), topic, 0, "g2").exit_code, 0);
  Result<wire::Frame> fresh = Status::Internal("not sent");
  int n = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        fresh = send_to_g1("fresh-" + std::to_string(n++));
        return !fresh.ok();
      },
      30s))
      << "g1 never saw the move";
  EXPECT_EQ(fresh.status().code(), StatusCode::kWrongGroup) << fresh.status().ToString();

  auto resent = send_to_g1("stored-before-the-move");
  ASSERT_TRUE(resent.ok()) << "refused, so a producer would store it in g2 too: "
                           << resent.status().ToString();
  auto ok = resent->envelope().getSendOk();
  EXPECT_TRUE(ok.getDuplicate());
  EXPECT_EQ(ok.getQueue(), 0u);
  EXPECT_EQ(ok.getOffset(), first->envelope().getSendOk().getOffset());
  // g2 makes its part of the topic with the first message it stores.
  const CommandResult show = Topic(nodes_[1].url(), {"show", topic});
  EXPECT_NE(show.exit_code, 0) << "g2 stored a message of the topic: " << show.out;
  EXPECT_TRUE(Has(show.err, "does not exist")) << show.err;
}

// The same through a producer: its send to g1 got no answer (g1 stopped),
// but g1 stored it once it ran again; the queue moved, and the producer
// learned the new route. Its resend of that message goes to g1 first, which
// answers it as a duplicate, and nothing of it is stored in g2.
TEST_F(TxmqdQueueMove, AProducersResendOfAnUnansweredSendAsksTheGroupItWentToFirst) {
  // g1 is stopped for the producer's send timeouts, a few seconds.
  StartTwoGroups({"--lease-ttl", "15"});
  const std::string topic = TopicPlacedAs("unanswered-", {"g1", "g2"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  const CommandResult created = Topic(nodes_[1].url(), {"create", topic, "--queues", "2"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string key0 = KeyOf(0, 2);
  Producer producer({.broker = nodes_[1].url(), .send_timeout = 1s});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = topic, .key = key0, .body = "x"}).ok());  // g1 is known

  nodes_[0].process->Signal(SIGSTOP);
  auto unanswered = producer.Send({.topic = topic, .key = key0, .body = "x", .id = "unanswered"});
  nodes_[0].process->Signal(SIGCONT);
  ASSERT_FALSE(unanswered.ok());
  WaitForStoredAt(nodes_[0].url(), topic, 0);
  const CommandResult shown = Topic(nodes_[0].url(), {"show", topic});
  ASSERT_EQ(nlohmann::json::parse(shown.out)["queues"][0].value("end_offset", 0), 2)
      << "g1 did not store the send it got while stopped: " << shown.out;

  ASSERT_EQ(Move(nodes_[1].url(), topic, 0, "g2").exit_code, 0);
  // Once g1 refuses queue 0, a send makes the producer ask the route again.
  auto g1 = net::Connection::Open({.broker = nodes_[0].url()});
  ASSERT_TRUE(g1.ok());
  int n = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto reply = SendOnce(**g1, topic, key0, "probe-" + std::to_string(n++));
        return !reply.ok() && reply.status().code() == StatusCode::kWrongGroup;
      },
      30s))
      << "g1 never saw the move";
  auto moved = producer.Send({.topic = topic, .key = key0, .body = "x", .id = "after-the-move"});
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_FALSE(moved->duplicate);

  auto resent = producer.Send({.topic = topic, .key = key0, .body = "x", .id = "unanswered"});
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  EXPECT_TRUE(resent->duplicate) << "stored again in g2";
  producer.Shutdown();
  const CommandResult at_g2 = Topic(nodes_[1].url(), {"show", topic});
  EXPECT_EQ(nlohmann::json::parse(at_g2.out)["queues"][0].value("end_offset", 0), 1) << at_g2.out;
}

// A keyless send to g1 that got no answer (g1 stopped; it stores the
// message once it runs again) is resent to a queue of g1, which answers
// it as a duplicate, and never to one of g2, which would store it too:
// keyless messages otherwise turn round the queues, and queue 0 is g2's.
TEST_F(TxmqdQueueMove, AKeylessResendOfAnUnansweredSendStaysWithTheGroupItWentTo) {
  StartTwoGroups({"--lease-ttl", "15"});
  const std::string topic = TopicPlacedAs("keyless-", {"g2", "g1"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  const CommandResult created = Topic(nodes_[1].url(), {"create", topic, "--queues", "2"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  Producer producer({.broker = nodes_[1].url(), .send_timeout = 1s});
  ASSERT_TRUE(producer.Start().ok());
  // Queues 0, 1, 0 in turn: g1's connection is open, and the next keyless
  // send goes to queue 1.
  for (uint32_t i = 0; i < 3; ++i) {
    auto warm = producer.Send({.topic = topic, .body = "x", .id = "warm-" + std::to_string(i)});
    ASSERT_TRUE(warm.ok()) << warm.status().ToString();
    ASSERT_EQ(warm->queue, i % 2);
  }

  nodes_[0].process->Signal(SIGSTOP);
  auto unanswered = producer.Send({.topic = topic, .body = "x", .id = "unanswered"});  // queue 1
  nodes_[0].process->Signal(SIGCONT);
  EXPECT_FALSE(unanswered.ok()) << "answered while g1 was stopped: stored in queue "
                                << unanswered->queue;
  WaitForStoredAt(nodes_[0].url(), topic, 1);

  auto resent = producer.Send({.topic = topic, .body = "x", .id = "unanswered"});
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  EXPECT_TRUE(resent->duplicate);
  EXPECT_EQ(resent->queue, 1u);
  producer.Shutdown();
  auto end_of = [&](const Node& n, uint32_t queue) {
    const CommandResult shown = Topic(n.url(), {"show", topic});
    auto json = nlohmann::json::parse(shown.out, nullptr, false);
    return json.is_discarded() ? -1 : json["queues"][queue].value("end_offset", -1);
  };
  EXPECT_EQ(end_of(nodes_[1], 0), 2) << "g2 stored the message g1 holds";
  EXPECT_EQ(end_of(nodes_[0], 1), 2);
}

}  // namespace
}  // namespace txmq::testing
