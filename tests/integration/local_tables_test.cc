// Local message tables against an embedded broker and real LevelDB
// stores: outbox relay, idempotent inbox, compensation, store-backed
// transaction checks, retention.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
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
using testing::WaitFor;

class LocalTables : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("broker"));
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

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

// Commits one business row and one outbox row.
Status CommitOrder(LocalStore& store, Outbox& outbox, const std::string& key,
                   const std::string& body) {
  LocalTxn tx = store.Begin();
  if (Status s = tx.Put("order/" + key + "/" + body, body); !s.ok()) return s;
  if (Status s = outbox.Add(tx, {.topic = "orders", .key = key, .body = body}); !s.ok()) return s;
  return tx.Commit();
}

TEST_F(LocalTables, OutboxRowGoesOutOnlyWhenTheBusinessTransactionCommits) {
  auto store = OpenStore("orders");
  Outbox outbox(*store, OutboxOpts("orders"));
  ASSERT_TRUE(outbox.Start().ok());
  {
    LocalTxn abandoned = store->Begin();
    ASSERT_TRUE(abandoned.Put("order/1", "x").ok());
    ASSERT_TRUE(outbox.Add(abandoned, {.topic = "orders", .body = "never"}).ok());
    abandoned.Abort();
  }
  ASSERT_TRUE(CommitOrder(*store, outbox, "2", "yes").ok());
  ASSERT_TRUE(outbox.Flush(10s).ok());
  std::mutex mu;
  std::vector<std::string> bodies;
  Consumer c(ConsumerOpts("g"));
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 bodies.push_back(m.body);
                 EXPECT_EQ(m.properties.at(property::kProducerGroup), "orders");
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !bodies.empty();
  }));
  std::this_thread::sleep_for(300ms);
  c.Shutdown();
  EXPECT_EQ(bodies, std::vector<std::string>{"yes"});
  EXPECT_EQ(outbox.stats().pending, 0u);
  EXPECT_EQ(outbox.stats().sent, 1u);
}

// Several messages in one local transaction: every one is kept and sent,
// in the order they were added (the TCC example sends try-a and try-b in
// one commit; only one of them ever left, the other stayed in the store).
TEST_F(LocalTables, EveryMessageOfOneLocalTransactionIsSentInOrder) {
  auto store = OpenStore("orders");
  {
    Outbox stopped(*store, OutboxOpts("orders"));  // not started: rows stay in the store
    LocalTxn tx = store->Begin();
    ASSERT_TRUE(tx.Put("order/1", "placed").ok());
    for (const char* body : {"first", "second", "third"}) {
      ASSERT_TRUE(stopped.Add(tx, {.topic = "orders", .key = "1", .body = body}).ok());
    }
    ASSERT_TRUE(stopped.Add(tx, {.topic = "audit", .key = "1", .body = "audited"}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  EXPECT_EQ(Outbox::List(*store, /*parked=*/false).size(), 4u) << "every row is stored";

  Outbox outbox(*store, OutboxOpts("orders"));
  ASSERT_TRUE(outbox.Start().ok());
  LocalTxn tx = store->Begin();
  ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .key = "2", .body = "live-1"}).ok());
  ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .key = "2", .body = "live-2"}).ok());
  ASSERT_TRUE(tx.Commit().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok());
  EXPECT_EQ(outbox.stats().sent, 6u);

  std::mutex mu;
  std::vector<std::string> bodies;
  Consumer c(ConsumerOpts("g"));
  for (const char* topic : {"orders", "audit"}) {
    ASSERT_TRUE(c.Subscribe(topic, [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   bodies.push_back(m.body);
                   return ConsumeResult::Success();
                 }).ok());
  }
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return bodies.size() >= 6;
  })) << "only "
      << bodies.size() << " of 6 messages arrived";
  c.Shutdown();
  auto at = [&](const std::string& body) {
    return std::find(bodies.begin(), bodies.end(), body) - bodies.begin();
  };
  EXPECT_LT(at("first"), at("second"));
  EXPECT_LT(at("second"), at("third"));
  EXPECT_LT(at("live-1"), at("live-2"));
  EXPECT_LT(at("audited"), static_cast<long>(bodies.size()));
}

