// A cluster of two broker groups around one real etcd: a topic's queues
// are placed on both, each message is stored by the group serving its
// key's queue and by no other, a producer given the cluster routes there
// by itself, and a broker asked to store a message of another group's
// queue refuses, naming that group's leader.
//
// Each group is one node (--min-isr 1): placement does not care how a
// group replicates, and two single-node groups keep the test small.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <tuple>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/placement.h"
#include "broker/src/cluster/placement_directory.h"
#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/codec.h"
#include "protocol/src/connection.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/cluster/two_groups_fixture.h"
#include "txmq/names.h"

namespace txmq::testing {
namespace {

using namespace std::chrono_literals;

class TxmqdPlacement : public TwoGroupsFixture {};

// How many queues each consumer owns over both groups, from `txmqctl
// --json group show` asked at g1 (which shows g2's view too). A consumer
// is shown by its id at its home group and as "ID.G" at the other
// (GroupClientId); each group's members name the instance behind each id.
// Every queue must be owned, and only at the group that serves it.
std::map<std::string, int> QueuesPerConsumer(const nlohmann::json& shown,
                                             const cluster::TopicPlacement& placement) {
  std::map<std::string, int> held;
  std::vector<std::pair<std::string, nlohmann::json>> views{{"g1", shown}};
  for (const auto& other : shown["other_broker_groups"]) {
    views.emplace_back(other["broker_group"].get<std::string>(), other["group"]);
  }
  for (const auto& [broker_group, view] : views) {
    std::map<std::string, std::string> instance_of;  // client id -> instance
    for (const auto& m : view["members"]) {
      instance_of[m["client_id"].get<std::string>()] = m["instance"].get<std::string>();
    }
    for (const auto& q : view["queues"]) {
      const std::string owner = q["owner"].get<std::string>();
      const bool served = placement.groups[q["queue"].get<uint32_t>()] == broker_group;
      EXPECT_EQ(owner.empty(), !served) << broker_group << ": " << q;
      if (!served) continue;
      EXPECT_TRUE(instance_of.contains(owner)) << broker_group << ": owner " << owner;
      EXPECT_EQ(instance_of[owner], owner.substr(0, owner.find('.'))) << broker_group;
      ++held[instance_of[owner]];
    }
  }
  return held;
}

TEST_F(TxmqdPlacement, AProducerGivenTheClusterStoresEachMessageInTheGroupOfItsQueue) {
  StartTwoGroups();
  // The bootstrap list names only g1's node: the producer learns g2's
  // leader from the route.
  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  constexpr int kMessages = 120;
  std::map<std::string, uint32_t> queue_of;
  std::vector<std::future<Result<SendResult>>> sends;
  for (int i = 0; i < kMessages; ++i) {
    sends.push_back(producer.SendAsync({.topic = "orders",
                                        .key = "key-" + std::to_string(i % 30),
                                        .body = "m" + std::to_string(i),
                                        .id = "id-" + std::to_string(i)}));
  }
  for (int i = 0; i < kMessages; ++i) {
    auto r = sends[i].get();
    ASSERT_TRUE(r.ok()) << "id-" << i << ": " << r.status().ToString();
    queue_of["id-" + std::to_string(i)] = r->queue;
  }
  const cluster::TopicPlacement placement = StoredPlacement("orders");
  ASSERT_EQ(placement.queue_count, 4u);  // txmqd's default
  ASSERT_FALSE(placement.QueuesOf("g1").empty());
  ASSERT_FALSE(placement.QueuesOf("g2").empty());

  // Each group's broker holds exactly the messages of its queues.
  std::set<std::string> seen;
  for (const auto& [node, group] : {std::pair{&nodes_[0], "g1"}, std::pair{&nodes_[1], "g2"}}) {
    size_t expected = 0;
    for (const auto& [id, q] : queue_of) expected += placement.groups[q] == group ? 1 : 0;
    ASSERT_GT(expected, 0u) << "the keys should reach both groups";
    auto delivered = StoredAt(node->url(), "orders");
    EXPECT_EQ(delivered.size(), expected) << group;
    for (const Received& m : delivered) {
      EXPECT_EQ(placement.groups[m.queue], group) << m.id << " stored in queue " << m.queue;
      EXPECT_EQ(queue_of[m.id], m.queue) << m.id;
      EXPECT_TRUE(seen.insert(m.id).second) << m.id << " delivered by both groups";
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMessages));
}

// A topic of one queue lives wholly on one group. Placed on the group the
// producer's bootstrap node is not in, its messages must still reach it:
// "served by one group" is not "served by the broker I am connected to".
TEST_F(TxmqdPlacement, ATopicWhollyOnAnotherGroupIsSentToThatGroup) {
  MakeNodes(2);
  StartAlone(nodes_[0], "g1", {"--queues", "1"});
  StartAlone(nodes_[1], "g2", {"--queues", "1"});
  WaitReady(nodes_[0]);
  WaitReady(nodes_[1]);
  const std::string topic = TopicWhollyOn("g2", {"g1", "g2"});
  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  for (const std::string key : {"a", "b", ""}) {
    auto sent = producer.Send({.topic = topic, .key = key, .body = "x", .id = topic + key});
    ASSERT_TRUE(sent.ok()) << "key '" << key << "': " << sent.status().ToString();
  }
  EXPECT_EQ(StoredPlacement(topic).groups, std::vector<std::string>{"g2"});
  // A consumer given g1's node reads them from g2.
  EXPECT_EQ(Consume(nodes_[0].url(), {topic}, 3).size(), 3u);
}

// A producer destroyed while a send's callback runs on another group's
// connection: that completion held the router, whose destruction then
// fell to that connection's own I/O thread, which waited for itself for
// ever (and every call pending on it never completed). The producer now
// closes the group connections itself, from the thread that destroys it.
// Threads of this process named `name`.
int ThreadsNamed(const std::string& name) {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string got;
    std::getline(comm, got);
    n += got == name;
  }
  return n;
}

TEST_F(TxmqdPlacement, AProducerDestroyedWhileACallbackOfAnotherGroupRunsStops) {
  MakeNodes(2);
  StartAlone(nodes_[0], "g1", {"--queues", "1"});
  StartAlone(nodes_[1], "g2", {"--queues", "1"});
  WaitReady(nodes_[0]);
  WaitReady(nodes_[1]);
  const std::string topic = TopicWhollyOn("g2", {"g1", "g2"});
  const int io_threads = ThreadsNamed("txmq-io");
  auto producer =
      std::make_unique<Producer>(ProducerOptions{.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer->Start().ok());
  ASSERT_TRUE(producer->Send({.topic = topic, .body = "warm"}).ok());  // g2's connection is open
  std::promise<void> inside;
  producer->SendAsync({.topic = topic, .body = "slow"}, [&](Result<SendResult> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    inside.set_value();
    std::this_thread::sleep_for(300ms);  // on g2's connection's I/O thread
  });
  ASSERT_EQ(inside.get_future().wait_for(10s), std::future_status::ready);
  auto destroyed = std::make_shared<std::atomic<bool>>(false);
  std::thread([p = std::move(producer), destroyed]() mutable {
    p.reset();
    destroyed->store(true);
  }).detach();
  // Long after the callback returned: a hang is for ever.
  EXPECT_TRUE(WaitFor([&] { return destroyed->load(); }, 10s))
      << "destroying the producer hung on another group's connection";
  // And every thread of the producer ended: the last of them must not be
  // left waiting for itself.
  EXPECT_TRUE(WaitFor([&] { return ThreadsNamed("txmq-io") == io_threads; }, 5s))
      << ThreadsNamed("txmq-io") - io_threads << " I/O threads of the producer still run";
}

// One consumer given one node reads a topic spread over two groups, also
// when it subscribed before the topic existed; its acks reach the group
// each message came from, so nothing is delivered again.
TEST_F(TxmqdPlacement, AConsumerGivenOneNodeReadsTheQueuesOfEveryGroup) {
  StartTwoGroups();
  std::mutex mu;
  std::vector<Received> got;
  Consumer consumer({.broker = nodes_[0].url(), .group = "readers", .long_poll = 500ms});
  ASSERT_TRUE(consumer
                  .Subscribe("orders",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got.push_back(m);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(consumer.Start().ok());

  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  constexpr int kMessages = 120;
  std::vector<std::future<Result<SendResult>>> sends;
  for (int i = 0; i < kMessages; ++i) {
    sends.push_back(producer.SendAsync({.topic = "orders",
                                        .key = "key-" + std::to_string(i % 30),
                                        .body = std::to_string(i),
                                        .id = "id-" + std::to_string(i)}));
  }
  for (auto& send : sends) ASSERT_TRUE(send.get().ok());
  const cluster::TopicPlacement placement = StoredPlacement("orders");
  ASSERT_FALSE(placement.QueuesOf("g1").empty());
  ASSERT_FALSE(placement.QueuesOf("g2").empty());

  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return got.size() >= static_cast<size_t>(kMessages);
      },
      30s))
      << "received " << got.size() << " of " << kMessages;
  consumer.Shutdown();
  std::set<std::string> ids;
  std::map<std::string, int> last_of_key;
  std::set<std::string> groups_read;
  for (const Received& m : got) {
    EXPECT_TRUE(ids.insert(m.id).second) << m.id << " delivered twice";
    const int i = std::stoi(m.body);
    EXPECT_LT(last_of_key.try_emplace(m.key, -1).first->second, i) << m.key << " out of order";
    last_of_key[m.key] = i;
    groups_read.insert(placement.groups[m.queue]);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(groups_read, (std::set<std::string>{"g1", "g2"}));
  // Acknowledged where they were leased: neither group has any for "readers".
  for (const Node& n : nodes_) {
    EXPECT_TRUE(DrainDeliveries(n.url(), "orders", 0, 500ms, 5s, "readers").empty()) << n.name;
  }
}

// Two consumers of one group, given different nodes: every broker group
// shares its own queues between them (queue_owners.h), so each reads from
// both groups, and a key's messages never run on both at once nor out of
// order, also while the second one joins and queues change hands.
TEST_F(TxmqdPlacement, TwoConsumersShareTheQueuesOfEveryGroup) {
  StartTwoGroups();
  std::mutex mu;
  std::vector<std::pair<int, Received>> runs;  // (consumer, message) in start order
  std::map<std::string, int> running;          // by key
  int overlaps = 0;
  auto start = [&](int who, const std::string& url) {
    auto c = std::make_unique<Consumer>(
        ConsumerOptions{.broker = url, .group = "readers", .long_poll = 500ms});
    EXPECT_TRUE(c->Subscribe("orders", [&, who](const Received& m) {
                   {
                     std::lock_guard<std::mutex> lock(mu);
                     runs.emplace_back(who, m);
                     if (running[m.key]++ > 0) ++overlaps;
                   }
                   std::this_thread::sleep_for(2ms);
                   std::lock_guard<std::mutex> lock(mu);
                   --running[m.key];
                   return ConsumeResult::Success();
                 }).ok());
    EXPECT_TRUE(c->Start().ok());
    return c;
  };
  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  auto first = start(0, nodes_[0].url());
  // Paced over about 4 s: the second consumer joins both groups meanwhile
  // (its route to the other group is asked within 2 s).
  constexpr int kMessages = 400;
  std::unique_ptr<Consumer> second;
  for (int i = 0; i < kMessages; ++i) {
    if (i == 40) second = start(1, nodes_[1].url());
    auto r = producer.Send({.topic = "orders",
                            .key = "key-" + std::to_string(i % 24),
                            .body = std::to_string(i),
                            .id = "id-" + std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::this_thread::sleep_for(10ms);
  }
  const cluster::TopicPlacement placement = StoredPlacement("orders");
  ASSERT_EQ(placement.QueuesOf("g1").size(), 2u);
  ASSERT_EQ(placement.QueuesOf("g2").size(), 2u);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return runs.size() >= static_cast<size_t>(kMessages);
      },
      30s))
      << "received " << runs.size() << " of " << kMessages;
  const std::set<std::string> both{"g1", "g2"};
  // Operators see it from one node: every broker group's view, each queue
  // owned by one of the two consumers, each consumer two of the four.
  auto shown = RunCommand(
      {BinPath("txmqctl"), "--broker", nodes_[0].url(), "--json", "group", "show", "readers"}, "",
      20s);
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const auto j = nlohmann::json::parse(shown.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << shown.out;
  EXPECT_EQ(j["broker_group"], "g1") << shown.out;
  ASSERT_EQ(j["other_broker_groups"].size(), 1u) << shown.out;
  EXPECT_EQ(j["other_broker_groups"][0]["broker_group"], "g2") << shown.out;
  const std::map<std::string, int> held = QueuesPerConsumer(j, placement);
  ASSERT_EQ(held.size(), 2u) << shown.out;
  for (const auto& [consumer, queues] : held) EXPECT_EQ(queues, 2) << consumer << ": " << shown.out;
  auto listed = RunCommand(
      {BinPath("txmqctl"), "--broker", nodes_[1].url(), "--json", "group", "list"}, "", 20s);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto list = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(list.is_object()) << listed.out;
  std::set<std::string> listed_in;
  for (const auto& g : list["groups"]) {
    if (g["name"] == "readers") listed_in.insert(g["broker_group"].get<std::string>());
  }
  EXPECT_EQ(listed_in, both) << "one row per broker group: " << listed.out;
  auto text = RunCommand(
      {BinPath("txmqctl"), "--broker", nodes_[0].url(), "group", "show", "readers"}, "", 20s);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("broker group g1:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("broker group g2:"), std::string::npos) << text.out;
  first->Shutdown();
  second->Shutdown();
  EXPECT_EQ(overlaps, 0) << "a key ran on both consumers at once";
  std::map<std::string, int> last_of_key;
  std::set<std::string> ids;
  std::set<int> ran_late;  // consumers that ran messages of the last half
  for (size_t n = 0; n < runs.size(); ++n) {
    const auto& [who, m] = runs[n];
    EXPECT_TRUE(ids.insert(m.id).second) << m.id << " ran twice";
    const int i = std::stoi(m.body);
    EXPECT_LT(last_of_key.try_emplace(m.key, -1).first->second, i) << m.key << " out of order";
    last_of_key[m.key] = i;
    if (i >= kMessages / 2) ran_late.insert(who);
  }
  EXPECT_EQ(ran_late, (std::set<int>{0, 1})) << "both consumers had work once both had joined";
}

// Four consumers, four queues, two per broker group. Two consumers come
// first and own everything, two of each group's queues each; then two
// more join. Sharing each group's queues on its own, both groups kept
// their two owners (the sticky rule moves nothing while no member holds
// more than its share there), and the newcomers stayed idle with two
// queues each held by the first two. Shared as one topic, every consumer
// owns exactly one queue.
TEST_F(TxmqdPlacement, ConsumersShareTheWholeTopicAcrossBrokerGroups) {
  StartTwoGroups();
  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "orders", .key = "k", .body = "x"}).ok());
  const cluster::TopicPlacement placement = StoredPlacement("orders");
  ASSERT_EQ(placement.QueuesOf("g1").size(), 2u);
  ASSERT_EQ(placement.QueuesOf("g2").size(), 2u);
  // A group holds its part of a topic from its first message on.
  ASSERT_TRUE(
      producer.Send({.topic = "orders", .key = KeyServedBy(placement, "g2"), .body = "y"}).ok());
  std::vector<std::unique_ptr<Consumer>> consumers;
  const auto start = [&] {
    // Home at g1: each consumer reaches g2 through its route.
    auto c = std::make_unique<Consumer>(
        ConsumerOptions{.broker = nodes_[0].url(),
                        .group = "readers",
                        .long_poll = 500ms,
                        .client_id = "reader-" + std::to_string(consumers.size())});
    ASSERT_TRUE(
        c->Subscribe("orders", [](const Received&) { return ConsumeResult::Success(); }).ok());
    ASSERT_TRUE(c->Start().ok());
    consumers.push_back(std::move(c));
  };
  std::string last;  // txmqctl's last answer
  std::map<std::string, int> held;
  // Owners per consumer, every queue owned, `members` at each group.
  const auto shared_among = [&](size_t members) {
    auto shown = RunCommand(
        {BinPath("txmqctl"), "--broker", nodes_[0].url(), "--json", "group", "show", "readers"}, "",
        20s);
    last = shown.exit_code == 0 ? shown.out : shown.err;
    const auto j = nlohmann::json::parse(shown.out, nullptr, false);
    if (shown.exit_code != 0 || !j.is_object() || j["other_broker_groups"].size() != 1) {
      return false;
    }
    held.clear();
    int owned = 0;
    for (const auto& view : {j, j["other_broker_groups"][0]["group"]}) {
      if (view["members"].size() != members) return false;
      for (const auto& q : view["queues"]) {
        const std::string owner = q["owner"].get<std::string>();
        if (owner.empty()) continue;
        ++owned;
        ++held[owner.substr(0, owner.find('.'))];
      }
    }
    return owned == 4;
  };
  start();
  start();
  ASSERT_TRUE(WaitFor([&] { return shared_among(2); }, 20s)) << last;
  start();
  start();
  EXPECT_TRUE(WaitFor([&] { return shared_among(4) && held.size() == 4; }, 20s))
      << "not every consumer owns a queue: " << last;
  const auto j = nlohmann::json::parse(last, nullptr, false);
  ASSERT_TRUE(j.is_object()) << last;
  held = QueuesPerConsumer(j, placement);
  ASSERT_EQ(held.size(), 4u) << last;
  for (const auto& [consumer, queues] : held) EXPECT_EQ(queues, 1) << consumer << ": " << last;
  // In words: g2 knows the consumers as "reader-N.g2", and says whose.
  const CommandResult text = RunCommand(
      {BinPath("txmqctl"), "--broker", nodes_[0].url(), "group", "show", "readers"}, "", 20s);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Has(text.out, "INSTANCE")) << text.out;
  EXPECT_TRUE(Has(text.out, "reader-2.g2  reader-2 ")) << text.out;
  for (auto& c : consumers) c->Shutdown();
}

