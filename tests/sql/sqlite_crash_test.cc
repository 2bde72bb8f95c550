// The SQLite outbox with the service as a real process, SIGKILLed while it
// places orders (between a business commit and the relay's send, between
// a broker's ack and the row's deletion, inside a claim: wherever it
// falls), some orders rolled back. The messages are consumed by an
// idempotent consumer (a SQLite inbox recording an effect per message):
// every committed order has exactly one effect, in key order; no
// rolled-back order has any. A relay process killed mid-stream leaves its
// claims to another after the lease. A relay killed holding acknowledged
// rows it has not marked sent, and a consumer killed inside its handler's
// transaction, lose nothing, and the inbox keeps one effect per id. A
// relay process stopped past its lease between its claim and its
// mark-sent changes nothing when it wakes.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "tests/sql/service_tool.h"
#include "tests/sql/sqlite_fixture.h"
#include "tests/testutil/admin_client.h"
#include "txmq/sqlite/inbox.h"
#include "txmq/sqlite/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

// Whether SIGSTOP took effect on `pid` (state 'T' in /proc/PID/stat).
bool IsStopped(pid_t pid) {
  const std::string stat = testing::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T';
}

class SqliteCrash : public testing::SqliteTest {
 protected:
  std::unique_ptr<testing::Process> Service(std::vector<std::string> args) {
    args.insert(args.begin(), testing::BinPath("txmq-test-sqliteservice"));
    auto p = testing::Process::Spawn(args, dir_.Sub("service.log"));
    EXPECT_NE(p, nullptr);
    return p;
  }

  sqlite::OutboxOptions RelayOptions(const std::string& instance) {
    sqlite::OutboxOptions o;
    o.path = path_;
    testing::SetTestRelayOptions(o, broker_->endpoint(), instance, 1s, 50ms);
    return o;
  }

  // Adds orders order-1000.. to the outbox, without sending; keyed k0..k4,
  // or without keys (never held behind an earlier row of theirs).
  std::set<std::string> AddOrders(int count, bool keyed = true) {
    sqlite::Outbox writer(RelayOptions("writer"));  // Add only
    std::set<std::string> ids;
    for (int i = 0; i < count; ++i) {
      const std::string id = "order-" + std::to_string(1000 + i);
      ids.insert(id);
      Sql(db_.get(), "BEGIN IMMEDIATE");
      EXPECT_TRUE(writer
                      .Add(db_.get(), {.topic = "orders",
                                       .key = keyed ? "k" + std::to_string(i % 5) : "",
                                       .body = id,
                                       .id = id})
                      .ok());
      Sql(db_.get(), "COMMIT");
    }
    return ids;
  }

  void SendAll() {
    sqlite::Outbox relay(RelayOptions("sender"));
    ASSERT_TRUE(relay.Start().ok());
    ASSERT_TRUE(relay.Flush(30s).ok()) << relay.stats().last_error;
  }

  // Runs the consumer service (no handler held) on the service's file
  // until `count` effects exist and half a second more; the effects'
  // message ids, repeats included.
  std::multiset<std::string> ConsumeInAService(size_t count) {
    auto consumer = Service({"consume", path_, broker_->endpoint(), "-", dir_.Sub("none")});
    EXPECT_TRUE(WaitFor([&] { return Count("effects") >= static_cast<int64_t>(count); }, 30s))
        << Count("effects") << " of " << count;
    std::this_thread::sleep_for(500ms);  // and nothing more
    consumer->Signal(SIGKILL);
    consumer->Wait(10s);
    std::multiset<std::string> ids;
    auto r = sqlite::Exec(db_.get(), "SELECT message_id FROM effects");
    EXPECT_TRUE(r.ok());
    for (const auto& row : r.ok() ? r->rows : std::vector<sqlite::Row>{}) {
      ids.insert(row.at(0).AsText());
    }
    return ids;
  }

