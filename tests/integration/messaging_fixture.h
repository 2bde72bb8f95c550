// The fixture of the end-to-end messaging tests (messaging_test.cc,
// messaging_retention_test.cc): an embedded broker on a temp dir and a
// record of what consumers saw.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq::testing {

using namespace std::chrono_literals;

// Records what a consumer saw.
struct Seen {
  std::mutex mu;
  std::multiset<std::string> ids;
  std::vector<Received> messages;

  Handler Record(ConsumeResult result = ConsumeResult::Success()) {
    return [this, result](const Received& m) {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(m.id);
      messages.push_back(m);
      return result;
    };
  }
  size_t distinct() {
    std::lock_guard<std::mutex> lock(mu);
    return std::set<std::string>(ids.begin(), ids.end()).size();
  }
  size_t total() {
    std::lock_guard<std::mutex> lock(mu);
    return ids.size();
  }
};

class Messaging : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("data"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  ProducerOptions ProducerOpts() { return {.broker = broker_->endpoint(), .group = "p"}; }
  ConsumerOptions ConsumerOpts(const std::string& group) {
    return {.broker = broker_->endpoint(), .group = group, .long_poll = 500ms};
  }

  // Sends n messages asynchronously; returns their ids.
  std::set<std::string> SendMany(Producer& p, const std::string& topic, int n) {
    std::vector<std::future<Result<SendResult>>> futures;
    for (int i = 0; i < n; ++i) {
      futures.push_back(p.SendAsync({.topic = topic,
                                     .key = "k" + std::to_string(i % 17),
                                     .body = "body-" + std::to_string(i)}));
    }
    std::set<std::string> ids;
    for (auto& f : futures) {
      auto r = f.get();
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) ids.insert(r->message_id);
    }
    return ids;
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace txmq::testing
