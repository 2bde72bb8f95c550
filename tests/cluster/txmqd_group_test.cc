// txmqd as a replicated broker group, on real processes: a real etcd
// (etcd_server.h), txmqd nodes on free loopback ports with their own data
// directories, kill -9 as the failure. What is promised: an acknowledged
// send survives the loss of its leader, and with --min-isr 2 nothing is
// acknowledged that fewer than two nodes hold. Clients given the group's
// URLs find its leader by themselves, also after a failover, and a send
// retried across one is stored once.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "protocol/src/codec.h"
#include "tests/cluster/keyed_load.h"
#include "tests/cluster/op_history.h"
#include "tests/cluster/txmqd_group_fixture.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Node;
using testing::Process;

class TxmqdGroup : public testing::TxmqdGroupFixture {};

TEST_F(TxmqdGroup, KillNineTheLeaderLosesNoAcknowledgedMessage) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);

  std::vector<std::string> acked = SendAll(leader->url(), "first", 200);
  ASSERT_FALSE(HasFailure());

  Node* old = leader;
  Kill9(*old);
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next, old);
  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost in the failover";
  }

  // The old leader comes back (its log may hold a suffix nobody else has),
  // catches up and is taken into the ISR again; then the second leader dies.
  StartNode(*old, 2);
  for (const std::string& id : SendAll(next->url(), "second", 100)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 20s))
      << old->name << " did not rejoin the ISR; its log:\n"
      << testing::ReadFile(dir_.Sub(old->name + ".log"));
  Kill9(*next);
  Node* third = WaitForLeader(30s);
  ASSERT_NE(third, nullptr);
  delivered = testing::DrainTopic(third->url(), "orders", acked.size(), 300ms, 60s, "again");
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost in the second failover";
  }
}

TEST_F(TxmqdGroup, MinIsrTwoAcknowledgesNothingOneNodeHolds) {
  MakeNodes(2);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Producer producer({.broker = leader->url(), .send_timeout = 2s, .retries = 0});
  ASSERT_TRUE(producer.Start().ok());
  auto first = producer.Send({.topic = "t", .body = "both hold it", .id = "first"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  for (Node& n : nodes_) {
    if (&n != leader) Kill9(n);
  }
  auto second = producer.Send({.topic = "t", .body = "only one holds it", .id = "second"});
  EXPECT_FALSE(second.ok()) << "acknowledged with one node alive under --min-isr 2";
}

// A leader paused past its lease (SIGSTOP: a long GC pause, a frozen VM)
// wakes up deposed. Whatever it was asked meanwhile it must not
// acknowledge unless the new group holds it; it notices and exits (5), and
// every send any node acknowledged is read from the new leader.
TEST_F(TxmqdGroup, ALeaderPausedPastItsLeaseAcknowledgesNothingTheGroupLacks) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* old = WaitForLeader();
  ASSERT_NE(old, nullptr);
  std::vector<std::string> acked = SendAll(old->url(), "before", 50);
  ASSERT_FALSE(HasFailure());

  Producer stale({.broker = old->url(), .send_timeout = 15s, .retries = 0});
  ASSERT_TRUE(stale.Start().ok());
  old->process->Signal(SIGSTOP);
  // Sent to the paused leader: they wait in its socket.
  std::vector<std::string> stale_ids;
  std::vector<std::future<Result<SendResult>>> stale_sends;
  for (int i = 0; i < 20; ++i) {
    stale_ids.push_back("paused-" + std::to_string(i));
    stale_sends.push_back(
        stale.SendAsync({.topic = "orders", .body = "to a paused leader", .id = stale_ids.back()}));
  }
  Node* next = nullptr;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (Node& n : nodes_) {
          if (&n != old && std::filesystem::exists(Ready(n))) next = &n;
        }
        return next != nullptr;
      },
      30s))
      << "no other node took over from the paused leader";
  for (const std::string& id : SendAll(next->url(), "after", 50)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());

  old->process->Signal(SIGCONT);
  for (size_t i = 0; i < stale_sends.size(); ++i) {
    auto r = stale_sends[i].get();
    if (r.ok()) acked.push_back(stale_ids[i]);  // allowed only if the group has it (below)
  }
  auto exited = old->process->Wait(20s);
  ASSERT_TRUE(exited.has_value()) << "the deposed leader keeps running";
  EXPECT_EQ(*exited, 5) << testing::ReadFile(dir_.Sub(old->name + ".log"));
  old->process.reset();
  std::filesystem::remove(Ready(*old));

  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " is not in the new group";
  }
}