// --group-weight: g2 of weight 3 beside g1 of weight 1 gets three
// quarters of a new topic's 8 queues (the bounded load makes it exact).
TEST_F(TxmqdPlacement, AGroupsWeightGivesItThatShareOfANewTopicsQueues) {
  MakeNodes(2);
  StartAlone(nodes_[0], "g1", {"--queues", "8"});
  StartAlone(nodes_[1], "g2", {"--queues", "8", "--group-weight", "3"});
  WaitReady(nodes_[0]);
  WaitReady(nodes_[1]);
  auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
  ASSERT_TRUE(etcd.ok());
  auto stored_weight = [&](const std::string& group) {
    auto read = (*etcd)->Get(cluster::GroupWeightKey(cluster_, group));
    return read.ok() && !read->kvs.empty() ? read->kvs.front().value : std::string();
  };
  ASSERT_TRUE(WaitFor([&] { return stored_weight("g2") == "3"; }, 10s)) << stored_weight("g2");
  EXPECT_EQ(stored_weight("g1"), "1");

  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "weighed", .key = "k", .body = "x"}).ok());
  const cluster::TopicPlacement placement = StoredPlacement("weighed");
  ASSERT_EQ(placement.queue_count, 8u);
  EXPECT_EQ(placement.QueuesOf("g1").size(), 2u);
  EXPECT_EQ(placement.QueuesOf("g2").size(), 6u);
}

