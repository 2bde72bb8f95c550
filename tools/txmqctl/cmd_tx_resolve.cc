// txmqctl tx commit | rollback | check | recheck: the operator decides what
// the producer never told the broker. Every request names the operator, so
// the broker's audit log says who did what; --dry-run fetches the
// transaction and says what would happen without sending the change.
#include <iostream>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/table.h"
#include "tools/txmqctl/tx_view.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct EndArgs {
  std::string id, reason;
  bool dry_run = false;
};

struct CheckArgs {
  std::string id, reason;
  bool dry_run = false;
};

struct RecheckArgs {
  bool stuck = false;
  std::string group, reason;
  bool dry_run = false;
};

// A dry run's verdict: printed as a sentence, or as JSON with the
// transaction it was based on. `fails` is how the real request would fail
// (kOk: it would not).
int DryRunVerdict(Ctl& ctl, wire::ShowTransactionOk::Reader tx, const std::string& action,
                  const std::string& would, const std::string& sentence,
                  StatusCode fails = StatusCode::kOk) {
  const bool failing = fails != StatusCode::kOk;
  if (ctl.json()) {
    nlohmann::json j = {{"dry_run", true},
                        {"action", action},
                        {"would", would},
                        {"operator", ctl.operator_name()},
                        {"transaction", TransactionJson(tx)}};
    if (failing) j["error"] = sentence;
    PrintJson(j);
  } else {
    PrintTransaction(std::cout, tx);
    std::cout << "\n";
    if (!failing) std::cout << "dry run: " << sentence << "; nothing changed\n";
  }
  // A predicted refusal fails like the real request would, so a script
  // running the dry run first learns it the same way.
  if (failing) std::cerr << "txmqctl: dry run: " << sentence << "\n";
  return ExitCodeOf(Status(fails, sentence), true);
}

int EndDryRun(Ctl& ctl, const EndArgs& args, bool commit) {
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setShowTransaction(args.id); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto tx = reply->envelope().getShowTransactionOk();
  auto s = tx.getSummary();
  const char* action = commit ? "commit" : "rollback";
  const auto wanted = commit ? wire::TxState::COMMITTED : wire::TxState::ROLLED_BACK;
  if (s.getState() == wire::TxState::PREPARED) {
    const std::string n = Count(s.getMessageIds().size(), "message");
    return DryRunVerdict(ctl, tx, action, action,
                         commit ? "would commit it and deliver its " + n + " to consumers"
                                : "would roll it back and discard its " + n);
  }
  const std::string final_state = TxStateName(s.getState());
  if (s.getState() == wanted) {
    return DryRunVerdict(ctl, tx, action, "nothing",
                         "it is already " + final_state + "; " + action + " would change nothing");
  }
  return DryRunVerdict(ctl, tx, action, "fail",
                       std::string("would fail: CONFLICT: transaction '") + args.id +
                           "' is already " + final_state + " (by " +
                           wire::ToString(s.getResolvedBy()) + ")",
                       StatusCode::kConflict);
}

int End(Ctl& ctl, const EndArgs& args, bool commit) {
  if (Status s = ValidateId("transaction id", args.id); !s.ok()) return ctl.Usage(s.message());
  if (args.dry_run) return EndDryRun(ctl, args, commit);
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto end = e.initEndTransaction();
    end.setTransactionId(args.id);
    end.setOutcome(commit ? wire::TxOutcome::COMMIT : wire::TxOutcome::ROLLBACK);
    end.setOperator(ctl.operator_name());
    end.setReason(args.reason);
  });
  // CONFLICT (ended the other way) and NOT_FOUND carry the broker's words.
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getEndTransactionOk();
  const std::string state = TxStateName(ok.getState());
  if (ctl.json()) {
    PrintJson({{"transaction_id", wire::ToString(ok.getTransactionId())},
               {"state", state},
               {"already_final", ok.getAlreadyFinal()},
               {"operator", ctl.operator_name()}});
  } else if (ok.getAlreadyFinal()) {
    std::cout << "transaction " << args.id << " is already " << state << "; nothing changed\n";
  } else {
    std::cout << "transaction " << args.id << " " << state << " by operator '"
              << ctl.operator_name() << "'"
              << (commit ? ": its messages are now delivered" : ": its messages are discarded")
              << "\n";
  }
  return kExitOk;
}

int Check(Ctl& ctl, const CheckArgs& args) {
  if (Status s = ValidateId("transaction id", args.id); !s.ok()) return ctl.Usage(s.message());
  if (args.dry_run) {
    auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setShowTransaction(args.id); });
    if (!reply.ok()) return ctl.Fail(reply.status());
    auto tx = reply->envelope().getShowTransactionOk();
    auto s = tx.getSummary();
    if (s.getState() != wire::TxState::PREPARED) {
      return DryRunVerdict(ctl, tx, "check", "fail",
                           std::string("would fail: FAILED_PRECONDITION: transaction '") + args.id +
                               "' is already " + TxStateName(s.getState()) +
                               "; there is nothing to check",
                           StatusCode::kFailedPrecondition);
    }
    return DryRunVerdict(
        ctl, tx, "check", "check",
        "would ask producer group '" + wire::ToString(s.getProducerGroup()) + "' about it now");
  }
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto c = e.initCheckNow();
    c.setTransactionId(args.id);
    c.setOperator(ctl.operator_name());
    c.setReason(args.reason);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  const uint32_t scheduled = reply->envelope().getCheckNowOk().getScheduled();
  if (ctl.json()) {
    PrintJson(
        {{"transaction_id", args.id}, {"scheduled", scheduled}, {"operator", ctl.operator_name()}});
  } else {
    std::cout << "transaction " << args.id
              << " will be checked now; see the answer with: txmqctl tx show " << args.id << "\n";
  }
  return kExitOk;
}

