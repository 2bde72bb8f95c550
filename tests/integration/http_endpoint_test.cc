// txmqd --http: a real txmqd process serving /metrics, /healthz and /readyz
// on a real TCP port, checked after real sends, pulls, acks and
// transactions (exact values of a few series, and the whole text valid as
// Prometheus exposition); the loopback rule; a malformed request; and, in
// process with a fake free-space source, /readyz turning 503 with a reason
// when the disk watermark trips and 200 again when space comes back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "broker/src/disk_watermark.h"
#include "broker/src/http/http_server.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/fake_free_space.h"
#include "tests/testutil/prometheus_text.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/tx_requests.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using testing::FakeFreeSpace;

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::ParsePromText;
using testing::WaitFor;

struct Got {
  int status = -1;  // -1: no answer
  std::string body;
  std::string content_type;
};

Got HttpGet(const std::string& base, const std::string& path) {
  httplib::Client client(base);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto r = client.Get(path);
  if (!r) return {};
  return {r->status, r->body, r->get_header_value("Content-Type")};
}

// Writes `bytes` on a fresh TCP connection to `base` ("http://HOST:PORT")
// and closes it after reading whatever comes back (or nothing).
void SendRaw(const std::string& base, const std::string& bytes) {
  const std::string host_port = base.substr(std::string("http://").size());
  const int port = std::stoi(host_port.substr(host_port.rfind(':') + 1));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  shutdown(fd, SHUT_WR);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  while (recv(fd, buf, sizeof buf, 0) > 0) {
  }
  close(fd);
}

class HttpProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<testing::BrokerProcess>(
        dir_.Sub("data"), std::vector<std::string>{"--http", "127.0.0.1:0", "--queues", "1",
                                                   "--transaction-timeout", "1h"});
    ASSERT_TRUE(broker_->Start());
    ASSERT_EQ(broker_->http_endpoint().rfind("http://127.0.0.1:", 0), 0u)
        << broker_->http_endpoint();
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }

  void Send(const std::string& id, const std::string& body) {
    auto r = admin_->Call([&](wire::Envelope::Builder e) {
      auto m = e.initSend().initMessage();
      m.setId(id);
      m.setTopic("orders");
      m.setBody(wire::AsData(body));
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::BrokerProcess> broker_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(HttpProcess, MetricsAfterSendsPullsAndTransactionsAreExactAndValid) {
  Send("m1", "aaaa");
  Send("m2", "bbbb");
  Send("m3", "cccc");
  // Group "billing" takes two and acks the first: the second stays leased.
  auto pulled = admin_->Call([](wire::Envelope::Builder e) {
    auto p = e.initPull();
    p.setGroup("billing");
    p.initTopics(1).set(0, "orders");
    p.setMaxMessages(2);
  });
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  auto messages = pulled->envelope().getPullOk().getMessages();
  ASSERT_EQ(messages.size(), 2u);
  auto acked = admin_->Call([&](wire::Envelope::Builder e) {
    auto a = e.initAck();
    a.setGroup("billing");
    a.initReceipts(1).setWithCaveats(0, messages[0].getReceipt());
  });
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();
  // Producer group "payments": one transaction open, one committed, one
  // rolled back.
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-open", "payments",
                                {{.id = "h1", .topic = "ledger", .body = "x"}})
                  .ok());
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-commit", "payments",
                                {{.id = "h2", .topic = "ledger", .body = "yy"}})
                  .ok());
  ASSERT_TRUE(admin_->End("tx-commit", true).ok());
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-rollback", "payments",
                                {{.id = "h3", .topic = "ledger", .body = "z"}})
                  .ok());
  ASSERT_TRUE(admin_->End("tx-rollback", false).ok());

  const Got got = HttpGet(broker_->http_endpoint(), "/metrics");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.content_type.rfind("text/plain; version=0.0.4", 0), 0u) << got.content_type;
  const auto m = ParsePromText(got.body);
  ASSERT_TRUE(m.errors.empty()) << ::testing::PrintToString(m.errors) << "\n" << got.body;

  const std::map<std::string, std::string> orders = {{"topic", "orders"}, {"queue", "0"}};
  EXPECT_EQ(m.Value("txmq_queue_messages_in_total", orders), 3);
  EXPECT_EQ(m.Value("txmq_queue_bytes_in_total", orders), 12);
  EXPECT_EQ(m.Value("txmq_queue_backlog_messages", orders), 3);
  EXPECT_GE(m.Value("txmq_queue_oldest_message_age_seconds", orders).value_or(-1), 0);
  // billing has not finished m2 (leased) and m3: the oldest unconsumed is
  // m2; nobody reads ledger, so it has none.
  EXPECT_GE(m.Value("txmq_queue_oldest_unconsumed_age_seconds", orders).value_or(-1), 0);
  EXPECT_FALSE(
      m.Value("txmq_queue_oldest_unconsumed_age_seconds", {{"topic", "ledger"}}).has_value());
  // Acked m1; m2 leased, m3 not delivered: two not finished.
  EXPECT_EQ(m.Value("txmq_group_lag_messages", {{"group", "billing"}, {"topic", "orders"}}), 2);
  EXPECT_EQ(m.Value("txmq_group_in_flight_leases", {{"group", "billing"}}), 1);
  EXPECT_EQ(m.Value("txmq_group_redeliveries_scheduled", {{"group", "billing"}}), 0);
  EXPECT_EQ(m.Value("txmq_group_dead_letters_total", {{"group", "billing"}}), 0);
  EXPECT_EQ(m.Value("txmq_group_expired_unconsumed_total", {{"group", "billing"}}), 0);
  EXPECT_EQ(m.Value("txmq_messages_delivered_total"), 2);
  EXPECT_EQ(m.Value("txmq_messages_acked_total"), 1);
  const std::map<std::string, std::string> payments = {{"group", "payments"}};
  EXPECT_EQ(m.Value("txmq_producer_group_open_transactions", payments), 1);
  EXPECT_EQ(m.Value("txmq_producer_group_stuck_transactions", payments), 0);
  EXPECT_EQ(m.Value("txmq_producer_group_transactions_committed_total", payments), 1);
  EXPECT_EQ(m.Value("txmq_producer_group_transactions_rolled_back_total", payments), 1);
  // The committed message is in its topic; the rolled back one is not.
  EXPECT_EQ(m.Value("txmq_queue_messages_in_total", {{"topic", "ledger"}}), 1);
  EXPECT_EQ(m.Value("txmq_queue_bytes_in_total", {{"topic", "ledger"}}), 2);
  EXPECT_EQ(m.Value("txmq_half_messages_stored_total"), 3);
  // Storage did work, and timed it.
  EXPECT_GT(m.Value("txmq_storage_rounds_total").value_or(0), 0);
  EXPECT_GT(m.Value("txmq_storage_written_bytes_total").value_or(0), 0);
  EXPECT_GT(m.Value("txmq_storage_round_write_seconds_count").value_or(0), 0);
  EXPECT_GT(m.Value("txmq_storage_fsync_seconds_count").value_or(0), 0);  // --flush sync
  EXPECT_GT(m.Value("txmq_storage_disk_free_bytes").value_or(0), 0);
  EXPECT_EQ(m.Value("txmq_storage_healthy"), 1);
  EXPECT_EQ(m.Value("txmq_limit_value", {{"limit", "max-topics"}}), 10000);
  EXPECT_EQ(m.Value("txmq_limit_used", {{"limit", "max-topics"}}), 2);
  EXPECT_EQ(m.Value("txmq_clients_connected", {{"role", "producer"}}), 0);
  EXPECT_GT(m.Value("process_resident_memory_bytes").value_or(0), 1 << 20);
  // CPU time comes in clock ticks (10 ms): a broker this young may show 0.
  EXPECT_GE(m.Value("process_cpu_seconds_total").value_or(-1), 0);

  // txmqctl status --json carries the same counts.
  auto status = testing::RunCommand(
      {testing::BinPath("txmqctl"), "--broker", broker_->endpoint(), "--json", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto json = nlohmann::json::parse(status.out)["metrics"];
  EXPECT_EQ(json["delivered"], 2);
  EXPECT_EQ(json["acked"], 1);
  ASSERT_EQ(json["groups"].size(), 1u) << json.dump();
  EXPECT_EQ(json["groups"][0]["group"], "billing");
  EXPECT_EQ(json["groups"][0]["topics"][0]["lag"], 2);
  EXPECT_EQ(json["groups"][0]["in_flight"], 1);
  ASSERT_EQ(json["producer_groups"].size(), 1u) << json.dump();
  EXPECT_EQ(json["producer_groups"][0]["open"], 1);
  EXPECT_EQ(json["producer_groups"][0]["committed"], 1);
  EXPECT_EQ(json["producer_groups"][0]["rolled_back"], 1);
  bool found_orders = false;
  for (const auto& q : json["queues"]) {
    if (q["topic"] == "orders") {
      found_orders = true;
      EXPECT_EQ(q["messages_in"], 3);
      EXPECT_EQ(q["bytes_in"], 12);
    }
  }
  EXPECT_TRUE(found_orders) << json.dump();
}

// Check latency per producer group: a transaction whose outcome never
// arrives is checked, its producer answers, and the histogram counts it.
TEST(HttpChecks, ACheckAndItsAnswerAreTimedPerProducerGroup) {
  testing::TempDir dir;
  testing::BrokerProcess broker(dir.Sub("data"), {"--http", "127.0.0.1:0", "--transaction-timeout",
                                                  "200ms", "--check-interval", "200ms"});
  ASSERT_TRUE(broker.Start());
  std::atomic<int> asked{0};
  TransactionProducer producer({.broker = broker.endpoint(), .group = "shop"},
                               [&](const CheckRequest&) {
                                 asked++;
                                 return TxState::kCommit;
                               });
  ASSERT_TRUE(producer.Start().ok());
  auto r = producer.SendInTransaction({.topic = "orders", .body = "decided later"},
                                      [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  AdminClient admin(broker.endpoint());
  ASSERT_TRUE(testing::WaitFor([&] {
    auto info = admin.Show(r.transaction_id);
    return info.ok() && info->state == wire::TxState::COMMITTED;
  })) << "the check never decided the transaction";

  const Got got = HttpGet(broker.http_endpoint(), "/metrics");
  ASSERT_EQ(got.status, 200) << got.body;
  const auto m = ParsePromText(got.body);
  ASSERT_TRUE(m.errors.empty()) << ::testing::PrintToString(m.errors) << "\n" << got.body;
  const std::map<std::string, std::string> shop = {{"group", "shop"}};
  EXPECT_EQ(m.Value("txmq_producer_group_check_seconds_count", shop), asked.load());
  EXPECT_GE(asked.load(), 1);
  EXPECT_GT(m.Value("txmq_producer_group_check_seconds_sum", shop).value_or(0), 0);
  EXPECT_LT(m.Value("txmq_producer_group_check_seconds_sum", shop).value_or(99), 10)
      << "a loopback answer takes milliseconds";
  EXPECT_EQ(
      m.Value("txmq_producer_group_check_answers_total", {{"group", "shop"}, {"answer", "commit"}}),
      asked.load());
  producer.Shutdown();
}

TEST_F(HttpProcess, HealthAndReadinessAnswerAndAMalformedRequestHarmsNothing) {
  Got health = HttpGet(broker_->http_endpoint(), "/healthz");
  EXPECT_EQ(health.status, 200);
  Got ready = HttpGet(broker_->http_endpoint(), "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(HttpGet(broker_->http_endpoint(), "/nothing-here").status, 404);

  SendRaw(broker_->http_endpoint(), "THIS IS NOT HTTP\r\n\r\n");
  SendRaw(broker_->http_endpoint(),
          "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n");
  SendRaw(broker_->http_endpoint(), std::string(100'000, 'A'));
  SendRaw(broker_->http_endpoint(), "GET /metr");  // cut off mid-request

  EXPECT_EQ(HttpGet(broker_->http_endpoint(), "/healthz").status, 200);
  EXPECT_EQ(HttpGet(broker_->http_endpoint(), "/metrics").status, 200);
  // The broker itself still serves.
  Send("after", "still here");
  EXPECT_EQ(admin_->TopicMessages("orders"), 1);
  EXPECT_EQ(broker_->Stop(), 0);
}

TEST(HttpFlag, NonLoopbackAddressIsRefusedWithoutInsecure) {
  testing::TempDir dir;
  auto r = testing::RunCommand({testing::BinPath("txmqd"), "--data-dir", dir.Sub("data"),
                                "--listen", "tcp://127.0.0.1:*", "--http", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--http 0.0.0.0:0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure"), std::string::npos) << r.err;

  r = testing::RunCommand({testing::BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen",
                           "tcp://127.0.0.1:*", "--http", "localhost"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--http 'localhost' is not HOST:PORT"), std::string::npos) << r.err;
}

TEST(HttpReadiness, ReadyzIs503WithAReasonWhileTheDiskIsBelowTheWatermark) {
  testing::TempDir dir;
  auto fake = std::make_shared<FakeFreeSpace>();
  BrokerOptions options = testing::TestBrokerOptions(dir.Sub("data"));
  options.free_space = fake;
  options.min_free_disk_bytes = 1024ull << 20;
  auto http = broker::http::HttpServer::Start("127.0.0.1:0");
  ASSERT_TRUE(http.ok()) << http.status().ToString();
  const std::string base = "http://" + (*http)->address();
  // Before the broker serves: alive, not ready.
  EXPECT_EQ(HttpGet(base, "/healthz").status, 200);
  Got starting = HttpGet(base, "/readyz");
  EXPECT_EQ(starting.status, 503);
  EXPECT_NE(starting.body.find("starting"), std::string::npos) << starting.body;

  auto broker = testing::StartBroker(options);
  ASSERT_NE(broker, nullptr);
  (*http)->Attach([b = broker.get()](std::chrono::milliseconds t) { return b->Metrics(t); });
  EXPECT_EQ(HttpGet(base, "/readyz").status, 200);

  fake->free = 100ull << 20;
  Got low;
  EXPECT_TRUE(WaitFor([&] {
    low = HttpGet(base, "/readyz");
    return low.status == 503;
  })) << low.status
      << " " << low.body;
  EXPECT_NE(low.body.find("disk space low"), std::string::npos) << low.body;
  EXPECT_NE(low.body.find("--min-free-disk"), std::string::npos) << low.body;
  EXPECT_EQ(HttpGet(base, "/healthz").status, 200);  // alive all the same

  fake->free = 100'000ull << 20;
  EXPECT_TRUE(WaitFor([&] { return HttpGet(base, "/readyz").status == 200; }));

  // A stopped broker is not ready, and says so at once.
  broker->Stop();
  Got stopped = HttpGet(base, "/readyz");
  EXPECT_EQ(stopped.status, 503);
  EXPECT_NE(stopped.body.find("stopped"), std::string::npos) << stopped.body;
  (*http)->Stop();
}

}  // namespace
}  // namespace txmq
