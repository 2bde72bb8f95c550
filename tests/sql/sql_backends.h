// The two SQL backends as one type each, for tests written once for both
// (TYPED_TEST over SqlBackends): the fixture, the public types, and the
// few statements whose spelling differs.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "tests/sql/pg_fixture.h"
#include "tests/sql/sqlite_fixture.h"
#include "txmq/pg/compensation.h"
#include "txmq/pg/inbox.h"
#include "txmq/pg/outbox.h"
#include "txmq/pg/transactions.h"
#include "txmq/sqlite/compensation.h"
#include "txmq/sqlite/inbox.h"
#include "txmq/sqlite/outbox.h"
#include "txmq/sqlite/transactions.h"

namespace txmq::testing {

struct PgBackend {
  static constexpr const char* kName = "Pg";
  using Fixture = PgTest;
  using Handle = PGconn*;
  using Inbox = pg::Inbox;
  using Outbox = pg::Outbox;
  using Records = pg::TransactionRecords;
  static constexpr const char* kBegin = "BEGIN";

  // `sql` with $1, $2, ... for `params`.
  static Status Exec(Handle h, const std::string& sql, const std::vector<std::string>& params) {
    std::vector<pg::Param> p;
    for (const auto& v : params) p.push_back(pg::Param::Text(v));
    auto r = pg::Exec(h, sql, p);
    return r.ok() ? Status::OK() : r.status();
  }
  static Result<Handler> CompensationHandler(Inbox& inbox, pg::SqlCompensationHandler undo,
                                             CompensationOptions options) {
    return pg::CompensationHandler(inbox, std::move(undo), options);
  }
  static Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& group,
                               pg::SqlCompensationHandler undo) {
    return pg::OnCompensation(consumer, inbox, group, std::move(undo));
  }
};

struct SqliteBackend {
  static constexpr const char* kName = "Sqlite";
  using Fixture = SqliteTest;
  using Handle = sqlite3*;
  using Inbox = sqlite::Inbox;
  using Outbox = sqlite::Outbox;
  using Records = sqlite::TransactionRecords;
  static constexpr const char* kBegin = "BEGIN IMMEDIATE";

  // `sql` with $1, $2, ... (SQLite's ?1, ?2, ...) for `params`.
  static Status Exec(Handle h, std::string sql, const std::vector<std::string>& params) {
    for (char& c : sql) {
      if (c == '$') c = '?';
    }
    std::vector<sqlite::Value> p;
    for (const auto& v : params) p.push_back(sqlite::Value::Text(v));
    auto r = sqlite::Exec(h, sql, p);
    return r.ok() ? Status::OK() : r.status();
  }
  static Result<Handler> CompensationHandler(Inbox& inbox, sqlite::SqlCompensationHandler undo,
                                             CompensationOptions options) {
    return sqlite::CompensationHandler(inbox, std::move(undo), options);
  }
  static Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& group,
                               sqlite::SqlCompensationHandler undo) {
    return sqlite::OnCompensation(consumer, inbox, group, std::move(undo));
  }
};

using SqlBackends = ::testing::Types<PgBackend, SqliteBackend>;

struct SqlBackendNames {
  template <typename B>
  static std::string GetName(int) {
    return B::kName;
  }
};

// The fixture's database, opened and migrated the backend's way.
template <typename B>
class SqlBackendTest : public B::Fixture {
 protected:
  using Handle = typename B::Handle;

  Handle main_handle() {
    if constexpr (std::is_same_v<B, PgBackend>) {
      return this->conn_.get();
    } else {
      return this->db_.get();
    }
  }

  auto InboxOptions(const std::string& group, typename B::Outbox* outbox) {
    if constexpr (std::is_same_v<B, PgBackend>) {
      return pg::InboxOptions{.conninfo = this->conninfo_, .group = group, .outbox = outbox};
    } else {
      return sqlite::InboxOptions{.path = this->path_, .group = group, .outbox = outbox};
    }
  }

  // `outbox`: where its compensations go (Compensate), if anywhere.
  std::unique_ptr<typename B::Inbox> OpenInbox(const std::string& group,
                                               typename B::Outbox* outbox = nullptr) {
    auto inbox = B::Inbox::Open(InboxOptions(group, outbox));
    EXPECT_TRUE(inbox.ok()) << inbox.status().ToString();
    return inbox.ok() ? std::move(*inbox) : nullptr;
  }

  // An outbox of producer group "orders", its relay not started (Add
  // needs none).
  std::unique_ptr<typename B::Outbox> MakeOutbox(
      std::chrono::milliseconds record_horizon = std::chrono::hours(1)) {
    if constexpr (std::is_same_v<B, PgBackend>) {
      auto o = std::make_unique<pg::Outbox>(
          pg::OutboxOptions{.conninfo = this->conninfo_,
                            .producer = {.broker = this->broker_->endpoint(), .group = "orders"},
                            .record_horizon = record_horizon});
      EXPECT_TRUE(pg::Outbox::Migrate(main_handle()).ok());
      return o;
    } else {
      auto o = std::make_unique<sqlite::Outbox>(sqlite::OutboxOptions{
          .path = this->path_,
          .producer = {.broker = this->broker_->endpoint(), .group = "orders"},
          .record_horizon = record_horizon});
      EXPECT_TRUE(sqlite::Outbox::Migrate(main_handle()).ok());
      return o;
    }
  }

  std::unique_ptr<typename B::Records> OpenRecords() {
    if constexpr (std::is_same_v<B, PgBackend>) {
      auto r = pg::TransactionRecords::Open({.conninfo = this->conninfo_});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      return r.ok() ? std::move(*r) : nullptr;
    } else {
      auto r = sqlite::TransactionRecords::Open({.path = this->path_});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      return r.ok() ? std::move(*r) : nullptr;
    }
  }

  static void Run(Handle h, const std::string& sql, const std::vector<std::string>& params = {}) {
    Status s = B::Exec(h, sql, params);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.ToString();
  }
};

}  // namespace txmq::testing
