// A replicated group under network partitions, on real processes: every
// replication link (each direction of each pair of nodes) and each node's
// link to etcd runs through a TcpProxy the test can blackhole. What is
// promised: a follower cut off leaves the ISR, writes go on, and it comes
// back once healed; a stale follower never leads; a leader cut off from
// its group and etcd, while clients still reach it, acknowledges nothing
// once it is cut off, and nothing acknowledged is lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/cluster/txmqd_group_fixture.h"
#include "tests/testutil/tcp_proxy.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Node;
using testing::TcpProxy;

// Sends keyed messages to `url` from a thread, about a hundred a second,
// until stopped; the ids the broker acknowledged.
class Load {
 public:
  Load(const std::string& url, const std::string& prefix) {
    thread_ = std::thread([this, url, prefix] {
      Producer producer({.broker = url, .send_timeout = 2s, .retries = 0});
      if (!producer.Start().ok()) return;
      for (int i = 0; !stop_; ++i) {
        const std::string id = prefix + "-" + std::to_string(i);
        if (producer.Send({.topic = "orders", .key = std::to_string(i % 5), .body = "x", .id = id})
                .ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          acked_.push_back(id);
        }
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  std::vector<std::string> Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  size_t acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  ~Load() { Stop(); }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> acked_;
  std::thread thread_;
};

class TxmqdPartition : public testing::TxmqdGroupFixture {
 protected:
  // Nodes as MakeNodes makes them, each link behind a proxy.
  void MakeProxiedNodes(int n) {
    MakeNodes(n);
    const std::string etcd = etcd_->endpoint();
    const int etcd_port = std::stoi(etcd.substr(etcd.rfind(':') + 1));
    for (const Node& from : nodes_) {
      etcd_links_[from.name] = TcpProxy::Start(etcd_port);
      ASSERT_NE(etcd_links_[from.name], nullptr);
      for (const Node& to : nodes_) {
        if (from.name == to.name) continue;
        auto& link = links_[{from.name, to.name}];
        link = TcpProxy::Start(to.replication_port);
        ASSERT_NE(link, nullptr);
      }
    }
  }

  std::string ReplicationEndpoint(const Node& from, const Node& to) const override {
    return "tcp://127.0.0.1:" + std::to_string(links_.at({from.name, to.name})->port());
  }
  std::string EtcdEndpoint(const Node& n) const override {
    return "http://127.0.0.1:" + std::to_string(etcd_links_.at(n.name)->port());
  }

  // Cuts `node` off from every other node, both ways, and with `etcd` from
  // etcd too; Reconnect heals the same links.
  void Isolate(const std::string& node, bool etcd) { Cut(node, etcd, true); }
  void Reconnect(const std::string& node) { Cut(node, true, false); }

  bool InIsr(const std::string& node) {
    const auto isr = Isr();
    return std::find(isr.begin(), isr.end(), node) != isr.end();
  }
  bool Serves(const Node& n) const { return n.process && std::filesystem::exists(Ready(n)); }
  Node* Other(const Node* a, const Node* b = nullptr) {
    for (Node& n : nodes_) {
      if (&n != a && &n != b) return &n;
    }
    return nullptr;
  }

 private:
  void Cut(const std::string& node, bool etcd, bool cut) {
    for (auto& [link, proxy] : links_) {
      if (link.first != node && link.second != node) continue;
      cut ? proxy->Blackhole() : proxy->Heal();
    }
    if (etcd) cut ? etcd_links_[node]->Blackhole() : etcd_links_[node]->Heal();
  }

  std::map<std::pair<std::string, std::string>, std::unique_ptr<TcpProxy>> links_;
  std::map<std::string, std::unique_ptr<TcpProxy>> etcd_links_;
};

TEST_F(TxmqdPartition, AFollowerCutOffLeavesTheIsrAndAStaleOneNeverLeads) {
  ASSERT_NO_FATAL_FAILURE(MakeProxiedNodes(3));
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 40s)) << LogTails();
  Node* cut = Other(leader);
  std::vector<std::string> acked = SendAll(leader->url(), "all-in", 20);

  // Cut off, the follower is taken out of the ISR (it lacks what the load
  // writes) and writes go on.
  Load load(leader->url(), "load");
  Isolate(cut->name, false);
  ASSERT_TRUE(testing::WaitFor([&] { return !InIsr(cut->name) && Isr().size() == 2; }, 20s))
      << cut->name << " is still in the ISR; the leader's log:\n"
      << testing::ReadFile(dir_.Sub(leader->name + ".log"));
  const size_t before = load.acked();
  ASSERT_TRUE(testing::WaitFor([&] { return load.acked() > before + 20; }, 10s))
      << "writes stopped with one follower cut off";

  // Healed, it catches up and is taken back.
  Reconnect(cut->name);
  ASSERT_TRUE(testing::WaitFor([&] { return InIsr(cut->name); }, 30s))
      << cut->name << " did not rejoin; its log:\n"
      << testing::ReadFile(dir_.Sub(cut->name + ".log"));

  // Cut off again and behind: when the leader dies, the in-sync follower
  // leads, never the stale one. With --min-isr 2 and only the stale one
  // to replicate to, the group is unavailable, not lossy, until the stale
  // one is back and has caught up from the new leader.
  Isolate(cut->name, false);
  ASSERT_TRUE(testing::WaitFor([&] { return !InIsr(cut->name); }, 20s));
  for (const std::string& id : load.Stop()) acked.push_back(id);
  Node* in_sync = Other(leader, cut);
  Kill9(*leader);
  std::this_thread::sleep_for(6s);  // two lease TTLs: an election has run
  EXPECT_FALSE(Serves(*in_sync)) << "serving with one node of a --min-isr 2 group";
  EXPECT_FALSE(Serves(*cut)) << "the stale follower leads";
  Reconnect(cut->name);
  ASSERT_TRUE(testing::WaitFor([&] { return Serves(*in_sync); }, 30s))
      << "the in-sync follower did not take over; its log:\n"
      << testing::ReadFile(dir_.Sub(in_sync->name + ".log"));
  EXPECT_FALSE(Serves(*cut)) << "the stale follower leads";
  auto delivered = testing::DrainTopic(in_sync->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  }
  EXPECT_FALSE(Serves(*cut)) << "the stale follower leads";
}

TEST_F(TxmqdPartition, ALeaderCutOffFromItsGroupAndEtcdAcknowledgesNothingMore) {
  ASSERT_NO_FATAL_FAILURE(MakeProxiedNodes(3));
  for (Node& n : nodes_) StartNode(n, 2);
  Node* old = WaitForLeader();
  ASSERT_NE(old, nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 40s)) << LogTails();
  std::vector<std::string> acked = SendAll(old->url(), "before", 50);
  ASSERT_FALSE(HasFailure());

  // Clients still reach the old leader; its group and etcd do not.
  Isolate(old->name, true);
  const auto cut_at = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> zombie_acks;
  std::thread client([&] {
    Producer producer({.broker = old->url(), .send_timeout = 1s, .retries = 0});
    if (!producer.Start().ok()) return;
    for (int i = 0; !stop; ++i) {
      const std::string id = "cut-" + std::to_string(i);
      auto sent = producer.Send({.topic = "orders", .key = "k", .body = "x", .id = id});
      if (sent.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        zombie_acks.push_back(id);
      }
    }
  });
  // The others elect a leader in a new epoch and serve.
  Node* next = nullptr;
  testing::WaitFor(
      [&] {
        for (Node& n : nodes_) {
          if (&n != old && Serves(n)) next = &n;
        }
        return next != nullptr;
      },
      30s);
  std::this_thread::sleep_for(2s);  // the old leader meets clients meanwhile
  stop = true;
  client.join();
  if (next == nullptr) {
    for (const Node& n : nodes_) {
      ADD_FAILURE() << n.name << "'s log:\n" << testing::ReadFile(dir_.Sub(n.name + ".log"));
    }
  }
  ASSERT_NE(next, nullptr) << "no new leader while the old one was cut off";
  EXPECT_TRUE(zombie_acks.empty())
      << zombie_acks.size() << " sends acknowledged by the cut-off leader, the first "
      << zombie_acks.front();
  EXPECT_GT(std::chrono::steady_clock::now() - cut_at, 1s);

  // Healed: nothing acknowledged before the cut is lost.
  Reconnect(old->name);
  for (const std::string& id : SendAll(next->url(), "after", 20)) acked.push_back(id);
  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  }
}

}  // namespace
}  // namespace txmq
