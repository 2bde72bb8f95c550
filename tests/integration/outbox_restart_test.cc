// The outbox across restarts of its service: rows committed before, while
// and after Outbox::Start runs, in several orders over several runs, all
// reach the broker once and none overwrites another.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "tests/testutil/testutil.h"
#include "txmq/compensation.h"
#include "txmq/inbox.h"
#include "txmq/outbox.h"
#include "txmq/properties.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class OutboxRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    // The broker is away while the service runs and restarts: rows stay
    // pending in the store from one run to the next.
    options_ = testing::TestBrokerOptions(dir_.Sub("broker"));
    auto broker = testing::StartBroker(options_);
    ASSERT_NE(broker, nullptr);
    endpoint_ = broker->endpoint();
    options_.listen = endpoint_;
    broker->Stop();
  }

  std::unique_ptr<LocalStore> OpenStore(const std::string& name) {
    auto store = LocalStore::Open(dir_.Sub(name));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store.value()) : nullptr;
  }

  OutboxOptions Opts(const std::string& group) {
    OutboxOptions o;
    o.producer = {.broker = endpoint_, .group = group, .send_timeout = 300ms, .retries = 0};
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    return o;
  }

  // The business row and the outbox row of order `id`, in one commit.
  void Commit(LocalStore& store, Outbox& outbox, const std::string& id) {
    LocalTxn tx = store.Begin();
    ASSERT_TRUE(tx.Put("order/" + id, "created").ok());
    ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .key = id, .body = id, .id = id}).ok());
    ASSERT_TRUE(tx.Commit().ok());
    std::lock_guard<std::mutex> lock(mu_);
    committed_.insert(id);
  }

  // One run of the service: opens the store and the outbox and plays
  // `steps` (C: commit 3 orders; S: Start; D: Start while another thread
  // commits 3 orders), then shuts down.
  void Run(int run, const std::string& steps) {
    SCOPED_TRACE("run " + std::to_string(run) + ": " + steps);
    auto store = OpenStore("orders");
    ASSERT_NE(store, nullptr);
    Outbox outbox(*store, Opts("orders"));
    int n = 0;
    auto next_id = [&] { return "r" + std::to_string(run) + "-" + std::to_string(++n); };
    for (char step : steps) {
      if (step == 'C') {
        for (int i = 0; i < 3; ++i) Commit(*store, outbox, next_id());
      } else if (step == 'S') {
        ASSERT_TRUE(outbox.Start().ok());
      } else if (step == 'D') {
        std::atomic<int> done{0};
        std::vector<std::string> ids = {next_id(), next_id(), next_id()};
        std::thread service([&] {
          for (const auto& id : ids) {
            Commit(*store, outbox, id);
            ++done;
          }
        });
        ASSERT_TRUE(WaitFor([&] { return done >= 1; }));
        ASSERT_TRUE(outbox.Start().ok());
        service.join();
      }
    }
  }

  // Every committed order is pending exactly once; with the broker back,
  // each is delivered exactly once.
  void ExpectEveryRowDeliveredOnce() {
    {
      auto store = OpenStore("orders");
      ASSERT_NE(store, nullptr);
      std::multiset<std::string> pending;
      for (const auto& row : Outbox::List(*store, false)) {
        if (row.message.topic == "orders") pending.insert(row.id);
      }
      EXPECT_EQ(pending, std::multiset<std::string>(committed_.begin(), committed_.end()))
          << "a row committed in one run was overwritten by a later one";
      for (const auto& id : committed_) EXPECT_TRUE(store->Get("order/" + id).ok()) << id;
    }
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    {
      auto store = OpenStore("orders");
      Outbox outbox(*store, Opts("orders"));
      ASSERT_TRUE(outbox.Start().ok());
      ASSERT_TRUE(outbox.Flush(30s).ok()) << outbox.stats().last_error;
    }
    auto seen = testing::DrainTopic(endpoint_, "orders", committed_.size(), 500ms);
    std::set<std::string> delivered;
    for (const auto& [id, times] : seen) {
      EXPECT_EQ(times, 1) << id;
      delivered.insert(id);
    }
    EXPECT_EQ(delivered, committed_);
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::string endpoint_;
  std::unique_ptr<Broker> broker_;  // up for the delivery at the end
  std::mutex mu_;
  std::set<std::string> committed_;  // guarded by mu_ while a run commits from two threads
};

class OutboxRestartPlan : public OutboxRestart,
                          public ::testing::WithParamInterface<std::string> {};

// Runs separated by '|'; each run: C commit, S start, D start during commits.
TEST_P(OutboxRestartPlan, NoCommittedRowIsOverwrittenOrLost) {
  std::stringstream plan(GetParam());
  std::string steps;
  for (int run = 1; std::getline(plan, steps, '|'); ++run) {
    Run(run, steps);
    if (HasFatalFailure()) return;
  }
  ExpectEveryRowDeliveredOnce();
}

INSTANTIATE_TEST_SUITE_P(Orders, OutboxRestartPlan,
                         ::testing::Values("C|CS", "C|C|CS", "CS|CSC", "SC|CS", "CSC|SC", "C|D",
                                           "SC|DC", "D|C|S"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name;
                           for (char c : info.param) name += c == '|' ? '_' : c;
                           return name;
                         });

TEST_F(OutboxRestart, ACompensationAddedBeforeTheOutboxStartedOverwritesNothing) {
  // Run 1 of an inventory service: its outbox holds unsent rows.
  {
    auto store = OpenStore("orders");
    Outbox outbox(*store, Opts("inventory"));
    for (int i = 1; i <= 3; ++i) Commit(*store, outbox, "stock-reserved-" + std::to_string(i));
  }
  // Run 2: a delivery is compensated before the outbox was started.
  {
    auto store = OpenStore("orders");
    Outbox outbox(*store, Opts("inventory"));
    Inbox inbox(*store, {.group = "inventory", .outbox = &outbox});
    Handler handler = inbox.Idempotent(
        [](LocalTxn&, const Received&) { return ConsumeResult::Compensate("out of stock"); });
    Received m;
    m.id = "order-9";
    m.topic = "order-created";
    m.key = "9";
    m.properties[property::kProducerGroup] = "shop";
    ASSERT_EQ(handler(m).kind(), ConsumeResult::Kind::kSuccess);
    EXPECT_EQ(Outbox::List(*store, false).size(), 4u) << "three rows and the compensation";
  }
  ExpectEveryRowDeliveredOnce();
  auto compensations = testing::DrainTopic(endpoint_, CompensationTopic("shop"), 1, 500ms);
  ASSERT_EQ(compensations.size(), 1u);
}

}  // namespace
}  // namespace txmq
