// txmqctl outbox --sqlite: an operator lists, requeues and deletes rows of
// a SQLite outbox while the service's relay runs on the same file.
#include <gtest/gtest.h>

#include "tests/sql/ctl_scenario.h"
#include "tests/sql/sqlite_fixture.h"
#include "txmq/sqlite/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class SqliteCtl : public testing::SqlCtlTest<testing::SqliteTest> {};

TEST_F(SqliteCtl, ListRequeueAndDeleteWhileTheRelayRuns) {
  std::unique_ptr<sqlite::Outbox> outbox;
  ListRequeueAndDeleteWhileTheRelayRuns("--sqlite", path_, [&](const std::string& broker) {
    outbox.reset(new sqlite::Outbox({.path = path_,
                                     .producer = {.broker = broker, .group = "orders"},
                                     .backoff_initial = 20ms,
                                     .poll_interval = 100ms}));
    EXPECT_TRUE(outbox->Start().ok());
    return OutboxUnderTest{
        .add =
            [&](const std::string& topic, const std::string& id) {
              Sql(db_.get(), "BEGIN IMMEDIATE");
              EXPECT_TRUE(outbox->Add(db_.get(), {.topic = topic, .body = id, .id = id}).ok());
              Sql(db_.get(), "COMMIT");
            },
        .stats = [&] { return outbox->stats(); }};
  });
}

TEST_F(SqliteCtl, WrongOrMissingDatabaseIsAClearError) {
  auto neither = Ctl({"outbox", "list"});
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_NE(neither.err.find("--sqlite FILE"), std::string::npos) << neither.err;
  EXPECT_EQ(Ctl({"outbox", "list", "--db", "/nonexistent", "--sqlite", path_}).exit_code, 2);

  auto no_tables = Ctl({"outbox", "list", "--sqlite", path_});
  EXPECT_EQ(no_tables.exit_code, 4);
  EXPECT_NE(no_tables.err.find("no txmq_outbox table"), std::string::npos) << no_tables.err;

  const std::string missing = dir_.Sub("no-such.db");
  auto absent = Ctl({"outbox", "list", "--sqlite", missing});
  EXPECT_NE(absent.exit_code, 0);
  EXPECT_NE(absent.err.find("cannot open SQLite database"), std::string::npos) << absent.err;
  EXPECT_FALSE(std::filesystem::exists(missing)) << "txmqctl created no database";
}

}  // namespace
}  // namespace txmq
