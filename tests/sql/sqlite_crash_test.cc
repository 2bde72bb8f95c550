// The SQLite outbox with the service as a real process, SIGKILLed while it
// places orders (between a business commit and the relay's send, between
// a broker's ack and the row's deletion, inside a claim: wherever it
// falls), some orders rolled back. The messages are consumed by an
// idempotent consumer (a SQLite inbox recording an effect per message):
// every committed order has exactly one effect, in key order; no
// rolled-back order has any. A relay process killed mid-stream leaves its
// claims to another after the lease. A relay killed holding acknowledged
// rows it has not marked sent, and a consumer killed inside its handler's
// transaction, lose nothing, and the inbox keeps one effect per id.
#include <gtest/gtest.h>

#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "tests/sql/service_tool.h"
#include "tests/sql/sqlite_fixture.h"
#include "tests/testutil/admin_client.h"
#include "txmq/sqlite/inbox.h"
#include "txmq/sqlite/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class SqliteCrash : public testing::SqliteTest {
 protected:
  std::unique_ptr<testing::Process> Service(std::vector<std::string> args) {
    args.insert(args.begin(), testing::BinPath("txmq-test-sqliteservice"));
    auto p = testing::Process::Spawn(args, dir_.Sub("service.log"));
    EXPECT_NE(p, nullptr);
    return p;
  }

  sqlite::OutboxOptions RelayOptions(const std::string& instance) {
    sqlite::OutboxOptions o;
    o.path = path_;
    testing::SetTestRelayOptions(o, broker_->endpoint(), instance, 1s, 50ms);
    return o;
  }

  // Adds orders order-1000.. to the outbox, without sending; keyed k0..k4,
  // or without keys (never held behind an earlier row of theirs).
  std::set<std::string> AddOrders(int count, bool keyed = true) {
    sqlite::Outbox writer(RelayOptions("writer"));  // Add only
    std::set<std::string> ids;
    for (int i = 0; i < count; ++i) {
      const std::string id = "order-" + std::to_string(1000 + i);
      ids.insert(id);
      Sql(db_.get(), "BEGIN IMMEDIATE");
      EXPECT_TRUE(writer
                      .Add(db_.get(), {.topic = "orders",
                                       .key = keyed ? "k" + std::to_string(i % 5) : "",
                                       .body = id,
                                       .id = id})
                      .ok());
      Sql(db_.get(), "COMMIT");
    }
    return ids;
  }

  void SendAll() {
    sqlite::Outbox relay(RelayOptions("sender"));
    ASSERT_TRUE(relay.Start().ok());
    ASSERT_TRUE(relay.Flush(30s).ok()) << relay.stats().last_error;
  }

  // Runs the consumer service (no handler held) on the service's file
  // until `count` effects exist and half a second more; the effects'
  // message ids, repeats included.
  std::multiset<std::string> ConsumeInAService(size_t count) {
    auto consumer = Service({"consume", path_, broker_->endpoint(), "-", dir_.Sub("none")});
    EXPECT_TRUE(WaitFor([&] { return Count("effects") >= static_cast<int64_t>(count); }, 30s))
        << Count("effects") << " of " << count;
    std::this_thread::sleep_for(500ms);  // and nothing more
    consumer->Signal(SIGKILL);
    consumer->Wait(10s);
    std::multiset<std::string> ids;
    auto r = sqlite::Exec(db_.get(), "SELECT message_id FROM effects");
    EXPECT_TRUE(r.ok());
    for (const auto& row : r.ok() ? r->rows : std::vector<sqlite::Row>{}) {
      ids.insert(row.at(0).AsText());
    }
    return ids;
  }

  // Consumes "orders" through a SQLite inbox on the consumer's own file,
  // each run adding an effect row, until `count` effects exist and `quiet`
  // more passed; the effects' message ids, repeats included.
  std::multiset<std::string> ConsumeIdempotently(size_t count) {
    const std::string path = dir_.Sub("consumer.db");
    auto db = sqlite::Database::Open(path, 5s);
    EXPECT_TRUE(db.ok());
    Sql(db->get(), "CREATE TABLE effects (message_id TEXT, key TEXT, n INTEGER)");
    auto inbox = sqlite::Inbox::Open({.path = path, .group = "billing"});
    EXPECT_TRUE(inbox.ok()) << inbox.status().ToString();
    Consumer c({.broker = broker_->endpoint(), .group = "billing", .long_poll = 200ms});
    EXPECT_TRUE(c.Subscribe("orders", (*inbox)->Idempotent([](sqlite3* h, const Received& m) {
                   auto r = sqlite::Exec(h,
                                         "INSERT INTO effects SELECT ?1, ?2, count(*) FROM effects "
                                         "WHERE key = ?2",
                                         {sqlite::Value::Text(m.id), sqlite::Value::Text(m.key)});
                   return r.ok() ? ConsumeResult::Success() : ConsumeResult::RetryLater();
                 })).ok());
    EXPECT_TRUE(c.Start().ok());
    auto effects = [&] {
      auto r = sqlite::Exec(db->get(), "SELECT count(*) FROM effects");
      return r.ok() ? static_cast<size_t>(r->rows[0][0].AsInt()) : 0;
    };
    EXPECT_TRUE(WaitFor([&] { return effects() >= count; }, 30s)) << effects() << " of " << count;
    std::this_thread::sleep_for(500ms);  // and nothing more
    c.Shutdown();
    std::multiset<std::string> ids;
    auto r = sqlite::Exec(db->get(), "SELECT message_id, key FROM effects ORDER BY key, n");
    EXPECT_TRUE(r.ok());
    std::map<std::string, std::string> last_of_key;
    for (const auto& row : r->rows) {
      ids.insert(row[0].AsText());
      std::string& last = last_of_key[row[1].AsText()];
      EXPECT_LT(last, row[0].AsText()) << "key " << row[1].AsText() << " out of order";
      last = row[0].AsText();
    }
    return ids;
  }
};

