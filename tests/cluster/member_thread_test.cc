// MemberThread: the GroupMember's calls to etcd run on their own thread,
// so whoever drives replication never waits for them. What is promised:
// elections and ISR changes come out as events in order, and while a
// coordinator call hangs (etcd paused) every method returns at once.
#include "broker/src/cluster/member_thread.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "tests/testutil/fake_coordinator.h"
#include "tests/testutil/testutil.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;

// The fake coordinator behind a gate: while it is shut, every call waits
// (as calls to a paused etcd do) until it opens again.
class GatedCoordinator final : public Coordinator {
 public:
  void Shut() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    opened_.notify_all();
  }
  // Whether a call is waiting at the gate now.
  bool Waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_ > 0;
  }

  Result<Lease> GrantLease(std::chrono::seconds ttl) override {
    Pass();
    return fake_.GrantLease(ttl);
  }
  Result<std::chrono::seconds> KeepAlive(LeaseId lease) override {
    Pass();
    return fake_.KeepAlive(lease);
  }
  Status RevokeLease(LeaseId lease) override {
    Pass();
    return fake_.RevokeLease(lease);
  }
  Result<ReadResult> Get(const std::string& key) override {
    Pass();
    return fake_.Get(key);
  }
  Result<ReadResult> GetPrefix(const std::string& prefix) override {
    Pass();
    return fake_.GetPrefix(prefix);
  }
  Result<Revision> Put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override {
    Pass();
    return fake_.Put(key, value, lease);
  }
  Result<Revision> Delete(const std::string& key) override {
    Pass();
    return fake_.Delete(key);
  }
  Result<TxnResult> Commit(const Txn& txn) override {
    Pass();
    return fake_.Commit(txn);
  }

 private:
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    opened_.wait(lock, [this] { return open_; });
    --waiting_;
  }

  testing::FakeCoordinator fake_;
  std::mutex mu_;
  std::condition_variable opened_;
  bool open_ = true;
  int waiting_ = 0;
};

std::unique_ptr<GroupMember> Member(Coordinator& coordinator, const std::string& node) {
  auto member = GroupMember::Open(coordinator, {.cluster = "c",
                                                .group = "g",
                                                .node = node,
                                                .listen_url = "tcp://127.0.0.1:1",
                                                .lease_ttl = 1s});
  EXPECT_TRUE(member.ok()) << member.status().ToString();
  return std::move(member.value());
}

// Collects events until `done` says so or `timeout` passes.
std::vector<MemberEvent> EventsUntil(MemberThread& thread,
                                     const std::function<bool(const MemberEvent&)>& done,
                                     std::chrono::milliseconds timeout = 5s) {
  std::vector<MemberEvent> all;
  testing::WaitFor(
      [&] {
        for (MemberEvent& e : thread.TakeEvents()) all.push_back(std::move(e));
        for (const MemberEvent& e : all) {
          if (done(e)) return true;
        }
        return false;
      },
      timeout);
  return all;
}

TEST(MemberThread, AWinAndAnIsrChangeComeOutAsEventsInOrder) {
  GatedCoordinator etcd;
  MemberThread a(Member(etcd, "a"), 10ms);
  auto events = EventsUntil(
      a, [](const MemberEvent& e) { return e.kind == MemberEvent::Kind::kBecameLeader; });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, MemberEvent::Kind::kBecameLeader);
  EXPECT_EQ(events.back().epoch, 1);
  EXPECT_EQ(events.back().isr, std::vector<std::string>{"a"});

  a.RequestExpand("b");
  a.RequestExpand("b");  // asked twice while pending: done once
  events =
      EventsUntil(a, [](const MemberEvent& e) { return e.kind == MemberEvent::Kind::kIsrChanged; });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].epoch, 1);
  EXPECT_EQ(events[0].isr, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(testing::WaitFor([&] { return a.view().state.isr.size() == 2; }));
}

TEST(MemberThread, ANodeAlreadyInTheIsrIsNoChange) {
  GatedCoordinator etcd;
  MemberThread a(Member(etcd, "a"), 10ms);
  ASSERT_FALSE(EventsUntil(a, [](const MemberEvent& e) {
                 return e.kind == MemberEvent::Kind::kBecameLeader;
               }).empty());
  a.RequestExpand("b");
  ASSERT_EQ(
      EventsUntil(a, [](const MemberEvent& e) { return e.kind == MemberEvent::Kind::kIsrChanged; })
          .size(),
      1u);

  // Requests run in order: had the second "b" made an event, it would
  // come out before the one for "c".
  a.RequestExpand("b");
  a.RequestExpand("c");
  auto events = EventsUntil(a, [](const MemberEvent& e) {
    return e.kind == MemberEvent::Kind::kIsrChanged && e.isr.size() == 3;
  });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].isr, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(MemberThread, EveryCallReturnsAtOnceWhileTheCoordinatorHangs) {
  GatedCoordinator etcd;
  MemberThread a(Member(etcd, "a"), 10ms);
  ASSERT_FALSE(EventsUntil(a, [](const MemberEvent& e) {
                 return e.kind == MemberEvent::Kind::kBecameLeader;
               }).empty());

  etcd.Shut();
  ASSERT_TRUE(testing::WaitFor([&] { return etcd.Waiting(); })) << "the thread never called etcd";
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    (void)a.TakeEvents();
    (void)a.view();
    a.RequestShrink("b");
    a.RequestExpand("c");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms)
      << "a caller waited for the hanging coordinator";
  etcd.Open();
  // The queued requests run once etcd answers: "c" is taken in.
  EXPECT_TRUE(testing::WaitFor([&] {
    const auto isr = a.view().state.isr;
    return std::find(isr.begin(), isr.end(), "c") != isr.end();
  }));
}

}  // namespace
}  // namespace txmq::cluster
