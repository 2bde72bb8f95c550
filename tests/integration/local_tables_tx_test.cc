// Local message tables against an embedded broker and real LevelDB
// stores: the idempotent inbox, compensation with its null-compensation
// and hanging fences, and the store-backed transaction producer's checks.
#include <gtest/gtest.h>
#include <leveldb/env.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "consumer/src/inbox_records.h"
#include "producer/src/outbox_row.h"
#include "producer/src/store_checker.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"
#include "tests/integration/local_tables_fixture.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/compensation.h"
#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/outbox.h"
#include "txmq/properties.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::CommitOrder;
using testing::LocalTables;
using testing::WaitFor;

TEST_F(LocalTables, SameMessageTwiceAlsoConcurrentlyHasOneEffect) {
  auto store = OpenStore("inventory");
  Inbox inbox(*store, {.group = "inventory"});
  std::atomic<int> effects{0};
  Handler h = inbox.Idempotent([&](LocalTxn& tx, const Received& m) {
    ++effects;
    std::this_thread::sleep_for(100ms);  // both copies are inside at once
    EXPECT_TRUE(tx.Put("stock/" + m.key, "reserved").ok());
    return ConsumeResult::Success();
  });
  Received m;
  m.id = "msg-1";
  m.topic = "orders";
  m.key = "apple";
  std::vector<std::thread> copies;
  std::atomic<int> acked{0};
  for (int i = 0; i < 4; ++i) {
    copies.emplace_back([&] { acked += h(m).kind() == ConsumeResult::Kind::kSuccess; });
  }
  for (auto& t : copies) t.join();
  EXPECT_EQ(effects, 1);
  EXPECT_EQ(acked, 4) << "every copy is acknowledged";
  EXPECT_EQ(h(m).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(effects, 1);
  auto record = inbox.Lookup("msg-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, InboxState::kProcessed);
}

TEST_F(LocalTables, BusinessFailureIsCompensatedOnceAndTransientFailureIsNot) {
  // The order service: outbox for orders, inbox + consumer for compensations.
  auto orders = OpenStore("orders");
  Outbox order_outbox(*orders, OutboxOpts("orders"));
  ASSERT_TRUE(order_outbox.Start().ok());
  Inbox undo_inbox(*orders, {.group = "orders-undo"});
  Consumer undo_consumer(ConsumerOpts("orders-undo"));
  std::atomic<int> undos{0};
  ASSERT_TRUE(
      OnCompensation(undo_consumer, undo_inbox, "orders", [&](LocalTxn& tx, const Compensation& c) {
        ++undos;
        EXPECT_EQ(c.consumer_group, "inventory");
        EXPECT_EQ(c.reason, "out of stock");
        EXPECT_TRUE(tx.Put("order/" + c.key + "/status", "cancelled").ok());
        return ConsumeResult::Success();
      }).ok());
  ASSERT_TRUE(undo_consumer.Start().ok());

  // The inventory service: inbox with its own outbox for compensations.
  auto inventory = OpenStore("inventory");
  Outbox inventory_outbox(*inventory, OutboxOpts("inventory"));
  ASSERT_TRUE(inventory_outbox.Start().ok());
  Inbox inbox(*inventory, {.group = "inventory", .outbox = &inventory_outbox});
  std::atomic<int> transient_attempts{0};
  Consumer inventory_consumer(ConsumerOpts("inventory"));
  ASSERT_TRUE(inventory_consumer
                  .Subscribe("orders", inbox.Idempotent([&](LocalTxn& tx, const Received& m) {
                    if (m.key == "sold-out") {
                      EXPECT_TRUE(tx.Put("should-not-stay", "x").ok());  // dropped with the failure
                      return ConsumeResult::Compensate("out of stock");
                    }
                    if (transient_attempts++ < 2)
                      return ConsumeResult::RetryLater();  // database busy
                    return ConsumeResult::Success();
                  }))
                  .ok());
  ASSERT_TRUE(inventory_consumer.Start().ok());

  {
    LocalTxn tx = orders->Begin();
    ASSERT_TRUE(tx.Put("order/sold-out", "new").ok());
    ASSERT_TRUE(
        order_outbox
            .Add(tx, {.topic = "orders", .key = "sold-out", .body = "1", .id = "order-sold-out"})
            .ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  ASSERT_TRUE(CommitOrder(*orders, order_outbox, "plenty", "2").ok());
  ASSERT_TRUE(WaitFor([&] { return undos == 1 && transient_attempts >= 3; }, 15s));
  // The same compensation once more (as a second failing consumer on txmq
  // 0.1 would send it: the old "txmq-..." names are still understood)
  // undoes nothing more.
  Producer resend({.broker = broker_->endpoint(), .group = "manual"});
  ASSERT_TRUE(resend.Start().ok());
  ASSERT_TRUE(resend
                  .Send({.topic = CompensationTopic("orders"),
                         .key = "sold-out",
                         .body = "out of stock",
                         .properties = {{"txmq-original-id", "order-sold-out"},
                                        {"txmq-consumer-group", "inventory"},
                                        {"txmq-reason", "out of stock"}}})
                  .ok());
  std::this_thread::sleep_for(1s);
  inventory_consumer.Shutdown();
  undo_consumer.Shutdown();
  EXPECT_EQ(undos, 1);
  EXPECT_EQ(*orders->Get("order/sold-out/status"), "cancelled");
  EXPECT_EQ(orders->Get("order/plenty/status").status().code(), StatusCode::kNotFound)
      << "a transient failure never compensates";
  EXPECT_EQ(inventory->Get("should-not-stay").status().code(), StatusCode::kNotFound);
}

TEST_F(LocalTables, CompensationDeliveredThreeTimesUndoesOnce) {
  auto orders = OpenStore("orders");
  {
    // The original, committed by this store (its relay need not run).
    Outbox outbox(*orders, OutboxOpts("orders"));
    LocalTxn tx = orders->Begin();
    ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .key = "o1", .id = "order-1-created"}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  Inbox undo_inbox(*orders, {.group = "orders-undo"});
  Consumer undo_consumer(ConsumerOpts("orders-undo"));
  std::atomic<int> undos{0};
  ASSERT_TRUE(
      OnCompensation(undo_consumer, undo_inbox, "orders", [&](LocalTxn&, const Compensation&) {
        ++undos;
        return ConsumeResult::Success();
      }).ok());
  ASSERT_TRUE(undo_consumer.Start().ok());
  Producer p({.broker = broker_->endpoint(), .group = "inventory"});
  ASSERT_TRUE(p.Start().ok());
  // Three copies (three ids) of one compensation, as txmq 0.1 named its
  // properties: still understood.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.Send({.topic = CompensationTopic("orders"),
                        .key = "o1",
                        .body = "no stock",
                        .properties = {{"txmq-original-id", "order-1-created"},
                                       {"txmq-reason", "no stock"}}})
                    .ok());
  }
  ASSERT_TRUE(WaitFor([&] { return undos >= 1; }));
  std::this_thread::sleep_for(500ms);
  undo_consumer.Shutdown();
  EXPECT_EQ(undos, 1);
}

