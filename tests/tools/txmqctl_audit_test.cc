// The audit trail, command by command: every change an operator makes with
// txmqctl writes exactly one audit line naming the operator, the action,
// its object and the result; dry runs and reads write none. A real txmqd
// with --audit-log for the broker's actions; a real local store for the
// outbox, whose lines txmqctl writes itself (stderr and its --audit-log).
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using testing::BrokerProcess;
using testing::SplitLines;
using testing::TempDir;

using testing::Has;
// The audit lines in `text` (a log file, or txmqctl's stderr).
std::vector<std::string> AuditLines(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& line : SplitLines(text)) {
    if (Has(line, "[txmq.audit]")) out.push_back(line);
  }
  return out;
}

// Where a command's audit line is written.
enum class Trail {
  kBroker,  // txmqd's --audit-log: the command asked the broker
  kLocal,   // txmqctl's own stderr and --audit-log: it changed a local store
};

struct Row {
  std::string what;               // names the row in failures
  std::vector<std::string> args;  // after `txmqctl --operator <op>`
  int exit_code = 0;
  Trail trail = Trail::kBroker;
  // Parts of the one audit line the command writes, besides
  // "operator='<op>'"; empty: the command writes no audit line.
  std::vector<std::string> line;
};

class Audit : public ::testing::Test {
 protected:
  void SetUp() override {
    // No auto-created topics: an outbox row for a missing topic is parked.
    broker_ = std::make_unique<BrokerProcess>(
        dir_.Sub("data"),
        std::vector<std::string>{"--audit-log", broker_trail_, "--no-auto-create-topics"});
    ASSERT_TRUE(broker_->Start());
  }