TEST_F(TxmqdPlacement, ABrokerRefusesAMessageOfAnotherGroupsQueueNamingItsLeader) {
  StartTwoGroups();
  // Place the topic through g1's broker.
  {
    Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
    ASSERT_TRUE(producer.Start().ok());
    ASSERT_TRUE(producer.Send({.topic = "orders", .key = "first", .body = "x"}).ok());
  }
  const cluster::TopicPlacement placement = StoredPlacement("orders");
  const std::string g1_key = KeyServedBy(placement, "g1");

  // A raw send to g2's broker with a key of g1's queue.
  auto connection = net::Connection::Open({.broker = nodes_[1].url(), .follow_leader = true});
  ASSERT_TRUE(connection.ok());
  auto request = (*connection)->NewRequest();
  auto m = request.envelope().initSend().initMessage();
  m.setId("raw-1");
  m.setTopic("orders");
  m.setKey(g1_key);
  m.setBody(kj::StringPtr("x").asBytes());
  auto reply = (*connection)->CallSync(std::move(request), 10s);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kWrongGroup) << reply.status().ToString();
  EXPECT_NE(reply.status().message().find("broker group g1"), std::string::npos)
      << reply.status().message();

  // The route names both groups' leaders.
  auto ask = (*connection)->NewRequest();
  ask.envelope().initRoute().setTopic("orders");
  auto route = (*connection)->CallSync(std::move(ask), 10s);
  ASSERT_TRUE(route.ok()) << route.status().ToString();
  auto queues = route->envelope().getRouteOk().getQueues();
  ASSERT_EQ(queues.size(), placement.queue_count);
  for (uint32_t q = 0; q < queues.size(); ++q) {
    EXPECT_EQ(wire::ToString(queues[q].getGroup()), placement.groups[q]);
    EXPECT_EQ(wire::ToString(queues[q].getLeaderUrl()),
              placement.groups[q] == "g1" ? nodes_[0].url() : nodes_[1].url());
  }
  // Topic show on either group's broker names each queue's own group and
  // that group's leader (one message each, so both hold the topic).
  {
    Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
    ASSERT_TRUE(producer.Start().ok());
    ASSERT_TRUE(producer.Send({.topic = "orders", .key = g1_key, .body = "y"}).ok());
    ASSERT_TRUE(
        producer.Send({.topic = "orders", .key = KeyServedBy(placement, "g2"), .body = "z"}).ok());
  }
  for (const Node& n : nodes_) {
    auto at = net::Connection::Open({.broker = n.url()});
    ASSERT_TRUE(at.ok());
    auto show = (*at)->NewRequest();
    show.envelope().setTopicShow("orders");
    auto info = (*at)->CallSync(std::move(show), 10s);
    ASSERT_TRUE(info.ok()) << n.name << ": " << info.status().ToString();
    auto shown = info->envelope().getTopicShowOk().getQueues();
    ASSERT_EQ(shown.size(), placement.queue_count);
    for (uint32_t q = 0; q < shown.size(); ++q) {
      EXPECT_EQ(wire::ToString(shown[q].getGroup()), placement.groups[q]) << n.name << " " << q;
      EXPECT_EQ(wire::ToString(shown[q].getLeader()), placement.groups[q] == "g1" ? "a" : "b");
    }
  }
  // Nothing of the refused send was stored on g2.
  auto delivered = DrainDeliveries(nodes_[1].url(), "orders", 0, 500ms, 5s);
  for (const Received& r : delivered) EXPECT_NE(r.id, "raw-1");
}