// A producer given the group's URLs does not wait for ZeroMQ's heartbeat
// to give up on a paused leader (SIGSTOP keeps its TCP connections open):
// a send left unanswered moves it to the next URL, and it is acknowledged
// by the next leader within the lease TTL and a few seconds. Woken up, the
// old leader acknowledges nothing the group lacks (it exits, deposed), and
// the record of every send checks out against the drained topic.
TEST_F(TxmqdGroup, AProducerGivenTheListLeavesAPausedLeader) {
  constexpr auto kLeaseTtl = 3s;  // txmqd's (ClusterNodeOptions::lease_ttl)
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* old = WaitForLeader();
  ASSERT_NE(old, nullptr);

  testing::OpHistory history;
  std::optional<std::chrono::steady_clock::time_point> first_ack;
  std::chrono::steady_clock::time_point paused;
  bool took_over = false;
  size_t acked_at_pause = 0;
  {
    testing::KeyedLoad load(
        {.brokers = AllUrls(), .per_second = 200, .send_timeout = 1500ms, .id_prefix = "p"},
        history);
    ASSERT_TRUE(testing::WaitFor([&] { return history.acknowledged() >= 50; }, 30s))
        << history.acknowledged() << " of 50 sends acknowledged before the pause\n"
        << LogTails();
    old->process->Signal(SIGSTOP);
    paused = std::chrono::steady_clock::now();
    acked_at_pause = history.acknowledged();
    took_over = testing::WaitFor(
        [&] {
          first_ack = history.FirstAckAfter(paused);
          return first_ack && history.acknowledged() >= acked_at_pause + 100;
        },
        30s);
    old->process->Signal(SIGCONT);
    load.Stop();
  }
  ASSERT_TRUE(first_ack.has_value()) << "no send acknowledged after the leader's pause\n"
                                     << LogTails();
  const double to_ack = std::chrono::duration<double>(*first_ack - paused).count();
  std::cout << "paused leader " << old->name << ": next ack after " << to_ack << " s\n";
  EXPECT_TRUE(took_over) << "acknowledgements did not go on after the pause\n" << LogTails();
  // The failover budget (TTL + 3 s) is TxmqdFailover's, as a p99 over its
  // cycles. Here it is one sample taken while other suites share the two
  // cores (6.3 s seen in a -j2 run), so the bound only catches a client
  // that waits out its heartbeat or its call timeouts one by one.
  EXPECT_LE(to_ack, std::chrono::duration<double>(kLeaseTtl + 6s).count()) << LogTails();

  auto exited = old->process->Wait(20s);
  ASSERT_TRUE(exited.has_value()) << "the deposed leader keeps running";
  EXPECT_EQ(*exited, 5) << testing::ReadFile(dir_.Sub(old->name + ".log"));
  old->process.reset();
  std::filesystem::remove(Ready(*old));

  const std::vector<testing::Op> ops = history.Snapshot();
  std::vector<testing::Delivery> deliveries;
  for (const Received& m : testing::DrainDeliveries(AllUrls(), "orders", acked_at_pause, 1s)) {
    deliveries.push_back({m.id, m.key, m.queue, m.offset});
  }
  const testing::HistoryVerdict v = testing::CheckHistory(ops, deliveries);
  std::string examples;
  for (const std::string& e : v.examples) examples += "\n  " + e;
  EXPECT_EQ(v.lost_acknowledged, 0u) << examples;
  EXPECT_EQ(v.unexpected, 0u) << examples;
  EXPECT_EQ(v.stored_twice, 0u) << examples;
  EXPECT_EQ(v.misplaced_acks, 0u) << examples;
  EXPECT_EQ(v.order_inversions, 0u) << examples;
}

