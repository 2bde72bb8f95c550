// The fixture of the SQLite local-table tests: a database file in a temp
// dir with the business table "orders", and an embedded broker per test
// (broker_fixture.h).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>
#include <string>

#include "producer/src/sqlite/sqlite_db.h"
#include "tests/sql/broker_fixture.h"

namespace txmq::testing {

class SqliteTest : public SqlBrokerTest {
 protected:
  void SetUp() override {
    SqlBrokerTest::SetUp();
    if (HasFatalFailure()) return;
    path_ = dir_.Sub("service.db");
    db_ = Open();
    Sql(db_.get(), "CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER)");
  }

  sqlite::Database Open(std::chrono::milliseconds busy_timeout = std::chrono::seconds(5)) {
    auto d = sqlite::Database::Open(path_, busy_timeout);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(*d) : sqlite::Database();
  }

  static void Sql(sqlite3* db, const std::string& sql) {
    auto r = sqlite::Exec(db, sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }

  int64_t Count(const std::string& table) {
    auto r = sqlite::Exec(db_.get(), "SELECT count(*) FROM " + table);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->rows.at(0).at(0).AsInt() : -1;
  }

  std::set<std::string> Ids(const std::string& table) {
    std::set<std::string> ids;
    auto r = sqlite::Exec(db_.get(), "SELECT id FROM " + table);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& row : r.ok() ? r->rows : std::vector<sqlite::Row>{}) {
      ids.insert(row.at(0).AsText());
    }
    return ids;
  }

  std::string path_;
  sqlite::Database db_;
};

}  // namespace txmq::testing
