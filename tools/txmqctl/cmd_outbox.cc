// txmqctl outbox list | requeue | delete: a service's local message table,
// in its LevelDB store (--db, offline: LevelDB lets one process open a
// store at a time, so while the service runs these commands are refused
// with a clear message), in its PostgreSQL database (--pg) or its SQLite
// database file (--sqlite), both also while the service runs; see
// outbox_source.h. No broker sees these changes, so
// txmqctl writes their audit line itself: on stderr, and appended to
// --audit-log FILE when given.
#include <iostream>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/message_view.h"
#include "tools/txmqctl/outbox_source.h"
#include "tools/txmqctl/table.h"
#include "txmq/outbox.h"

namespace txmq::ctl {

namespace {

struct OutboxArgs {
  std::string db;
  std::string pg;
  std::string sqlite;
  std::string state = "pending";
  std::string id;
  bool dry_run = false;
  std::string audit_log;  // requeue, delete: also append the audit line here
};

constexpr const char* kAuditLogHelp =
    "Also append the audit line (always on stderr) to this file, e.g. the file the\n"
    "broker's --audit-log names when it is on this machine";

int64_t EpochMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

nlohmann::json RowJson(const OutboxRow& r) {
  nlohmann::json j = {{"id", r.id},
                      {"seq", r.seq},
                      {"state", r.parked ? "parked" : "pending"},
                      {"topic", r.message.topic},
                      {"key", r.message.key},
                      {"attempts", r.attempts},
                      {"last_error", r.last_error},
                      {"created_ms", EpochMs(r.created_at)},
                      {"body_bytes", r.message.body.size()}};
  // A pending row that waits behind a parked row of its key.
  j["blocked_by"] = r.blocked_by.empty() ? nlohmann::json() : nlohmann::json(r.blocked_by);
  return j;
}

int List(Ctl& ctl, const OutboxArgs& args) {
  auto source = OutboxSource::Open(args.db, args.pg, args.sqlite);
  if (!source.ok()) return ctl.Fail(source.status());
  std::vector<OutboxRow> rows;
  for (bool parked : {false, true}) {
    const bool wanted =
        args.state == "all" || (parked ? args.state == "parked" : args.state == "pending");
    if (!wanted) continue;
    auto some = (*source)->Rows(parked);
    if (!some.ok()) return ctl.Fail(some.status());
    rows.insert(rows.end(), some->begin(), some->end());
  }
  if (ctl.json()) {
    nlohmann::json j = {{"outbox", (*source)->name()}, {"rows", nlohmann::json::array()}};
    if (!args.db.empty()) j["db"] = args.db;
    for (const auto& r : rows) j["rows"].push_back(RowJson(r));
    PrintJson(j);
    return kExitOk;
  }
  Table table({"ID", "STATE", "TOPIC", "KEY", "ATTEMPTS", "CREATED", "LAST ERROR / WAITS FOR"});
  for (const auto& r : rows) {
    std::string why = r.last_error.empty() ? "-" : OneLine(r.last_error, 80);
    if (!r.blocked_by.empty()) why = "blocked behind parked row " + r.blocked_by;
    table.AddRow({r.id, r.parked ? "parked" : (r.blocked_by.empty() ? "pending" : "blocked"),
                  r.message.topic, r.message.key.empty() ? "-" : OneLine(r.message.key, 30),
                  std::to_string(r.attempts), FormatTimeMs(EpochMs(r.created_at)), why});
  }
  table.Print(std::cout, "no " + (args.state == "all" ? std::string("") : args.state + " ") +
                             "outbox rows in " + (*source)->name());
  return kExitOk;
}

// requeue and delete: find the row, say what would happen, do it.
int Change(Ctl& ctl, const OutboxArgs& args, bool requeue) {
  if (Status s = ValidateId("row", args.id); !s.ok()) return ctl.Usage(s.message());
  auto source = OutboxSource::Open(args.db, args.pg, args.sqlite);
  if (!source.ok()) return ctl.Fail(source.status());
  std::optional<OutboxRow> row;
  for (bool parked : {true, false}) {
    auto rows = (*source)->Rows(parked);
    if (!rows.ok()) return ctl.Fail(rows.status());
    for (auto& r : *rows) {
      if (r.id == args.id) row = r;
    }
  }
  if (!row) {
    return ctl.Fail(
        Status::NotFound("no outbox row has id '" + args.id + "' in " + (*source)->name()));
  }
  if (requeue && !row->parked) {
    return ctl.Fail(Status::FailedPrecondition(
        "row '" + args.id + "' is pending already; only parked rows are requeued"));
  }
  const std::string state = row->parked ? "parked" : "pending";
  const char* action = requeue ? "requeue" : "delete";
  if (args.dry_run) {
    if (ctl.json()) {
      PrintJson({{"dry_run", true},
                 {"action", action},
                 {"changed", false},
                 {"operator", ctl.operator_name()},
                 {"row", RowJson(*row)}});
      return kExitOk;
    }
    std::cout << "row " << args.id << " (" << state << ", topic " << row->message.topic
              << (row->message.key.empty() ? "" : ", key " + OneLine(row->message.key, 30)) << ", "
              << Count(row->attempts, "attempt") << ")\n"
              << "dry run: would "
              << (requeue ? "requeue it: the service sends it when it next runs"
                          : ((*source)->live() && !row->parked
                                 ? "delete it: it would not be sent, unless a relay sends it "
                                   "already"
                                 : "delete it: it would never be sent"))
              << "; nothing changed\n";
    return kExitOk;
  }
  if (!args.audit_log.empty()) {
    if (Status s = SetAuditFile(args.audit_log); !s.ok()) return ctl.Usage(s.message());
  }
  Status s = requeue ? (*source)->Requeue(args.id, ctl.operator_name())
                     : (*source)->Delete(args.id, ctl.operator_name());
  if (!s.ok()) return ctl.Fail(s);
  if (ctl.json()) {
    PrintJson({{"dry_run", false},
               {"action", action},
               {"changed", true},
               {"operator", ctl.operator_name()},
               {"row", RowJson(*row)}});
    return kExitOk;
  }
  std::cout << "row " << args.id << (requeue ? " requeued" : " deleted") << "\n";
  return kExitOk;
}

// --db, --pg or --sqlite: where the outbox is (OutboxSource::Open refuses
// more than one or none, naming them).
void AddWhere(CLI::App* command, OutboxArgs& args) {
  auto* db = command->add_option(
      "--db", args.db, "The service's LevelDB store directory (must exist; nothing is created)");
  auto* pg = command
                 ->add_option("--pg", args.pg,
                              "The service's PostgreSQL database, as a libpq connection string\n"
                              "(\"host=127.0.0.1 dbname=orders user=svc\" or postgresql://...)")
                 ->excludes(db);
  command
      ->add_option("--sqlite", args.sqlite,
                   "The service's SQLite database file (must exist; nothing is created)")
      ->excludes(db)
      ->excludes(pg);
}

}  // namespace

void AddOutboxCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<OutboxArgs>();
  auto* outbox = app.add_subcommand(
      "outbox",
      "A service's local outbox table: a LevelDB store offline (stop the service first),\n"
      "or a PostgreSQL or SQLite database (also while the service runs)\n"
      "Example: txmqctl outbox list --db ./orders-db --state parked\n"
      "         txmqctl outbox list --pg 'host=127.0.0.1 dbname=orders' --state parked\n"
      "         txmqctl outbox list --sqlite ./orders.db --state parked");
  outbox->require_subcommand(1);

