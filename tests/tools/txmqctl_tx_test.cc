// txmqctl tx: finding a stuck transaction and resolving it by hand, the way
// an operator would, against a real broker.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using testing::SplitLines;

class TxCommands : public CtlTest {
 protected:
  bool Has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }
};

TEST_F(TxCommands, StuckTransactionIsListedWithWhyItIsStuck) {
  const std::string id =
      LeaveStuckTransaction("shop", {.topic = "order-created", .key = "42", .body = "order 42"});
  ASSERT_FALSE(id.empty());

  auto r = Ctl({"tx", "list", "--state", "stuck"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const char* column :
       {"ID", "GROUP", "TOPIC", "KEY", "AGE", "CHECKS", "LAST ANSWER", "LAST ERROR"}) {
    EXPECT_TRUE(Has(lines[0], column)) << column << " in " << lines[0];
  }
  for (const std::string& cell :
       {id, std::string("shop"), std::string("order-created"), std::string("42"),
        std::string("stuck"), std::string("no producer")}) {
    EXPECT_TRUE(Has(lines[1], cell)) << cell << " in " << lines[1];
  }

  auto j = Json({"tx", "list", "--state", "stuck"});
  ASSERT_EQ(j["transactions"].size(), 1u) << j;
  auto t = j["transactions"][0];
  EXPECT_EQ(t["id"], id);
  EXPECT_EQ(t["state"], "PREPARED");
  EXPECT_EQ(t["stuck"], true);
  EXPECT_EQ(t["group"], "shop");
  EXPECT_EQ(t["last_answer"], "no_producer");
  EXPECT_EQ(t["check_count"].get<int>(), 0) << "no producer got a check";
  EXPECT_GE(t["no_producer_checks"].get<int>(), 3);
  EXPECT_GT(t["age_ms"].get<int64_t>(), 0);
  EXPECT_EQ(t["messages"][0]["topic"], "order-created");
  EXPECT_EQ(t["messages"][0]["key"], "42");
  EXPECT_EQ(j["more"], false);

  // The filters.
  EXPECT_EQ(Json({"tx", "list", "--state", "open"})["transactions"].size(), 0u);
  EXPECT_TRUE(Has(Ctl({"tx", "list", "--state", "open"}).out, "(no pending transactions)"));
  EXPECT_EQ(Json({"tx", "list"})["transactions"].size(), 1u);
  EXPECT_EQ(Json({"tx", "list", "--group", "other"})["transactions"].size(), 0u);
  EXPECT_EQ(Json({"tx", "list", "--group", "shop"})["transactions"].size(), 1u);
  EXPECT_EQ(Json({"tx", "list", "--topic", "order-created"})["transactions"].size(), 1u);
  EXPECT_EQ(Json({"tx", "list", "--topic", "payments"})["transactions"].size(), 0u);
  EXPECT_EQ(Json({"tx", "list", "--older-than", "1h"})["transactions"].size(), 0u);
  EXPECT_EQ(Json({"tx", "list", "--older-than", "100ms"})["transactions"].size(), 1u);

  // show: the whole story, and the half message's body.
  r = Ctl({"tx", "show", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "PREPARED (stuck")) << r.out;
  EXPECT_TRUE(Has(r.out, "no producer")) << r.out;
  EXPECT_TRUE(Has(r.out, "order 42")) << r.out;
  j = Json({"tx", "show", id});
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["messages"][0]["body"], "order 42");
  EXPECT_NE(j["last_error"], "");
}