  // Orders order-<1000+from> .. order-<1000+to-1>, keyed k0..k4: each a
  // business row and an outbox row in one transaction, not sent.
  std::set<std::string> PlaceOrders(int from, int to) {
    sqlite::Outbox writer(RelayOptions("writer"));  // Add only
    std::set<std::string> ids;
    for (int i = from; i < to; ++i) {
      const std::string id = "order-" + std::to_string(1000 + i);
      ids.insert(id);
      Sql(db_.get(), "BEGIN IMMEDIATE");
      Sql(db_.get(), "INSERT INTO orders VALUES ('" + id + "', 1)");
      EXPECT_TRUE(
          writer
              .Add(db_.get(),
                   {.topic = "orders", .key = "k" + std::to_string(i % 5), .body = id, .id = id})
              .ok());
      Sql(db_.get(), "COMMIT");
    }
    return ids;
  }

  // The rows relay `owner` holds claimed (not marked sent or failed): id
  // to fence.
  std::map<std::string, int64_t> ClaimsOf(const std::string& owner) {
    std::map<std::string, int64_t> claims;
    auto r = sqlite::Exec(db_.get(),
                          "SELECT id, fence FROM txmq_outbox WHERE lease_owner = ?1 AND "
                          "lease_until IS NOT NULL",
                          {sqlite::Value::Text(owner)});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& row : r.ok() ? r->rows : std::vector<sqlite::Row>{}) {
      claims[row.at(0).AsText()] = row.at(1).AsInt();
    }
    return claims;
  }

  // Stops `relay` (whose instance is `owner`) between a claim and its
  // outcome, never inside a write: the test takes the database's write
  // lock itself, looks at what `owner` holds, and when `enough` says so
  // sends SIGSTOP and waits until the process stopped before it lets the
  // lock go. (A process stopped inside a write would hold the lock and
  // block every writer on the file, DESIGN.md's SQLite section.) The
  // claims it was stopped with; none when `enough` never held within 20 s.
  std::map<std::string, int64_t> StopHoldingClaims(
      testing::Process& relay, const std::string& owner,
      const std::function<bool(const std::map<std::string, int64_t>&)>& enough) {
    std::map<std::string, int64_t> caught;
    WaitFor(
        [&] {
          if (!sqlite::Exec(db_.get(), "BEGIN IMMEDIATE").ok()) return false;
          std::map<std::string, int64_t> claims = ClaimsOf(owner);
          const bool now = !claims.empty() && enough(claims);
          if (now) {
            relay.Signal(SIGSTOP);
            EXPECT_TRUE(WaitFor([&] { return IsStopped(relay.pid()); }, 5s));
            caught = std::move(claims);
          }
          Sql(db_.get(), "ROLLBACK");
          return now;
        },
        20s);
    return caught;
  }

  // What a relay's writes would change of rows `ids`, one line per row.
  std::vector<std::string> RowStates(const std::map<std::string, int64_t>& ids) {
    std::vector<std::string> states;
    for (const auto& [id, fence] : ids) {
      auto r = sqlite::Exec(db_.get(),
                            "SELECT fence, lease_owner, coalesce(lease_until, -1), state, "
                            "attempts, next_attempt_at, last_error FROM txmq_outbox WHERE id = ?1",
                            {sqlite::Value::Text(id)});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      std::string line = id + ":";
      for (const auto& row : r.ok() ? r->rows : std::vector<sqlite::Row>{}) {
        line += " fence " + std::to_string(row.at(0).AsInt()) + ", owner '" + row.at(1).AsText() +
                "', lease until " + std::to_string(row.at(2).AsInt()) + ", state " +
                std::to_string(row.at(3).AsInt()) + ", attempts " +
                std::to_string(row.at(4).AsInt()) + ", next attempt " +
                std::to_string(row.at(5).AsInt()) + ", last error '" + row.at(6).AsText() + "'";
      }
      states.push_back(r.ok() && r->rows.empty() ? id + ": gone" : line);
    }
    return states;
  }

  // Consumes "orders" through a SQLite inbox on the consumer's own file,
  // each run adding an effect row, until `count` effects exist and `quiet`
  // more passed; the effects' message ids, repeats included. From the
  // embedded broker, or the one at `broker`.
  std::multiset<std::string> ConsumeIdempotently(size_t count, std::string broker = "") {
    if (broker.empty()) broker = broker_->endpoint();
    const std::string path = dir_.Sub("consumer.db");
    auto db = sqlite::Database::Open(path, 5s);
    EXPECT_TRUE(db.ok());
    Sql(db->get(), "CREATE TABLE effects (message_id TEXT, key TEXT, n INTEGER)");
    auto inbox = sqlite::Inbox::Open({.path = path, .group = "billing"});
    EXPECT_TRUE(inbox.ok()) << inbox.status().ToString();
    Consumer c({.broker = broker, .group = "billing", .long_poll = 200ms});
    EXPECT_TRUE(c.Subscribe("orders", (*inbox)->Idempotent([](sqlite3* h, const Received& m) {
                   auto r = sqlite::Exec(h,
                                         "INSERT INTO effects SELECT ?1, ?2, count(*) FROM effects "
                                         "WHERE key = ?2",
                                         {sqlite::Value::Text(m.id), sqlite::Value::Text(m.key)});
                   return r.ok() ? ConsumeResult::Success() : ConsumeResult::RetryLater();
                 })).ok());
    EXPECT_TRUE(c.Start().ok());
    auto effects = [&] {
      auto r = sqlite::Exec(db->get(), "SELECT count(*) FROM effects");
      return r.ok() ? static_cast<size_t>(r->rows[0][0].AsInt()) : 0;
    };
    EXPECT_TRUE(WaitFor([&] { return effects() >= count; }, 30s)) << effects() << " of " << count;
    std::this_thread::sleep_for(500ms);  // and nothing more
    c.Shutdown();
    std::multiset<std::string> ids;
    auto r = sqlite::Exec(db->get(), "SELECT message_id, key FROM effects ORDER BY key, n");
    EXPECT_TRUE(r.ok());
    std::map<std::string, std::string> last_of_key;
    for (const auto& row : r->rows) {
      ids.insert(row[0].AsText());
      std::string& last = last_of_key[row[1].AsText()];
      EXPECT_LT(last, row[0].AsText()) << "key " << row[1].AsText() << " out of order";
      last = row[0].AsText();
    }
    return ids;
  }
};

