// The fixture of the PostgreSQL local-table tests: one real PostgreSQL
// server per test suite (starting one costs about two seconds), a fresh
// database and an embedded broker per test (broker_fixture.h).
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "producer/src/pg/pg_connection.h"
#include "tests/sql/broker_fixture.h"
#include "tests/testutil/postgres_server.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"

namespace txmq::testing {

class PgTest : public SqlBrokerTest {
 protected:
  static void SetUpTestSuite() { server_ = PostgresServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    conninfo_ = server_->CreateDatabase();
    SqlBrokerTest::SetUp();
    if (HasFatalFailure()) return;
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

  static inline PostgresServer* server_ = nullptr;
  std::string conninfo_;
  pg::Connection conn_;
};

}  // namespace txmq::testing
