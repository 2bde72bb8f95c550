// txmqctl outbox list | requeue | delete: a service's local message table,
// read and changed offline. LevelDB lets one process open a store at a
// time, so while the service runs these commands are refused with a clear
// message (stop the service first, or use its own tools). No broker sees
// these changes, so txmqctl writes their audit line itself: on stderr, and
// appended to --audit-log FILE when given.
#include <iostream>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/message_view.h"
#include "tools/txmqctl/table.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

namespace txmq::ctl {

namespace {

struct OutboxArgs {
  std::string db;
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

// Opens the store offline; a store held by its service is refused, and a
// path with no store is an error (never an empty store created there).
Result<std::unique_ptr<LocalStore>> OpenOffline(const std::string& db) {
  auto store = LocalStore::Open(db, {.create_if_missing = false});
  if (store.ok()) return store;
  if (store.status().code() == StatusCode::kUnavailable) {
    // Not UNAVAILABLE: that would send the reader looking for the broker.
    return Status::FailedPrecondition("the store at '" + db +
                                      "' is open by a running service (its LevelDB lock is "
                                      "held); stop the service to change its outbox offline");
  }
  return store.status();
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
  auto store = OpenOffline(args.db);
  if (!store.ok()) return ctl.Fail(store.status());
  std::vector<OutboxRow> rows;
  for (bool parked : {false, true}) {
    const bool wanted =
        args.state == "all" || (parked ? args.state == "parked" : args.state == "pending");
    if (!wanted) continue;
    auto some = Outbox::List(**store, parked);
    rows.insert(rows.end(), some.begin(), some.end());
  }
  if (ctl.json()) {
    nlohmann::json j = {{"db", args.db}, {"rows", nlohmann::json::array()}};
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
                             "outbox rows in " + args.db);
  return kExitOk;
}

// requeue and delete: find the row, say what would happen, do it.
int Change(Ctl& ctl, const OutboxArgs& args, bool requeue) {
  if (Status s = ValidateId("row", args.id); !s.ok()) return ctl.Usage(s.message());
  auto store = OpenOffline(args.db);
  if (!store.ok()) return ctl.Fail(store.status());
  std::optional<OutboxRow> row;
  for (bool parked : {true, false}) {
    for (auto& r : Outbox::List(**store, parked)) {
      if (r.id == args.id) row = r;
    }
  }
  if (!row)
    return ctl.Fail(Status::NotFound("no outbox row has id '" + args.id + "' in " + args.db));
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
                          : "delete it: it would never be sent")
              << "; nothing changed\n";
    return kExitOk;
  }
  if (!args.audit_log.empty()) {
    if (Status s = SetAuditFile(args.audit_log); !s.ok()) return ctl.Usage(s.message());
  }
  Status s = requeue ? Outbox::Requeue(**store, args.id, ctl.operator_name())
                     : Outbox::Delete(**store, args.id, ctl.operator_name());
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

}  // namespace

void AddOutboxCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<OutboxArgs>();
  auto* outbox = app.add_subcommand(
      "outbox",
      "A service's local outbox table, read and changed offline (stop the service first)\n"
      "Example: txmqctl outbox list --db ./orders-db --state parked");
  outbox->require_subcommand(1);

  auto* list =
      outbox->add_subcommand("list",
                             "Rows waiting to be sent (pending) or refused for good (parked).\n"
                             "A pending row behind a parked row of its key shows as blocked:\n"
                             "it goes once that row is requeued or deleted.\n"
                             "Example: txmqctl outbox list --db ./orders-db --state parked");
  list->add_option("--db", args->db,
                   "The service's store directory (must exist; nothing is created)")
      ->required();
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
  requeue
      ->add_option("--db", args->db,
                   "The service's store directory (must exist; nothing is created)")
      ->required();
  requeue->add_flag("--dry-run", args->dry_run, "Show what would happen; change nothing");
  requeue->add_option("--audit-log", args->audit_log, kAuditLogHelp);
  requeue->callback(
      [&ctl, &run, args] { run = [&ctl, args] { return Change(ctl, *args, true); }; });

  auto* del =
      outbox->add_subcommand("delete",
                             "Delete a pending or parked row: it is never sent\n"
                             "Example: txmqctl outbox delete --db ./orders-db 01a2... --dry-run");
  del->add_option("id", args->id, "Row id (the message id)")->required();
  del->add_option("--db", args->db,
                  "The service's store directory (must exist; nothing is created)")
      ->required();
  del->add_flag("--dry-run", args->dry_run, "Show what would happen; change nothing");
  del->add_option("--audit-log", args->audit_log, kAuditLogHelp);
  del->callback([&ctl, &run, args] { run = [&ctl, args] { return Change(ctl, *args, false); }; });
}

}  // namespace txmq::ctl
