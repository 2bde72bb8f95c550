// The web console's API without a browser, against a real txmqd: who may
// act (the token, and nothing a page on another site can send), what the
// errors say, what the reads show, and that an action from the console
// writes the same audit line as txmqctl's, with operator, action and
// reason. After every refusal the broker still serves and the transaction
// is still open.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/console/console_fixture.h"
#include "tests/testutil/secure_world.h"
#include "tests/testutil/tx_requests.h"

namespace txmq {
namespace {

using testing::WaitFor;

const nlohmann::json kAlice = {{"operator", "alice"}, {"reason", "producer gone; order paid"}};

class ConsoleApiTest : public ConsoleTest {
 protected:
  void OpenTx(const std::string& id, const std::string& group = "shop",
              const std::string& topic = "orders") {
    ASSERT_TRUE(
        testing::SendHalf(
            *admin_, id, group,
            {{.id = id + "-m", .topic = topic, .body = "body of " + id, .key = "key-" + id}})
            .ok());
  }

  // A consumer group reading `topic` (its dead-letter queue empty).
  void ConsumerGroup(const std::string& group, const std::string& topic = "orders") {
    auto r = testing::RunCommand({testing::BinPath("txmqctl"), "--broker", broker_->endpoint(),
                                  "consume", topic, "--group", group, "--wait", "0.1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  wire::TxState StateOf(const std::string& id) {
    auto info = admin_->Show(id);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info->state : wire::TxState::PREPARED;
  }

  // The broker still answers over HTTP and over its socket.
  void ExpectServing() {
    EXPECT_EQ(Request("GET", "/healthz").status, 200);
    EXPECT_EQ(Get("/api/transactions").status, 200);
    EXPECT_TRUE(admin_->Call([](wire::Envelope::Builder e) { e.setStatus(); }).ok());
  }
};

TEST_F(ConsoleApiTest, ActionsNeedTheToken) {
  OpenTx("tx-1");
  const std::string path = "/api/transactions/tx-1/commit";
  auto none = Request("POST", path, {}, kAlice.dump(), "application/json");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_NE(none.Error().find("no token"), std::string::npos) << none.body;
  EXPECT_NE(none.Error().find("http-token"), std::string::npos) << "names where the token is";
  std::string same_length = token_;
  same_length.back() = same_length.back() == '0' ? '1' : '0';
  for (const std::string& bad : {token_ + "x", same_length, token_.substr(1)}) {
    auto wrong = Request("POST", path, Bearer(bad), kAlice.dump(), "application/json");
    EXPECT_EQ(wrong.status, 403) << bad << ": " << wrong.body;
    EXPECT_NE(wrong.Error().find("token is wrong"), std::string::npos) << wrong.body;
  }
  auto not_bearer = Request("POST", path, {{"Authorization", "Basic " + token_}}, kAlice.dump(),
                            "application/json");
  EXPECT_EQ(not_bearer.status, 403) << not_bearer.body;
  EXPECT_EQ(StateOf("tx-1"), wire::TxState::PREPARED);
  EXPECT_TRUE(AuditLines({"tx=tx-1"}).empty()) << "a refused request reaches nothing";

  auto right = Post(path, kAlice);
  ASSERT_EQ(right.status, 200) << right.body;
  EXPECT_EQ(right.Json()["state"], "COMMITTED");
  EXPECT_EQ(StateOf("tx-1"), wire::TxState::COMMITTED);
  ExpectServing();
}

TEST_F(ConsoleApiTest, ReadsNeedTheTokenToo) {
  OpenTx("tx-1");
  ConsumerGroup("billing");
  for (const char* path : {"/api/transactions", "/api/transactions/tx-1", "/api/topics",
                           "/api/groups", "/api/dlq/billing"}) {
    EXPECT_EQ(Request("GET", path).status, 401) << path;
    EXPECT_EQ(Request("GET", path, Bearer("not-the-token-at-all")).status, 403) << path;
    EXPECT_EQ(Get(path).status, 200) << path;
  }
  // The page itself is no secret: it asks for the token.
  auto page = Request("GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("token-input"), std::string::npos);
}

TEST_F(ConsoleApiTest, CrossSiteRequestsAreRefused) {
  OpenTx("tx-1");
  const std::string path = "/api/transactions/tx-1/commit";
  // What a form on another site can send: no Authorization header, a form
  // content type (the browser would add the operator's cookies; there are
  // none to add).
  auto form = Request("POST", path, {{"Origin", "http://evil.example"}},
                      "operator=mallory&reason=x", "application/x-www-form-urlencoded");
  EXPECT_EQ(form.status, 401) << form.body;
  // Even with the token, an action is JSON only ...
  auto text = Request("POST", path, Bearer(token_), kAlice.dump(), "text/plain");
  EXPECT_EQ(text.status, 415) << text.body;
  EXPECT_NE(text.Error().find("text/plain"), std::string::npos) << text.body;
  // ... from the console's own origin ...
  auto headers = Bearer(token_);
  headers.emplace("Origin", "http://evil.example");
  auto origin = Request("POST", path, headers, kAlice.dump(), "application/json");
  EXPECT_EQ(origin.status, 403) << origin.body;
  EXPECT_NE(origin.Error().find("evil.example"), std::string::npos) << origin.body;
  // ... addressed to an address, not to a name another site controls
  // (DNS rebinding).
  headers = Bearer(token_);
  headers.emplace("Host", "evil.example");
  auto rebound = Request("POST", path, headers, kAlice.dump(), "application/json");
  EXPECT_EQ(rebound.status, 403) << rebound.body;
  EXPECT_EQ(Request("GET", "/", {{"Host", "evil.example:80"}}).status, 403);
  // No answer ever lets another origin in.
  auto preflight = Request("OPTIONS", path,
                           {{"Origin", "http://evil.example"},
                            {"Access-Control-Request-Method", "POST"},
                            {"Access-Control-Request-Headers", "authorization,content-type"}});
  for (const HttpAnswer* a : {&form, &text, &origin, &rebound, &preflight}) {
    EXPECT_FALSE(a->Has("Access-Control-Allow-Origin")) << a->body;
  }
  EXPECT_EQ(StateOf("tx-1"), wire::TxState::PREPARED);
  ExpectServing();
}

TEST_F(ConsoleApiTest, ErrorsNameTheBadValue) {
  OpenTx("tx-1");
  auto unknown = Post("/api/transactions/no-such-tx/commit", kAlice);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.Error().find("'no-such-tx' is unknown"), std::string::npos) << unknown.body;
  auto show = Get("/api/transactions/no-such-tx");
  EXPECT_EQ(show.status, 404) << show.body;
  EXPECT_NE(show.Error().find("no-such-tx"), std::string::npos) << show.body;

  auto bad_json = Request("POST", "/api/transactions/tx-1/commit", Bearer(token_),
                          "{\"operator\": \"alice\", ", "application/json");
  EXPECT_EQ(bad_json.status, 400) << bad_json.body;
  EXPECT_NE(bad_json.Error().find("not JSON"), std::string::npos) << bad_json.body;
  auto no_reason = Post("/api/transactions/tx-1/rollback", {{"operator", "alice"}});
  EXPECT_EQ(no_reason.status, 400) << no_reason.body;
  EXPECT_NE(no_reason.Error().find("\"reason\""), std::string::npos) << no_reason.body;
  auto no_operator = Post("/api/transactions/tx-1/rollback", {{"reason", "why not"}});
  EXPECT_EQ(no_operator.status, 400) << no_operator.body;
  EXPECT_NE(no_operator.Error().find("\"operator\""), std::string::npos) << no_operator.body;
  auto not_object = Post("/api/transactions/tx-1/commit", nlohmann::json::array({1, 2}));
  EXPECT_EQ(not_object.status, 400) << not_object.body;
  auto action = Post("/api/transactions/tx-1/approve", kAlice);
  EXPECT_EQ(action.status, 404) << action.body;
  EXPECT_NE(action.Error().find("'approve'"), std::string::npos) << action.body;
  auto filter = Get("/api/transactions?filter=ancient");
  EXPECT_EQ(filter.status, 400) << filter.body;
  EXPECT_NE(filter.Error().find("'ancient'"), std::string::npos) << filter.body;
  auto age = Get("/api/transactions?older_than=soon");
  EXPECT_EQ(age.status, 400) << age.body;
  EXPECT_NE(age.Error().find("'soon'"), std::string::npos) << age.body;
  auto path = Get("/api/nothing/here");
  EXPECT_EQ(path.status, 404) << path.body;
  EXPECT_NE(path.Error().find("/api/nothing/here"), std::string::npos) << path.body;

  EXPECT_EQ(StateOf("tx-1"), wire::TxState::PREPARED);
  // Only the request that reached the broker is in its audit trail.
  EXPECT_EQ(AuditLines({"tx=no-such-tx", "result=not found"}).size(), 1u);
  ExpectServing();
}

TEST_F(ConsoleApiTest, ListsFilterAndShowOneWithItsMessagesAndChecks) {
  OpenTx("tx-a", "shop", "orders");
  OpenTx("tx-b", "billing", "invoices");
  // Nobody answers checks for either: both end up stuck.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto j = Get("/api/transactions?filter=stuck").Json();
        return j.is_object() && j["transactions"].size() == 2;
      },
      std::chrono::seconds(30)));
  auto ids = [&](const std::string& query) {
    std::vector<std::string> out;
    const nlohmann::json list = Get("/api/transactions" + query).Json();
    for (const auto& t : list["transactions"]) out.push_back(t["id"]);
    return out;
  };
  EXPECT_EQ(ids("?group=shop"), std::vector<std::string>{"tx-a"});
  EXPECT_EQ(ids("?topic=invoices"), std::vector<std::string>{"tx-b"});
  EXPECT_EQ(ids("?filter=pending"), std::vector<std::string>{});
  EXPECT_EQ(ids("?older_than=1h"), std::vector<std::string>{});
  EXPECT_EQ(ids("?older_than=1ms").size(), 2u);