// The raw answer of a node that does not lead, as any client (also one
// older than the code) gets it: NOT_LEADER with the leader's URL in its
// own field. Then clients pointed at followers only reach the leader.
TEST_F(TxmqdGroup, FollowersSendClientsToTheLeader) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<const Node*> followers;
  for (const Node& n : nodes_) {
    if (&n != leader) followers.push_back(&n);
  }

  for (const Node* f : followers) {
    zmq::context_t context(1);
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::rcvtimeo, 5000);
    dealer.connect(f->url());
    // A follower names the leader once it has read the group record (each
    // lease tick); until then it says NOT_LEADER with no URL.
    std::string named;
    Status status;
    for (int attempt = 0; attempt < 20 && named != leader->url(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(250ms);
      wire::OutFrame request(7 + attempt);
      request.envelope().setHeartbeat();
      ASSERT_TRUE(dealer.send(request.Encode(), zmq::send_flags::none));
      zmq::message_t reply;
      ASSERT_TRUE(dealer.recv(reply)) << f->name << " did not answer in 5 s";
      auto frame = wire::DecodeFrame(std::move(reply), {});
      ASSERT_TRUE(frame.ok()) << frame.status().ToString();
      status = wire::StatusOf(frame->envelope());
      EXPECT_EQ(status.code(), StatusCode::kNotLeader) << status.ToString();
      named = wire::LeaderUrlOf(frame->envelope());
    }
    EXPECT_EQ(named, leader->url()) << status.ToString();
    EXPECT_NE(status.message().find(leader->url()), std::string::npos) << status.ToString();
  }

  // A producer and a consumer that know only a follower are redirected.
  Producer producer({.broker = followers[0]->url(), .send_timeout = 5s, .retries = 0});
  ASSERT_TRUE(producer.Start().ok());
  auto sent = producer.Send({.topic = "orders", .body = "via a follower", .id = "redirected"});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  auto delivered = testing::DrainTopic(followers[1]->url(), "orders", 1, 300ms, 30s);
  EXPECT_EQ(delivered["redirected"], 1);

  // So does txmqctl given a list of followers.
  auto status = testing::RunCommand(
      {testing::BinPath("txmqctl"), "--broker", followers[0]->url() + "," + followers[1]->url(),
       "--timeout", "20s", "status"},
      "", 30s);
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
}

// A producer given the group's URLs sends without pause while its leader
// is killed; it finds the next leader itself, and a consumer given the same
// list reads every acknowledged message exactly once: a send retried across
// the failover (same message id) is not stored twice.
TEST_F(TxmqdGroup, ProducerGivenTheListKeepsSendingThroughKillNine) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);

  std::mutex mu;
  std::vector<std::string> acked;   // guarded by mu
  std::vector<std::string> failed;  // guarded by mu: outcome unknown
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    Producer producer({.broker = AllUrls(), .send_timeout = 10s, .retries = 3});
    if (!producer.Start().ok()) return;
    // A window of sends in flight, so that a failover finds several.
    for (int batch = 0; !stop; ++batch) {
      std::vector<std::string> ids;
      std::vector<std::future<Result<SendResult>>> sends;
      for (int i = 0; i < 8; ++i) {
        ids.push_back("c-" + std::to_string(batch) + "-" + std::to_string(i));
        sends.push_back(producer.SendAsync(
            {.topic = "orders", .key = std::to_string(i), .body = ids.back(), .id = ids.back()}));
      }
      for (size_t i = 0; i < sends.size(); ++i) {
        const bool ok = sends[i].get().ok();
        std::lock_guard<std::mutex> lock(mu);
        (ok ? acked : failed).push_back(ids[i]);
      }
    }
  });
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  const bool warmed = testing::WaitFor([&] { return acked_count() >= 200; }, 30s);
  const size_t before_kill = acked_count();
  if (warmed) Kill9(*leader);
  // It goes on on the next leader without being told where.
  const bool resumed =
      warmed && testing::WaitFor([&] { return acked_count() >= before_kill + 200; }, 60s);
  stop = true;
  sender.join();
  ASSERT_TRUE(warmed) << "no sends acknowledged before the kill";
  ASSERT_TRUE(resumed) << "the producer did not resume after the leader's kill";
  std::vector<std::string> all_acked;
  {
    std::lock_guard<std::mutex> lock(mu);
    all_acked = acked;
    std::cout << acked.size() << " acknowledged, " << failed.size()
              << " failed (outcome unknown) across the failover\n";
  }

  auto delivered = testing::DrainTopic(AllUrls(), "orders", all_acked.size(), 500ms, 60s);
  int lost = 0, twice = 0;
  for (const std::string& id : all_acked) {
    const int n = delivered.count(id) ? delivered[id] : 0;
    lost += n == 0;
    twice += n > 1;
    EXPECT_EQ(n, 1) << "acknowledged " << id << (n == 0 ? " lost" : " delivered more than once");
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(twice, 0);
}

