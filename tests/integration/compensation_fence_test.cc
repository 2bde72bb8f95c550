// The producer side's fence: a compensation undoes only what the store
// committed, in either order of arrival, for outbox messages and for
// transactions of a store-backed TransactionProducer.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "producer/src/origin_fence.h"
#include "producer/src/outbox_row.h"
#include "producer/src/store_checker.h"
#include "protocol/src/util.h"
#include "tests/testutil/testutil.h"
#include "txmq/compensation.h"
#include "txmq/outbox.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class CompensationFence : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::StartBroker(testing::TestBrokerOptions(dir_.Sub("broker")));
    ASSERT_NE(broker_, nullptr);
    auto store = LocalStore::Open(dir_.Sub("orders"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(store.value());
    outbox_ = std::make_unique<Outbox>(
        *store_, OutboxOptions{.producer = {.broker = broker_->endpoint(), .group = "orders"}});
    inbox_ = std::make_unique<Inbox>(*store_, InboxOptions{.group = "orders-undo"});
  }

  void TearDown() override {
    if (undo_consumer_) undo_consumer_->Shutdown();
  }

  // The order service's undo: cancels the order.
  void StartUndo(CompensationOptions options = {}) {
    undo_consumer_ = std::make_unique<Consumer>(
        ConsumerOptions{.broker = broker_->endpoint(), .group = "orders-undo", .long_poll = 300ms});
    ASSERT_TRUE(OnCompensation(
                    *undo_consumer_, *inbox_, "orders",
                    [this](LocalTxn& tx, const Compensation& c) {
                      ++undos_;
                      EXPECT_TRUE(tx.Put("order/" + c.key, "cancelled").ok());
                      return ConsumeResult::Success();
                    },
                    options)
                    .ok());
    ASSERT_TRUE(undo_consumer_->Start().ok());
  }

  // Commits order `key` with its message `id` through the outbox.
  Status CommitOrder(const std::string& key, const std::string& id) {
    LocalTxn tx = store_->Begin();
    if (Status s = tx.Put("order/" + key, "created"); !s.ok()) return s;
    if (Status s = outbox_->Add(tx, {.topic = "orders", .key = key, .id = id}); !s.ok()) return s;
    return tx.Commit();
  }

  // What a failing consumer's inbox sends back.
  void SendCompensation(const std::string& original_id, const std::string& key,
                        const std::string& tx_id = "") {
    Producer p({.broker = broker_->endpoint(), .group = "inventory"});
    ASSERT_TRUE(p.Start().ok());
    Message m{.topic = CompensationTopic("orders"),
              .key = key,
              .body = "out of stock",
              .properties = {{"txmq-original-id", original_id},
                             {"txmq-consumer-group", "inventory"},
                             {"txmq-reason", "out of stock"}}};
    if (!tx_id.empty()) m.properties["txmq-tx"] = tx_id;
    ASSERT_TRUE(p.Send(m).ok());
  }

  // Waits until the compensation for `original_id` was handled.
  std::optional<InboxRecord> Handled(const std::string& original_id) {
    std::optional<InboxRecord> record;
    EXPECT_TRUE(WaitFor([&] {
      record = inbox_->Lookup("compensation/" + original_id);
      return record.has_value();
    })) << "compensation for "
        << original_id << " never handled";
    return record;
  }

  testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<LocalStore> store_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Inbox> inbox_;
  std::unique_ptr<Consumer> undo_consumer_;
  std::atomic<int> undos_{0};
};

TEST_F(CompensationFence, ACompensationForAnOrderThatNeverExistedDoesNotRunTheUndo) {
  StartUndo();
  SendCompensation("ghost-order", "ghost");
  auto record = Handled("ghost-order");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, InboxState::kSkipped);
  EXPECT_NE(record->note.find("never committed here"), std::string::npos) << record->note;
  EXPECT_EQ(undos_, 0);
  EXPECT_EQ(store_->Get("order/ghost").status().code(), StatusCode::kNotFound);

  // The original, arriving at its commit only now, is fenced: it can never
  // take effect with its compensation already gone by.
  Status late = CommitOrder("ghost", "ghost-order");
  EXPECT_EQ(late.code(), StatusCode::kAborted) << late.ToString();
  EXPECT_NE(late.message().find("was fenced"), std::string::npos) << late.ToString();
  EXPECT_EQ(store_->Get("order/ghost").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Outbox::List(*store_, false).empty()) << "nothing to send";
}

