#include "tools/txmqctl/tx_view.h"

#include <set>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/message_view.h"
#include "tools/txmqctl/table.h"

namespace txmq::ctl {

std::string TxCondition(wire::TxSummary::Reader s) {
  if (s.getState() != wire::TxState::PREPARED) return TxStateName(s.getState());
  return s.getStuck() ? "stuck" : "pending";
}

namespace {

// "orders" or "orders +2" (distinct values after the first).
template <typename List>
std::string FirstOf(List list) {
  if (list.size() == 0) return "-";
  const std::string first = wire::ToString(list[0]);
  std::set<std::string> others;
  for (auto v : list) {
    if (wire::ToString(v) != first) others.insert(wire::ToString(v));
  }
  std::string out = first.empty() ? "-" : first;
  if (!others.empty()) out += " +" + std::to_string(others.size());
  return out;
}

std::string Snake(const char* name) {
  std::string s = name;
  for (char& c : s) c = c == ' ' ? '_' : c;
  return s;
}

}  // namespace

std::string FirstTopic(wire::TxSummary::Reader s) { return FirstOf(s.getTopics()); }
std::string FirstKey(wire::TxSummary::Reader s) { return FirstOf(s.getKeys()); }

nlohmann::json TxSummaryJson(wire::TxSummary::Reader s) {
  nlohmann::json messages = nlohmann::json::array();
  for (unsigned i = 0; i < s.getMessageIds().size(); ++i) {
    messages.push_back({{"id", wire::ToString(s.getMessageIds()[i])},
                        {"topic", i < s.getTopics().size() ? wire::ToString(s.getTopics()[i]) : ""},
                        {"key", i < s.getKeys().size() ? wire::ToString(s.getKeys()[i]) : ""}});
  }
  return {{"id", wire::ToString(s.getTransactionId())},
          {"state", TxStateName(s.getState())},
          {"stuck", s.getStuck()},
          {"group", wire::ToString(s.getProducerGroup())},
          {"instance", wire::ToString(s.getProducerInstance())},
          {"born_ms", s.getBornMs()},
          {"age_ms", std::max<int64_t>(0, NowMs() - s.getBornMs())},
          {"check_count", s.getCheckCount()},
          {"no_producer_checks", s.getNoProducerChecks()},
          {"last_check_ms", s.getLastCheckMs()},
          {"next_check_ms", s.getNextCheckMs()},
          {"last_answer", Snake(CheckAnswerName(s.getLastAnswer()))},
          {"last_error", wire::ToString(s.getLastError())},
          {"resolved_ms", s.getResolvedMs()},
          {"resolved_by", wire::ToString(s.getResolvedBy())},
          {"messages", messages}};
}

nlohmann::json TransactionJson(wire::ShowTransactionOk::Reader tx) {
  nlohmann::json j = TxSummaryJson(tx.getSummary());
  // While open, the halves are stored: show them whole.
  if (tx.getMessages().size() > 0) {
    j["messages"] = nlohmann::json::array();
    for (auto m : tx.getMessages()) j["messages"].push_back(MessageJson(m));
  }
  return j;
}

void PrintTransaction(std::ostream& out, wire::ShowTransactionOk::Reader tx) {
  auto s = tx.getSummary();
  const bool open = s.getState() == wire::TxState::PREPARED;
  Fields f;
  f.Add("transaction", wire::ToString(s.getTransactionId()));
  f.Add("state", open ? std::string("PREPARED (") + (s.getStuck() ? "stuck: checks used up, "
                                                                    "waiting for an operator)"
                                                                  : "pending: being checked)")
                      : TxStateName(s.getState()));
  f.Add("producer group", wire::ToString(s.getProducerGroup()));
  f.Add("producer", wire::ToString(s.getProducerInstance()));
  f.Add("born", FormatTimeMs(s.getBornMs()) + " (" + AgeMs(s.getBornMs()) + " ago)");
  f.Add("checks",
        std::to_string(s.getCheckCount()) +
            (s.getNoProducerChecks() == 0 ? ""
                                          : " (then " + std::to_string(s.getNoProducerChecks()) +
                                                " attempts found no live producer)"));
  if (s.getLastCheckMs() > 0) f.Add("last check", AgeMs(s.getLastCheckMs()) + " ago");
  if (open && s.getNextCheckMs() > 0) {
    f.Add("next check",
          "in " + FormatDurationMs(std::max<int64_t>(0, s.getNextCheckMs() - NowMs())));
  }
  f.Add("last answer", CheckAnswerName(s.getLastAnswer()));
  if (s.getLastError().size() > 0) f.Add("last error", wire::ToString(s.getLastError()));
  if (!open) {
    f.Add("resolved", FormatTimeMs(s.getResolvedMs()) + " (" + AgeMs(s.getResolvedMs()) + " ago)");
    f.Add("resolved by", wire::ToString(s.getResolvedBy()));
  }
  f.Print(out);
  out << "\n";
  if (tx.getMessages().size() == 0) {
    Table table({"MESSAGE", "TOPIC", "KEY"});
    for (unsigned i = 0; i < s.getMessageIds().size(); ++i) {
      table.AddRow({wire::ToString(s.getMessageIds()[i]),
                    i < s.getTopics().size() ? wire::ToString(s.getTopics()[i]) : "",
                    i < s.getKeys().size() ? wire::ToString(s.getKeys()[i]) : ""});
    }
    table.Print(out, "no messages");
    return;
  }
  Table table({"MESSAGE", "TOPIC", "KEY", "BYTES", "BODY"});
  for (auto m : tx.getMessages()) {
    table.AddRow({wire::ToString(m.getId()), wire::ToString(m.getTopic()),
                  m.getKey().size() == 0 ? "-" : wire::ToString(m.getKey()),
                  std::to_string(m.getBody().size()),
                  OneLine(Preview(wire::ToString(m.getBody()), 60), 80)});
  }
  table.Print(out, "no messages");
}

}  // namespace txmq::ctl