// A TransactionProducer given the list registers its checker with
// whichever node leads: a half message left to check-back before the
// leader's kill -9 is checked by the next leader, which reaches the
// checker through the producer's new connection.
TEST_F(TxmqdGroup, TheNextLeaderChecksBackThroughTheFollowingProducer) {
  MakeNodes(3);
  const std::vector<std::string> quick_checks = {
      "--transaction-timeout", "1s", "--check-interval", "1s", "--check-interval-max", "2s"};
  for (Node& n : nodes_) StartNode(n, 2, quick_checks);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);

  std::atomic<int> checks{0};
  TransactionProducer producer({.broker = AllUrls(), .group = "payments", .send_timeout = 10s},
                               [&](const CheckRequest&) {
                                 ++checks;
                                 return TxState::kCommit;
                               });
  ASSERT_TRUE(producer.Start().ok());
  auto half = producer.SendInTransaction(
      {.topic = "paid", .body = "decided by check-back", .id = "checked"},
      [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(half.ok()) << half.status.ToString();
  Kill9(*leader);

  auto delivered = testing::DrainTopic(AllUrls(), "paid", 1, 300ms, 60s);
  EXPECT_EQ(delivered["checked"], 1) << "the next leader did not commit it by check-back";
  EXPECT_GE(checks.load(), 1);
}

// Every node cuts its log into segments of one size (group_config.h): a
// node started with another one is refused, saying which to use.
TEST_F(TxmqdGroup, ANodeWithAnotherSegmentSizeIsRefused) {
  MakeNodes(2);
  StartNode(nodes_[0], 1);
  ASSERT_NE(WaitForLeader(), nullptr);
  StartNode(nodes_[1], 1, {"--segment-mb", "64"});
  const auto exited = nodes_[1].process->Wait(20s);
  ASSERT_TRUE(exited.has_value()) << "a node with another --segment-mb joined";
  EXPECT_EQ(*exited, 1);
  const std::string log = testing::ReadFile(dir_.Sub("b.log"));
  EXPECT_NE(log.find("64 MiB"), std::string::npos) << log;
  EXPECT_NE(log.find("--segment-mb 128"), std::string::npos) << log;
  nodes_[1].process.reset();
}

// From a node's log, at its last takeover: "store: K committed entries
// were applied while following, R now" as {K, R}; {-1, -1} if none.
std::pair<long, long> KeptAndReplayed(const Node& n, const testing::TempDir& dir) {
  const std::string log = testing::ReadFile(dir.Sub(n.name + ".log"));
  const size_t at = log.rfind("store: ");
  if (at == std::string::npos) return {-1, -1};
  long kept = -1, replayed = -1;
  (void)std::sscanf(log.c_str() + at,
                    "store: %ld committed entries were applied while following, %ld now", &kept,
                    &replayed);
  return {kept, replayed};
}

// From a node's log, at its last start: how many rounds after the mark
// of the store it continued were checked ("(K rounds after its mark");
// -1 if it did not continue one.
long RoundsCheckedAfterMark(const Node& n, const testing::TempDir& dir) {
  const std::string log = testing::ReadFile(dir.Sub(n.name + ".log"));
  const size_t at = log.rfind("continuing the store kept in");
  if (at == std::string::npos) return -1;
  const size_t open = log.find(" (", at);
  long rounds = -1;
  if (open != std::string::npos) (void)std::sscanf(log.c_str() + open, " (%ld rounds", &rounds);
  return rounds;
}

// From a node's log, at its last start: how many replica entries the
// store it continued held ("... it holds replica entries 1..N"); -1 if it
// did not continue one.
long ContinuedEntries(const Node& n, const testing::TempDir& dir) {
  const std::string log = testing::ReadFile(dir.Sub(n.name + ".log"));
  const size_t start = log.rfind("following; serving clients");
  const size_t at = log.rfind("it holds replica entries 1..");
  if (at == std::string::npos || (start != std::string::npos && at > start)) return -1;
  long n_entries = -1;
  (void)std::sscanf(log.c_str() + at, "it holds replica entries 1..%ld", &n_entries);
  return n_entries;
}

// A follower keeps its store applied as entries commit, so the node that
// wins replays only what it had not applied yet, not everything the group
// ever stored (failover time would grow with the log). The old leader,
// restarted, continues its store (or rebuilds it from empty when it holds
// a round its log never got) while it follows, and when it wins in turn
// serves everything from that store.
TEST_F(TxmqdGroup, ANewLeaderContinuesTheStoreItKeptWhileFollowing) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* first = WaitForLeader();
  ASSERT_NE(first, nullptr);
  std::vector<std::string> acked = SendAll(first->url(), "first", 200);
  ASSERT_FALSE(HasFailure());
  for (const std::string& id : SendOneByOne(first->url(), "one", 80)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());

  auto kept_and_replayed = [&](const Node& n) { return KeptAndReplayed(n, dir_); };
  EXPECT_EQ(kept_and_replayed(*first).first, 0) << "the first leader had nothing to keep";

  Kill9(*first);
  Node* second = WaitForLeader(30s);
  ASSERT_NE(second, nullptr);
  const auto [kept, replayed] = kept_and_replayed(*second);
  // The sends took over 80 rounds; only the last few (whose commit no
  // later append told the follower) may be replayed at the takeover.
  EXPECT_GT(kept, 70) << LogTails();
  EXPECT_GE(replayed, 0) << LogTails();
  EXPECT_LE(replayed, 10) << "replayed most of the log at the takeover\n" << LogTails();

  StartNode(*first, 2);
  for (const std::string& id : SendAll(second->url(), "second", 100)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 20s)) << LogTails();
  // Only the restarted node may take over now; a second member joins once
  // it has, so that --min-isr 2 can commit its epoch.
  Node* other = nullptr;
  for (Node& n : nodes_) {
    if (&n != first && &n != second) other = &n;
  }
  Kill9(*second);
  Kill9(*other);
  ASSERT_TRUE(testing::WaitFor([&] { return GroupLeader() == first->name; }, 30s)) << LogTails();
  StartNode(*other, 2);
  Node* third = WaitForLeader(30s);
  ASSERT_NE(third, nullptr);
  ASSERT_EQ(third, first) << LogTails();
  EXPECT_GT(kept_and_replayed(*third).first, 70) << LogTails();
  auto delivered = testing::DrainTopic(third->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  }
}