TEST_F(CompensationFence, ACompensationAfterItsOrderCommittedRunsTheUndoOnce) {
  StartUndo();
  ASSERT_TRUE(CommitOrder("7", "order-7").ok());
  SendCompensation("order-7", "7");
  SendCompensation("order-7", "7");  // a second failing consumer, or a resend
  auto record = Handled("order-7");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, InboxState::kProcessed);
  ASSERT_TRUE(WaitFor([&] { return undos_ == 1; }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(undos_, 1);
  EXPECT_EQ(*store_->Get("order/7"), "cancelled");
}

TEST_F(CompensationFence, AnOrderCommittingWhileItsCompensationRunsIsUndoneNotLost) {
  // The compensation decided "never committed" and fenced; the order
  // commits before that decision does: the fence fails ABORTED (the inbox
  // then runs the compensation again and undoes the order).
  LocalTxn compensation = store_->Begin();
  std::string why;
  ASSERT_EQ(producer::CheckOrigin(*store_, compensation, "order-8", "", 24h, &why),
            producer::Origin::kNotCommitted);
  ASSERT_TRUE(CommitOrder("8", "order-8").ok());
  Status s = compensation.Commit();
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
  LocalTxn again = store_->Begin();
  EXPECT_EQ(producer::CheckOrigin(*store_, again, "order-8", "", 24h, &why),
            producer::Origin::kCommitted)
      << why;
  auto record = outbox::ReadRecord(*store_, "order-8");
  ASSERT_TRUE(record.ok() && record->has_value()) << record.status().ToString();
  EXPECT_EQ((*record)->state, outbox::kCommitted);
}

TEST_F(CompensationFence, TransactionsAreFencedByTheirRecord) {
  TransactionProducer tp({.broker = broker_->endpoint(), .group = "orders"}, *store_);
  ASSERT_TRUE(tp.Start().ok());
  auto committed =
      tp.SendInTransaction({.topic = "orders", .key = "9"}, [](LocalTxn& tx, const Message&) {
        EXPECT_TRUE(tx.Put("order/9", "created").ok());
        return TxState::kCommit;
      });
  ASSERT_TRUE(committed.ok());
  ASSERT_EQ(committed.outcome, TxState::kCommit);
  // A transaction of this store that never committed, and another store's.
  producer::StoreTransactions txs(*store_, 24h);
  const std::string never = txs.NewTransactionId();
  const std::string foreign = "0190aaaa-0000-7000-8000-000000000000:" + NewUuidV7();

  StartUndo();
  SendCompensation(committed.message_ids.at(0), "9", committed.transaction_id);
  SendCompensation("never-msg", "10", never);
  SendCompensation("foreign-msg", "11", foreign);
  auto done = Handled(committed.message_ids.at(0));
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->state, InboxState::kProcessed);
  EXPECT_EQ(*store_->Get("order/9"), "cancelled");
  auto skipped = Handled("never-msg");
  ASSERT_TRUE(skipped.has_value());
  EXPECT_EQ(skipped->state, InboxState::kSkipped);
  EXPECT_NE(skipped->note.find("never committed here"), std::string::npos) << skipped->note;
  auto not_ours = Handled("foreign-msg");
  ASSERT_TRUE(not_ours.has_value());
  EXPECT_EQ(not_ours->state, InboxState::kSkipped);
  EXPECT_NE(not_ours->note.find("not started by this store"), std::string::npos) << not_ours->note;
  EXPECT_EQ(undos_, 1);

  // The transaction that never committed cannot commit now.
  LocalTxn late = store_->Begin();
  ASSERT_TRUE(late.Put("order/10", "created").ok());
  txs.RecordCommit(late, never);
  EXPECT_EQ(late.Commit().code(), StatusCode::kAborted);
  EXPECT_EQ(store_->Get("order/10").status().code(), StatusCode::kNotFound);
}

TEST_F(CompensationFence, WithOnlyRecordedOffEveryCompensationRunsTheUndo) {
  StartUndo({.only_recorded = false});
  SendCompensation("sent-by-a-plain-producer", "12");
  ASSERT_TRUE(Handled("sent-by-a-plain-producer").has_value());  // committed with the undo
  EXPECT_EQ(undos_, 1);
  auto order = store_->Get("order/12");
  ASSERT_TRUE(order.ok()) << order.status().ToString();
  EXPECT_EQ(*order, "cancelled");
}

}  // namespace
}  // namespace txmq