  testing::CommandResult Ctl(const std::string& op, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinPath("txmqctl"), "--broker", broker_->endpoint(),
                                     "--operator", op};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv);
  }

  // A transaction its producer left undecided (and went away): open until
  // an operator ends it.
  std::string OpenTransaction(const std::string& key) {
    TransactionProducer p({.broker = broker_->endpoint(), .group = "shop"},
                          [](const CheckRequest&) { return TxState::kUnknown; });
    EXPECT_TRUE(p.Start().ok());
    auto r = p.SendInTransaction({.topic = "orders", .key = key, .body = "order " + key},
                                 [](const Message&) { return TxState::kUnknown; });
    EXPECT_TRUE(r.ok()) << r.status.ToString();
    p.Shutdown();
    return r.ok() ? r.transaction_id : "";
  }

  // A message group billing's handler failed twice: a dead letter.
  std::string DeadLetter() {
    auto sent = Ctl("setup", {"send", "orders", "--key", "dead", "charge 10 EUR"});
    EXPECT_EQ(sent.exit_code, 0) << sent.err;
    const std::string id = SplitLines(sent.out).empty() ? "" : SplitLines(sent.out)[0];
    Consumer failing({.broker = broker_->endpoint(),
                      .group = "billing",
                      .long_poll = std::chrono::milliseconds(200),
                      .max_reconsume_times = 1});
    EXPECT_TRUE(failing
                    .Subscribe("orders",
                               [](const Received&) {
                                 return ConsumeResult::RetryLater(std::chrono::milliseconds(10));
                               })
                    .ok());
    EXPECT_TRUE(failing.Start().ok());
    EXPECT_TRUE(testing::WaitFor([&] {
      auto r = Ctl("setup", {"--json", "dlq", "list", "billing"});
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      if (r.exit_code != 0 || j.is_discarded()) return false;
      for (const auto& m : j["messages"]) {
        if (m["id"] == id) return true;
      }
      return false;
    })) << "no dead letter";
    failing.Shutdown();
    return id;
  }

  // A service's store with one parked row (its topic does not exist) and
  // one pending row (no relay ran after it committed).
  void OutboxStore() {
    auto store = LocalStore::Open(store_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Outbox outbox(**store, {.producer = {.broker = broker_->endpoint(), .group = "svc"}});
    ASSERT_TRUE(outbox.Start().ok());
    LocalTxn parked = (*store)->Begin();
    ASSERT_TRUE(outbox.Add(parked, {.topic = "no-such-topic", .body = "x", .id = "parked-1"}).ok());
    ASSERT_TRUE(parked.Commit().ok());
    ASSERT_TRUE(testing::WaitFor([&] { return outbox.stats().parked == 1; }));
    outbox.Shutdown();
    LocalTxn pending = (*store)->Begin();
    ASSERT_TRUE(outbox.Add(pending, {.topic = "orders", .body = "y", .id = "pending-1"}).ok());
    ASSERT_TRUE(pending.Commit().ok());
  }

  // Runs `row` as operator `op` and checks the audit lines it added.
  void Check(const Row& row, const std::string& op) {
    SCOPED_TRACE(row.what);
    const size_t broker_before = AuditLines(testing::ReadFile(broker_trail_)).size();
    const size_t local_before = AuditLines(testing::ReadFile(local_trail_)).size();
    auto r = Ctl(op, row.args);
    EXPECT_EQ(r.exit_code, row.exit_code) << r.out << r.err;
    // The broker writes the line before it answers: it is there now.
    const auto broker_lines = AuditLines(testing::ReadFile(broker_trail_));
    const auto local_lines = AuditLines(testing::ReadFile(local_trail_));
    const auto stderr_lines = AuditLines(r.err);
    std::vector<std::string> added(
        row.trail == Trail::kBroker ? broker_lines.begin() + broker_before
                                    : local_lines.begin() + local_before,
        row.trail == Trail::kBroker ? broker_lines.end() : local_lines.end());
    // Nothing in the other trail.
    EXPECT_EQ(row.trail == Trail::kBroker ? local_lines.size() - local_before
                                          : broker_lines.size() - broker_before,
              0u);
    const size_t expected = row.line.empty() ? 0 : 1;
    ASSERT_EQ(added.size(), expected) << testing::ReadFile(broker_trail_) << r.err;
    if (row.trail == Trail::kLocal) {
      // txmqctl says it on stderr as well, the same line.
      ASSERT_EQ(stderr_lines.size(), expected) << r.err;
      if (expected == 1) {
        EXPECT_EQ(stderr_lines[0], added[0]);
      }
    } else {
      EXPECT_TRUE(stderr_lines.empty()) << r.err;
    }
    if (expected == 0) return;
    EXPECT_TRUE(Has(added[0], "[txmq.audit] operator='" + op + "' ")) << added[0];
    for (const auto& part : row.line) EXPECT_TRUE(Has(added[0], part)) << part << "\n" << added[0];
  }

  TempDir dir_;
  const std::string broker_trail_ = dir_.Sub("broker-audit.log");
  const std::string local_trail_ = dir_.Sub("local-audit.log");
  const std::string store_ = dir_.Sub("svc-db");
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(Audit, EveryOperatorChangeWritesExactlyOneLineAndDryRunsAndReadsNone) {
  ASSERT_EQ(Ctl("setup", {"topic", "create", "orders"}).exit_code, 0);
  const std::string t1 = OpenTransaction("1");
  const std::string t2 = OpenTransaction("2");
  const std::string t3 = OpenTransaction("3");
  const std::string dead = DeadLetter();
  ASSERT_NO_FATAL_FAILURE(OutboxStore());
  ASSERT_FALSE(t1.empty() || t2.empty() || t3.empty() || dead.empty());
  const std::string unknown = "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
  const std::string local_log = local_trail_;

  const std::vector<Row> rows = {
      {"topic create",
       {"topic", "create", "audited"},
       0,
       Trail::kBroker,
       {"action=topic-create topic=audited ", "result=created"}},
      {"topic create, exists",
       {"topic", "create", "audited"},
       0,
       Trail::kBroker,
       {"action=topic-create topic=audited ", "result=exists"}},
      {"topic create --dry-run", {"topic", "create", "other", "--dry-run"}, 0, Trail::kBroker, {}},

      {"tx commit --dry-run", {"tx", "commit", t1, "--dry-run"}, 0, Trail::kBroker, {}},
      {"tx commit",
       {"tx", "commit", t1, "--reason", "order 1 is paid"},
       0,
       Trail::kBroker,
       {"action=commit tx=" + t1 + " group=shop reason='order 1 is paid' result=applied"}},
      {"tx commit, again",
       {"tx", "commit", t1},
       0,
       Trail::kBroker,
       {"action=commit tx=" + t1, "result=already final"}},
      {"tx rollback, conflict",
       {"tx", "rollback", t1},
       5,
       Trail::kBroker,
       {"action=rollback tx=" + t1, "result=conflict (already COMMITTED)"}},
      {"tx commit, unknown",
       {"tx", "commit", unknown},
       4,
       Trail::kBroker,
       {"action=commit tx=" + unknown, "result=not found"}},
      // A reason over two lines is still one audit line: nobody forges the
      // next line through a field.
      {"tx rollback, reason with a newline",
       {"tx", "rollback", t2, "--reason",
        "never paid\n2026-01-01T00:00:00.000Z warning [txmq.audit] operator='mallory'"},
       0,
       Trail::kBroker,
       {"action=rollback tx=" + t2,
        "reason='never paid\\n2026-01-01T00:00:00.000Z warning [txmq.audit] "
        "operator=\\'mallory\\'' result=applied"}},

      {"tx check --dry-run", {"tx", "check", t3, "--dry-run"}, 0, Trail::kBroker, {}},
      {"tx check",
       {"tx", "check", t3, "--reason", "producer was redeployed"},
       0,
       Trail::kBroker,
       {"action=check tx=" + t3 + " group=shop result=scheduled",
        "reason='producer was redeployed'"}},
      {"tx check, ended",
       {"tx", "check", t1},
       1,
       Trail::kBroker,
       {"action=check tx=" + t1, "result=refused (already COMMITTED)"}},
      {"tx check, unknown",
       {"tx", "check", unknown},
       4,
       Trail::kBroker,
       {"action=check tx=" + unknown, "result=not found"}},
      {"tx recheck --dry-run", {"tx", "recheck", "--stuck", "--dry-run"}, 0, Trail::kBroker, {}},
      {"tx recheck",
       {"tx", "recheck", "--stuck"},
       0,
       Trail::kBroker,
       {"action=recheck group=* scheduled=0"}},
      {"tx recheck --group",
       {"tx", "recheck", "--stuck", "--group", "shop", "--reason", "checker fixed"},
       0,
       Trail::kBroker,
       {"action=recheck group=shop scheduled=0", "reason='checker fixed'"}},

      {"dlq resend --dry-run",
       {"dlq", "resend", "billing", dead, "--dry-run"},
       0,
       Trail::kBroker,
       {}},
      {"dlq resend",
       {"dlq", "resend", "billing", dead, "--reason", "handler bug fixed"},
       0,
       Trail::kBroker,
       {"action=dlq-resend group=billing messages=1 ids=" + dead + " missing=0",
        "reason='handler bug fixed'"}},
      {"dlq resend, missing",
       {"dlq", "resend", "billing", dead},
       4,
       Trail::kBroker,
       {"action=dlq-resend group=billing messages=0 ids=- missing=1"}},
      {"dlq resend --all",
       {"dlq", "resend", "billing", "--all"},
       0,
       Trail::kBroker,
       {"action=dlq-resend group=billing messages=0"}},

      {"outbox delete --dry-run",
       {"outbox", "delete", "--db", store_, "pending-1", "--dry-run", "--audit-log", local_log},
       0,
       Trail::kLocal,
       {}},
      {"outbox requeue --dry-run",
       {"outbox", "requeue", "--db", store_, "parked-1", "--dry-run", "--audit-log", local_log},
       0,
       Trail::kLocal,
       {}},
      {"outbox requeue",
       {"outbox", "requeue", "--db", store_, "parked-1", "--audit-log", local_log},
       0,
       Trail::kLocal,
       {"action=outbox-requeue store='" + store_ + "' row=parked-1 topic=no-such-topic ",
        "result=applied"}},
      {"outbox delete",
       {"outbox", "delete", "--db", store_, "pending-1", "--audit-log", local_log},
       0,
       Trail::kLocal,
       {"action=outbox-delete store='" + store_ + "' row=pending-1 topic=orders ", "was=pending",
        "result=applied"}},
      {"outbox delete, unknown",
       {"outbox", "delete", "--db", store_, "pending-1"},
       4,
       Trail::kLocal,
       {}},

      // Reads change nothing and say nothing.
      {"status", {"status"}, 0, Trail::kBroker, {}},
      {"topic list", {"topic", "list"}, 0, Trail::kBroker, {}},
      {"tx list", {"tx", "list"}, 0, Trail::kBroker, {}},
      {"tx show", {"tx", "show", t1}, 0, Trail::kBroker, {}},
      {"group show", {"group", "show", "billing"}, 0, Trail::kBroker, {}},
      {"dlq list", {"dlq", "list", "billing"}, 0, Trail::kBroker, {}},
      {"outbox list", {"outbox", "list", "--db", store_, "--state", "all"}, 0, Trail::kLocal, {}},
  };
  for (size_t i = 0; i < rows.size(); ++i) Check(rows[i], "op-" + std::to_string(i));

  // The changes were made, not only written down.
  auto t = Ctl("reader", {"--json", "tx", "show", t2});
  EXPECT_TRUE(Has(t.out, "\"ROLLED_BACK\"")) << t.out;
  auto rows_left = Ctl("reader", {"--json", "outbox", "list", "--db", store_, "--state", "all"});
  auto j = nlohmann::json::parse(rows_left.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << rows_left.out << rows_left.err;
  ASSERT_EQ(j["rows"].size(), 1u) << j;
  EXPECT_EQ(j["rows"][0]["id"], "parked-1");
  EXPECT_EQ(j["rows"][0]["state"], "pending");
}

TEST_F(Audit, AnOperatorNameWithAControlCharacterIsBadUsage) {
  auto r = Ctl("alice\nmallory", {"topic", "create", "orders"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(Has(r.err, "--operator 'alice mallory' has a control character")) << r.err;
  EXPECT_TRUE(AuditLines(testing::ReadFile(broker_trail_)).empty());
}

TEST_F(Audit, AnAuditLogTxmqctlCannotOpenIsBadUsageAndChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(OutboxStore());
  auto r = Ctl("alice", {"outbox", "delete", "--db", store_, "pending-1", "--audit-log",
                         dir_.path()});  // a directory is no file to append to
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Has(r.err, "cannot open audit log '" + dir_.path() + "'")) << r.err;
  auto list = Ctl("alice", {"--json", "outbox", "list", "--db", store_});
  EXPECT_TRUE(Has(list.out, "pending-1")) << list.out << list.err;
}

// Without --operator the operator is $USER@host; where no USER or LOGNAME
// is set (systemd units, cron, docker exec) it is the account's name, not
// "unknown".
TEST_F(Audit, WithoutUserOrLognameTheOperatorIsTheAccountAtTheHost) {
  const passwd* account = getpwuid(geteuid());
  ASSERT_NE(account, nullptr);
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  auto r = testing::RunCommand(
      {testing::BinPath("txmqctl"), "--broker", broker_->endpoint(), "topic", "create", "orders"},
      "", std::chrono::seconds(30), {"USER=", "LOGNAME="});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = AuditLines(testing::ReadFile(broker_trail_));
  ASSERT_EQ(lines.size(), 1u) << testing::ReadFile(broker_trail_);
  EXPECT_TRUE(Has(lines[0], std::string("operator='") + account->pw_name + "@" + host + "'"))
      << lines[0];
}

}  // namespace
}  // namespace txmq