TEST_F(LocalTables, UndoBeforeTheOriginalMakesNetZero) {
  auto store = OpenStore("inventory");
  Inbox inbox(*store, {.group = "inventory"});
  std::atomic<int> reserves{0}, releases{0};
  Handler reserve = inbox.Idempotent([&](LocalTxn& tx, const Received& m) {
    ++reserves;
    EXPECT_TRUE(tx.Put("reserved/" + m.key, "1").ok());
    return ConsumeResult::Success();
  });
  Handler release = inbox.Undo(
      [&](LocalTxn& tx, const Received& m) {
        ++releases;
        EXPECT_TRUE(tx.Delete("reserved/" + m.key).ok());
        return ConsumeResult::Success();
      },
      [](const Received& m) { return m.properties.at("undoes"); });
  Consumer c(ConsumerOpts("inventory"));
  ASSERT_TRUE(c.Subscribe("reserve", reserve).ok());
  ASSERT_TRUE(c.Subscribe("release", release).ok());
  ASSERT_TRUE(c.Start().ok());
  Producer p({.broker = broker_->endpoint()});
  ASSERT_TRUE(p.Start().ok());
  // The undo arrives and is applied first; the original comes late.
  ASSERT_TRUE(p.Send({.topic = "release",
                      .key = "apple",
                      .body = "release",
                      .properties = {{"undoes", "reserve-apple"}}})
                  .ok());
  ASSERT_TRUE(WaitFor([&] {
    auto r = inbox.Lookup("reserve-apple");
    return r && r->state == InboxState::kFenced;
  }));
  ASSERT_TRUE(
      p.Send({.topic = "reserve", .key = "apple", .body = "reserve", .id = "reserve-apple"}).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto r = inbox.Lookup("reserve-apple");
    return r && r->state == InboxState::kSkipped;
  }));
  c.Shutdown();
  EXPECT_EQ(reserves, 0) << "the original never ran";
  EXPECT_EQ(releases, 0) << "the undo did no business work";
  EXPECT_EQ(store->Get("reserved/apple").status().code(), StatusCode::kNotFound);
  EXPECT_NE(inbox.Lookup("reserve-apple")->note.find("after its undo"), std::string::npos);

  // In the usual order, the undo runs once, after the original.
  Received original;
  original.id = "reserve-pear";
  original.key = "pear";
  Received undo;
  undo.id = "release-pear";
  undo.key = "pear";
  undo.properties["undoes"] = "reserve-pear";
  EXPECT_EQ(reserve(original).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(release(undo).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(release(undo).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(inbox.Lookup("reserve-pear")->state, InboxState::kUndone);
}

TEST_F(LocalTables, CheckBackNeverRollsBackARunningLocalTransaction) {
  auto store = OpenStore("orders");
  TransactionProducer p({.broker = broker_->endpoint(), .group = "orders"}, *store);
  ASSERT_TRUE(p.Start().ok());
  testing::AdminClient admin(broker_->endpoint());
  std::string tx_id;
  auto r =
      p.SendInTransaction({.topic = "orders", .body = "slow"}, [&](LocalTxn& tx, const Message& m) {
        // Run until checks came (every ~300 ms); they must say UNKNOWN.
        EXPECT_TRUE(WaitFor([&] {
          auto info = admin.Show(m.properties.at(property::kTransactionId));
          return info.ok() && info->check_count >= 2;
        })) << "no check arrived while the local transaction ran";
        EXPECT_TRUE(tx.Put("order/slow", "created").ok());
        return TxState::kCommit;
      });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  EXPECT_EQ(r.outcome, TxState::kCommit);
  EXPECT_TRUE(r.transaction_id.starts_with(store->instance_id() + ":"));
  auto info = admin.Show(r.transaction_id);
  ASSERT_TRUE(info.ok());
  EXPECT_GE(info->check_count, 1u) << "checks did arrive while it ran";
  EXPECT_EQ(*store->Get("order/slow"), "created");
}

TEST_F(LocalTables, AnOperatorRollbackWhileTheLocalStepRunsEndsTheCallAborted) {
  auto store = OpenStore("orders");
  TransactionProducer p({.broker = broker_->endpoint(), .group = "orders"}, *store);
  ASSERT_TRUE(p.Start().ok());
  testing::AdminClient admin(broker_->endpoint());
  std::promise<std::string> started;
  std::promise<void> resume;
  std::future<void> resumed = resume.get_future();
  auto call = std::async(std::launch::async, [&] {
    return p.SendInTransaction({.topic = "orders", .key = "7", .body = "order 7"},
                               [&](LocalTxn& tx, const Message& m) {
                                 started.set_value(m.properties.at(property::kTransactionId));
                                 // Held here until the operator has ended the transaction.
                                 if (resumed.wait_for(30s) != std::future_status::ready)
                                   return TxState::kRollback;
                                 EXPECT_TRUE(tx.Put("order/7", "created").ok());
                                 return TxState::kCommit;
                               });
  });
  std::future<std::string> started_id = started.get_future();
  ASSERT_EQ(started_id.wait_for(10s), std::future_status::ready) << "the local step never ran";
  const std::string tx_id = started_id.get();
  // Check-backs meanwhile answer UNKNOWN (it is running); an operator does
  // not ask: the transaction is rolled back while the local step runs.
  auto ended = admin.End(tx_id, /*commit=*/false, "alice");
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  EXPECT_EQ(*ended, wire::TxState::ROLLED_BACK);
  resume.set_value();
  TransactionResult r = call.get();
  // The local step went on and committed: the call says ABORTED, names the
  // transaction, and reports both sides.
  EXPECT_EQ(r.status.code(), StatusCode::kAborted) << r.status.ToString();
  EXPECT_NE(r.status.message().find("transaction " + tx_id), std::string::npos)
      << r.status.ToString();
  EXPECT_NE(r.status.message().find("the broker had already rolled the transaction back"),
            std::string::npos)
      << r.status.ToString();
  EXPECT_EQ(r.transaction_id, tx_id);
  ASSERT_TRUE(r.local.has_value());
  EXPECT_EQ(*r.local, TxState::kCommit);
  EXPECT_EQ(r.outcome, TxState::kRollback);
  EXPECT_FALSE(r.end_pending);
  // The operator's outcome stands: its message is never delivered.
  auto info = admin.Show(tx_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, wire::TxState::ROLLED_BACK);
  EXPECT_NE(info->resolved_by.find("alice"), std::string::npos) << info->resolved_by;
  EXPECT_LE(admin.TopicMessages("orders"), 0);
  EXPECT_TRUE(testing::DrainTopic(broker_->endpoint(), "orders", 0, 500ms, 5s).empty());
  // Nothing told the local step of the operator's decision before it
  // committed (the library cannot know it without asking the broker): its
  // rows are in, and ABORTED is how the caller learns that they have no
  // message.
  EXPECT_EQ(*store->Get("order/7"), "created");
}

// LevelDB's files, whose log syncs fail (after the bytes were written)
// once `fail` is set: a local commit whose outcome is not known.
class FailingLogSyncEnv final : public leveldb::EnvWrapper {
 public:
  FailingLogSyncEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}
  std::atomic<bool> fail{false};

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override {
    leveldb::Status s = target()->NewWritableFile(name, out);
    if (s.ok() && name.ends_with(".log")) *out = new File(*out, &fail);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** out) override {
    leveldb::Status s = target()->NewAppendableFile(name, out);
    if (s.ok() && name.ends_with(".log")) *out = new File(*out, &fail);
    return s;
  }

 private:
  class File final : public leveldb::WritableFile {
   public:
    File(leveldb::WritableFile* base, const std::atomic<bool>* fail) : base_(base), fail_(fail) {}
    leveldb::Status Append(const leveldb::Slice& data) override { return base_->Append(data); }
    leveldb::Status Close() override { return base_->Close(); }
    leveldb::Status Flush() override { return base_->Flush(); }
    leveldb::Status Sync() override {
      if (leveldb::Status s = base_->Flush(); !s.ok()) return s;
      if (*fail_) return leveldb::Status::IOError("test: fdatasync failed");
      return base_->Sync();
    }

   private:
    std::unique_ptr<leveldb::WritableFile> base_;
    const std::atomic<bool>* fail_;
  };
};

// A local commit that failed in a way that may still have written it (a
// failed fdatasync: LevelDB may show the batch after a reopen) is not the
// rollback of the local step: the library sends no end, and check-back
// asks the store. Rolled back, a commit that did land would lose its
// messages.
TEST_F(LocalTables, ALocalCommitWhoseOutcomeIsUnknownIsNotRolledBack) {
  FailingLogSyncEnv env;
  auto store = LocalStore::Impl::Open(dir_.Sub("orders"), {}, &env);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  TransactionProducer p({.broker = broker_->endpoint(), .group = "orders"}, **store);
  ASSERT_TRUE(p.Start().ok());
  env.fail = true;
  TransactionResult r = p.SendInTransaction({.topic = "orders", .key = "1", .body = "order 1"},
                                            [](LocalTxn& tx, const Message&) {
                                              EXPECT_TRUE(tx.Put("order/1", "created").ok());
                                              return TxState::kCommit;
                                            });
  EXPECT_FALSE(r.status.ok());
  ASSERT_FALSE(r.transaction_id.empty());
  testing::AdminClient admin(broker_->endpoint());
  auto info = admin.Show(r.transaction_id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, wire::TxState::PREPARED)
      << "the library rolled back a local commit that may have landed";
  p.Shutdown();
}

TEST_F(LocalTables, ARollbackTombstoneRefusesALaterCommitOfItsTransaction) {
  // A check rolls back only a transaction that is not running in any
  // producer on the store (CheckBackNeverRollsBackARunningLocalTransaction),
  // so SendInTransaction never commits after it; the tombstone is the last
  // guard should a commit come anyway, built here from the library's parts.
  auto store = OpenStore("orders");
  std::string tx_id;
  {
    // A process that sent its half and died before the local commit.
    TransactionProducer dying({.broker = broker_->endpoint(), .group = "orders"}, *store);
    ASSERT_TRUE(dying.Start().ok());
    auto r = dying.SendInTransaction({.topic = "orders", .body = "x"},
                                     [](LocalTxn&, const Message&) { return TxState::kUnknown; });
    ASSERT_TRUE(r.ok());
    tx_id = r.transaction_id;
  }
  // Restarted: the check finds no record and nothing running: rollback.
  TransactionProducer restarted({.broker = broker_->endpoint(), .group = "orders"}, *store);
  ASSERT_TRUE(restarted.Start().ok());
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor([&] {
    auto info = admin.Show(tx_id);
    return info.ok() && info->state == wire::TxState::ROLLED_BACK;
  }));
  // A commit of that transaction through the library's commit step is
  // refused, and none of its rows are written.
  producer::StoreTransactions txs(*store, std::chrono::hours(1));
  LocalTxn late = store->Begin();
  ASSERT_TRUE(late.Put("order/x", "created").ok());
  txs.RecordCommit(late, tx_id);
  Status commit = late.Commit();
  EXPECT_EQ(commit.code(), StatusCode::kAborted);
  EXPECT_NE(commit.message().find("was aborted by check-back"), std::string::npos)
      << commit.ToString();
  EXPECT_EQ(store->Get("order/x").status().code(), StatusCode::kNotFound);
  std::string why;
  EXPECT_EQ(txs.Check(tx_id, &why), TxState::kRollback) << "the answer stays ROLLBACK";
}

