// The PostgreSQL outbox with the service as a real process: SIGKILLed
// while placing orders (between commits, between a broker's ack and the
// row's deletion, wherever it falls), and a relay SIGSTOPped past its
// lease while another relay takes over. Every committed order is
// delivered exactly once, in key order; nothing else is. A relay killed
// holding acknowledged rows it has not marked sent, and a consumer killed
// inside its handler's transaction, lose nothing, and the inbox keeps one
// effect per message id.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <set>
#include <thread>

#include "tests/sql/pg_fixture.h"
#include "tests/sql/service_tool.h"
#include "tests/testutil/admin_client.h"
#include "txmq/pg/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class PgCrash : public testing::PgTest {
 protected:
  std::unique_ptr<testing::Process> Service(std::vector<std::string> args) {
    args.insert(args.begin(), testing::BinPath("txmq-test-pgservice"));
    auto p = testing::Process::Spawn(args, dir_.Sub("service.log"));
    EXPECT_NE(p, nullptr);
    return p;
  }

  pg::OutboxOptions RelayOptions(const std::string& instance) {
    pg::OutboxOptions o;
    o.conninfo = conninfo_;
    testing::SetTestRelayOptions(o, broker_->endpoint(), instance, 1s, 100ms);
    return o;
  }

  // Adds orders order-1000.. to the outbox, without sending; keyed k0..k4,
  // or without keys (never held behind an earlier row of theirs).
  std::set<std::string> AddOrders(int count, bool keyed = true) {
    pg::Outbox writer(RelayOptions("writer"));  // Add only
    std::set<std::string> ids;
    for (int i = 0; i < count; ++i) {
      const std::string id = "order-" + std::to_string(1000 + i);
      ids.insert(id);
      Sql(conn_.get(), "BEGIN");
      EXPECT_TRUE(writer
                      .Add(conn_.get(), {.topic = "orders",
                                         .key = keyed ? "k" + std::to_string(i % 5) : "",
                                         .body = id,
                                         .id = id})
                      .ok());
      Sql(conn_.get(), "COMMIT");
    }
    return ids;
  }

  void SendAll() {
    pg::Outbox relay(RelayOptions("sender"));
    ASSERT_TRUE(relay.Start().ok());
    ASSERT_TRUE(relay.Flush(30s).ok()) << relay.stats().last_error;
  }

  // Runs the consumer service (no handler held) until `count` effects
  // exist and half a second more; the effects' message ids, repeats
  // included.
  std::multiset<std::string> ConsumeInAService(size_t count) {
    auto consumer = Service({"consume", conninfo_, broker_->endpoint(), "-", dir_.Sub("none")});
    EXPECT_TRUE(WaitFor([&] { return Count("effects") >= static_cast<int64_t>(count); }, 30s))
        << Count("effects") << " of " << count;
    std::this_thread::sleep_for(500ms);  // and nothing more
    consumer->Signal(SIGKILL);
    consumer->Wait(10s);
    std::multiset<std::string> ids;
    auto r = pg::Exec(conn_.get(), "SELECT message_id FROM effects");
    EXPECT_TRUE(r.ok());
    for (int i = 0; r.ok() && i < PQntuples(r->get()); ++i) {
      ids.insert(std::string(pg::Field(r->get(), i, 0)));
    }
    return ids;
  }

  std::set<std::string> CommittedOrders() {
    std::set<std::string> ids;
    auto r = pg::Exec(conn_.get(), "SELECT id FROM orders");
    EXPECT_TRUE(r.ok());
    for (int i = 0; r.ok() && i < PQntuples(r->get()); ++i) {
      ids.insert(std::string(pg::Field(r->get(), i, 0)));
    }
    return ids;
  }
};

TEST_F(PgCrash, AServiceKilledWhilePlacingOrdersLosesNoCommittedOrder) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  const std::string progress = dir_.Sub("progress");
  auto service = Service({"place", conninfo_, broker_->endpoint(), "400", progress});
  ASSERT_TRUE(WaitFor([&] { return std::atoi(testing::ReadFile(progress).c_str()) >= 150; }, 30s))
      << testing::ReadFile(dir_.Sub("service.log"));
  service->Signal(SIGKILL);
  service->Wait(10s);
  const std::set<std::string> committed = CommittedOrders();
  ASSERT_GE(committed.size(), 150u);

  pg::Outbox relay(RelayOptions("after-the-crash"));
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.Flush(30s).ok()) << relay.stats().last_error;
  ExpectEachOnceInKeyOrder(Receive(committed.size(), 500ms), committed);
}