TEST_F(SqliteCrash, AServiceKilledWhilePlacingOrdersLosesNoCommittedOrderAndSendsNoRolledBackOne) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  const std::string progress = dir_.Sub("progress");
  auto service = Service({"place", path_, broker_->endpoint(), "400", progress});
  // The kill must fall after some commits and before their relay: the
  // service is stopped and looked at, and let go on while its relay has
  // caught up (it relays in batches, so this comes quickly).
  ASSERT_TRUE(WaitFor(
      [&] {
        if (std::atoi(testing::ReadFile(progress).c_str()) < 150) return false;
        service->Signal(SIGSTOP);
        EXPECT_TRUE(WaitFor([&] { return IsStopped(service->pid()); }, 5s));
        if (Count("txmq_outbox") > 0) return true;
        service->Signal(SIGCONT);
        return false;
      },
      30s))
      << "no instant with committed orders not yet relayed\n"
      << testing::ReadFile(dir_.Sub("service.log"));
  service->Signal(SIGKILL);
  service->Wait(10s);
  const std::set<std::string> committed = Ids("orders");
  ASSERT_GE(committed.size(), 120u);
  ASSERT_GT(Count("txmq_outbox"), 0) << "the kill fell after some commits and before their relay";

  sqlite::Outbox relay(RelayOptions("after-the-crash"));
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.Flush(30s).ok()) << relay.stats().last_error;
  const std::multiset<std::string> effects = ConsumeIdempotently(committed.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), committed)
      << "every committed order, and no rolled-back one (order-1003, order-1010, ...)";
  EXPECT_EQ(effects.size(), committed.size()) << "each exactly once";
  EXPECT_EQ(committed.count("order-1003"), 0u) << "a rolled-back order";
}

