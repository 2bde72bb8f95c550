// The web console in a real headless Chromium (tests/testutil/cdp_browser.h)
// against a real txmqd: a producer process sends a half message and dies,
// so nobody answers the broker's checks and the transaction gets stuck;
// an operator opens the console, signs in with the token, finds the
// transaction among the stuck ones, commits it with a reason in the
// confirmation dialog; the message then reaches a consumer exactly once,
// and the broker's audit log names the action, the operator and the reason.
#include <sstream>

#include "tests/console/console_fixture.h"
#include "tests/testutil/cdp_browser.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::CdpBrowser;
using testing::WaitFor;

// A JavaScript string literal holding `s`.
std::string Js(const std::string& s) { return nlohmann::json(s).dump(); }

class ConsoleBrowserTest : public ConsoleTest {
 protected:
  void SetUp() override {
    ConsoleTest::SetUp();
    if (HasFatalFailure()) return;
    auto browser = CdpBrowser::Launch();
    ASSERT_TRUE(browser.ok()) << browser.status().ToString()
                              << "\n(scripts/deps.sh installs Debian's chromium)";
    browser_ = std::move(browser.value());
  }

  // Runs `js` in the page; fails the test if it throws.
  nlohmann::json Run(const std::string& js) {
    auto v = browser_->Evaluate(page_, js);
    EXPECT_TRUE(v.ok()) << js << "\n" << v.status().ToString();
    return v.ok() ? *v : nlohmann::json();
  }
  // Waits for `js` to be truthy; on a timeout, says what the page showed.
  void Await(const std::string& js, std::chrono::milliseconds timeout = 15s) {
    if (browser_->WaitUntil(page_, js, timeout)) return;
    auto shown = browser_->Evaluate(page_, "document.body.innerText");
    ADD_FAILURE() << "the page never got to: " << js << "\nit shows:\n"
                  << (shown.ok() ? shown->dump() : shown.status().ToString());
  }

  std::unique_ptr<CdpBrowser> browser_;
  std::string page_;
};

TEST_F(ConsoleBrowserTest, OperatorCommitsAStuckTransactionOnceWithAReason) {
  // The producer process dies holding its transaction. Its key and body
  // are markup: the page must show them as text.
  const std::string key = "<img src=x onerror=\"window.pwned=1\">";
  std::istringstream ready(testing::RunUntilReadyThenKill(
      {testing::BinPath("txmq-test-txtool"), "half", broker_->endpoint(), "shop", "orders", "1",
       dir_.Sub("ready"), key, "<b>paid</b>"},
      dir_.Sub("ready"), dir_.Sub("tool.log")));
  std::string tx_id, message_id;
  ready >> tx_id >> message_id;
  ASSERT_FALSE(message_id.empty());
  // Stuck once the start-up grace (client timeout + 3 s) and two checks
  // with no producer passed: about 4 s.
  ASSERT_TRUE(
      WaitFor([&] { return admin_->ListTransactions(/*stuck_only=*/true).size() == 1; }, 30s));

  auto page = browser_->OpenPage(broker_->http_endpoint() + "/");
  ASSERT_TRUE(page.ok()) << page.status().ToString() << "\n" << browser_->log();
  page_ = *page;

  // Sign in: the token once, and the name that goes into the audit log.
  Await("document.getElementById('sign-in') && !document.getElementById('sign-in').hidden");
  Run("document.getElementById('token-input').value = " + Js(token_) +
      ";"
      "document.getElementById('operator-input').value = 'ops-alice';"
      "document.getElementById('sign-in-form').requestSubmit(); true");
  Await("!document.getElementById('view-transactions').hidden");

  // Among the stuck ones of producer group shop.
  Run("document.getElementById('filter-state').value = 'stuck';"
      "document.getElementById('filter-group').value = 'shop';"
      "document.getElementById('tx-filters').requestSubmit(); true");
  const std::string row =
      "document.querySelector('#tx-table tr[data-tx-id=' + " + Js(Js(tx_id)) + " + ']')";
  Await(row + " && " + row + ".textContent.includes('stuck')");
  Run(row + ".querySelector('a').click(); true");

  // Its page: the message, shown as text; the checks nobody answered.
  Await("document.getElementById('tx-id').textContent === " + Js(tx_id) +
        " && !document.getElementById('action-commit').disabled");
  EXPECT_EQ(Run("document.getElementById('tx-messages').tBodies[0].textContent.includes(" +
                Js(key) + ")"),
            true);
  EXPECT_EQ(Run("document.querySelector('#tx-messages img') === null && !window.pwned"), true);
  EXPECT_EQ(Run("document.getElementById('tx-checks').textContent.includes('no producer')"), true);

  // Commit: the dialog asks for a reason and a confirmation.
  Run("document.getElementById('action-commit').click(); true");
  Await("document.getElementById('confirm').open");
  EXPECT_EQ(Run("document.getElementById('confirm-title').textContent.includes(" + Js(tx_id) + ")"),
            true);
  Run("document.getElementById('confirm-ok').click(); true");  // no reason yet
  Await("document.getElementById('confirm-error').textContent.includes('reason')");
  EXPECT_EQ(admin_->Show(tx_id)->state, wire::TxState::PREPARED);
  Run("document.getElementById('confirm-reason').value = 'INC-42: payment confirmed by bank';"
      "document.getElementById('confirm-ok').click(); true");
  Await(
      "!document.getElementById('confirm').open && "
      "document.getElementById('notice').textContent.includes('committed by operator "
      "ops-alice')");
  Await("document.getElementById('action-commit').disabled");

  // Delivered, once.
  auto seen = testing::DrainTopic(broker_->endpoint(), "orders", 1, 1500ms, 20s, "after-console");
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[message_id], 1);
  EXPECT_EQ(admin_->Show(tx_id)->state, wire::TxState::COMMITTED);
  // The audit line: action, operator, reason, through the console.
  auto lines =
      AuditLines({"operator='ops-alice'", "principal='http-console'", "action=commit tx=" + tx_id,
                  "group=shop", "reason='INC-42: payment confirmed by bank'", "result=applied"});
  EXPECT_EQ(lines.size(), 1u) << testing::ReadFile(dir_.Sub("audit.log"));
}

}  // namespace
}  // namespace txmq
