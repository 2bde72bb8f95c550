// The fixture of the local-table tests (local_tables_test.cc,
// local_tables_tx_test.cc): an embedded broker on a temp dir, LevelDB
// local stores beside it, and the options its clients use.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

namespace txmq::testing {

using namespace std::chrono_literals;

class LocalTables : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("broker"));
    StartBroker();
  }

  void StartBroker() {
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    options_.listen = broker_->endpoint();  // restarts keep the port
  }

  std::unique_ptr<LocalStore> OpenStore(const std::string& name) {
    auto store = LocalStore::Open(dir_.Sub(name));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store.value()) : nullptr;
  }

  OutboxOptions OutboxOpts(const std::string& group) {
    OutboxOptions o;
    o.producer = {
        .broker = broker_->endpoint(), .group = group, .send_timeout = 500ms, .retries = 0};
    o.backoff_initial = 50ms;
    o.backoff_max = 500ms;
    return o;
  }

  ConsumerOptions ConsumerOpts(const std::string& group) {
    return {.broker = broker_->endpoint(), .group = group, .long_poll = 300ms};
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

// Commits one business row and one outbox row.
inline Status CommitOrder(LocalStore& store, Outbox& outbox, const std::string& key,
                          const std::string& body) {
  LocalTxn tx = store.Begin();
  if (Status s = tx.Put("order/" + key + "/" + body, body); !s.ok()) return s;
  if (Status s = outbox.Add(tx, {.topic = "orders", .key = key, .body = body}); !s.ok()) return s;
  return tx.Commit();
}

}  // namespace txmq::testing
