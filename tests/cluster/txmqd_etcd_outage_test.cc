// A replicated group while etcd is away (paused with SIGSTOP, or killed):
// the coordination store decides who leads, not whether the leader may
// serve. What is promised: the leader keeps acknowledging what its ISR
// holds, no election happens meanwhile, and once etcd is back every
// acknowledged message is there, also through a failover.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/txmqd_group_fixture.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Node;

class TxmqdEtcdOutage : public testing::TxmqdGroupFixture {
 protected:
  // The nodes that serve clients now (their ready files).
  int Serving() {
    int serving = 0;
    for (const Node& n : nodes_) {
      if (n.process && std::filesystem::exists(Ready(n))) ++serving;
    }
    return serving;
  }
};

TEST_F(TxmqdEtcdOutage, ThePausedCoordinatorStopsNoAckAndElectsNoSecondLeader) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<std::string> acked = SendAll(leader->url(), "before", 50);
  ASSERT_FALSE(HasFailure());
  // Under a loaded CI machine a follower may be shrunk for lag and counted
  // back more than once before the ISR settles; the logs say which.
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 40s))
      << "ISR " << Isr().size() << " of 3; the nodes' logs:\n"
      << LogTails();

  // etcd stops answering for well over a lease TTL (3 s): sends go on.
  ASSERT_EQ(kill(etcd_->pid(), SIGSTOP), 0);
  for (int round = 0; round < 4; ++round) {
    for (const std::string& id : SendAll(leader->url(), "paused" + std::to_string(round), 25)) {
      acked.push_back(id);
    }
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(Serving(), 1) << "a node started or stopped serving while etcd was away";
  }
  ASSERT_EQ(kill(etcd_->pid(), SIGCONT), 0);
  ASSERT_FALSE(HasFailure()) << "the leader stopped acknowledging while etcd was paused; its log:\n"
                             << testing::ReadFile(dir_.Sub(leader->name + ".log"));

  // Back: whoever leads now (etcd may have expired the leader's lease and
  // held an election), one node serves and every acknowledged message is
  // there; and once more after the leader is killed.
  Node* now = WaitForLeader(30s);
  ASSERT_NE(now, nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return Serving() == 1; }, 20s))
      << Serving() << " nodes serve at once";
  for (const std::string& id : SendAll(AllUrls(), "after", 25)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());
  Kill9(*now);
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);
  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  }
}

}  // namespace
}  // namespace txmq