// The stuck transactions (of `group`) a recheck would reschedule.
int RecheckDryRun(Ctl& ctl, const RecheckArgs& args) {
  std::vector<nlohmann::json> found;
  Table table({"ID", "GROUP", "TOPIC", "AGE", "CHECKS", "LAST ANSWER"});
  std::string after;
  bool more = true;
  while (more) {
    auto reply = ctl.Call([&](wire::Envelope::Builder e) {
      auto l = e.initListTransactions();
      l.setStuckOnly(true);
      l.setGroup(args.group);
      l.setLimit(1000);
      l.setAfter(after);
    });
    if (!reply.ok()) return ctl.Fail(reply.status());
    auto ok = reply->envelope().getListTransactionsOk();
    more = ok.getMore() && ok.getTransactions().size() > 0;
    for (auto s : ok.getTransactions()) {
      found.push_back(TxSummaryJson(s));
      table.AddRow({wire::ToString(s.getTransactionId()), wire::ToString(s.getProducerGroup()),
                    FirstTopic(s), AgeMs(s.getBornMs()), std::to_string(s.getCheckCount()),
                    CheckAnswerName(s.getLastAnswer())});
      after = wire::ToString(s.getTransactionId());
    }
  }
  if (ctl.json()) {
    PrintJson({{"dry_run", true},
               {"action", "recheck"},
               {"would_schedule", found.size()},
               {"operator", ctl.operator_name()},
               {"transactions", found}});
    return kExitOk;
  }
  table.Print(std::cout, "no stuck transactions");
  std::cout << "\ndry run: would put " << Count(found.size(), "stuck transaction")
            << " back on the check schedule, each with a fresh allowance of checks; nothing "
               "changed\n";
  return kExitOk;
}

int Recheck(Ctl& ctl, const RecheckArgs& args) {
  if (!args.stuck) {
    return ctl.Usage("recheck needs --stuck (it reschedules the stuck transactions)");
  }
  if (!args.group.empty()) {
    if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  }
  if (args.dry_run) return RecheckDryRun(ctl, args);
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto c = e.initCheckNow();
    c.setStuckOnly(true);
    c.setGroup(args.group);
    c.setOperator(ctl.operator_name());
    c.setReason(args.reason);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  const uint32_t scheduled = reply->envelope().getCheckNowOk().getScheduled();
  if (ctl.json()) {
    PrintJson({{"scheduled", scheduled}, {"operator", ctl.operator_name()}});
  } else {
    std::cout << "put " << Count(scheduled, "stuck transaction") << " back on the check schedule\n";
  }
  return kExitOk;
}

void AddEnd(CLI::App& tx, Ctl& ctl, Runner& run, bool commit) {
  auto args = std::make_shared<EndArgs>();
  auto* cmd = tx.add_subcommand(
      commit ? "commit" : "rollback",
      commit ? "Commit an open transaction by hand: its messages are delivered (audit-logged).\n"
               "Only when you know the producer's local transaction committed.\n"
               "Example: txmqctl tx commit 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b --reason 'paid'"
             : "Roll back an open transaction by hand: its messages are discarded\n"
               "(audit-logged). Only when you know the local transaction never commits.\n"
               "Example: txmqctl tx rollback 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b --dry-run");
  cmd->add_option("id", args->id, "Transaction id")->required();
  cmd->add_option("--reason", args->reason, "Why, for the broker's audit log");
  cmd->add_flag("--dry-run", args->dry_run, "Show the transaction and what would happen");
  cmd->callback([&ctl, &run, args, commit] {
    run = [&ctl, args, commit] { return End(ctl, *args, commit); };
  });
}

}  // namespace

void AddTxResolveCommands(CLI::App& tx, Ctl& ctl, Runner& run) {
  AddEnd(tx, ctl, run, true);
  AddEnd(tx, ctl, run, false);

  auto check = std::make_shared<CheckArgs>();
  auto* c = tx.add_subcommand(
      "check",
      "Ask the producer group about an open transaction now instead of at its next\n"
      "scheduled check (a stuck one stays stuck unless the answer ends it)\n"
      "Example: txmqctl tx check 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
  c->add_option("id", check->id, "Transaction id")->required();
  c->add_option("--reason", check->reason, "Why, for the broker's audit log");
  c->add_flag("--dry-run", check->dry_run, "Show the transaction and what would happen");
  c->callback([&ctl, &run, check] { run = [&ctl, check] { return Check(ctl, *check); }; });

  auto recheck = std::make_shared<RecheckArgs>();
  auto* r = tx.add_subcommand(
      "recheck",
      "Put stuck transactions back on the check schedule with a fresh allowance of\n"
      "checks, e.g. after the producer group is running again\n"
      "Example: txmqctl tx recheck --stuck --group orders --dry-run");
  r->add_flag("--stuck", recheck->stuck, "The stuck transactions (required)");
  r->add_option("--group,-g", recheck->group, "Only this producer group");
  r->add_option("--reason", recheck->reason, "Why, for the broker's audit log");
  r->add_flag("--dry-run", recheck->dry_run, "List what would be rescheduled");
  r->callback([&ctl, &run, recheck] { run = [&ctl, recheck] { return Recheck(ctl, *recheck); }; });
}

}  // namespace txmq::ctl