TEST_F(TxCommands, CommitDeliversOnceThenSaysAlreadyCommittedAndRollbackConflicts) {
  const std::string id = LeaveStuckTransaction(
      "shop", {.topic = "order-created", .key = "42", .body = "order 42"}, /*killed=*/true);
  ASSERT_FALSE(id.empty());

  // A dry run shows what would happen and changes nothing.
  auto r = Ctl({"tx", "commit", id, "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "dry run: would commit it")) << r.out;
  EXPECT_TRUE(Has(r.out, id)) << r.out;
  auto dry = Json({"tx", "commit", id, "--dry-run"});
  EXPECT_EQ(dry["would"], "commit");
  EXPECT_EQ(dry["transaction"]["id"], id);
  EXPECT_EQ(admin_->Show(id)->state, wire::TxState::PREPARED);
  EXPECT_EQ(admin_->OpenTransactions(), 1u);

  r = Ctl({"tx", "commit", id, "--reason", "order 42 is paid"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "COMMITTED")) << r.out;
  auto shown = admin_->Show(id);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->state, wire::TxState::COMMITTED);
  EXPECT_EQ(shown->resolved_by, "operator tester (order 42 is paid)")
      << "who, and why";  // --operator reached the broker

  // Delivered, once.
  auto bodies = Consume("order-created", "billing");
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0], "order 42");

  // Again: nothing to do, and it says so.
  r = Ctl({"tx", "commit", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "already COMMITTED")) << r.out;
  auto again = Json({"tx", "commit", id});
  EXPECT_EQ(again["already_final"], true);
  EXPECT_EQ(again["state"], "COMMITTED");
  r = Ctl({"tx", "commit", id, "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "already COMMITTED")) << r.out;

  // The other way: refused, with the broker's reason.
  ExpectFails({"tx", "rollback", id}, kExitConflict, "CONFLICT");
  ExpectFails({"tx", "rollback", id, "--reason", "x"}, kExitConflict, "already COMMITTED");
  ExpectFails({"tx", "rollback", id, "--dry-run"}, kExitConflict, "CONFLICT");
  ExpectFails({"tx", "check", id}, kExitFailed, "already COMMITTED");

  EXPECT_TRUE(Consume("order-created", "billing", "0.3").empty());
  auto status = Json({"status"});
  EXPECT_EQ(status["transactions"]["open"], 0);
  EXPECT_EQ(status["transactions"]["stuck"], 0);
  EXPECT_EQ(status["transactions"]["committed"], 1);
}

TEST_F(TxCommands, RollbackDiscardsTheMessages) {
  const std::string id =
      LeaveStuckTransaction("shop", {.topic = "order-created", .key = "7", .body = "order 7"});
  ASSERT_FALSE(id.empty());
  auto r = Ctl({"tx", "rollback", id, "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "would roll it back")) << r.out;
  EXPECT_EQ(admin_->Show(id)->state, wire::TxState::PREPARED);

  auto j = Json({"tx", "rollback", id, "--reason", "customer cancelled"});
  EXPECT_EQ(j["state"], "ROLLED_BACK");
  EXPECT_EQ(j["already_final"], false);
  EXPECT_TRUE(Consume("order-created", "billing", "0.3").empty());

  j = Json({"tx", "show", id});
  EXPECT_EQ(j["state"], "ROLLED_BACK");
  EXPECT_EQ(j["resolved_by"], "operator tester (customer cancelled)");
  ExpectFails({"tx", "commit", id}, kExitConflict,
              "CONFLICT: transaction '" + id + "' is already ROLLED_BACK");
}

TEST_F(TxCommands, UnknownIdsAreNotFound) {
  const std::string id = "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
  ExpectFails({"tx", "show", id}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"tx", "commit", id}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"tx", "rollback", id}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"tx", "commit", id, "--dry-run"}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"tx", "check", id}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"tx", "check", id, "--dry-run"}, kExitNotFound, "NOT_FOUND");
}

// A stuck transaction is not checked again by itself (the capped interval
// is an hour), and a check waits long for its answer: every check seen
// here is one an operator asked for, and its state can be read while the
// checker holds the answer.
class TxCheckCommands : public TxCommands {
 protected:
  BrokerOptions Options() override {
    BrokerOptions o = TxCommands::Options();
    o.check_interval_max = std::chrono::hours(1);
    o.check_timeout = std::chrono::seconds(60);
    return o;
  }
};

// A checker of producer group "shop" that records every check, answers
// UNKNOWN, and holds its answer while `hold` is set.
struct RecordingChecker {
  std::mutex mu;
  std::vector<uint32_t> check_counts;  // as each check arrived
  std::atomic<bool> hold{false};
  std::atomic<bool> holding{false};

