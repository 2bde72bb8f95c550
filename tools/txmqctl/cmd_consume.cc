// txmqctl consume: receive a topic as a consumer group and print what
// arrives; acknowledge it, or (--no-ack) give it back uncounted at the end.
#include <algorithm>
#include <iostream>
#include <optional>
#include <vector>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "txmq/names.h"
#include "txmq/version.h"

namespace txmq::ctl {

namespace {

struct ConsumeArgs {
  std::string topic, group;
  int64_t max = 0;  // 0: no limit
  std::string wait = "5s";
  bool from_latest = false;
  bool no_ack = false;
};

void Print(const Ctl& ctl, const Received& m) {
  if (ctl.json()) {
    nlohmann::json j = {{"id", m.id},
                        {"topic", m.topic},
                        {"key", m.key},
                        {"properties", m.properties},
                        {"queue", m.queue},
                        {"offset", m.offset},
                        {"delivery_count", m.delivery_count},
                        {"stored_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                          m.stored_at.time_since_epoch())
                                          .count()}};
    PutBytes(j, "body", m.body);
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  std::cout << m.queue << ":" << m.offset << " id=" << m.id;
  if (!m.key.empty()) std::cout << " key=" << m.key;
  if (m.delivery_count > 1) std::cout << " delivery=" << m.delivery_count;
  for (const auto& [k, v] : m.properties) std::cout << " " << k << "=" << v;
  std::cout << " | " << Preview(m.body, 200) << "\n";
}

// --wait: a duration (30s, 2m; a bare number is seconds, as first
// documented), at least 1 ms and at most a day; -1 otherwise.
int64_t WaitMs(const std::string& text) {
  const int64_t ms = ParseDurationArg(text);
  return ms >= 1 && ms <= 24 * 3600 * 1000 ? ms : -1;
}

// A peek (--no-ack) holds what it printed for as long as it runs, so no
// lease runs out mid-peek (that would count as a failed delivery and print
// the message twice); the broker's longest lease. When the peek ends it
// gives them all back at once, uncounted.
constexpr uint32_t kPeekLeaseMs = 12 * 3600 * 1000;

// One printed message's receipt, kept by a peek to give it back.
struct Held {
  std::string topic;
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint64_t retry_id = 0;
  uint64_t lease_id = 0;
};

// Whether the topic exists; empty when this caller may not look (with an
// ACL, looking at a topic is an admin's right).
Result<std::optional<bool>> TopicExists(Ctl& ctl, const std::string& topic) {
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setTopicShow(topic); });
  if (reply.ok()) return std::optional<bool>(true);
  if (reply.status().code() == StatusCode::kNotFound) return std::optional<bool>(false);
  if (reply.status().code() == StatusCode::kPermissionDenied) return std::optional<bool>();
  return reply.status();
}

// --from-latest asks the broker to start a new group at the topic's end,
// and the broker decides that on the pull that first finds the topic. A
// topic that does not exist yet holds nothing sent before this consume
// started, so reading it from its start is what --from-latest means: its
// first message is not skipped because it was also what created the topic.
// A consumer that may not look at the topic asks the broker for the end
// as it always did.
bool StartFromLatest(const ConsumeArgs& args, std::optional<bool> exists) {
  return args.from_latest && exists.value_or(true);
}

// Gives the peeked messages back to the group: visible again at once, the
// delivery not counted (no retry backoff, no step toward the dead-letter
// queue). In requests of at most kGiveBackBatch receipts, each far below
// the broker's frame limit.
constexpr size_t kGiveBackBatch = 1000;

Status GiveBack(Ctl& ctl, net::Connection& c, const std::string& group,
                const std::vector<Held>& held) {
  uint64_t expired = 0;
  for (size_t begin = 0; begin < held.size(); begin += kGiveBackBatch) {
    const size_t n = std::min(kGiveBackBatch, held.size() - begin);
    auto request = c.NewRequest();
    auto nack = request.envelope().initNack();
    nack.setGroup(group);
    nack.setRelease(true);
    auto receipts = nack.initReceipts(static_cast<unsigned>(n));
    for (unsigned i = 0; i < n; ++i) {
      const Held& h = held[begin + i];
      receipts[i].setTopic(h.topic);
      receipts[i].setQueue(h.queue);
      receipts[i].setOffset(h.offset);
      receipts[i].setRetryId(h.retry_id);
      receipts[i].setLeaseId(h.lease_id);
    }
    auto reply = c.CallSync(std::move(request), ctl.timeout());
    if (!reply.ok()) return reply.status();
    expired += reply->envelope().getNackOk().getExpired();
  }
  if (expired > 0) {
    // Only a broker restart, or the broker forgetting this consume, ends a
    // peek's lease early.
    return Status::FailedPrecondition(
        Count(expired, "printed message") +
        " had left this consume's hands already (the broker ended their lease); it "
        "redelivers them as it does any message whose lease ended");
  }
  return Status::OK();
}

int Consume(Ctl& ctl, const ConsumeArgs& args) {
  auto keys = ctl.Keys();
  if (!keys.ok()) return ctl.Fail(keys.status());
  auto exists = TopicExists(ctl, args.topic);
  if (!exists.ok()) return ctl.Fail(exists.status());
  if (*exists == std::optional<bool>(false)) {
    // Waiting for a topic before its first message is allowed; a typo
    // should not pass unseen, nor the group it leaves behind.
    std::cerr << "txmqctl: topic '" << args.topic << "' does not exist (yet); group '" << args.group
              << "' waits for it and stays (txmqctl topic list shows the topics; "
              << "txmqctl group delete " << args.group << " removes the group)\n";
  }
  const bool from_latest = StartFromLatest(args, *exists);
  auto broker = ctl.Broker();
  if (!broker.ok()) return ctl.Fail(broker.status());
  net::ConnectionOptions o;
  o.broker = *broker;
  o.curve = *keys;
  o.role = wire::Role::CONSUMER;
  o.group = args.group;
  o.software = std::string("txmqctl ") + kVersion;
  auto conn = net::Connection::Open(o);
  if (!conn.ok()) return ctl.Fail(conn.status());
  net::Connection& c = **conn;
  if (Status s = ctl.WaitReachable(c); !s.ok()) return ctl.Fail(s);

  const auto idle = std::chrono::milliseconds(WaitMs(args.wait));
  SteadyTime give_up = SteadyClock::now() + idle;
  int64_t printed = 0;
  std::vector<Held> held;  // --no-ack: every printed message, given back at the end
  while (args.max == 0 || printed < args.max) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(give_up - SteadyClock::now());
    if (left.count() <= 0) break;
    auto request = c.NewRequest();
    auto pull = request.envelope().initPull();
    pull.setGroup(args.group);
    pull.initTopics(1).set(0, args.topic);
    pull.setMaxMessages(
        static_cast<uint32_t>(args.max == 0 ? 64 : std::min<int64_t>(64, args.max - printed)));
    pull.setWaitMs(static_cast<uint32_t>(left.count()));
    pull.setStartFromLatest(from_latest);
    if (args.no_ack) pull.setVisibilityTimeoutMs(kPeekLeaseMs);
    auto reply = c.CallSync(std::move(request), left + ctl.timeout());
    if (!reply.ok()) return ctl.Fail(reply.status());
    auto messages = reply->envelope().getPullOk().getMessages();
    if (messages.size() == 0) continue;
    give_up = SteadyClock::now() + idle;
    for (auto m : messages) Print(ctl, wire::DeliveredFromWire(m));
    printed += messages.size();
    std::cout.flush();
    if (args.no_ack) {
      for (auto m : messages) {
        auto r = m.getReceipt();
        held.push_back({wire::ToString(r.getTopic()), r.getQueue(), r.getOffset(), r.getRetryId(),
                        r.getLeaseId()});
      }
      continue;
    }
    auto ack = c.NewRequest();
    auto a = ack.envelope().initAck();
    a.setGroup(args.group);
    auto receipts = a.initReceipts(messages.size());
    for (unsigned i = 0; i < messages.size(); ++i) {
      receipts.setWithCaveats(i, messages[i].getReceipt());
    }
    auto acked = c.CallSync(std::move(ack), ctl.timeout());
    if (!acked.ok()) return ctl.Fail(acked.status());
  }
  if (Status s = GiveBack(ctl, c, args.group, held); !s.ok()) return ctl.Fail(s);
  if (!ctl.json()) {
    std::cerr << "txmqctl: " << Count(printed, "message")
              << (args.no_ack && printed > 0
                      ? " (not acknowledged: given back to group '" + args.group + "')"
                      : "")
              << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddConsumeCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<ConsumeArgs>();
  auto* cmd = app.add_subcommand(
      "consume",
      "Receive messages of a topic as consumer group G, print and acknowledge them\n"
      "(--no-ack: only print); stop after --max messages or when nothing arrived\n"
      "for --wait (default 5s)\n"
      "Examples:\n"
      "  txmqctl consume orders --group audit --max 10 --json\n"
      "  txmqctl consume orders --group billing --no-ack --max 5");
  cmd->add_option("topic", args->topic, "Topic (or %DLQ%<group>)")->required();
  cmd->add_option("--group,-g", args->group, "Consumer group")->required();
  cmd->add_option("--max,-n", args->max, "Stop after this many messages (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000}));
  cmd->add_option("--wait", args->wait,
                  "Stop when nothing arrived for this long (30s, 2m; a plain number is seconds)")
      ->capture_default_str();
  cmd->add_flag("--from-latest", args->from_latest,
                "A group new to the topic starts at its end: only messages sent from now on.\n"
                "A group that read the topic before goes on where it stopped (default: a\n"
                "new group starts at the topic's start)");
  cmd->add_flag("--no-ack,--dry-run", args->no_ack,
                "Peek: print without acknowledging. When consume ends the messages go back\n"
                "to the group at once, uncounted (no retry delay, no step toward its\n"
                "dead-letter queue); until then this consume holds them");
  cmd->callback([&ctl, &run, args] {
    run = [&ctl, args]() -> int {
      if (Status s = ValidateNameOrSystem("topic", args->topic); !s.ok())
        return ctl.Usage(s.message());
      if (WaitMs(args->wait) < 0) {
        return ctl.Usage("--wait '" + args->wait +
                         "' is not a duration from 1ms to 1d (e.g. 5s, 2m, or seconds: 5)");
      }
      if (Status s = ValidateName("group", args->group); !s.ok()) return ctl.Usage(s.message());
      return Consume(ctl, *args);
    };
  });
}

}  // namespace txmq::ctl
