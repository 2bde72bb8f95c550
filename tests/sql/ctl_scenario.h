// `txmqctl outbox` against a SQL outbox while its relay runs, the same
// scenario for every backend (pg_txmqctl_test.cc, sqlite_txmqctl_test.cc):
// two rows parked (their topics do not exist), listed as table and JSON,
// one requeued (a dry run first) and sent by the running relay, the other
// deleted; each change writes an audit line naming the operator.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/outbox.h"

namespace txmq::testing {

// A backend's fixture (PgTest, SqliteTest) with the scenario.
template <class BackendTest>
class SqlCtlTest : public BackendTest {
 protected:
  CommandResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("txmqctl"), "--operator", "tester"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // A running outbox as the scenario drives it.
  struct OutboxUnderTest {
    std::function<void(const std::string& topic, const std::string& id)> add;  // committed
    std::function<OutboxStats()> stats;
  };

  // `flag` and `where` name the outbox to txmqctl ("--sqlite", a path);
  // `start` starts an outbox on the broker endpoint it is given.
  void ListRequeueAndDeleteWhileTheRelayRuns(
      const std::string& flag, const std::string& where,
      const std::function<OutboxUnderTest(const std::string& broker)>& start) {
    this->broker_->Stop();
    this->options_.auto_create_topics = false;
    this->broker_ = StartBroker(this->options_);
    ASSERT_NE(this->broker_, nullptr);
    OutboxUnderTest outbox = start(this->broker_->endpoint());
    outbox.add("orders", "row-1");
    outbox.add("gone", "row-2");
    ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 2; }));

    auto list_json = [&](const std::string& state) -> nlohmann::json {
      auto r = Ctl({"--json", "outbox", "list", flag, where, "--state", state});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << r.out;
      return j;
    };
    const nlohmann::json parked = list_json("parked");
    ASSERT_EQ(parked["rows"].size(), 2u) << parked.dump();
    EXPECT_EQ(parked["rows"][0]["id"], "row-1");
    EXPECT_EQ(parked["rows"][0]["state"], "parked");
    EXPECT_NE(parked["rows"][0]["last_error"].get<std::string>().find("NOT_FOUND"),
              std::string::npos);
    auto table = Ctl({"outbox", "list", flag, where, "--state", "all"});
    EXPECT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("row-2"), std::string::npos) << table.out;

    AdminClient admin(this->broker_->endpoint());
    ASSERT_TRUE(
        admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("orders"); }).ok());
    auto dry = Ctl({"outbox", "requeue", flag, where, "row-1", "--dry-run"});
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(list_json("parked")["rows"].size(), 2u) << "a dry run changes nothing";
    auto requeue = Ctl({"outbox", "requeue", flag, where, "row-1"});
    ASSERT_EQ(requeue.exit_code, 0) << requeue.err;
    EXPECT_NE(requeue.err.find("operator='tester' action=outbox-requeue"), std::string::npos)
        << requeue.err;
    ASSERT_TRUE(WaitFor([&] { return outbox.stats().sent == 1; })) << "the running relay sent it";

    auto del = Ctl({"outbox", "delete", flag, where, "row-2"});
    ASSERT_EQ(del.exit_code, 0) << del.err;
    EXPECT_NE(del.err.find("action=outbox-delete"), std::string::npos) << del.err;
    EXPECT_EQ(list_json("all")["rows"].size(), 0u);
    EXPECT_EQ(Ctl({"outbox", "delete", flag, where, "row-2"}).exit_code, 4) << "not found";
  }
};

}  // namespace txmq::testing
