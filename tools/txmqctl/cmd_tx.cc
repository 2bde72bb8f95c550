// txmqctl tx list | show: the operator's view of open transactions. The
// verbs that change one are in cmd_tx_resolve.cc.
#include <iostream>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/table.h"
#include "tools/txmqctl/tx_view.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

// The broker answers at most this many per request; more are paged.
constexpr uint32_t kPage = 1000;

struct ListArgs {
  std::string state = "all";
  std::string group, topic, older_than;
  uint32_t limit = 100;
};

int List(Ctl& ctl, const ListArgs& args) {
  if (!args.group.empty()) {
    if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  }
  if (!args.topic.empty()) {
    if (Status s = ValidateName("topic", args.topic); !s.ok()) return ctl.Usage(s.message());
  }
  int64_t older_than_ms = 0;
  if (!args.older_than.empty()) {
    older_than_ms = ParseDurationArg(args.older_than);
    if (older_than_ms < 0) {
      return ctl.Usage("--older-than '" + args.older_than + "' is not a duration (e.g. 30s, 5m)");
    }
  }
  std::vector<wire::Frame> pages;
  std::string after;
  uint32_t found = 0;
  bool more = false;
  do {
    auto reply = ctl.Call([&](wire::Envelope::Builder e) {
      auto l = e.initListTransactions();
      l.setStuckOnly(args.state == "stuck");
      l.setPendingOnly(args.state == "open");
      l.setGroup(args.group);
      l.setTopic(args.topic);
      l.setOlderThanMs(older_than_ms);
      l.setLimit(std::min(kPage, args.limit - found));
      l.setAfter(after);
    });
    if (!reply.ok()) return ctl.Fail(reply.status());
    auto ok = reply->envelope().getListTransactionsOk();
    more = ok.getMore();
    found += ok.getTransactions().size();
    if (ok.getTransactions().size() == 0) break;
    after =
        wire::ToString(ok.getTransactions()[ok.getTransactions().size() - 1].getTransactionId());
    pages.push_back(std::move(*reply));
  } while (more && found < args.limit);

  if (ctl.json()) {
    nlohmann::json j = {{"transactions", nlohmann::json::array()}, {"more", more}};
    for (auto& page : pages) {
      for (auto s : page.envelope().getListTransactionsOk().getTransactions()) {
        j["transactions"].push_back(TxSummaryJson(s));
      }
    }
    PrintJson(j);
    return kExitOk;
  }
  Table table(
      {"ID", "GROUP", "TOPIC", "KEY", "AGE", "STATE", "CHECKS", "LAST ANSWER", "LAST ERROR"});
  for (auto& page : pages) {
    for (auto s : page.envelope().getListTransactionsOk().getTransactions()) {
      table.AddRow(
          {wire::ToString(s.getTransactionId()), wire::ToString(s.getProducerGroup()),
           FirstTopic(s), OneLine(FirstKey(s), 40), AgeMs(s.getBornMs()), TxCondition(s),
           std::to_string(s.getCheckCount()), CheckAnswerName(s.getLastAnswer()),
           s.getLastError().size() == 0 ? "-" : OneLine(wire::ToString(s.getLastError()), 60)});
    }
  }
  table.Print(std::cout, args.state == "stuck"  ? "no stuck transactions"
                         : args.state == "open" ? "no pending transactions"
                                                : "no open transactions");
  if (more) {
    std::cerr << "txmqctl: more transactions match; showing the oldest " << found
              << " (raise --limit)\n";
  }
  return kExitOk;
}

int Show(Ctl& ctl, const std::string& id) {
  if (Status s = ValidateId("transaction id", id); !s.ok()) return ctl.Usage(s.message());
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setShowTransaction(id); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto tx = reply->envelope().getShowTransactionOk();
  if (ctl.json()) {
    PrintJson(TransactionJson(tx));
  } else {
    PrintTransaction(std::cout, tx);
  }
  return kExitOk;
}

}  // namespace

void AddTxCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun = app.add_subcommand(
      "tx",
      "Transactions: find open and stuck ones, look at one, end it by hand\n"
      "Examples:\n"
      "  txmqctl tx list --state stuck\n"
      "  txmqctl tx show 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b\n"
      "  txmqctl tx commit 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b --reason 'order 42 is paid'");
  noun->require_subcommand(1);

  auto args = std::make_shared<ListArgs>();
  auto* list = noun->add_subcommand(
      "list",
      "Open transactions, oldest first: id, group, topic, key, age, checks, last answer\n"
      "and last error\n"
      "Example: txmqctl tx list --state stuck --group orders --older-than 10m");
  list->add_option("--state", args->state,
                   "open: still being checked; stuck: checks used up; all: both")
      ->check(CLI::IsMember({"open", "stuck", "all"}))
      ->capture_default_str();
  list->add_option("--group,-g", args->group, "Only this producer group");
  list->add_option("--topic,-t", args->topic, "Only transactions with a message to this topic");
  list->add_option("--older-than", args->older_than, "Only those open longer than this (e.g. 5m)");
  list->add_option("--limit,-n", args->limit, "Most transactions shown")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  list->callback([&ctl, &run, args] { run = [&ctl, args] { return List(ctl, *args); }; });

  auto id = std::make_shared<std::string>();
  auto* show = noun->add_subcommand(
      "show",
      "One transaction: state, producer, checks and what they learned, its messages\n"
      "(open or ended within the broker's --resolved-retention)\n"
      "Example: txmqctl tx show 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b --json");
  show->add_option("id", *id, "Transaction id")->required();
  show->callback([&ctl, &run, id] { run = [&ctl, id] { return Show(ctl, *id); }; });

  AddTxResolveCommands(*noun, ctl, run);
}

}  // namespace txmq::ctl