TEST_F(LocalTables, BrokerDownTenSecondsKeepsOrderPerKeyAndBackoffUnderTheCap) {
  auto store = OpenStore("orders");
  Outbox outbox(*store, OutboxOpts("orders"));
  ASSERT_TRUE(outbox.Start().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> committed{0};
  std::thread service([&] {  // keeps committing, broker or not
    for (int i = 0; !stop; ++i) {
      ASSERT_TRUE(CommitOrder(*store, outbox, "k" + std::to_string(i % 5), std::to_string(i)).ok());
      ++committed;
      std::this_thread::sleep_for(5ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  broker_->Stop();
  broker_.reset();
  const auto down_at = SteadyClock::now();
  // The retry spacing itself: the oldest pending row's attempts, as the
  // relay records them in the store, sampled through the outage.
  std::string oldest;
  uint32_t seen_attempts = 0;
  std::vector<std::pair<SteadyClock::time_point, uint32_t>> attempts;  // when it changed
  while (SteadyClock::now() - down_at < 10s) {
    auto rows = Outbox::List(*store, /*parked=*/false);
    auto first = std::min_element(rows.begin(), rows.end(),
                                  [](const auto& a, const auto& b) { return a.seq < b.seq; });
    if (first != rows.end()) {
      if (oldest.empty()) oldest = first->id;
      if (first->id == oldest && first->attempts > seen_attempts) {
        seen_attempts = first->attempts;
        attempts.emplace_back(SteadyClock::now(), seen_attempts);
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  // From 3 s on the backoff (50 ms doubling) has long reached its 500 ms
  // cap: each retry follows the last within the cap plus the send timeout
  // (500 ms) and some slack; a cap ten times higher spaces them 2.5-5 s.
  std::vector<double> spacing_ms;
  for (size_t i = 1; i < attempts.size(); ++i) {
    if (attempts[i - 1].first - down_at < 3s) continue;
    spacing_ms.push_back(
        std::chrono::duration<double, std::milli>(attempts[i].first - attempts[i - 1].first)
            .count() /
        (attempts[i].second - attempts[i - 1].second));
  }
  // EXPECT, not ASSERT: the service thread must still be joined.
  std::string spacings;
  for (double ms : spacing_ms) spacings += std::to_string(static_cast<int>(ms)) + " ";
  EXPECT_GE(spacing_ms.size(), 4u)
      << "too few retries of row " << oldest << " in 7 s: " << seen_attempts
      << " attempts; spacing (ms): " << spacings;
  if (!spacing_ms.empty()) {
    // The median, so one stall of this busy machine does not decide it.
    std::sort(spacing_ms.begin(), spacing_ms.end());
    EXPECT_LT(spacing_ms[spacing_ms.size() / 2], 1800)
        << "retries wait longer than the backoff cap allows; spacing (ms): " << spacings;
  }
  const int during_outage = committed;
  const uint64_t sent_before = outbox.stats().sent;
  StartBroker();
  // The backlog starts moving once the broker is back.
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().sent > sent_before; }));
  std::this_thread::sleep_for(500ms);
  stop = true;
  service.join();
  ASSERT_TRUE(outbox.Flush(60s).ok())
      << outbox.stats().pending << " left, " << outbox.stats().last_error;
  EXPECT_GT(during_outage, 50) << "the service kept committing while the broker was away";

  std::mutex mu;
  std::map<std::string, std::vector<int>> by_key;
  size_t total = 0;
  Consumer c({.broker = broker_->endpoint(),
              .group = "g",
              .handler_threads = 1,
              .max_in_flight = 1,
              .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 by_key[m.key].push_back(std::stoi(m.body));
                 ++total;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return total >= static_cast<size_t>(committed.load());
      },
      60s))
      << total << " of " << committed;
  c.Shutdown();
  EXPECT_EQ(total, static_cast<size_t>(committed.load()));
  for (const auto& [key, seq] : by_key) {
    EXPECT_TRUE(std::is_sorted(seq.begin(), seq.end())) << "key " << key << " out of commit order";
  }
}

TEST_F(LocalTables, AckedButUnmarkedRowIsResentAndAppliedOnce) {
  // The broker forgets ids quickly here, so the resend is stored twice and
  // only the consumer's inbox stands between it and a second effect.
  broker_->Stop();
  options_.dedup_window = 1s;
  StartBroker();
  {
    auto store = OpenStore("orders");
    Outbox outbox(*store, OutboxOpts("orders"));  // not started: the row waits
    ASSERT_TRUE(CommitOrder(*store, outbox, "42", "once").ok());
  }
  // The store as it was when the relay sent the row and was killed before
  // deleting it.
  std::filesystem::copy(dir_.Sub("orders"), dir_.Sub("snapshot"),
                        std::filesystem::copy_options::recursive);
  {
    auto store = OpenStore("orders");
    Outbox outbox(*store, OutboxOpts("orders"));
    ASSERT_TRUE(outbox.Start().ok());
    ASSERT_TRUE(outbox.Flush(10s).ok());  // sent, acknowledged, deleted
  }
  std::filesystem::remove_all(dir_.Sub("orders"));
  std::filesystem::rename(dir_.Sub("snapshot"), dir_.Sub("orders"));
  std::this_thread::sleep_for(2500ms);  // past the broker's dedup window
  {
    auto store = OpenStore("orders");
    EXPECT_EQ(Outbox::List(*store, false).size(), 1u) << "the row is pending again";
    Outbox outbox(*store, OutboxOpts("orders"));
    ASSERT_TRUE(outbox.Start().ok());
    ASSERT_TRUE(outbox.Flush(10s).ok());
  }
  auto inventory = OpenStore("inventory");
  Inbox inbox(*inventory, {.group = "inventory"});
  std::atomic<int> deliveries{0}, effects{0};
  Consumer c(ConsumerOpts("inventory"));
  Handler idempotent = inbox.Idempotent([&](LocalTxn& tx, const Received& m) {
    ++effects;
    EXPECT_TRUE(tx.Put("reserved/" + m.key, m.body).ok());
    return ConsumeResult::Success();
  });
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 ++deliveries;
                 return idempotent(m);
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return deliveries == 2; }));
  std::this_thread::sleep_for(300ms);
  c.Shutdown();
  EXPECT_EQ(effects, 1) << "delivered twice, applied once";
  EXPECT_EQ(*inventory->Get("reserved/42"), "once");
}

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

TEST_F(LocalTables, ARowIsParkedAfterMaxAttemptsWhenConfiguredSo) {
  broker_->Stop();  // away for good, as far as this outbox can tell
  auto store = OpenStore("orders");
  OutboxOptions options = OutboxOpts("orders");
  options.max_attempts = 3;
  Outbox outbox(*store, options);
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(CommitOrder(*store, outbox, "k", "1").ok());
  EXPECT_TRUE(WaitFor([&] { return outbox.stats().oldest_pending_age >= 100ms; }))
      << "a pending row ages";
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 1; }, 20s));
  EXPECT_EQ(outbox.stats().pending, 0u);
  EXPECT_EQ(outbox.stats().oldest_pending_age, 0ms);
  auto parked = Outbox::List(*store, true);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].attempts, 3u);
  EXPECT_FALSE(parked[0].last_error.empty());
}

