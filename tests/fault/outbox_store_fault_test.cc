// The outbox relay when its own bookkeeping cannot be written: the local
// store refuses the write that records what the broker answered.
#include <gtest/gtest.h>

#include "storage/src/local_store_impl.h"
#include "tests/fault/log_fault_env.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

TEST(OutboxStoreFault, AFailedBookkeepingWriteLosesNothingAndTheRowIsSentAgain) {
  testing::TempDir dir;
  auto broker = testing::StartBroker(testing::TestBrokerOptions(dir.Sub("broker")));
  ASSERT_NE(broker, nullptr);
  testing::LogFaultEnv env;  // outlives the store
  auto opened = LocalStore::Impl::Open(dir.Sub("db"), {}, &env);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  LocalStore& store = **opened;
  OutboxOptions options;
  options.producer = {.broker = broker->endpoint(), .group = "orders"};
  options.backoff_initial = 50ms;
  options.backoff_max = 200ms;
  Outbox outbox(store, options);
  {
    LocalTxn tx = store.Begin();
    ASSERT_TRUE(tx.Put("order/1", "created").ok());
    ASSERT_TRUE(
        outbox.Add(tx, {.topic = "orders", .key = "1", .body = "order 1", .id = "row-1"}).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  // The broker acknowledges the row, but deleting it from the store fails.
  env.FailAppends(true);
  ASSERT_TRUE(outbox.Start().ok());
  testing::AdminClient admin(broker->endpoint());
  ASSERT_TRUE(WaitFor([&] { return env.failed_appends() >= 1; }))
      << "the relay never wrote its bookkeeping";
  ASSERT_TRUE(WaitFor([&] { return admin.TopicMessages("orders") == 1; }));
  EXPECT_NE(outbox.stats().last_error.find("outbox bookkeeping write to the local store failed"),
            std::string::npos)
      << "the failure is reported: '" << outbox.stats().last_error << "'";
  // Nothing is lost and nothing pretends to be done: the row is still in
  // the store, still pending, and Flush does not say it went.
  auto rows = Outbox::List(store, false);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, "row-1");
  EXPECT_EQ(outbox.stats().pending, 1u);
  EXPECT_EQ(outbox.Flush(300ms).code(), StatusCode::kTimeout);
  // The relay keeps at it: the row is sent again (and its deletion tried
  // again) while the store still refuses.
  const int failed = env.failed_appends();
  EXPECT_TRUE(WaitFor([&] { return env.failed_appends() > failed; }))
      << "the acknowledged row was not tried again";

  // The store writes again: the row is sent once more and deleted.
  env.FailAppends(false);
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_TRUE(Outbox::List(store, false).empty()) << "the row stayed in the store";
  EXPECT_EQ(outbox.stats().pending, 0u);
  EXPECT_EQ(outbox.stats().sent, 1u);
  EXPECT_EQ(*store.Get("order/1"), "created");
  // The resends were duplicates to the broker: one copy, delivered once.
  EXPECT_EQ(admin.TopicMessages("orders"), 1);
  auto seen = testing::DrainTopic(broker->endpoint(), "orders", 1, 500ms, 10s);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["row-1"], 1);
  outbox.Shutdown();
}

}  // namespace
}  // namespace txmq