// A follower killed -9 and restarted continues the store it kept instead
// of building it again from the whole log, and when it wins, serves from
// that store every message acknowledged before and after its restart
// (its store placed them where the leader's did, or reads would fail).
TEST_F(TxmqdGroup, ARestartedFollowerContinuesItsStore) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<std::string> acked = SendAll(leader->url(), "before", 200);
  for (const std::string& id : SendOneByOne(leader->url(), "one", 60)) {
    acked.push_back(id);
  }
  ASSERT_FALSE(HasFailure());
  Node* follower = nullptr;
  Node* other = nullptr;
  for (Node& n : nodes_) {
    if (&n == leader) continue;
    (follower == nullptr ? follower : other) = &n;
  }
  Kill9(*follower);
  StartNode(*follower, 2);
  ASSERT_TRUE(testing::WaitFor([&] { return ContinuedEntries(*follower, dir_) >= 0; }, 20s))
      << "the restarted follower did not continue its store\n"
      << LogTails();
  // How much it had applied when killed depends on the machine's load
  // (its thread runs at nice 10); that it kept some is what counts.
  EXPECT_GT(ContinuedEntries(*follower, dir_), 0) << LogTails();

  for (const std::string& id : SendAll(leader->url(), "after", 100)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 20s)) << LogTails();
  Kill9(*leader);
  Kill9(*other);
  ASSERT_TRUE(testing::WaitFor([&] { return GroupLeader() == follower->name; }, 30s)) << LogTails();
  StartNode(*other, 2);
  ASSERT_EQ(WaitForLeader(30s), follower) << LogTails();
  const auto [kept, replayed] = KeptAndReplayed(*follower, dir_);
  EXPECT_GT(kept, 60) << LogTails();
  EXPECT_LE(replayed, 10) << LogTails();
  auto delivered = testing::DrainTopic(follower->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  }
}

// Retention on the leader deletes old log segments of its store; the
// followers' stores delete the same ones when they apply the round that
// says so, rather than keeping everything the group ever stored.
TEST_F(TxmqdGroup, FollowersStoresDeleteTheSegmentsTheLeadersRetentionDeleted) {
  MakeNodes(2);
  const std::vector<std::string> small = {"--segment-mb", "2",           "--max-message-bytes",
                                          "65536",        "--retention", "2s"};
  for (Node& n : nodes_) StartNode(n, 2, small);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = leader == &nodes_[0] ? &nodes_[1] : &nodes_[0];
  const auto first_segment = [&](const Node& n) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_.Sub(n.name) + "/store/log", ec)) {
      names.insert(e.path().filename().string());
    }
    return names.empty() ? std::string() : *names.begin();
  };
  {
    Producer producer({.broker = leader->url(), .send_timeout = 10s});
    ASSERT_TRUE(producer.Start().ok());
    const std::string body(1000, 'x');
    for (int i = 0; i < 5000; ++i) {
      producer.SendAsync({.topic = "expiring", .body = body}, [](Result<SendResult>) {});
    }
    ASSERT_TRUE(producer.Send({.topic = "expiring", .body = "last"}).ok());
  }
  const std::string oldest = first_segment(*leader);
  ASSERT_FALSE(oldest.empty());
  ASSERT_TRUE(testing::WaitFor([&] { return first_segment(*leader) != oldest; }, 30s))
      << "the leader's retention never deleted a segment\n"
      << LogTails();
  EXPECT_TRUE(
      testing::WaitFor([&] { return first_segment(*follower) == first_segment(*leader); }, 20s))
      << "the follower's store starts at " << first_segment(*follower) << ", the leader's at "
      << first_segment(*leader) << "\n"
      << LogTails();
}