TEST_F(LocalTables, ACompensationGoesToTheTopicTheOriginalNames) {
  // A plain producer (no producer group to answer to) names where a
  // business failure should be reported.
  Producer p({.broker = broker_->endpoint()});
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Send({.topic = "payments",
                      .key = "order-9",
                      .body = "charge 10",
                      .properties = {{property::kCompensateTo, "payment-failures"}},
                      .id = "payment-9"})
                  .ok());
  // Stored by txmq 0.1, whose name for it was "txmq-compensate-to".
  ASSERT_TRUE(p.Send({.topic = "payments",
                      .key = "order-8",
                      .body = "charge 20",
                      .properties = {{"txmq-compensate-to", "payment-failures"}},
                      .id = "payment-8"})
                  .ok());
  auto billing = OpenStore("billing");
  Outbox outbox(*billing, OutboxOpts("billing"));
  ASSERT_TRUE(outbox.Start().ok());
  Inbox inbox(*billing, {.group = "billing", .outbox = &outbox});
  Consumer c(ConsumerOpts("billing"));
  ASSERT_TRUE(c.Subscribe("payments", inbox.Idempotent([](LocalTxn&, const Received&) {
                 return ConsumeResult::Compensate("card declined");
               })).ok());
  ASSERT_TRUE(c.Start().ok());
  std::mutex mu;
  std::vector<Received> got;
  Consumer reader(ConsumerOpts("reader"));
  ASSERT_TRUE(reader
                  .Subscribe("payment-failures",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got.push_back(m);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(reader.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return got.size() >= 2;
  }));
  reader.Shutdown();
  c.Shutdown();
  std::sort(got.begin(), got.end(),
            [](const Received& a, const Received& b) { return a.key > b.key; });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].key, "order-9");
  EXPECT_EQ(got[0].body, "card declined");
  EXPECT_EQ(got[0].properties.at(property::kOriginalId), "payment-9");
  EXPECT_EQ(got[0].properties.at(property::kConsumerGroup), "billing");
  EXPECT_EQ(got[1].properties.at(property::kOriginalId), "payment-8");
}