// Cluster status lists every group of the cluster, whichever node is
// asked, and txmqctl cluster status shows each group from its own leader.
TEST_F(TxmqdPlacement, ClusterStatusShowsEveryGroupFromItsOwnLeader) {
  StartTwoGroups();
  // Each node learns the other group from etcd in its own time; txmqctl
  // below asks node a, so both must have listed both groups first.
  for (const Node& n : nodes_) {
    auto connection = net::Connection::Open({.broker = n.url()});
    ASSERT_TRUE(connection.ok());
    ASSERT_TRUE(WaitFor(
        [&] {
          auto request = (*connection)->NewRequest();
          request.envelope().setClusterStatus();
          auto reply = (*connection)->CallSync(std::move(request), 10s);
          if (!reply.ok()) return false;
          auto view = wire::ReadClusterStatus(reply->envelope().getClusterStatusOk());
          return view.groups == std::vector<wire::GroupLeaderView>{
                                    {"g1", "a", nodes_[0].url(), 1, {nodes_[0].url()}},
                                    {"g2", "b", nodes_[1].url(), 1, {nodes_[1].url()}}};
        },
        10s))
        << "node " << n.name << " never listed both groups with their leaders";
  }

  auto run = RunCommand({BinPath("txmqctl"), "--broker", nodes_[0].url(), "--timeout", "5s",
                         "--json", "cluster", "status"},
                        "", 20s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << run.out;
  ASSERT_EQ(j["groups"].size(), 2u) << run.out;
  for (const auto& [index, group, leader, url] :
       {std::tuple{0, "g1", "a", nodes_[0].url()}, std::tuple{1, "g2", "b", nodes_[1].url()}}) {
    const auto& g = j["groups"][index];
    EXPECT_EQ(g["group"], group) << run.out;
    EXPECT_EQ(g["leader"], leader) << run.out;
    EXPECT_EQ(g["view"], "leader") << run.out;
    EXPECT_EQ(g["asked"], url) << run.out;
    EXPECT_EQ(g["replicas"].size(), 1u) << run.out;
  }
}

// Dead letters are the broker's own topic, kept by each group for
// itself: a consumer of them given one node reads every group's.
TEST_F(TxmqdPlacement, AConsumerOfDeadLettersReadsThemFromEveryGroup) {
  StartTwoGroups();
  Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "orders", .key = "first", .body = "x", .id = "x"}).ok());
  const std::string g2_key = KeyServedBy(StoredPlacement("orders"), "g2");
  ASSERT_TRUE(producer.Send({.topic = "orders", .key = g2_key, .body = "bad", .id = "bad"}).ok());

  // Group "failing" reads g2 directly and fails "bad" until it is a dead letter there.
  std::atomic<int> failures{0};
  Consumer failing({.broker = nodes_[1].url(),
                    .group = "failing",
                    .long_poll = 500ms,
                    .max_reconsume_times = 1});
  ASSERT_TRUE(failing
                  .Subscribe("orders",
                             [&](const Received& m) {
                               if (m.id != "bad") return ConsumeResult::Success();
                               ++failures;
                               return ConsumeResult::RetryLater(10ms);
                             })
                  .ok());
  ASSERT_TRUE(failing.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return failures.load() >= 2; }, 20s)) << failures.load();
  failing.Shutdown();

  auto got = Consume(nodes_[0].url(), {DeadLetterTopic("failing")}, 1);
  ASSERT_EQ(got.size(), 1u) << "the dead letter on g2 was not read through g1's node";
  EXPECT_EQ(got[0].id, "bad");
}

