// Local message tables against an embedded broker and real LevelDB
// stores: the outbox relay, its operations (parking, requeue) and
// retention. The inbox, compensation and store-backed transaction checks:
// local_tables_tx_test.cc.
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
