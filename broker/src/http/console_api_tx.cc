// The console's transaction calls: list with filters, one transaction with
// its messages and checks, and commit / rollback / recheck by an operator
// with a reason (the requests `txmqctl tx list|show|commit|rollback|check`
// send, so the broker audits them the same way).
#include <chrono>

#include "broker/src/http/console_api.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "protocol/src/wire_names.h"

namespace txmq::broker::http {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json SummaryJson(wire::TxSummary::Reader s) {
  nlohmann::json messages = nlohmann::json::array();
  for (unsigned i = 0; i < s.getMessageIds().size(); ++i) {
    messages.push_back({{"id", wire::ToString(s.getMessageIds()[i])},
                        {"topic", i < s.getTopics().size() ? wire::ToString(s.getTopics()[i]) : ""},
                        {"key", i < s.getKeys().size() ? wire::ToString(s.getKeys()[i]) : ""}});
  }
  const bool open = s.getState() == wire::TxState::PREPARED;
  return {
      {"id", wire::ToString(s.getTransactionId())},
      {"state", wire::TxStateName(s.getState())},
      {"condition", open ? (s.getStuck() ? "stuck" : "pending") : wire::TxStateName(s.getState())},
      {"stuck", s.getStuck()},
      {"producer_group", wire::ToString(s.getProducerGroup())},
      {"producer_instance", wire::ToString(s.getProducerInstance())},
      {"messages", messages},
      {"born_ms", s.getBornMs()},
      // Clocks of broker and this process may differ a little: never negative.
      {"age_ms", std::max<int64_t>(0, NowMs() - s.getBornMs())},
      {"checks",
       {{"count", s.getCheckCount()},
        {"no_producer", s.getNoProducerChecks()},
        {"last_ms", s.getLastCheckMs()},
        {"next_ms", s.getNextCheckMs()},
        {"last_answer", wire::CheckAnswerName(s.getLastAnswer())},
        {"last_error", wire::ToString(s.getLastError())}}},
      {"resolved_ms", s.getResolvedMs()},
      {"resolved_by", wire::ToString(s.getResolvedBy())}};
}

std::string Param(const Query& query, const char* name) {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

}  // namespace

ApiReply ConsoleApi::ListTransactions(const Query& query, const std::string& peer) {
  const std::string filter = Param(query, "filter").empty() ? "open" : Param(query, "filter");
  if (filter != "open" && filter != "stuck" && filter != "pending") {
    return ErrorReply(400, "filter = '" + filter + "' is not one of open, stuck, pending");
  }
  int64_t older_than_ms = 0;
  if (const std::string age = Param(query, "older_than"); !age.empty()) {
    older_than_ms = ParseDurationMs(age);
    if (older_than_ms < 0) {
      return ErrorReply(400,
                        "older_than = '" + age + "' is not a duration (examples: 30s, 10m, 2h)");
    }
  }
  auto reply = Call(
      [&](wire::Envelope::Builder e) {
        auto l = e.initListTransactions();
        l.setStuckOnly(filter == "stuck");
        l.setPendingOnly(filter == "pending");
        l.setGroup(Param(query, "group"));
        l.setTopic(Param(query, "topic"));
        l.setOlderThanMs(older_than_ms);
        l.setAfter(Param(query, "after"));
        l.setLimit(kMaxListed);
      },
      peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  auto ok = reply->envelope().getListTransactionsOk();
  nlohmann::json list = nlohmann::json::array();
  for (auto s : ok.getTransactions()) list.push_back(SummaryJson(s));
  return {200, {{"transactions", list}, {"more", ok.getMore()}}};
}

ApiReply ConsoleApi::ShowTransaction(const std::string& id, const std::string& peer) {
  auto reply = Call([&](wire::Envelope::Builder e) { e.setShowTransaction(id); }, peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  auto ok = reply->envelope().getShowTransactionOk();
  nlohmann::json messages = nlohmann::json::array();
  for (auto m : ok.getMessages()) messages.push_back(MessageJson(m));
  return {200, {{"transaction", SummaryJson(ok.getSummary())}, {"messages", messages}}};
}

ApiReply ConsoleApi::ActOnTransaction(const std::string& id, const std::string& action,
                                      const std::string& body, const std::string& peer) {
  if (action != "commit" && action != "rollback" && action != "recheck") {
    return ErrorReply(404, "'" + action +
                               "' is not an action on a transaction (commit, "
                               "rollback, recheck)");
  }
  auto parsed = ParseActionBody(body);
  if (!parsed.ok()) return ErrorReply(parsed.status());
  if (action == "recheck") {
    auto reply = Call(
        [&](wire::Envelope::Builder e) {
          auto c = e.initCheckNow();
          c.setTransactionId(id);
          c.setOperator(parsed->operator_name);
          c.setReason(parsed->reason);
        },
        peer);
    if (!reply.ok()) return ErrorReply(reply.status());
    return {200,
            {{"transaction_id", id},
             {"action", action},
             {"scheduled", reply->envelope().getCheckNowOk().getScheduled()},
             {"operator", parsed->operator_name}}};
  }
  auto reply = Call(
      [&](wire::Envelope::Builder e) {
        auto end = e.initEndTransaction();
        end.setTransactionId(id);
        end.setOutcome(action == "commit" ? wire::TxOutcome::COMMIT : wire::TxOutcome::ROLLBACK);
        end.setOperator(parsed->operator_name);
        end.setReason(parsed->reason);
      },
      peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  auto ok = reply->envelope().getEndTransactionOk();
  return {200,
          {{"transaction_id", wire::ToString(ok.getTransactionId())},
           {"action", action},
           {"state", wire::TxStateName(ok.getState())},
           {"already_final", ok.getAlreadyFinal()},
           {"operator", parsed->operator_name}}};
}

}  // namespace txmq::broker::http