TEST_F(PgCrash, ARelayStoppedPastItsLeaseChangesNothingWhenItWakes) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  auto stopped = Service({"relay", conninfo_, broker_->endpoint(), "stopped", "1000"});
  pg::Outbox writer(RelayOptions("writer"));  // Add only
  auto place = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string id = "order-" + std::to_string(1000 + i);
      Sql(conn_.get(), "BEGIN");
      Sql(conn_.get(), "INSERT INTO orders VALUES ('" + id + "', 1)");
      ASSERT_TRUE(
          writer
              .Add(conn_.get(),
                   {.topic = "orders", .key = "k" + std::to_string(i % 5), .body = id, .id = id})
              .ok());
      Sql(conn_.get(), "COMMIT");
    }
  };
  place(0, 100);
  ASSERT_TRUE(WaitFor([&] { return Count("txmq_outbox") < 100; }, 20s)) << "the relay works";
  stopped->Signal(SIGSTOP);  // mid-stream: it may hold claims, sends, acks not yet written
  place(100, 200);
  pg::Outbox takeover(RelayOptions("takeover"));
  ASSERT_TRUE(takeover.Start().ok());
  ASSERT_TRUE(takeover.Flush(30s).ok()) << takeover.stats().last_error;
  stopped->Signal(SIGCONT);  // its late writes name old fences: they change nothing
  place(200, 220);
  ASSERT_TRUE(takeover.Flush(30s).ok()) << takeover.stats().last_error;
  EXPECT_EQ(Count("txmq_outbox"), 0);
  stopped->Signal(SIGKILL);
  stopped->Wait(10s);
  ExpectEachOnceInKeyOrder(Receive(220, 500ms), CommittedOrders());
}

// Marking a row sent deletes it: a trigger makes that fail, so however
// the kill falls, the relay dies holding rows the broker acknowledged and
// it did not mark sent. Another relay sends them again after the lease;
// the broker's dedup window and the inbox keep one effect per id.
TEST_F(PgCrash, ARelayKilledAfterTheBrokersAckBeforeMarkSentLosesNothing) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  Sql(conn_.get(), "CREATE TABLE effects (message_id text)");
  Sql(conn_.get(),
      "CREATE FUNCTION hold_mark_sent() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN RAISE EXCEPTION 'test: mark-sent held back'; END $$");
  Sql(conn_.get(),
      "CREATE TRIGGER hold_mark_sent BEFORE DELETE ON txmq_outbox FOR EACH ROW "
      "EXECUTE FUNCTION hold_mark_sent()");
  // Unkeyed: a key's next row would wait for its unmarked predecessor.
  const std::set<std::string> ids = AddOrders(30, /*keyed=*/false);
  auto relay = Service({"relay", conninfo_, broker_->endpoint(), "killed", "1000"});
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor([&] { return admin.TopicMessages("orders") == 30; }, 20s))
      << testing::ReadFile(dir_.Sub("service.log"));
  EXPECT_EQ(Count("txmq_outbox"), 30) << "acknowledged, none marked sent";
  relay->Signal(SIGKILL);
  relay->Wait(10s);
  Sql(conn_.get(), "DROP TRIGGER hold_mark_sent ON txmq_outbox");

  SendAll();
  EXPECT_EQ(Count("txmq_outbox"), 0);
  const std::multiset<std::string> effects = ConsumeInAService(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

// The consumer service is killed inside the handler of order-1020: its
// effect inserted, the inbox's record with it, neither committed. The
// restarted consumer gets it again (after the visibility timeout), and
// every message the dead one committed but did not acknowledge too.
TEST_F(PgCrash, AConsumerKilledInsideItsHandlerLosesNothingAndRepeatsNothing) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  Sql(conn_.get(), "CREATE TABLE effects (message_id text)");
  const std::set<std::string> ids = AddOrders(40);
  SendAll();
  const std::string ready = dir_.Sub("ready");
  auto consumer = Service({"consume", conninfo_, broker_->endpoint(), "order-1020", ready});
  ASSERT_TRUE(WaitFor([&] { return testing::ReadFile(ready).starts_with("in-handler"); }, 30s))
      << testing::ReadFile(dir_.Sub("service.log"));
  auto held = pg::Exec(conn_.get(), "SELECT count(*) FROM effects WHERE message_id = 'order-1020'");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(pg::IntField(held->get(), 0, 0), 0) << "the held effect is not committed";
  consumer->Signal(SIGKILL);
  consumer->Wait(10s);

  const std::multiset<std::string> effects = ConsumeInAService(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

}  // namespace
}  // namespace txmq