TEST_F(SqliteCrash, ARelayProcessKilledMidStreamLeavesItsClaimsToAnother) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  auto killed = Service({"relay", path_, broker_->endpoint(), "killed", "1000"});
  sqlite::Outbox writer(RelayOptions("writer"));  // Add only
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "order-" + std::to_string(1000 + i);
    ids.insert(id);
    Sql(db_.get(), "BEGIN IMMEDIATE");
    ASSERT_TRUE(
        writer.Add(db_.get(), {.topic = "orders", .key = "k" + std::to_string(i % 5), .id = id})
            .ok());
    Sql(db_.get(), "COMMIT");
  }
  ASSERT_TRUE(WaitFor([&] { return Count("txmq_outbox") < 150; }, 20s)) << "the relay works";
  killed->Signal(SIGKILL);  // mid-stream: claims held, sends and acks not yet written
  killed->Wait(10s);
  sqlite::Outbox takeover(RelayOptions("takeover"));
  ASSERT_TRUE(takeover.Start().ok());
  ASSERT_TRUE(takeover.Flush(30s).ok()) << takeover.stats().last_error;
  EXPECT_EQ(Count("txmq_outbox"), 0);
  const std::multiset<std::string> effects = ConsumeIdempotently(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids);
  EXPECT_EQ(effects.size(), ids.size()) << "each exactly once";
}

// Issue 12's "two relays on one database with one paused past its lease",
// with real processes and a real txmqd. Relay a is stopped between its
// claim and its mark-sent, never inside a write. Relay b takes a's rows
// over when a's lease ran out and is stopped the same way holding them,
// its sends hanging on a stopped txmqd. So when a wakes, the rows it
// still has outcomes to write for (acknowledgements, or failures when
// its sends timed out) are b's claims: written under a's old fences they
// must change nothing. b then delivers every order, each once.
TEST_F(SqliteCrash, ARelayStoppedPastItsLeaseBetweenClaimAndMarkSentChangesNothingWhenItWakes) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  testing::BrokerProcess txmqd(dir_.Sub("txmqd"));
  ASSERT_TRUE(txmqd.Start()) << testing::ReadFile(txmqd.log_path());
  const std::set<std::string> ids = PlaceOrders(0, 100);

  // a's sends hang on a stopped txmqd, so a holds its first claims until
  // the test sees them: left to run between the test's polls, a relay can
  // send all 100 rows before a poll comes round on a loaded machine.
  // Under the test's write lock txmqd goes on and stores what a holds; a
  // is stopped then, its late writes including mark-sent (a cannot mark
  // while the test holds the lock).
  txmqd.Signal(SIGSTOP);
  auto a = Service({"relay", path_, txmqd.endpoint(), "a", "1000"});
  testing::AdminClient admin(txmqd.endpoint());
  const std::map<std::string, int64_t> a_claims =
      StopHoldingClaims(*a, "a", [&](const std::map<std::string, int64_t>& claims) {
        txmqd.Signal(SIGCONT);
        const int64_t stored = 100 - Count("txmq_outbox") + static_cast<int64_t>(claims.size());
        return WaitFor([&] { return admin.TopicMessages("orders") == stored; }, 2s);
      });
  txmqd.Signal(SIGCONT);
  ASSERT_FALSE(a_claims.empty()) << "relay a was never seen holding a claim in 20 s ("
                                 << Count("txmq_outbox") << " rows left, txmqd stored "
                                 << admin.TopicMessages("orders") << " of 100)\n"
                                 << testing::ReadFile(dir_.Sub("service.log"));
  ASSERT_GT(Count("txmq_outbox"), 0);

  txmqd.Signal(SIGSTOP);  // b's sends hang: it holds what it claims for a while
  auto b = Service({"relay", path_, txmqd.endpoint(), "b", "30000"});
  const std::map<std::string, int64_t> b_claims = StopHoldingClaims(*b, "b", [&](const auto& c) {
    return std::all_of(a_claims.begin(), a_claims.end(), [&](const auto& claim) {
      auto it = c.find(claim.first);
      return it != c.end() && it->second > claim.second;
    });
  });
  txmqd.Signal(SIGCONT);
  ASSERT_FALSE(b_claims.empty()) << "relay b was never seen holding a's rows\n"
                                 << testing::ReadFile(dir_.Sub("service.log"));

  const std::vector<std::string> before = RowStates(a_claims);
  a->Signal(SIGCONT);
  a->Signal(SIGTERM);  // shuts down: writes the outcomes of all its sends, gives back its claims
  ASSERT_EQ(a->Wait(20s), std::optional<int>(0)) << testing::ReadFile(dir_.Sub("service.log"));
  EXPECT_EQ(RowStates(a_claims), before) << "a's late writes name old fences: they change nothing";

  b->Signal(SIGCONT);
  EXPECT_TRUE(WaitFor([&] { return Count("txmq_outbox") == 0; }, 30s))
      << Count("txmq_outbox") << " rows left\n"
      << testing::ReadFile(dir_.Sub("service.log"));
  b->Signal(SIGKILL);
  b->Wait(10s);
  const std::multiset<std::string> effects = ConsumeIdempotently(ids.size(), txmqd.endpoint());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

