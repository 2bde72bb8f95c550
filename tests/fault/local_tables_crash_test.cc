// A service with local message tables, killed (SIGKILL) between its steps.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Process;
using testing::WaitFor;

class LocalTablesCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::StartBroker(testing::TestBrokerOptions(dir_.Sub("broker")));
    ASSERT_NE(broker_, nullptr);
  }

  // Runs the tool until it is ready, then kills it.
  void RunAndKill(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {testing::BinPath("txmq-test-localtool")};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::RunUntilReadyThenKill(argv, dir_.Sub("ready"), dir_.Sub("tool.log"));
  }

  std::string ReadReady() {
    std::string text;
    std::ifstream(dir_.Sub("ready")) >> text;
    return text;
  }

  testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(LocalTablesCrash, KilledAfterTheLocalCommitBeforeTheRelaySent) {
  RunAndKill({"outbox-committed", dir_.Sub("db"), broker_->endpoint(), dir_.Sub("ready")});
  auto store = LocalStore::Open(dir_.Sub("db"));  // the dead process's lock is gone
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Get("order/1"), "created");
  Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok());
  auto seen = testing::DrainTopic(broker_->endpoint(), "orders", 1, 500ms, 10s);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["crash-row-1"], 1) << "delivered, once";
}

TEST_F(LocalTablesCrash, KilledBetweenTheBrokersAckAndTheRowDelete) {
  // The tool's relay sends its row, the broker stores and acknowledges it,
  // and the process is killed while the write that deletes the row is
  // still on its way (the tool holds it).
  RunAndKill({"outbox-acked", dir_.Sub("db"), broker_->endpoint(), dir_.Sub("ready")});
  ASSERT_EQ(ReadReady(), "stalled");
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_EQ(admin.TopicMessages("orders"), 1) << "the broker had stored the row before the kill";
  auto store = LocalStore::Open(dir_.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto rows = Outbox::List(**store, false);
  ASSERT_EQ(rows.size(), 1u) << "the row's deletion was not to survive the kill";
  EXPECT_EQ(rows[0].id, "crash-row-2");
  EXPECT_EQ(*(*store)->Get("order/2"), "created");

  // Restarted: the relay sends the row again, the broker's dedup window
  // answers with the first copy, and the row goes.
  Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().sent, 1u) << "sent again after the restart";
  EXPECT_TRUE(Outbox::List(**store, false).empty()) << "the row is gone once acknowledged";
  EXPECT_EQ(admin.TopicMessages("orders"), 1) << "the resend was stored a second time";
  auto seen = testing::DrainTopic(broker_->endpoint(), "orders", 1, 500ms, 10s);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["crash-row-2"], 1) << "delivered, exactly once";
}

TEST_F(LocalTablesCrash, KilledBeforeTheLocalCommitSendsNothing) {
  RunAndKill({"outbox-uncommitted", dir_.Sub("db"), broker_->endpoint(), dir_.Sub("ready")});
  auto store = LocalStore::Open(dir_.Sub("db"));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Get("order/1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Outbox::List(**store, false).empty());
  Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(5s).ok());
  EXPECT_EQ(outbox.stats().sent, 0u);
}

TEST_F(LocalTablesCrash, HalfMessageOfADeadLocalTransactionIsRolledBackByCheckBack) {
  RunAndKill(
      {"tx-before-local-commit", dir_.Sub("db"), broker_->endpoint(), "orders", dir_.Sub("ready")});
  const std::string tx_id = ReadReady();
  ASSERT_FALSE(tx_id.empty());
  auto store = LocalStore::Open(dir_.Sub("db"));
  ASSERT_TRUE(store.ok());
  // The service restarts: same store, so the same instance answers.
  TransactionProducer restarted({.broker = broker_->endpoint(), .group = "orders"}, **store);
  ASSERT_TRUE(restarted.Start().ok());
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto info = admin.Show(tx_id);
        return info.ok() && info->state == wire::TxState::ROLLED_BACK;
      },
      15s));
  EXPECT_NE(admin.Show(tx_id)->resolved_by.find((*store)->instance_id()), std::string::npos);
  EXPECT_EQ((*store)->Get("order/2").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(testing::DrainTopic(broker_->endpoint(), "orders", 0, 500ms, 10s).empty());
}

}  // namespace
}  // namespace txmq
