#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"

namespace txmq::ctl {

void AddStatusCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* cmd =
      app.add_subcommand("status",
                         "Show the broker: version, uptime, data dir, flush mode, topics, clients\n"
                         "Example: txmqctl --broker tcp://127.0.0.1:7800 status");
  cmd->callback([&ctl, &run] {
    run = [&ctl]() -> int {
      auto reply = ctl.Call([](wire::Envelope::Builder e) { e.setStatus(); });
      if (!reply.ok()) return ctl.Fail(reply.status());
      auto s = reply->envelope().getStatusOk();
      if (ctl.json()) {
        nlohmann::json j = {
            {"broker", wire::ToString(s.getBrokerName())},
            {"version", wire::ToString(s.getVersion())},
            {"uptime_ms", s.getUptimeMs()},
            {"data_dir", wire::ToString(s.getDataDir())},
            {"flush", wire::ToString(s.getFlushMode())},
            {"listen", wire::ToString(s.getListen())},
            {"topics", s.getTopics()},
            {"messages_stored", s.getMessagesStored()},
            {"producers", s.getProducers()},
            {"consumers", s.getConsumers()},
            {"bad_frames", s.getBadFrames()},
            {"storage_healthy", s.getStorageHealthy()},
        };
        std::cout << j.dump(2) << "\n";
        return kExitOk;
      }
      auto row = [](const char* k, const std::string& v) {
        std::printf("%-17s %s\n", k, v.c_str());
      };
      row("broker", wire::ToString(s.getBrokerName()));
      row("version", wire::ToString(s.getVersion()));
      row("uptime", FormatDurationMs(s.getUptimeMs()));
      row("listen", wire::ToString(s.getListen()));
      row("data dir", wire::ToString(s.getDataDir()));
      row("flush", wire::ToString(s.getFlushMode()));
      row("storage", s.getStorageHealthy() ? "healthy" : "FAILED (refusing writes; see log)");
      row("topics", std::to_string(s.getTopics()));
      row("messages stored", std::to_string(s.getMessagesStored()));
      row("producers", std::to_string(s.getProducers()));
      row("consumers", std::to_string(s.getConsumers()));
      row("bad requests", std::to_string(s.getBadFrames()));
      return kExitOk;
    };
  });
}

}  // namespace txmq::ctl