// Marking a row sent deletes it: a trigger makes that fail, so however
// the kill falls, the relay dies holding rows the broker acknowledged and
// it did not mark sent. Another relay sends them again after the lease;
// the broker's dedup window and the inbox keep one effect per id.
TEST_F(SqliteCrash, ARelayKilledAfterTheBrokersAckBeforeMarkSentLosesNothing) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  Sql(db_.get(), "CREATE TABLE effects (message_id TEXT)");
  Sql(db_.get(),
      "CREATE TRIGGER hold_mark_sent BEFORE DELETE ON txmq_outbox "
      "BEGIN SELECT RAISE(ABORT, 'test: mark-sent held back'); END");
  // Unkeyed: a key's next row would wait for its unmarked predecessor.
  const std::set<std::string> ids = AddOrders(30, /*keyed=*/false);
  auto relay = Service({"relay", path_, broker_->endpoint(), "killed", "1000"});
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor([&] { return admin.TopicMessages("orders") == 30; }, 20s))
      << testing::ReadFile(dir_.Sub("service.log"));
  EXPECT_EQ(Count("txmq_outbox"), 30) << "acknowledged, none marked sent";
  relay->Signal(SIGKILL);
  relay->Wait(10s);
  Sql(db_.get(), "DROP TRIGGER hold_mark_sent");

  SendAll();
  EXPECT_EQ(Count("txmq_outbox"), 0);
  const std::multiset<std::string> effects = ConsumeInAService(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

// The consumer service is killed inside the handler of order-1020: its
// effect inserted, the inbox's record with it, neither committed (the
// write lock goes with the process). The restarted consumer gets it again
// after the visibility timeout, and every message the dead one committed
// but did not acknowledge too.
TEST_F(SqliteCrash, AConsumerKilledInsideItsHandlerLosesNothingAndRepeatsNothing) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  Sql(db_.get(), "CREATE TABLE effects (message_id TEXT)");
  const std::set<std::string> ids = AddOrders(40);
  SendAll();
  const std::string ready = dir_.Sub("ready");
  auto consumer = Service({"consume", path_, broker_->endpoint(), "order-1020", ready});
  ASSERT_TRUE(WaitFor([&] { return testing::ReadFile(ready).starts_with("in-handler"); }, 30s))
      << testing::ReadFile(dir_.Sub("service.log"));
  consumer->Signal(SIGKILL);
  consumer->Wait(10s);
  auto held =
      sqlite::Exec(db_.get(), "SELECT count(*) FROM effects WHERE message_id = 'order-1020'");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->rows.at(0).at(0).AsInt(), 0) << "the held effect never committed";

  const std::multiset<std::string> effects = ConsumeInAService(ids.size());
  EXPECT_EQ(std::set<std::string>(effects.begin(), effects.end()), ids) << "none lost";
  EXPECT_EQ(effects.size(), ids.size()) << "one effect per message id";
}

}  // namespace
}  // namespace txmq
