// The fixture of the transaction tests (transactions_test.cc,
// transactions_ids_test.cc): an embedded broker with fast check timings,
// an admin client, producers whose checker answers what the test says,
// and a consumer group that collects what it receives.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq::testing {

using namespace std::chrono_literals;

// Collects what a consumer group receives from some topics.
class Collector {
 public:
  Collector(const std::string& endpoint, const std::vector<std::string>& topics,
            const std::string& group = "collector")
      : consumer_({.broker = endpoint, .group = group, .long_poll = 300ms}) {
    for (const auto& t : topics) {
      EXPECT_TRUE(consumer_
                      .Subscribe(t,
                                 [this](const Received& m) {
                                   std::lock_guard<std::mutex> lock(mu_);
                                   ids_.insert(m.id);
                                   count_++;
                                   return ConsumeResult::Success();
                                 })
                      .ok());
    }
    EXPECT_TRUE(consumer_.Start().ok());
  }
  ~Collector() { consumer_.Shutdown(); }
  bool Has(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_.count(id) > 0;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  std::set<std::string> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }

 private:
  Consumer consumer_;
  std::mutex mu_;
  std::set<std::string> ids_;
  size_t count_ = 0;
};

class Transactions : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("data"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }

  ProducerOptions Opts(const std::string& group = "orders") {
    return {.broker = broker_->endpoint(), .group = group};
  }

  // A producer whose checker answers `answer` and counts the checks.
  std::unique_ptr<TransactionProducer> MakeProducer(std::atomic<TxState>& answer,
                                                    std::atomic<int>* checks = nullptr,
                                                    const std::string& group = "orders") {
    auto p =
        std::make_unique<TransactionProducer>(Opts(group), [&answer, checks](const CheckRequest&) {
          if (checks) ++*checks;
          return answer.load();
        });
    EXPECT_TRUE(p->Start().ok());
    return p;
  }

  // One transaction of `group` left undecided (local UNKNOWN) by a producer
  // that is gone again; {transaction id, message id}, empty on failure.
  std::pair<std::string, std::string> LeaveUndecided(const std::string& group,
                                                     const std::string& body) {
    std::atomic<TxState> answer{TxState::kUnknown};
    auto p = MakeProducer(answer, nullptr, group);
    auto r = p->SendInTransaction({.topic = "t", .body = body},
                                  [](const Message&) { return TxState::kUnknown; });
    EXPECT_TRUE(r.ok()) << r.status.ToString();
    if (!r.ok()) return {};
    return {r.transaction_id, r.message_ids[0]};
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
};

}  // namespace txmq::testing
