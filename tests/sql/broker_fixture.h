// What the local-table tests of every SQL backend share: a temp dir, an
// embedded broker per test, and the reading side (what group "reader"
// receives of topic "orders", each message once and in key order).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"

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

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace txmq::testing
