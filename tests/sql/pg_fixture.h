// The fixture of the PostgreSQL local-table tests: one real PostgreSQL
// server per test suite (starting one costs about two seconds), a fresh
// database and an embedded broker per test.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "producer/src/pg/pg_connection.h"
#include "tests/testutil/postgres_server.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"

namespace txmq::testing {

class PgTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = PostgresServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    conninfo_ = server_->CreateDatabase();
    options_ = TestBrokerOptions(dir_.Sub("broker"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    conn_ = Connect();
    Sql(conn_.get(), "CREATE TABLE orders (id text PRIMARY KEY, amount int)");
  }

  pg::Connection Connect() {
    auto c = pg::Connection::Open(conninfo_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : pg::Connection();
  }

  static void Sql(PGconn* conn, const std::string& sql) {
    auto r = pg::Exec(conn, sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }

  int64_t Count(const std::string& table) {
    auto r = pg::Exec(conn_.get(), "SELECT count(*) FROM " + table);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? pg::IntField(r->get(), 0, 0) : -1;
  }

  // What the group "reader" receives of topic "orders" until `count`
  // messages came (then `quiet` more of nothing), in arrival order.
  std::vector<Received> Receive(size_t count,
                                std::chrono::milliseconds quiet = std::chrono::milliseconds(300)) {
    std::mutex mu;
    std::vector<Received> got;
    Consumer c({.broker = broker_->endpoint(),
                .group = "reader",
                .handler_threads = 1,
                .max_in_flight = 1,
                .long_poll = std::chrono::milliseconds(200)});
    EXPECT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   got.push_back(m);
                   return ConsumeResult::Success();
                 }).ok());
    EXPECT_TRUE(c.Start().ok());
    EXPECT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return got.size() >= count;
    }));
    std::this_thread::sleep_for(quiet);  // and nothing more
    c.Shutdown();
    std::lock_guard<std::mutex> lock(mu);
    return got;
  }

  static std::map<std::string, std::vector<std::string>> ByKey(const std::vector<Received>& got) {
    std::map<std::string, std::vector<std::string>> by_key;
    for (const auto& m : got) by_key[m.key].push_back(m.id);
    return by_key;
  }

  static inline PostgresServer* server_ = nullptr;
  TempDir dir_;
  std::string conninfo_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  pg::Connection conn_;
};

}  // namespace txmq::testing
