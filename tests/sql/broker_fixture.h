// What the local-table tests of every SQL backend share: a temp dir, an
// embedded broker per test, the reading side (what group "reader"
// receives of topic "orders", each message once and in key order), and
// the broker-side steps of the inbox and check-back tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/properties.h"
#include "txmq/transaction_producer.h"

namespace txmq::testing {

class SqlBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("broker"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  // What the group "reader" receives of topic "orders" until `count`
  // messages came (then `quiet` more of nothing), in arrival order.
  std::vector<Received> Receive(size_t count,
                                std::chrono::milliseconds quiet = std::chrono::milliseconds(300)) {
    std::mutex mu;
    std::vector<Received> got;
    Consumer c({.broker = broker_->endpoint(),
                .group = "reader",
                .handler_threads = 1,
                .max_in_flight = 1,
                .long_poll = std::chrono::milliseconds(200)});
    EXPECT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   got.push_back(m);
                   return ConsumeResult::Success();
                 }).ok());
    EXPECT_TRUE(c.Start().ok());
    EXPECT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return got.size() >= count;
    }));
    std::this_thread::sleep_for(quiet);  // and nothing more
    c.Shutdown();
    std::lock_guard<std::mutex> lock(mu);
    return got;
  }

  static std::map<std::string, std::vector<std::string>> ByKey(const std::vector<Received>& got) {
    std::map<std::string, std::vector<std::string>> by_key;
    for (const auto& m : got) by_key[m.key].push_back(m.id);
    return by_key;
  }

  // Every message of `ids` once, nothing else, and each key's messages in
  // order (the tests' ids sort in the order they were placed).
  static void ExpectEachOnceInKeyOrder(const std::vector<Received>& got,
                                       const std::set<std::string>& ids) {
    std::set<std::string> seen;
    for (const auto& m : got) EXPECT_TRUE(seen.insert(m.id).second) << m.id << " twice";
    EXPECT_EQ(seen, ids);
    for (auto& [key, in_order] : ByKey(got)) {
      EXPECT_TRUE(std::is_sorted(in_order.begin(), in_order.end())) << "key " << key;
    }
  }

  // A delivery of topic "orders" as a consumer's handler gets it.
  static Received Delivery(const std::string& id, const std::string& body) {
    Received m;
    m.id = id;
    m.topic = "orders";
    m.body = body;
    return m;
  }

  // Sends one message "m-1" of topic "orders" through the broker to group
  // "billing", whose handler runs `idempotent` and then, the first time,
  // answers RetryLater as a consumer killed after its commit would leave
  // it; returns once the redelivery was handled.
  void DeliverLosingTheFirstAck(const Handler& idempotent) {
    std::atomic<int> deliveries{0};
    Consumer consumer({.broker = broker_->endpoint(),
                       .group = "billing",
                       .long_poll = std::chrono::milliseconds(200)});
    ASSERT_TRUE(consumer
                    .Subscribe("orders",
                               [&](const Received& m) {
                                 ConsumeResult r = idempotent(m);
                                 if (++deliveries == 1) {
                                   return ConsumeResult::RetryLater(std::chrono::milliseconds(100));
                                 }
                                 return r;
                               })
                    .ok());
    ASSERT_TRUE(consumer.Start().ok());
    Producer producer({.broker = broker_->endpoint(), .group = "orders"});
    ASSERT_TRUE(producer.Start().ok());
    ASSERT_TRUE(producer.Send({.topic = "orders", .body = "order-1", .id = "m-1"}).ok());
    ASSERT_TRUE(WaitFor([&] { return deliveries.load() >= 2; }));
    consumer.Shutdown();
  }

  // The first compensation that reaches topic `topic` (group "undo").
  std::vector<Received> ReceiveCompensation(const std::string& topic) {
    std::mutex mu;
    std::vector<Received> got;
    Consumer undo({.broker = broker_->endpoint(),
                   .group = "undo",
                   .long_poll = std::chrono::milliseconds(200)});
    EXPECT_TRUE(undo.Subscribe(topic,
                               [&](const Received& c) {
                                 std::lock_guard<std::mutex> lock(mu);
                                 got.push_back(c);
                                 return ConsumeResult::Success();
                               })
                    .ok());
    EXPECT_TRUE(undo.Start().ok());
    EXPECT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return !got.empty();
    }));
    undo.Shutdown();
    std::lock_guard<std::mutex> lock(mu);
    return got;
  }

  // A check-back of `tx_id` as the broker sends it, and a message of a
  // local transaction.
  static CheckRequest CheckOf(const std::string& tx_id) {
    CheckRequest c;
    c.transaction_id = tx_id;
    c.producer_group = "orders";
    c.check_count = 1;
    c.born_at = std::chrono::system_clock::now();
    return c;
  }
  static Message InTransaction(const std::string& tx_id) {
    Message m{.topic = "orders", .body = "x", .id = "m-" + tx_id};
    m.properties[property::kTransactionId] = tx_id;
    return m;
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace txmq::testing
