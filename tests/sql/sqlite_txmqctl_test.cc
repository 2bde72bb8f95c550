// txmqctl outbox --sqlite: an operator lists, requeues and deletes rows of
// a SQLite outbox while the service's relay runs on the same file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/sql/sqlite_fixture.h"
#include "tests/testutil/admin_client.h"
#include "txmq/sqlite/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class SqliteCtl : public testing::SqliteTest {
 protected:
  testing::CommandResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinPath("txmqctl"), "--operator", "tester"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv);
  }

  nlohmann::json ListJson(const std::string& state) {
    auto r = Ctl({"--json", "outbox", "list", "--sqlite", path_, "--state", state});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  void Add(sqlite::Outbox& outbox, const std::string& topic, const std::string& id) {
    Sql(db_.get(), "BEGIN IMMEDIATE");
    ASSERT_TRUE(outbox.Add(db_.get(), {.topic = topic, .body = id, .id = id}).ok());
    Sql(db_.get(), "COMMIT");
  }
};

TEST_F(SqliteCtl, ListRequeueAndDeleteWhileTheRelayRuns) {
  broker_->Stop();
  options_.auto_create_topics = false;
  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  sqlite::Outbox outbox({.path = path_,
                         .producer = {.broker = broker_->endpoint(), .group = "orders"},
                         .backoff_initial = 20ms,
                         .poll_interval = 100ms});
  ASSERT_TRUE(outbox.Start().ok());
  Add(outbox, "orders", "row-1");
  Add(outbox, "gone", "row-2");
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 2; }));

  auto parked = ListJson("parked");
  ASSERT_EQ(parked["rows"].size(), 2u) << parked.dump();
  EXPECT_EQ(parked["rows"][0]["id"], "row-1");
  EXPECT_EQ(parked["rows"][0]["state"], "parked");
  EXPECT_NE(parked["rows"][0]["last_error"].get<std::string>().find("NOT_FOUND"),
            std::string::npos);
  auto table = Ctl({"outbox", "list", "--sqlite", path_, "--state", "all"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("row-2"), std::string::npos) << table.out;

  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(
      admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("orders"); }).ok());
  auto dry = Ctl({"outbox", "requeue", "--sqlite", path_, "row-1", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(ListJson("parked")["rows"].size(), 2u) << "a dry run changes nothing";
  auto requeue = Ctl({"outbox", "requeue", "--sqlite", path_, "row-1"});
  ASSERT_EQ(requeue.exit_code, 0) << requeue.err;
  EXPECT_NE(requeue.err.find("operator='tester' action=outbox-requeue"), std::string::npos)
      << requeue.err;
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().sent == 1; })) << "the running relay sent it";

  auto del = Ctl({"outbox", "delete", "--sqlite", path_, "row-2"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_NE(del.err.find("action=outbox-delete"), std::string::npos) << del.err;
  EXPECT_EQ(ListJson("all")["rows"].size(), 0u);
  EXPECT_EQ(Ctl({"outbox", "delete", "--sqlite", path_, "row-2"}).exit_code, 4) << "not found";
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
