#include <iostream>

#include "protocol/src/byte_size.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/table.h"

namespace txmq::ctl {

namespace {

nlohmann::json TxCountersJson(wire::TxCounters::Reader t) {
  return {{"open", t.getOpen()},
          {"stuck", t.getStuck()},
          {"oldest_open_age_ms", t.getOldestOpenAgeMs()},
          {"halves_stored", t.getHalvesStored()},
          {"committed", t.getCommitted()},
          {"rolled_back", t.getRolledBack()},
          {"checks_sent", t.getChecksSent()},
          {"ends_carried", t.getEndsCarried()},
          {"answers",
           {{"commit", t.getAnswersCommit()},
            {"rollback", t.getAnswersRollback()},
            {"unknown", t.getAnswersUnknown()},
            {"error", t.getAnswersError()},
            {"no_answer", t.getNoAnswer()},
            {"no_producer", t.getNoProducer()}}}};
}

// status's metrics object: what txmqd --http /metrics shows beyond the
// other fields (a broker older than the field sends an empty one).
nlohmann::json MetricsJson(wire::MetricsStatus::Reader m) {
  static constexpr const char* kAnswers[] = {"none",  "commit",    "rollback",   "unknown",
                                             "error", "no_answer", "no_producer"};
  auto histogram = [&](capnp::List<uint64_t>::Reader counts) {
    nlohmann::json buckets = nlohmann::json::array();
    auto bounds = m.getLatencyBoundsMicros();
    for (unsigned i = 0; i < counts.size(); ++i) {
      buckets.push_back(
          {{"le_micros", i < bounds.size() ? nlohmann::json(bounds[i]) : nlohmann::json("+Inf")},
           {"count", counts[i]}});
    }
    return buckets;
  };
  nlohmann::json queues = nlohmann::json::array();
  for (auto q : m.getQueues()) {
    queues.push_back({{"topic", wire::ToString(q.getTopic())},
                      {"queue", q.getQueue()},
                      {"messages_in", q.getMessagesIn()},
                      {"bytes_in", q.getBytesIn()},
                      {"backlog", q.getBacklog()},
                      {"oldest_age_ms", q.getOldestAgeMs()}});
  }
  nlohmann::json groups = nlohmann::json::array();
  for (auto g : m.getGroups()) {
    nlohmann::json topics = nlohmann::json::array();
    for (auto t : g.getTopics()) {
      topics.push_back({{"topic", wire::ToString(t.getTopic())},
                        {"lag", t.getLag()},
                        {"in_flight", t.getInFlight()}});
    }
    groups.push_back({{"group", wire::ToString(g.getGroup())},
                      {"topics", topics},
                      {"in_flight", g.getInFlight()},
                      {"redeliveries_scheduled", g.getRedeliveriesScheduled()},
                      {"dead_lettered", g.getDeadLettered()},
                      {"expired_unconsumed", g.getExpired()}});
  }
  nlohmann::json producers = nlohmann::json::array();
  for (auto p : m.getProducerGroups()) {
    nlohmann::json answers = nlohmann::json::object();
    for (unsigned i = 1; i < p.getAnswers().size() && i < std::size(kAnswers); ++i) {
      answers[kAnswers[i]] = p.getAnswers()[i];
    }
    producers.push_back({{"group", wire::ToString(p.getGroup())},
                         {"open", p.getOpen()},
                         {"stuck", p.getStuck()},
                         {"committed", p.getCommitted()},
                         {"rolled_back", p.getRolledBack()},
                         {"checks_sent", p.getChecksSent()},
                         {"answers", answers}});
  }
  return {{"delivered", m.getDelivered()},
          {"acked", m.getAcked()},
          {"duplicates", m.getDuplicates()},
          {"redeliveries_scheduled", m.getRedeliveriesScheduled()},
          {"dropped_replies", m.getDroppedReplies()},
          {"messages_stored_since_start", m.getMessagesStoredSinceStart()},
          {"admins", m.getAdmins()},
          {"storage_bytes_written", m.getStorageBytesWritten()},
          {"storage_checkpoints", m.getStorageCheckpoints()},
          {"round_write_latency", histogram(m.getRoundWriteCounts())},
          {"fsync_latency", histogram(m.getFsyncCounts())},
          {"queues", queues},
          {"groups", groups},
          {"producer_groups", producers}};
}

// Free space and what the disk watermark does with it.
std::string DiskLine(wire::BrokerStatus::Reader s) {
  const std::string free = FormatBytes(s.getDiskFreeBytes()) + " free";
  if (s.getMinFreeDiskBytes() == 0) return free + " (not checked: --min-free-disk 0)";
  const std::string min = FormatBytes(s.getMinFreeDiskBytes());
  if (!s.getDiskLow()) return free + " (new messages refused below " + min + ")";
  return "LOW: " + free + ", below --min-free-disk " + min +
         ": refusing new messages (sends, halves, DLQ resends, topic creation); consumers and "
         "transaction ends go on";
}

int PrintStatus(const Ctl& ctl, wire::BrokerStatus::Reader s) {
  auto t = s.getTransactions();
  // In txmqd --help order; a broker older than the field sends none.
  nlohmann::json settings = nlohmann::json::object();
  Fields settings_block;
  for (auto setting : s.getSettings()) {
    settings[wire::ToString(setting.getName())] = wire::ToString(setting.getValue());
    settings_block.Add("  " + wire::ToString(setting.getName()),
                       wire::ToString(setting.getValue()));
  }
  // Limits: what is used and what was refused (a broker older than the
  // field sends none).
  nlohmann::json limits = nlohmann::json::object();
  Fields limits_block;
  for (auto l : s.getLimits()) {
    const std::string name = wire::ToString(l.getName());
    limits[name] = {{"limit", l.getLimit()}, {"used", l.getUsed()}, {"refused", l.getRefused()}};
    const bool rate = name.ends_with("-per-second");
    std::string line = rate ? std::to_string(l.getLimit()) + " a second"
                            : std::to_string(l.getUsed()) + " of " + std::to_string(l.getLimit());
    if (l.getRefused() > 0) line += ", " + std::to_string(l.getRefused()) + " refused";
    limits_block.Add("  " + name, line);
  }
  if (ctl.json()) {
    PrintJson({
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
        {"consumer_groups", s.getConsumerGroups()},
        {"dead_lettered", s.getDeadLettered()},
        {"expired_unconsumed", s.getExpiredUnconsumed()},
        {"bad_frames", s.getBadFrames()},
        {"storage_healthy", s.getStorageHealthy()},
        {"disk_free_bytes", s.getDiskFreeBytes()},
        {"min_free_disk_bytes", s.getMinFreeDiskBytes()},
        {"disk_low", s.getDiskLow()},
        {"damaged_records", s.getDamagedRecords()},
        {"transactions", TxCountersJson(t)},
        {"commit_rounds", s.getCommitRounds()},
        {"commit_requests", s.getCommitRequests()},
        {"commit_write_micros", s.getCommitWriteMicros()},
        {"settings", settings},
        {"limits", limits},
        // null: the broker shows them to admins only (under an ACL).
        {"metrics", s.hasMetrics() ? MetricsJson(s.getMetrics()) : nlohmann::json()},
    });
    return kExitOk;
  }
  Fields f;
  f.Add("broker", wire::ToString(s.getBrokerName()));
  f.Add("version", wire::ToString(s.getVersion()));
  f.Add("uptime", FormatDurationMs(s.getUptimeMs()));
  f.Add("listen", wire::ToString(s.getListen()));
  f.Add("data dir", wire::ToString(s.getDataDir()));
  f.Add("flush", wire::ToString(s.getFlushMode()));
  f.Add("storage", s.getStorageHealthy() ? "healthy" : "FAILED (refusing writes; see log)");
  f.Add("disk", DiskLine(s));
  if (s.getCommitRounds() > 0) {
    // How well group commit works: requests per fsync, and the fsync's cost.
    char line[128];
    std::snprintf(line, sizeof line, "%llu rounds, %.1f requests and %.2f ms each",
                  static_cast<unsigned long long>(s.getCommitRounds()),
                  static_cast<double>(s.getCommitRequests()) / s.getCommitRounds(),
                  s.getCommitWriteMicros() / 1000.0 / s.getCommitRounds());
    f.Add("group commit", line);
  }
  f.Add("topics", std::to_string(s.getTopics()));
  f.Add("messages stored", std::to_string(s.getMessagesStored()));
  if (s.getDamagedRecords() > 0) {
    f.Add("damaged records", std::to_string(s.getDamagedRecords()) +
                                 " (not served, not counted; see the broker log, then "
                                 "txmqd --repair)");
  }
  f.Add("producers", std::to_string(s.getProducers()));
  f.Add("consumers", std::to_string(s.getConsumers()));
  f.Add("consumer groups", std::to_string(s.getConsumerGroups()));
  f.Add("dead-lettered", std::to_string(s.getDeadLettered()));
  f.Add("expired unconsumed",
        s.getExpiredUnconsumed() == 0
            ? "0"
            : std::to_string(s.getExpiredUnconsumed()) +
                  " (deleted by retention before a group received them; see: txmqctl group list)");
  f.Add("open transactions", std::to_string(t.getOpen()));
  // Stuck ones wait for a person: say where to look.
  f.Add("stuck transactions",
        t.getStuck() == 0 ? "0"
                          : std::to_string(t.getStuck()) + " (see: txmqctl tx list --state stuck)");
  f.Add("oldest open tx", t.getOpen() == 0 ? "-" : FormatDurationMs(t.getOldestOpenAgeMs()));
  f.Add("committed", std::to_string(t.getCommitted()));
  f.Add("rolled back", std::to_string(t.getRolledBack()));
  f.Add("bad requests", std::to_string(s.getBadFrames()));
  f.Print(std::cout);
  if (s.getLimits().size() > 0) {
    // Per-client limits show the busiest client; rates show only refusals.
    std::cout << "\nlimits (used now of the limit; refused since start)\n";
    limits_block.Print(std::cout);
  }
  if (s.getSettings().size() > 0) {
    std::cout << "\nsettings (txmqd --help explains each flag; max-long-poll, max-delay, "
                 "max-pull-messages and cleanup-* are fixed limits, not flags)\n";
    settings_block.Print(std::cout);
  }
  return kExitOk;
}

}  // namespace

void AddStatusCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* cmd = app.add_subcommand(
      "status",
      "Show the broker: version, uptime, data dir, flush mode, topics, messages,\n"
      "clients, open and stuck transactions, and every effective setting\n"
      "Example: txmqctl --broker tcp://127.0.0.1:7800 status");
  cmd->callback([&ctl, &run] {
    run = [&ctl]() -> int {
      auto reply = ctl.Call([](wire::Envelope::Builder e) { e.setStatus(); });
      if (!reply.ok()) return ctl.Fail(reply.status());
      return PrintStatus(ctl, reply->envelope().getStatusOk());
    };
  });
}

}  // namespace txmq::ctl
