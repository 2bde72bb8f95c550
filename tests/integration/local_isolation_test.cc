// Handlers that read and write the same business key at the same time:
// through an Inbox with a real Consumer, and in the order/inventory example
// run as real processes. No update may be lost, no stock oversold.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <future>
#include <thread>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class LocalIsolation : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::StartBroker(testing::TestBrokerOptions(dir_.Sub("broker")));
    ASSERT_NE(broker_, nullptr);
  }

  // Sends `count` messages to `topic` and waits for every acknowledgement.
  void SendMany(const std::string& topic, int count) {
    Producer p({.broker = broker_->endpoint(), .group = "load"});
    ASSERT_TRUE(p.Start().ok());
    std::vector<std::future<Result<SendResult>>> sends;
    for (int i = 0; i < count; ++i) {
      sends.push_back(p.SendAsync({.topic = topic, .key = std::to_string(i), .body = "+1"}));
    }
    for (auto& f : sends) ASSERT_TRUE(f.get().ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(LocalIsolation, InboxHandlersOnFourThreadsIncrementingOneKeyLoseNoUpdate) {
  constexpr int kMessages = 1000;
  SendMany("increments", kMessages);
  auto opened = LocalStore::Open(dir_.Sub("counter-db"));
  ASSERT_TRUE(opened.ok());
  LocalStore& store = **opened;
  Inbox inbox(store, {.group = "counter"});
  std::atomic<int> runs{0}, done{0};
  Handler increment = inbox.Idempotent([&](LocalTxn& tx, const Received&) {
    ++runs;
    auto have = tx.Get("counter");
    const int value = have.ok() ? std::stoi(*have) : 0;
    EXPECT_TRUE(tx.Put("counter", std::to_string(value + 1)).ok());
    return ConsumeResult::Success();
  });
  Consumer c({.broker = broker_->endpoint(),
              .group = "counter",
              .handler_threads = 4,
              .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("increments", [&](const Received& m) {
                 ConsumeResult r = increment(m);
                 if (r.kind() == ConsumeResult::Kind::kSuccess) ++done;
                 return r;
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return done >= kMessages; }, 100s)) << done << " handled";
  c.Shutdown();
  EXPECT_EQ(*store.Get("counter"), std::to_string(kMessages));
  EXPECT_GT(runs, kMessages) << "handlers collided and were run again (else this proves nothing)";
}

TEST_F(LocalIsolation, AConflictingCommitRunsTheHandlerAgainInTheSameDelivery) {
  auto opened = LocalStore::Open(dir_.Sub("db"));
  ASSERT_TRUE(opened.ok());
  LocalStore& store = **opened;
  Inbox inbox(store, {.group = "g"});
  int runs = 0;
  std::vector<std::string> seen;
  Handler reserve = inbox.Idempotent([&](LocalTxn& tx, const Received&) {
    ++runs;
    auto have = tx.Get("stock/apple");
    seen.push_back(have.ok() ? *have : "none");
    if (runs == 1) {
      // Another handler takes an apple while this one runs.
      LocalTxn other = store.Begin();
      EXPECT_TRUE(other.Put("stock/apple", "4").ok());
      EXPECT_TRUE(other.Commit().ok());
    }
    const int left = have.ok() ? std::stoi(*have) : 5;
    EXPECT_TRUE(tx.Put("stock/apple", std::to_string(left - 1)).ok());
    return ConsumeResult::Success();
  });
  Received m;
  m.id = "order-1";
  m.topic = "orders";
  EXPECT_EQ(reserve(m).kind(), ConsumeResult::Kind::kSuccess) << "not handed back to the broker";
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(seen, (std::vector<std::string>{"none", "4"}));
  EXPECT_EQ(*store.Get("stock/apple"), "3");
  auto record = inbox.Lookup("order-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, InboxState::kProcessed);
}

// The order/inventory example as processes: many orders for one item,
// handled by the inventory service on its four handler threads.
TEST_F(LocalIsolation, TheOrderInventoryExampleNeverOversells) {
  constexpr int kStock = 40, kOrders = 60;
  auto inventory = testing::Process::Spawn(
      {testing::BinPath("txmq-example-inventory-service"), "--broker", broker_->endpoint(), "--db",
       dir_.Sub("inventory-db"), "--stock", "apple=" + std::to_string(kStock)},
      dir_.Sub("inventory.log"));
  ASSERT_NE(inventory, nullptr);
  ASSERT_TRUE(WaitFor([&] {
    return testing::ReadFile(dir_.Sub("inventory.log")).find("inventory service ready") !=
           std::string::npos;
  })) << testing::ReadFile(dir_.Sub("inventory.log"));
  std::vector<std::string> argv = {testing::BinPath("txmq-example-order-service"),
                                   "--broker",
                                   broker_->endpoint(),
                                   "--db",
                                   dir_.Sub("orders-db"),
                                   "--wait",
                                   "90"};
  for (int i = 1; i <= kOrders; ++i) {
    argv.push_back("--order");
    argv.push_back("o-" + std::to_string(i) + ":apple:1");
  }
  auto orders = testing::Process::Spawn(argv, dir_.Sub("orders.log"));
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->Wait(100s), 0) << testing::ReadFile(dir_.Sub("orders.log"));
  inventory->Signal(SIGTERM);
  ASSERT_EQ(inventory->Wait(20s), 0) << testing::ReadFile(dir_.Sub("inventory.log"));

  int confirmed = 0, cancelled = 0;
  for (const std::string& line : testing::SplitLines(testing::ReadFile(dir_.Sub("orders.log")))) {
    if (line.starts_with("o-") && line.ends_with(": confirmed")) ++confirmed;
    if (line.starts_with("o-") && line.ends_with(": cancelled (apple out of stock)")) ++cancelled;
  }
  EXPECT_EQ(confirmed, kStock) << "each apple sold once";
  EXPECT_EQ(cancelled, kOrders - kStock);
  auto store = LocalStore::Open(dir_.Sub("inventory-db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Get("stock/apple"), "0");
}

}  // namespace
}  // namespace txmq