TEST_F(LocalTables, EveryProducerOnAStoreSeesTheTransactionsAnotherOneIsRunning) {
  auto store = OpenStore("orders");
  // Two transaction producers on one store (a service may run several): a
  // check that reaches the one that did not start the transaction must not
  // roll back what the other one is still running.
  producer::StoreTransactions first(*store, std::chrono::hours(1));
  producer::StoreTransactions second(*store, std::chrono::hours(1));
  const std::string tx_id = first.NewTransactionId();
  first.Begin(tx_id);
  std::string why;
  EXPECT_EQ(second.Check(tx_id, &why), TxState::kUnknown);
  EXPECT_NE(why.find("still running"), std::string::npos) << why;
  LocalTxn txn = store->Begin();
  ASSERT_TRUE(txn.Put("order/y", "created").ok());
  first.RecordCommit(txn, tx_id);
  ASSERT_TRUE(txn.Commit().ok());
  first.End(tx_id);
  EXPECT_EQ(second.Check(tx_id, &why), TxState::kCommit);
}

TEST_F(LocalTables, NoRecordOfATransactionOlderThanTheHorizonIsUnknownNotRollback) {
  auto store = OpenStore("orders");
  // Records go after the horizon, so for an old transaction "no record" may
  // mean "committed, then cleaned up": rolling it back could undo a commit.
  producer::StoreTransactions txs(*store, 2s);
  const std::string old_tx = txs.NewTransactionId();
  std::this_thread::sleep_for(1200ms);  // past the horizon less its margin (half of it here)
  const std::string young_tx = txs.NewTransactionId();
  std::string why;
  EXPECT_EQ(txs.Check(old_tx, &why), TxState::kUnknown);
  EXPECT_NE(why.find("older than the record horizon"), std::string::npos) << why;
  EXPECT_EQ(txs.Check(young_tx, &why), TxState::kRollback) << why;
}

