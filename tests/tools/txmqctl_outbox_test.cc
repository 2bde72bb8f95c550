// txmqctl outbox: a service's local table, offline.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "tests/tools/ctl_fixture.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;

class CtlOutbox : public CtlTest {};

TEST_F(CtlOutbox, ListRequeueAndDeleteOffline) {
  // The broker refuses the topic for good: the row is parked.
  broker_->Stop();
  BrokerOptions o = testing::TestBrokerOptions(dir_.Sub("data"));
  o.auto_create_topics = false;
  broker_ = testing::StartBroker(o);
  ASSERT_NE(broker_, nullptr);
  {
    auto store = LocalStore::Open(dir_.Sub("orders-db"));
    ASSERT_TRUE(store.ok());
    Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
    ASSERT_TRUE(outbox.Start().ok());
    LocalTxn tx = (*store)->Begin();
    ASSERT_TRUE(outbox.Add(tx, {.topic = "no-such-topic", .body = "x", .id = "parked-1"}).ok());
    ASSERT_TRUE(tx.Commit().ok());
    ASSERT_TRUE(testing::WaitFor([&] { return outbox.stats().parked == 1; }));

    // While the service holds the store, txmqctl stays out.
    auto busy = Ctl({"outbox", "list", "--db", dir_.Sub("orders-db")});
    EXPECT_EQ(busy.exit_code, 1);
    EXPECT_NE(busy.err.find("open by a running service"), std::string::npos) << busy.err;
  }
  auto list = Ctl({"outbox", "list", "--db", dir_.Sub("orders-db"), "--state", "parked"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("parked-1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("NOT_FOUND"), std::string::npos) << list.out;
  auto j = Json({"outbox", "list", "--db", dir_.Sub("orders-db"), "--state", "all"});
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_EQ(j["rows"][0]["state"], "parked");
  EXPECT_GE(j["rows"][0]["attempts"].get<int>(), 1);

  auto dry = Ctl({"outbox", "requeue", "--db", dir_.Sub("orders-db"), "parked-1", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("nothing changed"), std::string::npos);
  EXPECT_EQ(
      Json({"outbox", "list", "--db", dir_.Sub("orders-db"), "--state", "parked"})["rows"].size(),
      1u);

  ASSERT_EQ(Ctl({"outbox", "requeue", "--db", dir_.Sub("orders-db"), "parked-1"}).exit_code, 0);
  auto pending = Json({"outbox", "list", "--db", dir_.Sub("orders-db")});
  ASSERT_EQ(pending["rows"].size(), 1u);
  EXPECT_EQ(pending["rows"][0]["state"], "pending");
  EXPECT_EQ(pending["rows"][0]["attempts"], 0);
  ExpectFails({"outbox", "requeue", "--db", dir_.Sub("orders-db"), "parked-1"}, kExitFailed,
              "pending already");

  ASSERT_EQ(Ctl({"outbox", "delete", "--db", dir_.Sub("orders-db"), "parked-1"}).exit_code, 0);
  EXPECT_TRUE(
      Json({"outbox", "list", "--db", dir_.Sub("orders-db"), "--state", "all"})["rows"].empty());
  ExpectFails({"outbox", "delete", "--db", dir_.Sub("orders-db"), "parked-1"}, kExitNotFound,
              "NOT_FOUND");
  ExpectFails({"outbox", "list", "--db", dir_.Sub("nope")}, kExitNotFound, "nope");
  ExpectFails({"outbox", "list"}, 2, "--db");
  ExpectFails({"outbox", "list", "--db", dir_.Sub("orders-db"), "--state", "lost"}, 2, "lost");
}

TEST_F(CtlOutbox, ARowBlockedBehindAParkedRowSaysWhichOne) {
  broker_->Stop();
  BrokerOptions o = testing::TestBrokerOptions(dir_.Sub("data"));
  o.auto_create_topics = false;  // refused for good: parked at once
  broker_ = testing::StartBroker(o);
  ASSERT_NE(broker_, nullptr);
  {
    auto store = LocalStore::Open(dir_.Sub("orders-db"));
    ASSERT_TRUE(store.ok());
    Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
    ASSERT_TRUE(outbox.Start().ok());
    for (const std::string id : {"first", "second"}) {
      LocalTxn tx = (*store)->Begin();
      ASSERT_TRUE(outbox.Add(tx, {.topic = "no-such-topic", .key = "k", .id = id}).ok());
      ASSERT_TRUE(tx.Commit().ok());
    }
    ASSERT_TRUE(testing::WaitFor([&] { return outbox.stats().blocked == 1; }));
  }
  auto list = Ctl({"outbox", "list", "--db", dir_.Sub("orders-db"), "--state", "all"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("blocked behind parked row first"), std::string::npos) << list.out;
  auto j = Json({"outbox", "list", "--db", dir_.Sub("orders-db")});
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_EQ(j["rows"][0]["id"], "second");
  EXPECT_EQ(j["rows"][0]["state"], "pending");
  EXPECT_EQ(j["rows"][0]["blocked_by"], "first");
}

TEST_F(CtlOutbox, DeleteDryRunDeletesNothingAndTheRelayStillSendsTheRow) {
  const std::string db = dir_.Sub("orders-db");
  {
    // Two committed rows; no relay ran since, so both wait in the store.
    auto store = LocalStore::Open(db);
    ASSERT_TRUE(store.ok());
    Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
    for (const std::string id : {"keep", "drop"}) {
      LocalTxn tx = (*store)->Begin();
      ASSERT_TRUE(outbox.Add(tx, {.topic = "orders", .key = "k-" + id, .body = id, .id = id}).ok());
      ASSERT_TRUE(tx.Commit().ok());
    }
  }
  auto dry = Ctl({"outbox", "delete", "--db", db, "keep", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out,
            "row keep (pending, topic orders, key k-keep, 0 attempts)\n"
            "dry run: would delete it: it would never be sent; nothing changed\n");
  auto j = Json({"outbox", "delete", "--db", db, "keep", "--dry-run"});
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["changed"], false);
  EXPECT_EQ(j["action"], "delete");
  EXPECT_EQ(j["row"]["id"], "keep");
  EXPECT_EQ(j["row"]["state"], "pending");
  ExpectFails({"outbox", "delete", "--db", db, "nope", "--dry-run"}, kExitNotFound, "nope");
  EXPECT_EQ(Json({"outbox", "list", "--db", db})["rows"].size(), 2u) << "a dry run deleted";

  // Without --dry-run the row goes.
  auto del = Ctl({"outbox", "delete", "--db", db, "drop"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(del.out, "row drop deleted\n");
  auto left = Json({"outbox", "list", "--db", db, "--state", "all"});
  ASSERT_EQ(left["rows"].size(), 1u) << left;
  EXPECT_EQ(left["rows"][0]["id"], "keep");

  // The service's relay sends what is left, and only that.
  {
    auto store = LocalStore::Open(db);
    ASSERT_TRUE(store.ok());
    Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "orders"}});
    ASSERT_TRUE(outbox.Start().ok());
    ASSERT_TRUE(outbox.Flush(std::chrono::seconds(20)).ok());
    EXPECT_EQ(outbox.stats().sent, 1u);
  }
  EXPECT_EQ(testing::DrainTopic(broker_->endpoint(), "orders", 1),
            (std::map<std::string, int>{{"keep", 1}}));
}

TEST_F(CtlOutbox, AMistypedStorePathIsAnErrorAndCreatesNothing) {
  // No directory at all, and a directory without a database (an empty
  // directory, or a typo that names some other directory).
  const std::string typo = dir_.Sub("ordrs-db");
  std::filesystem::create_directories(dir_.Sub("empty"));
  for (std::string verb : {"list", "requeue", "delete"}) {
    std::vector<std::string> args = {"outbox", verb, "--db", typo};
    if (verb != "list") args.push_back("some-row");
    ExpectFails(args, kExitNotFound,
                "NOT_FOUND: no local store at '" + typo + "': no such directory");
    EXPECT_FALSE(std::filesystem::exists(typo)) << verb << " created " << typo;
  }
  ExpectFails({"outbox", "list", "--db", dir_.Sub("empty")}, kExitNotFound, "no LevelDB database");
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Sub("empty"))) << "nothing was created inside";
}

}  // namespace
}  // namespace txmq