// g2 is two nodes: when its leader dies, a consumer given g1's node finds
// g2's new leader by itself and reads on; nothing g2 acknowledged is lost.
TEST_F(TxmqdPlacement, AConsumerFollowsAnotherGroupsNewLeader) {
  MakeNodes(3);  // a: g1; b and c: g2
  StartAlone(nodes_[0], "g1");
  for (int i : {1, 2}) {
    Node& n = nodes_[i];
    const Node& peer = nodes_[3 - i];
    std::vector<std::string> argv = NodeArgv(n, "g2");
    argv.insert(argv.end(), {"--peers", peer.name + "=" + peer.replication(), "--min-isr", "1",
                             "--lease-ttl", "2"});
    n.process = Process::Spawn(argv, dir_.Sub(n.name + ".log"));
    ASSERT_NE(n.process, nullptr);
  }
  WaitReady(nodes_[0]);
  auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
  ASSERT_TRUE(etcd.ok());
  auto g2_state = [&] {
    auto read = (*etcd)->Get(cluster::GroupStateKey(cluster_, "g2"));
    if (!read.ok() || read->kvs.empty()) return cluster::GroupState{};
    auto state = cluster::DecodeGroupState(read->kvs.front().value);
    return state.ok() ? *state : cluster::GroupState{};
  };
  // Both in g2's ISR: what its leader acknowledges, the other has too.
  ASSERT_TRUE(WaitFor([&] { return g2_state().isr.size() == 2; }, 30s)) << LogTails();

  Producer producer({.broker = nodes_[0].url(), .send_timeout = 5s});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "orders", .key = "first", .body = "x", .id = "x"}).ok());
  const cluster::TopicPlacement placement = StoredPlacement("orders");
  std::vector<std::string> g2_keys;
  for (int i = 0; i < 10000 && g2_keys.size() < 5; ++i) {
    const std::string key = "k" + std::to_string(i);
    if (placement.groups[StableHash(key) % placement.queue_count] == "g2") g2_keys.push_back(key);
  }
  ASSERT_EQ(g2_keys.size(), 5u);
  // Each acknowledged once, retried (same id) while g2 elects.
  auto send = [&](const std::string& id, const std::string& key) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (producer.Send({.topic = "orders", .key = key, .body = id, .id = id}).ok()) return true;
    }
    return false;
  };

  std::mutex mu;
  std::set<std::string> got;
  Consumer consumer({.broker = nodes_[0].url(), .group = "readers", .long_poll = 500ms});
  ASSERT_TRUE(consumer
                  .Subscribe("orders",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got.insert(m.id);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(consumer.Start().ok());
  auto received_all = [&](int n) {
    return WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          for (int i = 0; i < n; ++i) {
            if (got.count("m" + std::to_string(i)) == 0) return false;
          }
          return true;
        },
        40s);
  };
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(send("m" + std::to_string(i), g2_keys[i % 5]));
  }
  ASSERT_TRUE(received_all(10)) << "before the kill";

  const std::string old_leader = g2_state().leader;
  Node& dying = old_leader == "b" ? nodes_[1] : nodes_[2];
  Kill9(dying);
  for (int i = 10; i < 20; ++i) {
    ASSERT_TRUE(send("m" + std::to_string(i), g2_keys[i % 5])) << "m" << i << LogTails();
  }
  EXPECT_NE(g2_state().leader, old_leader);
  EXPECT_TRUE(received_all(20)) << "the consumer did not follow g2's new leader\n" << LogTails();
  consumer.Shutdown();
}

}  // namespace
}  // namespace txmq::testing
