// The PostgreSQL outbox with the service as a real process: SIGKILLed
// while placing orders (between commits, between a broker's ack and the
// row's deletion, wherever it falls), and a relay SIGSTOPped past its
// lease while another relay takes over. Every committed order is
// delivered exactly once, in key order; nothing else is.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <set>

#include "tests/sql/pg_fixture.h"
#include "tests/sql/service_tool.h"
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

}  // namespace
}  // namespace txmq
