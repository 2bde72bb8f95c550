// /metrics text and /readyz decisions without a broker: the exposition of a
// snapshot built by hand (exact values, escaping, histogram buckets, every
// line valid by tests/testutil/prometheus_text.h), the checker itself
// (it must reject what a scraper would), the readiness decision, --http
// address parsing, and the snapshot mailbox between threads.
#include <gtest/gtest.h>

#include <thread>

#include "broker/src/http/http_server.h"
#include "broker/src/http/metrics_text.h"
#include "broker/src/http/readiness.h"
#include "broker/src/snapshot_mailbox.h"
#include "tests/testutil/prometheus_text.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;
using testing::ParsePromText;

MetricsSnapshot SampleSnapshot() {
  MetricsSnapshot s;
  s.broker_name = "b-1";
  s.version = "0.1.0";
  s.uptime_ms = 1500;
  s.counters.delivered = 7;
  s.producers = 2;
  s.queues.push_back({"orders", 0, 10, 400, 6, 2500});
  s.queues.push_back({"orders", 1, 0, 0, 0, -1});
  GroupMetrics g;
  g.name = "billing \"east\"\\\n";  // every character that needs an escape
  g.topics.push_back({"orders", 4, 1});
  g.in_flight = 1;
  g.redeliveries_scheduled = 2;
  g.dead_lettered = 3;
  g.expired = 5;
  s.groups.push_back(g);
  ProducerGroupMetrics p;
  p.name = "payments";
  p.open = 1;
  p.stuck = 1;
  p.committed = 9;
  p.answers[1] = 4;  // commit
  s.producer_groups.push_back(p);
  s.storage.rounds = 3;
  s.storage.round_write.Observe(50);         // first bucket
  s.storage.round_write.Observe(3'000);      // 5 ms
  s.storage.round_write.Observe(9'000'000);  // +Inf
  s.storage.disk_free_bytes = 1 << 30;
  s.limits.push_back({"max-topics", 100, 3, 1});
  return s;
}

TEST(MetricsText, ParsesAsPrometheusWithExactValues) {
  http::ProcessStats process;
  process.ok = true;
  process.resident_bytes = 4096;
  process.cpu_seconds = 0.25;
  const std::string text = http::RenderMetrics(SampleSnapshot(), process);
  auto parsed = ParsePromText(text);
  ASSERT_TRUE(parsed.errors.empty()) << ::testing::PrintToString(parsed.errors) << "\n" << text;

  EXPECT_EQ(parsed.Value("txmq_queue_messages_in_total", {{"topic", "orders"}, {"queue", "0"}}),
            10);
  EXPECT_EQ(parsed.Value("txmq_queue_bytes_in_total", {{"topic", "orders"}, {"queue", "0"}}), 400);
  EXPECT_EQ(parsed.Value("txmq_queue_backlog_messages", {{"topic", "orders"}, {"queue", "0"}}), 6);
  EXPECT_EQ(parsed.Value("txmq_queue_oldest_message_age_seconds", {{"queue", "0"}}), 2.5);
  // A queue that stores nothing has no age rather than a made-up one.
  EXPECT_FALSE(parsed.Value("txmq_queue_oldest_message_age_seconds", {{"queue", "1"}}));
  const std::string group = "billing \"east\"\\\n";
  EXPECT_EQ(parsed.Value("txmq_group_lag_messages", {{"group", group}, {"topic", "orders"}}), 4);
  EXPECT_EQ(parsed.Value("txmq_group_redeliveries_scheduled", {{"group", group}}), 2);
  EXPECT_EQ(parsed.Value("txmq_group_dead_letters_total", {{"group", group}}), 3);
  EXPECT_EQ(parsed.Value("txmq_group_expired_unconsumed_total", {{"group", group}}), 5);
  EXPECT_EQ(parsed.Value("txmq_producer_group_open_transactions", {{"group", "payments"}}), 1);
  EXPECT_EQ(parsed.Value("txmq_producer_group_stuck_transactions", {{"group", "payments"}}), 1);
  EXPECT_EQ(
      parsed.Value("txmq_producer_group_transactions_committed_total", {{"group", "payments"}}), 9);
  EXPECT_EQ(parsed.Value("txmq_producer_group_check_answers_total",
                         {{"group", "payments"}, {"answer", "commit"}}),
            4);
  EXPECT_EQ(parsed.Value("txmq_messages_delivered_total"), 7);
  EXPECT_EQ(parsed.Value("txmq_clients_connected", {{"role", "producer"}}), 2);
  EXPECT_EQ(parsed.Value("txmq_limit_refused_total", {{"limit", "max-topics"}}), 1);
  EXPECT_EQ(parsed.Value("process_resident_memory_bytes"), 4096);
  EXPECT_EQ(parsed.Value("process_cpu_seconds_total"), 0.25);

  // The histogram in seconds, cumulative.
  EXPECT_EQ(parsed.Value("txmq_storage_round_write_seconds_bucket", {{"le", "0.0001"}}), 1);
  EXPECT_EQ(parsed.Value("txmq_storage_round_write_seconds_bucket", {{"le", "0.005"}}), 2);
  EXPECT_EQ(parsed.Value("txmq_storage_round_write_seconds_bucket", {{"le", "2.5"}}), 2);
  EXPECT_EQ(parsed.Value("txmq_storage_round_write_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(parsed.Value("txmq_storage_round_write_seconds_count"), 3);
  EXPECT_DOUBLE_EQ(*parsed.Value("txmq_storage_round_write_seconds_sum"), 9.00305);
  EXPECT_EQ(parsed.types["txmq_storage_round_write_seconds"], "histogram");
  EXPECT_EQ(parsed.types["txmq_storage_fsync_seconds"], "histogram");
}

TEST(MetricsText, EscapesLabelValues) {
  EXPECT_EQ(http::EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(http::EscapeLabelValue("plain/%DLQ%g"), "plain/%DLQ%g");
}

TEST(MetricsText, CheckerRejectsWhatAScraperWould) {
  auto errors = [](const std::string& text) { return ParsePromText(text).errors.size(); };
  EXPECT_EQ(errors("# TYPE a_total counter\na_total 1\n"), 0u);
  EXPECT_GT(errors("a_total 1\n"), 0u);                          // no TYPE
  EXPECT_GT(errors("a_total 1\n# TYPE a_total counter\n"), 0u);  // TYPE after
  EXPECT_GT(errors("# TYPE a counter\na 1\n"), 0u);              // counter not _total
  EXPECT_GT(errors("# TYPE g gauge\ng{x=\"a\\tb\"} 1\n"), 0u);   // bad escape
  EXPECT_GT(errors("# TYPE g gauge\ng{x=\"a} 1\n"), 0u);         // unterminated
  EXPECT_GT(errors("# TYPE g gauge\ng{x=a} 1\n"), 0u);           // unquoted
  EXPECT_GT(errors("# TYPE g gauge\ng one\n"), 0u);              // bad value
  EXPECT_GT(errors("# TYPE g gauge\ng 1\ng 2\n"), 0u);           // series twice
  EXPECT_GT(errors("# TYPE g gauge\n# TYPE h gauge\ng 1\nh 1\ng{a=\"b\"} 1\n"), 0u);
  EXPECT_GT(errors("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                   "h_sum 1\nh_count 1\n"),
            0u);                                 // not cumulative
  EXPECT_GT(errors("# TYPE g gauge\ng 1"), 0u);  // no final newline
}

TEST(Readiness, SaysWhyNotReady) {
  auto ok = std::make_shared<const MetricsSnapshot>();
  EXPECT_TRUE(http::DecideReadiness(true, ok).ready);

  auto starting = http::DecideReadiness(false, Status::Unavailable("x"));
  EXPECT_FALSE(starting.ready);
  EXPECT_NE(starting.reason.find("recovering"), std::string::npos);

  auto stuck = http::DecideReadiness(true, Status::Unavailable("core did not answer"));
  EXPECT_FALSE(stuck.ready);
  EXPECT_EQ(stuck.reason, "core did not answer");

  auto failed = std::make_shared<MetricsSnapshot>();
  failed->storage.failed = true;
  failed->storage.failure = "IO_ERROR: fsync: Input/output error";
  auto r = http::DecideReadiness(true, std::shared_ptr<const MetricsSnapshot>(failed));
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("storage failed"), std::string::npos);
  EXPECT_NE(r.reason.find("fsync"), std::string::npos);

  auto low = std::make_shared<MetricsSnapshot>();
  low->storage.disk_low = true;
  low->storage.disk_free_bytes = 100ull << 20;
  low->storage.min_free_disk_bytes = 520ull << 20;
  r = http::DecideReadiness(true, std::shared_ptr<const MetricsSnapshot>(low));
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("disk space low"), std::string::npos);
  EXPECT_NE(r.reason.find("--min-free-disk"), std::string::npos);
}

cluster::ClusterHealth Member(const std::string& node, std::vector<std::string> isr, bool leading) {
  cluster::ClusterHealth c;
  c.group = "g1";
  c.node = node;
  c.epoch = 4;
  c.leading = leading;
  c.isr = std::move(isr);
  c.min_isr = 2;
  c.leader_url = "tcp://127.0.0.1:7001";
  c.last_index = 17;
  return c;
}

TEST(Readiness, ClusterMemberIsReadyOnlyInTheIsr) {
  auto ok = std::make_shared<const MetricsSnapshot>();
  const Status not_serving = Status::Unavailable("not started");

  // A follower serves no broker (started false) but is ready in the ISR.
  auto follower = Member("b", {"a", "b"}, false);
  auto r = http::DecideReadiness(false, not_serving, &follower);
  EXPECT_TRUE(r.ready) << r.reason;
  EXPECT_NE(r.reason.find("tcp://127.0.0.1:7001"), std::string::npos) << r.reason;

  auto behind = Member("c", {"a", "b"}, false);
  r = http::DecideReadiness(false, not_serving, &behind);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("not in the ISR of group g1"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("index 17"), std::string::npos) << r.reason;

  auto joining = Member("c", {}, false);
  joining.epoch = 0;
  joining.coordinator_error = "UNAVAILABLE: etcd at http://127.0.0.1:2379: connection refused";
  r = http::DecideReadiness(false, not_serving, &joining);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("connection refused"), std::string::npos) << r.reason;

  auto leader = Member("a", {"a", "b"}, true);
  r = http::DecideReadiness(false, not_serving, &leader);
  EXPECT_FALSE(r.ready) << "a leader that does not serve yet is starting";
  EXPECT_NE(r.reason.find("starting"), std::string::npos) << r.reason;
  r = http::DecideReadiness(true, ok, &leader);
  EXPECT_TRUE(r.ready) << r.reason;
  EXPECT_NE(r.reason.find("leads group g1"), std::string::npos) << r.reason;

  auto alone = Member("a", {"a"}, true);
  r = http::DecideReadiness(true, ok, &alone);
  EXPECT_FALSE(r.ready) << "below --min-isr nothing is acknowledged";
  EXPECT_NE(r.reason.find("--min-isr 2"), std::string::npos) << r.reason;

  // The broker's own troubles still count on a leader.
  auto failed = std::make_shared<MetricsSnapshot>();
  failed->storage.failed = true;
  r = http::DecideReadiness(true, std::shared_ptr<const MetricsSnapshot>(failed), &leader);
  EXPECT_FALSE(r.ready);
}

TEST(MetricsText, ClusterFamiliesForLeaderAndFollower) {
  MetricsSnapshot snapshot;
  auto leader = Member("a", {"a", "b"}, true);
  leader.commit_index = 15;
  leader.log_bytes = 4096;
  const std::string text = http::RenderMetrics(&snapshot, &leader, http::ProcessStats{});
  EXPECT_TRUE(ParsePromText(text).errors.empty()) << text;
  EXPECT_NE(text.find("txmq_cluster_leader{group=\"g1\",node=\"a\"} 1"), std::string::npos);
  EXPECT_NE(text.find("txmq_cluster_isr_size{group=\"g1\",node=\"a\"} 2"), std::string::npos);
  EXPECT_NE(text.find("txmq_cluster_commit_index{group=\"g1\",node=\"a\"} 15"), std::string::npos);
  EXPECT_NE(text.find("txmq_cluster_log_bytes{group=\"g1\",node=\"a\"} 4096"), std::string::npos);
  EXPECT_NE(text.find("txmq_build_info"), std::string::npos);

  // A follower has no broker: only its view of the group.
  auto follower = Member("c", {"a", "b"}, false);
  const std::string only = http::RenderMetrics(nullptr, &follower, http::ProcessStats{});
  EXPECT_TRUE(ParsePromText(only).errors.empty()) << only;
  EXPECT_NE(only.find("txmq_cluster_in_isr{group=\"g1\",node=\"c\"} 0"), std::string::npos);
  EXPECT_EQ(only.find("txmq_build_info"), std::string::npos);
  EXPECT_EQ(only.find("txmq_cluster_commit_index{"), std::string::npos);
}

TEST(MetricsText, LeaderExportsEachFollowersLag) {
  auto leader = Member("a", {"a", "b"}, true);
  leader.replicas = {{"a", true, true, true, 17, 0, 0},
                     {"b", false, true, true, 15, 2, 120},
                     {"c", false, false, true, 3, 14, 4500},
                     {"d", false, false, true, 0, 17, -1}};
  const std::string text = http::RenderMetrics(nullptr, &leader, http::ProcessStats{});
  const auto m = ParsePromText(text);
  ASSERT_TRUE(m.errors.empty()) << text;
  const std::map<std::string, std::string> b = {{"group", "g1"}, {"node", "a"}, {"replica", "b"}};
  const std::map<std::string, std::string> c = {{"group", "g1"}, {"node", "a"}, {"replica", "c"}};
  EXPECT_EQ(m.Value("txmq_replica_match_index", b), 15);
  EXPECT_EQ(m.Value("txmq_replica_lag_entries", b), 2);
  EXPECT_EQ(m.Value("txmq_replica_in_isr", b), 1);
  EXPECT_DOUBLE_EQ(m.Value("txmq_replica_last_contact_seconds", b).value_or(-1), 0.12);
  EXPECT_EQ(m.Value("txmq_replica_lag_entries", c), 14);
  EXPECT_EQ(m.Value("txmq_replica_in_isr", c), 0);
  EXPECT_DOUBLE_EQ(m.Value("txmq_replica_last_contact_seconds", c).value_or(-1), 4.5);
  // Never answered in this epoch: no contact time rather than a made-up one.
  EXPECT_FALSE(m.Value("txmq_replica_last_contact_seconds", {{"replica", "d"}}).has_value());
  // The leader itself is not its own replica.
  EXPECT_FALSE(m.Value("txmq_replica_lag_entries", {{"replica", "a"}}).has_value());

  // A follower does not hear from its peers: it exports no lag.
  auto follower = Member("b", {"a", "b"}, false);
  follower.replicas = {{"a", true, true, false, 0, 0, -1}, {"b", false, true, true, 15, 0, -1}};
  const std::string only = http::RenderMetrics(nullptr, &follower, http::ProcessStats{});
  EXPECT_EQ(only.find("txmq_replica_lag_entries{"), std::string::npos) << only;
}

TEST(HttpAddress, ParsesHostPortAndKnowsLoopback) {
  std::string host;
  int port = -1;
  ASSERT_TRUE(http::ParseHttpAddress("127.0.0.1:0", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(http::ParseHttpAddress("[::1]:9464", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9464);
  for (const char* bad :
       {"9464", ":9464", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000", "::1:80", "[]:80"}) {
    Status s = http::ParseHttpAddress(bad, &host, &port);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("--http"), std::string::npos) << bad;
  }
  EXPECT_TRUE(http::IsLoopbackHttpAddress("127.0.0.1:9464"));
  EXPECT_TRUE(http::IsLoopbackHttpAddress("127.1.2.3:9464"));
  EXPECT_TRUE(http::IsLoopbackHttpAddress("localhost:9464"));
  EXPECT_TRUE(http::IsLoopbackHttpAddress("[::1]:9464"));
  EXPECT_FALSE(http::IsLoopbackHttpAddress("0.0.0.0:9464"));
  EXPECT_FALSE(http::IsLoopbackHttpAddress("10.0.0.1:9464"));
  EXPECT_FALSE(http::IsLoopbackHttpAddress("127.evil.com:9464"));
  EXPECT_FALSE(http::IsLoopbackHttpAddress("[::]:9464"));
}

TEST(SnapshotMailbox, AnswersFromTheCoreThreadAndFailsFastOnceClosed) {
  SnapshotMailbox mailbox;
  // Nobody answers: the asker is told so after its timeout.
  auto none = mailbox.Request(20ms);
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);

  std::atomic<bool> stop{false};
  std::thread core([&] {
    // What Server::Run does: wait for the descriptor, answer with a fresh
    // snapshot.
    while (!stop) {
      if (uint64_t ticket = mailbox.TakeRequest(); ticket != 0) {
        auto s = std::make_shared<MetricsSnapshot>();
        s->broker_name = "answered";
        mailbox.Publish(s, ticket);
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  auto got = mailbox.Request(5s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->broker_name, "answered");
  stop = true;
  core.join();

  mailbox.Close(Status::Internal("disk gone"));
  const auto before = std::chrono::steady_clock::now();
  auto closed = mailbox.Request(10s);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
  EXPECT_EQ(closed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(closed.status().message().find("disk gone"), std::string::npos);
}

}  // namespace
}  // namespace txmq::broker
