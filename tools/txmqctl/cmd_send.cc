#include <condition_variable>
#include <iostream>
#include <iterator>
#include <mutex>

#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "txmq/names.h"
#include "txmq/producer.h"

namespace txmq::ctl {

namespace {

struct SendArgs {
  std::string topic, key, id, body, delay;
  std::vector<std::string> props;
  bool lines = false;
  bool dry_run = false;
  int window = 256;
};

Result<Properties> ParseProps(const std::vector<std::string>& props) {
  Properties out;
  for (const std::string& p : props) {
    size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("--prop '" + p + "' is not name=value");
    }
    out[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return out;
}

void PrintResult(const Ctl& ctl, const SendResult& r) {
  if (!ctl.json()) {
    std::cout << r.message_id << "\n";
    return;
  }
  nlohmann::json j = {
      {"id", r.message_id}, {"topic", r.topic}, {"queue", r.queue}, {"duplicate", r.duplicate}};
  if (r.offset) j["offset"] = *r.offset;
  std::cout << j.dump() << "\n";
}

// Sends each stdin line as one message, up to `window` unacknowledged.
int SendLines(Ctl& ctl, Producer& producer, const Message& base, int window) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  Status first_error;
  uint64_t acknowledged = 0, failed = 0;
  bool stopped_early = false;  // lines were left unsent
  for (std::string line; std::getline(std::cin, line);) {
    Message m = base;
    m.body = std::move(line);
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight < window; });
    if (!first_error.ok()) {
      stopped_early = true;
      break;
    }
    ++in_flight;
    lock.unlock();
    producer.SendAsync(std::move(m), [&](Result<SendResult> r) {
      std::lock_guard<std::mutex> guard(mu);
      if (r.ok()) {
        ++acknowledged;
        PrintResult(ctl, *r);
      } else {
        ++failed;
        if (first_error.ok()) first_error = r.status();
      }
      --in_flight;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  std::cout.flush();
  if (first_error.ok()) return kExitOk;
  // Which lines made it is on stdout (one id each); how many, here.
  return ctl.Fail(Status(first_error.code(),
                         first_error.message() + " (" + std::to_string(acknowledged) +
                             " lines acknowledged, their ids printed; " + std::to_string(failed) +
                             " failed" + (stopped_early ? "; the rest not sent)" : ")")));
}

}  // namespace

void AddSendCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<SendArgs>();
  auto* cmd = app.add_subcommand(
      "send",
      "Send one message (prints its id once durable), or each stdin line with --lines\n"
      "Examples:\n"
      "  txmqctl send orders --key 42 --prop source=cli 'hello'\n"
      "  echo hello | txmqctl send orders -\n"
      "  seq 1000 | txmqctl send orders --lines");
  cmd->add_option("topic", args->topic, "Topic name")->required();
  cmd->add_option("body", args->body, "Message body; '-' reads stdin (not with --lines)");
  cmd->add_option("--key", args->key, "Key: same key, same queue, kept in order");
  cmd->add_option("--prop", args->props, "Property name=value (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--id", args->id, "Message id (default: a new UUIDv7); a resend is stored once");
  cmd->add_option("--delay", args->delay, "Deliver no earlier than this (e.g. 30s, 5m)");
  cmd->add_flag("--lines", args->lines, "Send each line of stdin as one message, pipelined");
  cmd->add_option("--window", args->window, "With --lines: most unacknowledged messages")
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--dry-run", args->dry_run,
                "Check the arguments and show the message; send nothing (not with --lines)");
  cmd->callback([&ctl, &run, args] {
    run = [&ctl, args]() -> int {
      if (Status s = ValidateName("topic", args->topic); !s.ok()) return ctl.Usage(s.message());
      Message base;
      base.topic = args->topic;
      base.key = args->key;
      base.id = args->id;
      auto props = ParseProps(args->props);
      if (!props.ok()) return ctl.Usage(props.status().message());
      base.properties = std::move(*props);
      if (!args->delay.empty()) {
        int64_t ms = ParseDurationMs(args->delay);
        if (ms < 0) return ctl.Usage("--delay '" + args->delay + "' is not a duration");
        base.delay = std::chrono::milliseconds(ms);
      }
      if (args->lines && !args->body.empty()) {
        return ctl.Usage("--lines reads bodies from stdin; do not give a body too");
      }
      if (args->lines && !args->id.empty()) return ctl.Usage("--id cannot be used with --lines");
      if (!args->lines && args->body.empty())
        return ctl.Usage("a body (or '-' for stdin) is required");
      if (args->lines && args->dry_run) return ctl.Usage("--dry-run cannot be used with --lines");

      if (!args->lines) {
        if (args->body == "-") {
          base.body.assign(std::istreambuf_iterator<char>(std::cin),
                           std::istreambuf_iterator<char>());
        } else {
          base.body = args->body;
        }
      }
      if (args->dry_run) {
        std::cout << "dry run: would send " << base.body.size() << " bytes to topic '" << base.topic
                  << "'" << (base.key.empty() ? "" : " with key '" + base.key + "'")
                  << (base.properties.empty()
                          ? ""
                          : ", " + std::to_string(base.properties.size()) + " properties")
                  << "; nothing sent\n";
        return kExitOk;
      }
      // Learn first whether anything listens there, so a broker that is
      // down fails now instead of after every retry's timeout.
      if (auto reached = ctl.Connection(); !reached.ok()) return ctl.Fail(reached.status());
      const std::string broker = ctl.Broker().value();  // resolved by Connection()
      // The attempts share what is left of --timeout (--lines: per message).
      constexpr int kRetries = 2;
      Producer producer(
          {.broker = broker,
           .curve_key = ctl.curve_key_file(),
           .server_key = ctl.server_key_file(),
           .group = "txmqctl",
           .send_timeout = std::max(ctl.Left() / (kRetries + 1), std::chrono::milliseconds(1)),
           .retries = kRetries});
      if (Status s = producer.Start(); !s.ok()) return ctl.Fail(s);
      if (args->lines) return SendLines(ctl, producer, base, args->window);
      auto r = producer.Send(std::move(base));
      if (!r.ok()) return ctl.Fail(r.status());
      PrintResult(ctl, *r);
      return kExitOk;
    };
  });
}

}  // namespace txmq::ctl