TEST_F(LocalTables, ARecordHorizonBelowAnHourIsRefused) {
  auto store = OpenStore("orders");
  TransactionProducer p({.broker = broker_->endpoint(),
                         .group = "orders",
                         .transaction_record_horizon = std::chrono::minutes(10)},
                        *store);
  Status s = p.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("transaction_record_horizon of 10m is below 1h"), std::string::npos)
      << s.ToString();
}

TEST_F(LocalTables, AStoreAnswersOnlyForItsOwnTransactions) {
  auto mine = OpenStore("mine");
  auto theirs = OpenStore("theirs");
  std::string tx_id;
  {
    TransactionProducer p({.broker = broker_->endpoint(), .group = "shared"}, *theirs);
    ASSERT_TRUE(p.Start().ok());
    auto r = p.SendInTransaction({.topic = "t", .body = "x"},
                                 [](LocalTxn&, const Message&) { return TxState::kUnknown; });
    ASSERT_TRUE(r.ok());
    tx_id = r.transaction_id;
  }
  TransactionProducer other({.broker = broker_->endpoint(), .group = "shared"}, *mine);
  ASSERT_TRUE(other.Start().ok());
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor([&] {
    auto info = admin.Show(tx_id);
    return info.ok() && info->check_count >= 2 && info->last_answer == wire::CheckAnswer::ERROR;
  }));
  auto info = admin.Show(tx_id);
  EXPECT_EQ(info->state, wire::TxState::PREPARED) << "never rolled back by a stranger";
  EXPECT_NE(info->last_error.find("not started by store"), std::string::npos) << info->last_error;
}

}  // namespace
}  // namespace txmq