TEST_F(SqliteCrash, AServiceKilledWhilePlacingOrdersLosesNoCommittedOrderAndSendsNoRolledBackOne) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  const std::string progress = dir_.Sub("progress");
  auto service = Service({"place", path_, broker_->endpoint(), "400", progress});
  ASSERT_TRUE(WaitFor([&] { return std::atoi(testing::ReadFile(progress).c_str()) >= 150; }, 30s))
      << testing::ReadFile(dir_.Sub("service.log"));
  service->Signal(SIGKILL);
  service->Wait(10s);
  const std::set<std::string> committed = Ids("orders");
  ASSERT_GE(committed.size(), 120u);
  EXPECT_GT(Count("txmq_outbox"), 0) << "the kill fell after some commits and before their relay";

  sqlite::Outbox relay(RelayOptions("after-the-crash"));
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.Flush(30s).ok()) << relay.stats().last_error;
  const std::multiset<std::string> effects = ConsumeIdempotently(committed.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), committed)
      << "every committed order, and no rolled-back one (order-1003, order-1010, ...)";
  EXPECT_EQ(effects.size(), committed.size()) << "each exactly once";
  EXPECT_EQ(committed.count("order-1003"), 0u) << "a rolled-back order";
}

TEST_F(SqliteCrash, ARelayProcessKilledMidStreamLeavesItsClaimsToAnother) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  auto killed = Service({"relay", path_, broker_->endpoint(), "killed", "1000"});
  sqlite::Outbox writer(RelayOptions("writer"));  // Add only
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "order-" + std::to_string(1000 + i);
    ids.insert(id);
    Sql(db_.get(), "BEGIN IMMEDIATE");
    ASSERT_TRUE(
        writer.Add(db_.get(), {.topic = "orders", .key = "k" + std::to_string(i % 5), .id = id})
            .ok());
    Sql(db_.get(), "COMMIT");
  }
  ASSERT_TRUE(WaitFor([&] { return Count("txmq_outbox") < 150; }, 20s)) << "the relay works";
  killed->Signal(SIGKILL);  // mid-stream: claims held, sends and acks not yet written
  killed->Wait(10s);
  sqlite::Outbox takeover(RelayOptions("takeover"));
  ASSERT_TRUE(takeover.Start().ok());
  ASSERT_TRUE(takeover.Flush(30s).ok()) << takeover.stats().last_error;
  EXPECT_EQ(Count("txmq_outbox"), 0);
  const std::multiset<std::string> effects = ConsumeIdempotently(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids);
  EXPECT_EQ(effects.size(), ids.size()) << "each exactly once";
}

// Marking a row sent deletes it: a trigger makes that fail, so however
// the kill falls, the relay dies holding rows the broker acknowledged and
// it did not mark sent. Another relay sends them again after the lease;
// the broker's dedup window and the inbox keep one effect per id.
TEST_F(SqliteCrash, ARelayKilledAfterTheBrokersAckBeforeMarkSentLosesNothing) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  Sql(db_.get(), "CREATE TABLE effects (message_id TEXT)");
  Sql(db_.get(),
      "CREATE TRIGGER hold_mark_sent BEFORE DELETE ON txmq_outbox "
      "BEGIN SELECT RAISE(ABORT, 'test: mark-sent held back'); END");
  // Unkeyed: a key's next row would wait for its unmarked predecessor.
  const std::set<std::string> ids = AddOrders(30, /*keyed=*/false);
  auto relay = Service({"relay", path_, broker_->endpoint(), "killed", "1000"});
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor([&] { return admin.TopicMessages("orders") == 30; }, 20s))
      << testing::ReadFile(dir_.Sub("service.log"));
  EXPECT_EQ(Count("txmq_outbox"), 30) << "acknowledged, none marked sent";
  relay->Signal(SIGKILL);
  relay->Wait(10s);
  Sql(db_.get(), "DROP TRIGGER hold_mark_sent");

  SendAll();
  EXPECT_EQ(Count("txmq_outbox"), 0);
  const std::multiset<std::string> effects = ConsumeInAService(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

// The consumer service is killed inside the handler of order-1020: its
// effect inserted, the inbox's record with it, neither committed (the
// write lock goes with the process). The restarted consumer gets it again
// after the visibility timeout, and every message the dead one committed
// but did not acknowledge too.
TEST_F(SqliteCrash, AConsumerKilledInsideItsHandlerLosesNothingAndRepeatsNothing) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  Sql(db_.get(), "CREATE TABLE effects (message_id TEXT)");
  const std::set<std::string> ids = AddOrders(40);
  SendAll();
  const std::string ready = dir_.Sub("ready");
  auto consumer = Service({"consume", path_, broker_->endpoint(), "order-1020", ready});
  ASSERT_TRUE(WaitFor([&] { return testing::ReadFile(ready).starts_with("in-handler"); }, 30s))
      << testing::ReadFile(dir_.Sub("service.log"));
  consumer->Signal(SIGKILL);
  consumer->Wait(10s);
  auto held =
      sqlite::Exec(db_.get(), "SELECT count(*) FROM effects WHERE message_id = 'order-1020'");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->rows.at(0).at(0).AsInt(), 0) << "the held effect never committed";

  const std::multiset<std::string> effects = ConsumeInAService(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

}  // namespace
}  // namespace txmq