  TransactionChecker Fn() {
    return [this](const CheckRequest& c) {
      {
        std::lock_guard<std::mutex> lock(mu);
        check_counts.push_back(c.check_count);
      }
      holding = true;
      testing::WaitFor([&] { return !hold.load(); }, std::chrono::seconds(30));
      holding = false;
      return TxState::kUnknown;
    };
  }
  size_t checks() {
    std::lock_guard<std::mutex> lock(mu);
    return check_counts.size();
  }
  uint32_t last_count() {
    std::lock_guard<std::mutex> lock(mu);
    return check_counts.empty() ? 0 : check_counts.back();
  }
};

TEST_F(TxCheckCommands, CheckNowAndRecheckStuck) {
  // A transaction whose producer answers every check UNKNOWN: stuck after
  // the broker's 3 checks, then left alone.
  RecordingChecker checker;
  TransactionProducer producer({.broker = broker_->endpoint(), .group = "shop"}, checker.Fn());
  ASSERT_TRUE(producer.Start().ok());
  auto sent = producer.SendInTransaction({.topic = "order-created", .key = "9", .body = "order 9"},
                                         [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(sent.ok()) << sent.status.ToString();
  const std::string id = sent.transaction_id;
  ASSERT_TRUE(testing::WaitFor([&] {
    auto t = admin_->Show(id);
    return t.ok() && t->stuck;
  })) << "transaction never became stuck";
  EXPECT_EQ(admin_->Show(id)->check_count, 3u);
  EXPECT_EQ(checker.checks(), 3u);

  auto r = Ctl({"tx", "check", id, "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "would ask producer group 'shop'")) << r.out;
  EXPECT_EQ(checker.checks(), 3u) << "a dry run sent a check";

  // tx check: the producer really gets a check, and the broker counts it.
  r = Ctl({"tx", "check", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "will be checked now")) << r.out;
  ASSERT_TRUE(testing::WaitFor([&] { return checker.checks() == 4; }))
      << "tx check sent no check to the producer";
  EXPECT_EQ(checker.last_count(), 4u);
  ASSERT_TRUE(testing::WaitFor([&] {
    auto info = admin_->Show(id);
    return info.ok() && info->check_count == 4;
  })) << "the check was not counted";
  EXPECT_TRUE(admin_->Show(id)->stuck) << "tx check alone does not unstick";

  // recheck --dry-run lists the stuck ones and leaves them stuck.
  r = Ctl({"tx", "recheck", "--stuck", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, id)) << r.out;
  EXPECT_TRUE(Has(r.out, "would put 1 stuck transaction back")) << r.out;
  EXPECT_TRUE(admin_->Show(id)->stuck);
  EXPECT_EQ(Json({"tx", "recheck", "--stuck", "--group", "other", "--dry-run"})["would_schedule"],
            0);
  EXPECT_EQ(Json({"tx", "recheck", "--stuck", "--group", "other"})["scheduled"], 0);
  EXPECT_TRUE(admin_->Show(id)->stuck);
  EXPECT_EQ(checker.checks(), 4u) << "a recheck of another group checked this one";

  // recheck: back on the schedule with a fresh allowance of checks. The
  // checker holds the next check's answer, so the state is read while the
  // transaction waits for it.
  checker.hold = true;
  EXPECT_EQ(Json({"tx", "recheck", "--stuck", "--group", "shop"})["scheduled"], 1);
  ASSERT_TRUE(testing::WaitFor([&] { return checker.checks() == 5 && checker.holding; }))
      << "recheck sent no check";
  EXPECT_EQ(checker.last_count(), 1u) << "the check count did not start again";
  auto info = admin_->Show(id);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->stuck) << "still stuck after recheck";
  EXPECT_EQ(info->check_count, 1u);
  EXPECT_EQ(Json({"status"})["transactions"]["stuck"], 0);
  checker.hold = false;

  // With still nobody to say more than UNKNOWN, stuck again after its 3
  // checks; and recheck puts it back once more.
  EXPECT_TRUE(testing::WaitFor([&] {
    auto info = admin_->Show(id);
    return info.ok() && info->stuck;
  }));
  EXPECT_EQ(checker.checks(), 7u);
  r = Ctl({"tx", "recheck", "--stuck"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "put 1 stuck transaction back")) << r.out;
  producer.Shutdown();
}

}  // namespace
}  // namespace txmq