  auto shown = Get("/api/transactions/tx-a");
  ASSERT_EQ(shown.status, 200) << shown.body;
  auto j = shown.Json();
  EXPECT_EQ(j["transaction"]["condition"], "stuck");
  EXPECT_EQ(j["transaction"]["producer_group"], "shop");
  EXPECT_EQ(j["transaction"]["checks"]["last_answer"], "no producer");
  EXPECT_GE(j["transaction"]["checks"]["no_producer"].get<int>(), 2);
  ASSERT_EQ(j["messages"].size(), 1u);
  EXPECT_EQ(j["messages"][0]["id"], "tx-a-m");
  EXPECT_EQ(j["messages"][0]["key"], "key-tx-a");
  EXPECT_EQ(j["messages"][0]["body"], "body of tx-a");
}

TEST_F(ConsoleApiTest, AnyPrintableTransactionIdCanBeShownAndEnded) {
  // As the page sends it: encodeURIComponent.
  OpenTx("shop/order?42#1");
  const std::string path = "/api/transactions/shop%2Forder%3F42%231";
  auto shown = Get(path);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(shown.Json()["transaction"]["id"], "shop/order?42#1");
  auto ended = Post(path + "/rollback", kAlice);
  ASSERT_EQ(ended.status, 200) << ended.body;
  EXPECT_EQ(StateOf("shop/order?42#1"), wire::TxState::ROLLED_BACK);
}

TEST_F(ConsoleApiTest, ActionsWriteTheAuditLineWithOperatorActionAndReason) {
  OpenTx("tx-c");
  OpenTx("tx-r");
  OpenTx("tx-k");
  ASSERT_EQ(Post("/api/transactions/tx-c/commit", kAlice).status, 200);
  ASSERT_EQ(Post("/api/transactions/tx-r/rollback", kAlice).status, 200);
  auto recheck = Post("/api/transactions/tx-k/recheck", kAlice);
  ASSERT_EQ(recheck.status, 200) << recheck.body;
  EXPECT_EQ(recheck.Json()["scheduled"], 1);
  ConsumerGroup("billing");
  auto resend = Post("/api/dlq/billing/resend",
                     {{"operator", "alice"}, {"reason", "bug fixed"}, {"message_ids", {"gone"}}});
  ASSERT_EQ(resend.status, 200) << resend.body;
  EXPECT_EQ(resend.Json()["missing"], nlohmann::json::array({"gone"}));

  // txmqctl's lines, with the console as principal and the browser as
  // client.
  const std::vector<std::string> who = {"operator='alice'", "principal='http-console'",
                                        "client=http@127.0.0.1:"};
  auto with = [&](std::vector<std::string> parts) {
    parts.insert(parts.end(), who.begin(), who.end());
    return AuditLines(parts).size();
  };
  EXPECT_EQ(with({"action=commit tx=tx-c", "reason='producer gone; order paid'", "result=applied"}),
            1u);
  EXPECT_EQ(with({"action=rollback tx=tx-r", "reason='producer gone; order paid'"}), 1u);
  EXPECT_EQ(
      with({"action=check tx=tx-k", "result=scheduled", "reason='producer gone; order paid'"}), 1u);
  EXPECT_EQ(with({"action=dlq-resend group=billing", "missing=1", "reason='bug fixed'"}), 1u);
  EXPECT_EQ(StateOf("tx-c"), wire::TxState::COMMITTED);
  EXPECT_EQ(StateOf("tx-r"), wire::TxState::ROLLED_BACK);
  // The transaction remembers who ended it, as after txmqctl.
  auto info = admin_->Show("tx-c");
  ASSERT_TRUE(info.ok());
  EXPECT_NE(info->resolved_by.find("operator alice"), std::string::npos) << info->resolved_by;
}

TEST_F(ConsoleApiTest, GeneratedTokenIsReadableByTheBrokersUserOnly) {
  struct stat st {};
  ASSERT_EQ(stat(dir_.Sub("data/http-token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(token_.size(), 64u);
  // A restart writes a new one: the old one opens nothing.
  ASSERT_EQ(broker_->Stop(), 0);
  ASSERT_TRUE(broker_->Start());
  EXPECT_EQ(Get("/api/topics").status, 403);
  token_ = testing::SplitLines(testing::ReadFile(dir_.Sub("data/http-token"))).at(0);
  EXPECT_EQ(Get("/api/topics").status, 200);
}

// Under CURVE and an ACL the console has no key, and needs none: whoever
// holds the token acts as the built-in principal http-console, which the
// ACL does not have to name.
TEST(ConsoleUnderCurve, TheTokenActsAsTheConsolePrincipal) {
  testing::TempDir dir;
  testing::SecureWorld world(
      dir.path(), {{.name = "shop-app", .produce = {"orders"}, .producer_groups = {"shop"}}});
  testing::BrokerProcess broker(
      dir.Sub("data"), {"--http", "127.0.0.1:0", "--curve-secret-key", world.broker_key_file(),
                        "--acl", world.acl_file(), "--audit-log", dir.Sub("audit.log")});
  ASSERT_TRUE(broker.Start());
  testing::AdminClient app(broker.endpoint(), world.client_keys("shop-app"));
  ASSERT_TRUE(testing::SendHalf(app, "tx-s", "shop", {{.id = "m-s", .topic = "orders"}}).ok());

  const std::string token =
      testing::SplitLines(testing::ReadFile(dir.Sub("data/http-token"))).at(0);
  httplib::Client client(broker.http_endpoint());
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto list = client.Get("/api/transactions", auth);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_NE(list->body.find("tx-s"), std::string::npos) << list->body;
  auto commit =
      client.Post("/api/transactions/tx-s/commit", auth, kAlice.dump(), "application/json");
  ASSERT_TRUE(commit);
  EXPECT_EQ(commit->status, 200) << commit->body;
  const std::string audit = testing::ReadFile(dir.Sub("audit.log"));
  EXPECT_NE(audit.find("operator='alice' principal='http-console'"), std::string::npos) << audit;
  EXPECT_NE(audit.find("action=commit tx=tx-s group=shop"), std::string::npos) << audit;
}

TEST(ConsoleTokenFile, IsUsedWhenGivenAndRefusedWhenTooShort) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("token")) << "  operators-own-token-0123456789\n";
  testing::BrokerProcess broker(dir.Sub("data"),
                                {"--http", "127.0.0.1:0", "--http-token-file", dir.Sub("token")});
  ASSERT_TRUE(broker.Start());
  httplib::Client client(broker.http_endpoint());
  auto ok = client.Get("/api/topics", {{"Authorization", "Bearer operators-own-token-0123456789"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto refused_token = client.Get("/api/topics", {{"Authorization", "Bearer other"}});
  ASSERT_TRUE(refused_token);
  EXPECT_EQ(refused_token->status, 403);
  EXPECT_NE(refused_token->body.find(dir.Sub("token")), std::string::npos) << refused_token->body;
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data/http-token")));

  std::ofstream(dir.Sub("short")) << "abc\n";
  auto refused =
      testing::RunCommand({testing::BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--http",
                           "127.0.0.1:0", "--http-token-file", dir.Sub("short")});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--http-token-file " + dir.Sub("short")), std::string::npos)
      << refused.err;
  auto no_http = testing::RunCommand(
      {testing::BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--http-token-file", "x"});
  EXPECT_EQ(no_http.exit_code, 2) << no_http.err;
  EXPECT_NE(no_http.err.find("needs --http"), std::string::npos) << no_http.err;
}

}  // namespace
}  // namespace txmq
