#include <iostream>

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

int Consume(Ctl& ctl, const ConsumeArgs& args) {
  net::ConnectionOptions o;
  o.broker = ctl.broker();
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
    pull.setStartFromLatest(args.from_latest);
    auto reply = c.CallSync(std::move(request), left + ctl.timeout());
    if (!reply.ok()) return ctl.Fail(reply.status());
    auto messages = reply->envelope().getPullOk().getMessages();
    if (messages.size() == 0) continue;
    give_up = SteadyClock::now() + idle;
    auto ack = c.NewRequest();
    auto a = ack.envelope().initAck();
    a.setGroup(args.group);
    auto receipts = a.initReceipts(messages.size());
    for (unsigned i = 0; i < messages.size(); ++i) {
      Print(ctl, wire::DeliveredFromWire(messages[i]));
      receipts.setWithCaveats(i, messages[i].getReceipt());
      ++printed;
    }
    std::cout.flush();
    if (args.no_ack) continue;
    auto acked = c.CallSync(std::move(ack), ctl.timeout());
    if (!acked.ok()) return ctl.Fail(acked.status());
  }
  if (!ctl.json()) std::cerr << "txmqctl: " << Count(printed, "message") << "\n";
  return kExitOk;
}

}  // namespace

void AddConsumeCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<ConsumeArgs>();
  auto* cmd = app.add_subcommand(
      "consume",
      "Receive messages of a topic as consumer group G, print and acknowledge them;\n"
      "stop after --max messages or when nothing arrived for --wait (default 5s)\n"
      "Example: txmqctl consume orders --group audit --max 10 --json");
  cmd->add_option("topic", args->topic, "Topic (or %DLQ%<group>)")->required();
  cmd->add_option("--group,-g", args->group, "Consumer group")->required();
  cmd->add_option("--max,-n", args->max, "Stop after this many messages (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--wait", args->wait,
                  "Stop when nothing arrived for this long (30s, 2m; a plain number is seconds)")
      ->capture_default_str();
  cmd->add_flag("--from-latest", args->from_latest,
                "A group new to the topic starts at its end (default: its start)");
  cmd->add_flag("--no-ack,--dry-run", args->no_ack,
                "Print without acknowledging (messages come back after their lease)");
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