  auto* list =
      outbox->add_subcommand("list",
                             "Rows waiting to be sent (pending) or refused for good (parked).\n"
                             "A pending row behind a parked row of its key shows as blocked:\n"
                             "it goes once that row is requeued or deleted.\n"
                             "Example: txmqctl outbox list --db ./orders-db --state parked");
  AddWhere(list, *args);
  list->add_option("--state", args->state, "pending, parked or all")
      ->check(CLI::IsMember({"pending", "parked", "all"}))
      ->capture_default_str();
  list->callback([&ctl, &run, args] { run = [&ctl, args] { return List(ctl, *args); }; });

  auto* requeue =
      outbox->add_subcommand("requeue",
                             "Move a parked row back to pending, attempts reset (the rows of\n"
                             "its key that waited behind it follow it, in order)\n"
                             "Example: txmqctl outbox requeue --db ./orders-db 01a2...");
  requeue->add_option("id", args->id, "Row id (the message id)")->required();
  AddWhere(requeue, *args);
  requeue->add_flag("--dry-run", args->dry_run, "Show what would happen; change nothing");
  requeue->add_option("--audit-log", args->audit_log, kAuditLogHelp);
  requeue->callback(
      [&ctl, &run, args] { run = [&ctl, args] { return Change(ctl, *args, true); }; });

  auto* del =
      outbox->add_subcommand("delete",
                             "Delete a pending or parked row: it is never sent\n"
                             "Example: txmqctl outbox delete --db ./orders-db 01a2... --dry-run");
  del->add_option("id", args->id, "Row id (the message id)")->required();
  AddWhere(del, *args);
  del->add_flag("--dry-run", args->dry_run, "Show what would happen; change nothing");
  del->add_option("--audit-log", args->audit_log, kAuditLogHelp);
  del->callback([&ctl, &run, args] { run = [&ctl, args] { return Change(ctl, *args, false); }; });
}

}  // namespace txmq::ctl
