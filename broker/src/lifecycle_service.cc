// The lifecycle service's frame (admission, refusal, audit, the reply when
// durable) and the verbs about topics: topic delete and dlq purge. The
// group verbs are in lifecycle_groups.cc.
#include "broker/src/lifecycle_service.h"

#include <algorithm>
#include <set>

#include "broker/src/admin_auth.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace {

constexpr size_t kIdsNamedInErrors = 3;

// "a, b, c and 2 more".
std::string FirstFew(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < kIdsNamedInErrors; ++i) {
    out += (i == 0 ? "" : ", ") + items[i];
  }
  if (items.size() > kIdsNamedInErrors) {
    out += " and " + std::to_string(items.size() - kIdsNamedInErrors) + " more";
  }
  return out;
}

std::string Plural(uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace

std::string DescribeConsumers(const std::vector<const ClientInfo*>& consumers) {
  std::vector<std::string> ids;
  for (const ClientInfo* c : consumers) ids.push_back(c->id + " of group '" + c->group + "'");
  return Plural(consumers.size(), "connected consumer") + " (" + FirstFew(ids) + ")";
}

void LifecycleService::Handle(const RequestContext& ctx, wire::LifecycleRequest::Reader request) {
  using R = wire::LifecycleRequest;
  Call call{ctx, wire::ToString(request.getOperator()), request.getDryRun(), request.getForce()};
  switch (request.which()) {
    case R::DELETE_TOPIC:
      return DeleteTopic(call, wire::ToString(request.getDeleteTopic()));
    case R::DELETE_GROUP:
      return DeleteGroup(call, wire::ToString(request.getDeleteGroup()));
    case R::RESET_GROUP:
      return ResetGroup(call, request.getResetGroup());
    case R::PURGE_DLQ:
      return PurgeDlq(call, request.getPurgeDlq());
    case R::MOVE_QUEUE:
      return MoveQueue(call, request.getMoveQueue());
    case R::FORGET_PLACEMENT:
      return ForgetPlacement(call, wire::ToString(request.getForgetPlacement()));
  }
  d_.core.ReplyError(ctx,
                     Status::InvalidArgument("lifecycle request kind " +
                                             std::to_string(static_cast<int>(request.which())) +
                                             " is not one this broker knows"));
}

Status LifecycleService::Admit(const Call& call, std::string_view action) const {
  if (Status s = RequireAdmin(call.ctx, action); !s.ok()) return s;
  if (!call.dry_run) return d_.core.CheckWritable();
  return Status::OK();
}

void LifecycleService::Audit(const Call& call, std::string_view action, const std::string& object,
                             const std::string& result) const {
  Logger("audit")->warn("operator='{}' principal='{}' client={} action={} {}{} result={}",
                        AuditField(call.op), AuditField(call.ctx.principal_name()),
                        AuditToken(call.ctx.client_id()), action, object,
                        call.force ? " force=yes" : "", AuditField(result));
}

void LifecycleService::Refuse(const Call& call, std::string_view action, const std::string& object,
                              const Status& why) {
  if (!call.dry_run) Audit(call, action, object, "refused (" + why.ToString() + ")");
  d_.core.ReplyError(call.ctx, why);
}

void LifecycleService::Finish(const Call& call, std::string_view action, const std::string& object,
                              std::shared_ptr<wire::OutFrame> reply, std::function<void()> after) {
  if (call.dry_run) return d_.core.Reply(call.ctx, *reply);
  d_.core.OnDurable([this, call, action = std::string(action), object, reply,
                     after = std::move(after)](const Status& s) {
    if (!s.ok()) {
      Audit(call, action, object, "failed (" + s.ToString() + ")");
      return d_.core.ReplyError(call.ctx, Status::Unavailable("not recorded: " + s.message()));
    }
    Audit(call, action, object, "applied");
    if (after) after();
    d_.core.Reply(call.ctx, *reply);
  });
}

std::vector<const ClientInfo*> LifecycleService::ConsumersOf(
    const std::vector<std::string>& groups) const {
  std::vector<const ClientInfo*> out;
  for (const auto& [id, c] : d_.clients.all()) {
    if (c.role == wire::Role::CONSUMER &&
        std::find(groups.begin(), groups.end(), c.group) != groups.end()) {
      out.push_back(&c);
    }
  }
  return out;
}

uint32_t LifecycleService::InFlight(const GroupState* group, const std::string& topic) const {
  uint32_t n = 0;
  for (const auto& [lease_id, ref] : d_.groups.leases()) {
    if (ref.topic == topic && (group == nullptr || ref.group == group)) ++n;
  }
  return n;
}

uint32_t LifecycleService::CountDelayed(uint32_t topic_id) {
  storage::BrokerStore& store = d_.core.store();
  uint32_t n = 0;
  Status s = store.ForEachDelayed([&](int64_t due, uint64_t seq) {
    auto d = store.ReadDelayed(due, seq);
    n += d.ok() && d->body.topic_id == topic_id;
    return true;
  });
  if (!s.ok()) Logger("broker")->error("counting delayed messages: {}", s.ToString());
  return n;
}

uint32_t LifecycleService::RemoveTopic(const std::string& name) {
  uint32_t leases = 0;
  for (auto& [group_name, g] : d_.groups.all()) {
    leases += d_.groups.DropSubscription(g, name);
    std::vector<uint64_t> retries;
    for (const auto& [id, e] : g.retries) {
      if (e.record.topic == name || e.Source().topic == name) retries.push_back(id);
    }
    for (uint64_t id : retries) leases += d_.groups.DropRetry(g, id);
  }
  d_.topics.Remove(name);
  d_.sweeper.Deleting();
  return leases;
}

void LifecycleService::DeleteTopic(const Call& call, const std::string& name) {
  constexpr std::string_view kAction = "topic-delete";
  const std::string object = "topic=" + AuditToken(name);
  const auto refuse = [&](const Status& s) { Refuse(call, kAction, object, s); };
  if (Status s = Admit(call, kAction); !s.ok()) return refuse(s);
  if (Status s = ValidateNameOrSystem("topic", name); !s.ok()) return refuse(s);
  if (IsSystemName(name)) {
    return refuse(Status::InvalidArgument(
        "topic '" + name +
        "' is the broker's own: dead letters go with txmqctl dlq purge GROUP --all, a group's "
        "topics with txmqctl group delete GROUP"));
  }
  TopicState* topic = d_.topics.Find(name);
  if (topic == nullptr) return refuse(d_.topics.Missing(name));

  std::vector<std::string> txs;
  for (const auto& [id, tx] : d_.transactions.open()) {
    if (std::any_of(tx.record.messages.begin(), tx.record.messages.end(),
                    [&](const auto& m) { return m.topic == name; })) {
      txs.push_back(id);
    }
  }
  if (!txs.empty()) {
    return refuse(Status::FailedPrecondition(
        "topic '" + name + "' has " + Plural(txs.size(), "open transaction") +
        " with messages for it (" + FirstFew(txs) +
        "), whose commit would create it again: end them first (txmqctl tx list --topic " + name +
        ")"));
  }
  std::vector<std::string> readers;
  for (const auto& [group_name, g] : d_.groups.all()) {
    if (g.subscriptions.count(name)) readers.push_back(group_name);
  }
  const auto live = ConsumersOf(readers);
  const uint32_t in_flight = InFlight(nullptr, name);
  if ((!live.empty() || in_flight > 0) && !call.force) {
    std::string what = live.empty() ? "" : DescribeConsumers(live);
    if (in_flight > 0) {
      what += (what.empty() ? "" : ", ") + Plural(in_flight, "message") + " of it in flight";
    }
    return refuse(Status::FailedPrecondition(
        "topic '" + name + "' is being consumed: " + what +
        "; stop those consumers first, or pass --force (their leases end, and a consumer still "
        "subscribed waits for the topic to exist again)"));
  }

  auto reply = std::make_shared<wire::OutFrame>(call.ctx.request_id);
  auto ok = reply->envelope().initLifecycleOk();
  ok.setDryRun(call.dry_run);
  auto report = ok.initTopicDeleted();
  d_.inspect.FillTopic(*topic, true, report.initTopic());
  report.setDelayed(CountDelayed(topic->id));
  if (d_.replicator != nullptr && d_.topics.placement() != nullptr) {
    if (auto served = d_.topics.placement()->ServedQueues(name)) {
      std::set<std::string> others(served->groups.begin(), served->groups.end());
      others.erase(d_.replicator->group());
      auto list = report.initOtherGroups(static_cast<unsigned>(others.size()));
      unsigned i = 0;
      for (const std::string& g : others) list.set(i++, g);
    }
  }
  FillClients(live, d_.core.SteadyNow(),
              report.initLiveConsumers(static_cast<unsigned>(live.size())));
  if (call.dry_run) return Finish(call, kAction, object, reply);

  uint64_t messages = 0;
  for (const QueueState& q : topic->queues) messages += q.visible_end - q.min_offset;
  RemoveTopic(name);
  Finish(call, kAction,
         object + " messages=" + std::to_string(messages) +
             " groups=" + std::to_string(readers.size()),
         reply);
}

void LifecycleService::PurgeDlq(const Call& call, wire::DlqPurgeRequest::Reader request) {
  constexpr std::string_view kAction = "dlq-purge";
  const std::string group = wire::ToString(request.getGroup());
  std::string object = "group=" + AuditToken(group);
  const auto refuse = [&](const Status& s) { Refuse(call, kAction, object, s); };
  if (Status s = Admit(call, kAction); !s.ok()) return refuse(s);
  if (Status s = ValidateName("group", group); !s.ok()) return refuse(s);
  std::set<std::string> wanted;
  for (auto id : request.getMessageIds()) wanted.insert(wire::ToString(id));
  if (request.getAll() == !wanted.empty()) {
    return refuse(
        Status::InvalidArgument("name the dead letters to purge, or all of them (not both)"));
  }
  auto found = DeadLetterTopicOf(d_.topics, d_.groups, group);
  if (!found.ok()) return refuse(found.status());
  const TopicState* dlq = *found;
  std::vector<std::pair<uint64_t, std::string>> purged;  // offset, id
  std::set<std::string> seen;
  uint64_t total = 0;
  ForEachDeadLetter(d_.core, dlq, 0, [&](uint64_t offset, const storage::MessageView& m) {
    ++total;
    if (request.getAll() || wanted.count(std::string(m.id))) {
      purged.emplace_back(offset, std::string(m.id));
      seen.insert(std::string(m.id));
    }
    return true;
  });
  std::vector<std::string> missing;
  for (const auto& id : wanted) {
    if (!seen.count(id)) missing.push_back(id);
  }

  auto reply = std::make_shared<wire::OutFrame>(call.ctx.request_id);
  auto ok = reply->envelope().initLifecycleOk();
  ok.setDryRun(call.dry_run);
  auto report = ok.initDlqPurged();
  report.setGroup(group);
  auto ids = report.initPurged(static_cast<unsigned>(purged.size()));
  for (unsigned i = 0; i < purged.size(); ++i) ids.set(i, purged[i].second);
  auto absent = report.initMissing(static_cast<unsigned>(missing.size()));
  for (unsigned i = 0; i < missing.size(); ++i) absent.set(i, missing[i]);
  // Dead letters whose round is not durable yet are on their way: kept,
  // and counted as remaining.
  const uint64_t arriving = DeadLettersArriving(dlq);
  report.setRemaining(total - purged.size() + arriving);
  object += " messages=" + std::to_string(purged.size());
  if (call.dry_run || purged.empty()) return Finish(call, kAction, object, reply);

  if (purged.size() == total && arriving == 0) {
    // Nothing is left: the whole dead-letter topic goes, and its storage
    // with it; the next dead letter starts it again.
    RemoveTopic(DeadLetterTopic(group));
    return Finish(call, kAction, object, reply);
  }
  for (const auto& [offset, id] : purged) d_.core.store().RemoveMessage(dlq->id, 0, offset);
  Finish(call, kAction, object, reply);
}

}  // namespace txmq::broker
