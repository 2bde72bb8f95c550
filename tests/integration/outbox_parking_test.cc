// Parked outbox rows and per-key order: a parked row holds the later rows
// of its key until an operator requeues (or deletes) it, unless the service
// chose to let them skip ahead.
//
// The row is parked by a refusal for good (its topic does not exist yet),
// not by stopping the broker: after a broker restart the relay's link may
// stay "refused" for up to libzmq's reconnect backoff (2 s), so rows sent
// right after it would be parked too, by timing. Parking after transient
// failures is tested in outbox_relay_test and local_tables_test.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class OutboxParking : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("broker"));
    options_.auto_create_topics = false;
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    options_.listen = broker_->endpoint();
    auto store = LocalStore::Open(dir_.Sub("orders"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(store.value());
  }

  OutboxOptions Opts() {
    OutboxOptions o;
    o.producer = {
        .broker = broker_->endpoint(), .group = "orders", .send_timeout = 300ms, .retries = 0};
    o.backoff_initial = 20ms;
    o.backoff_max = 100ms;
    return o;
  }

  void Commit(Outbox& outbox, const std::string& key, const std::string& id) {
    LocalTxn tx = store_->Begin();
    ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .key = key, .body = id, .id = id}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }

  // Row `id` of key "k" is refused (no topic "orders") and parked, then
  // the topic is created.
  void ParkOneRowOfKeyK(Outbox& outbox, const std::string& id) {
    Commit(outbox, "k", id);
    ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 1; }, 20s));
    testing::AdminClient admin(broker_->endpoint());
    ASSERT_TRUE(
        admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("orders"); }).ok());
  }

  // Every message of "orders", per key in arrival order.
  std::map<std::string, std::vector<std::string>> Receive(size_t count) {
    std::mutex mu;
    std::map<std::string, std::vector<std::string>> by_key;
    size_t total = 0;
    Consumer c({.broker = broker_->endpoint(),
                .group = "reader",
                .handler_threads = 1,
                .max_in_flight = 1,
                .long_poll = 300ms});
    EXPECT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   by_key[m.key].push_back(m.id);
                   ++total;
                   return ConsumeResult::Success();
                 }).ok());
    EXPECT_TRUE(c.Start().ok());
    EXPECT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return total >= count;
    }));
    std::this_thread::sleep_for(300ms);  // and nothing more
    c.Shutdown();
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(total, count);
    return by_key;
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<LocalStore> store_;
};

TEST_F(OutboxParking, AParkedRowHoldsItsKeyUntilRequeuedAndOrderIsKept) {
  Outbox outbox(*store_, Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ParkOneRowOfKeyK(outbox, "k-1");
  Commit(outbox, "k", "k-2");
  Commit(outbox, "k", "k-3");
  Commit(outbox, "other", "other-1");  // other keys, and rows without one, go on
  Commit(outbox, "", "no-key-1");
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().sent >= 2; }));
  Status flush = outbox.Flush(10s);
  EXPECT_EQ(flush.code(), StatusCode::kFailedPrecondition) << flush.ToString();
  EXPECT_NE(flush.message().find("wait behind parked rows"), std::string::npos) << flush.ToString();
  OutboxStats stats = outbox.stats();
  EXPECT_EQ(stats.pending, 2u);
  EXPECT_EQ(stats.blocked, 2u);
  EXPECT_EQ(stats.parked, 1u);
  auto pending = Outbox::List(*store_, false);
  ASSERT_EQ(pending.size(), 2u);
  for (const auto& row : pending) EXPECT_EQ(row.blocked_by, "k-1") << row.id;

  ASSERT_TRUE(outbox.Requeue("k-1").ok());
  ASSERT_TRUE(outbox.Flush(20s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().blocked, 0u);
  auto got = Receive(5);
  EXPECT_EQ(got["k"], (std::vector<std::string>{"k-1", "k-2", "k-3"})) << "commit order of key k";
  EXPECT_EQ(got["other"], std::vector<std::string>{"other-1"});
}

TEST_F(OutboxParking, DeletingTheParkedRowLetsItsKeyGoOn) {
  Outbox outbox(*store_, Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ParkOneRowOfKeyK(outbox, "k-1");
  Commit(outbox, "k", "k-2");
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().blocked == 1; }));
  EXPECT_EQ(outbox.Delete("k-2").code(), StatusCode::kNotFound) << "only parked rows, online";
  ASSERT_TRUE(outbox.Delete("k-1").ok());
  ASSERT_TRUE(outbox.Flush(20s).ok());
  EXPECT_EQ(outbox.stats().parked, 0u);
  EXPECT_EQ(Receive(1)["k"], std::vector<std::string>{"k-2"});
}

TEST_F(OutboxParking, TheHoldIsRebuiltFromTheStoreAfterARestart) {
  {
    Outbox outbox(*store_, Opts());
    ASSERT_TRUE(outbox.Start().ok());
    ParkOneRowOfKeyK(outbox, "k-1");
    broker_->Stop();  // k-2 stays pending across the restart
    broker_.reset();
    Commit(outbox, "k", "k-2");
  }
  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  Outbox outbox(*store_, Opts());
  ASSERT_TRUE(outbox.Start().ok());
  EXPECT_EQ(outbox.Flush(5s).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(outbox.stats().blocked, 1u);
  ASSERT_TRUE(outbox.Requeue("k-1").ok());
  ASSERT_TRUE(outbox.Flush(20s).ok());
  EXPECT_EQ(Receive(2)["k"], (std::vector<std::string>{"k-1", "k-2"}));
}

TEST_F(OutboxParking, SkippingAParkedRowIsAnExplicitOption) {
  OutboxOptions options = Opts();
  options.hold_key_behind_parked = false;
  Outbox outbox(*store_, options);
  ASSERT_TRUE(outbox.Start().ok());
  ParkOneRowOfKeyK(outbox, "k-1");
  Commit(outbox, "k", "k-2");
  ASSERT_TRUE(outbox.Flush(20s).ok()) << "k-2 went on without k-1";
  EXPECT_EQ(outbox.stats().blocked, 0u);
  ASSERT_TRUE(outbox.Requeue("k-1").ok());
  ASSERT_TRUE(outbox.Flush(20s).ok());
  EXPECT_EQ(Receive(2)["k"], (std::vector<std::string>{"k-2", "k-1"}))
      << "the requeued row arrives after the rows that skipped it";
}

}  // namespace
}  // namespace txmq
