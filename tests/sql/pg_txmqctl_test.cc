// txmqctl outbox --pg: an operator lists, requeues and deletes rows of a
// PostgreSQL outbox while the service's relay runs.
#include <gtest/gtest.h>

#include "tests/sql/ctl_scenario.h"
#include "tests/sql/pg_fixture.h"
#include "txmq/pg/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class PgCtl : public testing::SqlCtlTest<testing::PgTest> {};

TEST_F(PgCtl, ListRequeueAndDeleteWhileTheRelayRuns) {
  std::unique_ptr<pg::Outbox> outbox;
  ListRequeueAndDeleteWhileTheRelayRuns("--pg", conninfo_, [&](const std::string& broker) {
    outbox.reset(new pg::Outbox({.conninfo = conninfo_,
                                 .producer = {.broker = broker, .group = "orders"},
                                 .backoff_initial = 20ms,
                                 .poll_interval = 200ms}));
    EXPECT_TRUE(outbox->Start().ok());
    return OutboxUnderTest{
        .add =
            [&](const std::string& topic, const std::string& id) {
              Sql(conn_.get(), "BEGIN");
              EXPECT_TRUE(outbox->Add(conn_.get(), {.topic = topic, .body = id, .id = id}).ok());
              Sql(conn_.get(), "COMMIT");
            },
        .stats = [&] { return outbox->stats(); }};
  });
}

TEST_F(PgCtl, WrongOrMissingDatabaseIsAClearError) {
  auto neither = Ctl({"outbox", "list"});
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_NE(neither.err.find("--db DIR"), std::string::npos) << neither.err;
  EXPECT_NE(neither.err.find("--pg CONNINFO"), std::string::npos) << neither.err;
  EXPECT_EQ(Ctl({"outbox", "list", "--db", "/nonexistent", "--pg", conninfo_}).exit_code, 2);

  auto no_tables = Ctl({"outbox", "list", "--pg", conninfo_});
  EXPECT_EQ(no_tables.exit_code, 4);
  EXPECT_NE(no_tables.err.find("no txmq_outbox table"), std::string::npos) << no_tables.err;

  const std::string nobody_there =
      "host=127.0.0.1 port=" + std::to_string(testing::FreeLoopbackPort()) +
      " dbname=x password=secret connect_timeout=2";
  auto refused = Ctl({"outbox", "list", "--pg", nobody_there});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("cannot connect to PostgreSQL"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("secret"), std::string::npos) << "the password is not printed";
}

}  // namespace
}  // namespace txmq