// A leader marks its store as followers do (at a clean stop, and every
// 64 MiB): stopped with SIGTERM and started again, it continues its store
// from its own mark, checking only what it wrote after it, not every round
// it wrote while it led.
TEST_F(TxmqdGroup, ALeaderStoppedCleanlyContinuesItsStoreFromItsOwnMark) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<std::string> acked = SendAll(leader->url(), "led", 100);
  for (const std::string& id : SendOneByOne(leader->url(), "one", 40)) {
    acked.push_back(id);
  }
  ASSERT_FALSE(HasFailure());
  leader->process->Signal(SIGTERM);
  const auto exited = leader->process->Wait(20s);
  ASSERT_TRUE(exited.has_value()) << LogTails();
  EXPECT_EQ(*exited, 0) << LogTails();
  StartNode(*leader, 2);
  ASSERT_TRUE(testing::WaitFor([&] { return ContinuedEntries(*leader, dir_) >= 0; }, 20s))
      << "the old leader did not continue its store\n"
      << LogTails();
  // It held every entry of its log: all were committed at the clean stop
  // ("log at index N" is its replica log's last entry at this start).
  const std::string log = testing::ReadFile(dir_.Sub(leader->name + ".log"));
  long last_index = -1;
  if (const size_t at = log.rfind("log at index "); at != std::string::npos) {
    (void)std::sscanf(log.c_str() + at, "log at index %ld", &last_index);
  }
  EXPECT_GT(last_index, 40) << LogTails();
  EXPECT_EQ(ContinuedEntries(*leader, dir_), last_index) << LogTails();
  EXPECT_LE(RoundsCheckedAfterMark(*leader, dir_), 2)
      << "checked the rounds it wrote while leading: its own mark is missing\n"
      << LogTails();
  // And it serves them all once it leads again.
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);
  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  }
}

// A leader killed -9 under load (four producers with 64 sends in flight
// each) continues its store at its next start, twice in a row: the store
// writes a round only once the replica log holds it, so it never holds a
// round its log lacks. (Until 2026-12-05 it usually did, and was built
// again from the whole replica log.)
TEST_F(TxmqdGroup, ALeaderKilledUnderLoadContinuesItsStore) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  std::string urls;
  for (const Node& n : nodes_) urls += (urls.empty() ? "" : ",") + n.url();
  for (int cycle = 0; cycle < 2; ++cycle) {
    Node* leader = WaitForLeader(30s);
    ASSERT_NE(leader, nullptr) << LogTails();
    auto load =
        testing::Process::Spawn({testing::BinPath("txmq-bench"), "--broker", urls, "--scenario",
                                 "send", "--producers", "4", "--window", "64", "--duration", "4"},
                                dir_.Sub("load.log"));
    ASSERT_NE(load, nullptr);
    const std::string log_path = dir_.Sub(leader->name + ".log");
    const size_t led_from = testing::ReadFile(log_path).size();
    // Under way (the run's fresh topic exists), then a second of it.
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return testing::ReadFile(log_path).find("created topic", led_from) != std::string::npos;
        },
        20s))
        << LogTails();
    std::this_thread::sleep_for(1s);
    Kill9(*leader);
    load->Wait(60s);
    const size_t before = testing::ReadFile(log_path).size();
    StartNode(*leader, 2);
    std::string started;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          started = testing::ReadFile(log_path).substr(before);
          return started.find("following; serving clients") != std::string::npos;
        },
        30s))
        << LogTails();
    EXPECT_NE(started.find("continuing the store kept in"), std::string::npos)
        << "cycle " << cycle << ": the killed leader did not continue its store:\n"
        << started;
    EXPECT_EQ(started.find("rounds past the log's end"), std::string::npos) << started;
  }
}

}  // namespace
}  // namespace txmq