TEST_F(LocalTables, RefusedRowIsParkedThenRequeuedAndDeliveredOnce) {
  broker_->Stop();
  options_.auto_create_topics = false;
  StartBroker();
  auto store = OpenStore("orders");
  Outbox outbox(*store, OutboxOpts("orders"));
  ASSERT_TRUE(outbox.Start().ok());
  LocalTxn tx = store->Begin();
  ASSERT_TRUE(outbox.Add(tx, {.topic = "not-yet", .body = "x", .id = "row-1"}).ok());
  ASSERT_TRUE(tx.Commit().ok());
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 1; }));
  auto parked = Outbox::List(*store, true);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].id, "row-1");
  EXPECT_NE(parked[0].last_error.find("NOT_FOUND"), std::string::npos) << parked[0].last_error;
  EXPECT_EQ(outbox.stats().pending, 0u) << "parked rows are not pending";

  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(
      admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("not-yet"); }).ok());
  ASSERT_TRUE(outbox.Requeue("row-1").ok());
  ASSERT_TRUE(outbox.Flush(10s).ok());
  EXPECT_EQ(outbox.stats().parked, 0u);
  std::atomic<int> got{0};
  Consumer c(ConsumerOpts("g"));
  ASSERT_TRUE(c.Subscribe("not-yet", [&](const Received&) {
                 ++got;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return got == 1; }));
  std::this_thread::sleep_for(300ms);
  c.Shutdown();
  EXPECT_EQ(got, 1);
  EXPECT_EQ(outbox.Requeue("row-1").code(), StatusCode::kNotFound);
}

TEST_F(LocalTables, RetentionKeepsPendingParkedAndRecentRecordsAndRemovesTheRest) {
  auto opened = LocalStore::Open(dir_.Sub("busy"), {.sync = false});
  ASSERT_TRUE(opened.ok());
  LocalStore& store = **opened;
  Inbox inbox(store, {.group = "g", .horizon = 1h});
  constexpr int kOld = 200'000;
  const int64_t two_hours_ago = NowMs() - 2 * 3'600'000;
  for (int batch = 0; batch < kOld / 2000; ++batch) {
    LocalTxn tx = store.Begin();
    for (int i = 0; i < 2000; ++i) {
      inbox::Write(tx, "g", "old-" + std::to_string(batch * 2000 + i), InboxState::kProcessed, "",
                   two_hours_ago + batch);
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  Outbox outbox(store, OutboxOpts("orders"));  // never started: its rows stay pending
  for (int i = 0; i < 10; ++i) {
    LocalTxn tx = store.Begin();
    ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .body = "pending"}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  {
    leveldb::WriteBatch parked;
    outbox::StoredRow row;
    row.message = {.topic = "bad", .body = "parked", .id = "parked-1"};
    row.created_ms = NowMs() - 3'600'000;  // old, but parked: an operator must decide
    parked.Put(outbox::ParkedKey(1'000'000), outbox::EncodeRow(row));
    ASSERT_TRUE(store.impl().Write(parked).ok());
  }
  {
    LocalTxn tx = store.Begin();
    for (int i = 0; i < 100; ++i)
      inbox::Write(tx, "g", "fresh-" + std::to_string(i), InboxState::kProcessed, "");
    ASSERT_TRUE(tx.Commit().ok());
  }
  ASSERT_TRUE(WaitFor([&] { return store.impl().retention_deleted() >= kOld; }, 120s))
      << store.impl().retention_deleted() << " deleted";
  EXPECT_GE(store.impl().retention_passes(), static_cast<uint64_t>(kOld / 1000))
      << "bounded batches of 1000";
  EXPECT_FALSE(inbox.Lookup("old-0").has_value());
  EXPECT_FALSE(inbox.Lookup("old-199999").has_value());
  EXPECT_TRUE(inbox.Lookup("fresh-0").has_value());
  EXPECT_TRUE(inbox.Lookup("fresh-99").has_value());
  EXPECT_EQ(Outbox::List(store, false).size(), 10u);
  EXPECT_EQ(Outbox::List(store, true).size(), 1u);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(store.impl().retention_deleted(), static_cast<uint64_t>(kOld)) << "nothing recent went";
}

}  // namespace
}  // namespace txmq
