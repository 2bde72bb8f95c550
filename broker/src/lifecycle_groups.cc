// The lifecycle verbs about consumer groups: group delete and group reset
// (lifecycle_service.h says what each checks and reports).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "broker/src/lifecycle_service.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace {

std::string RetryTopic(const std::string& group) { return "%RETRY%" + group; }

// Where a reset goes, as the audit line and the log say it: "earliest",
// "latest", "2026-01-31T12:00:00.000Z", "0:15,2:40".
std::string TargetName(wire::GroupResetRequest::Reader request) {
  switch (request.getTo()) {
    case wire::ResetTarget::EARLIEST:
      return "earliest";
    case wire::ResetTarget::LATEST:
      return "latest";
    case wire::ResetTarget::TIME: {
      const int64_t ms = request.getTimeMs();
      const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
      std::tm utc{};
      gmtime_r(&seconds, &utc);
      char buf[48];
      const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
      std::snprintf(buf + n, sizeof buf - n, ".%03dZ",
                    static_cast<int>(((ms % 1000) + 1000) % 1000));
      return buf;
    }
    case wire::ResetTarget::OFFSETS: {
      std::string out;
      for (auto qo : request.getOffsets()) {
        out += (out.empty() ? "" : ",") + std::to_string(qo.getQueue()) + ":" +
               std::to_string(qo.getOffset());
      }
      return out.empty() ? "offsets" : out;
    }
  }
  return "unknown";
}

}  // namespace

void LifecycleService::DeleteGroup(const Call& call, const std::string& name) {
  constexpr std::string_view kAction = "group-delete";
  std::string object = "group=" + AuditToken(name);
  const auto refuse = [&](const Status& s) { Refuse(call, kAction, object, s); };
  if (Status s = Admit(call, kAction); !s.ok()) return refuse(s);
  if (Status s = ValidateName("group", name); !s.ok()) return refuse(s);
  GroupState* g = d_.groups.Find(name);
  const TopicState* dlq = d_.topics.Find(DeadLetterTopic(name));
  const TopicState* copies = d_.topics.Find(RetryTopic(name));
  if (g == nullptr && dlq == nullptr && copies == nullptr) {
    return refuse(
        Status::NotFound("consumer group '" + name +
                         "' is not known here: no cursors, redeliveries or dead letters"));
  }
  const auto live = ConsumersOf({name});
  const size_t parked = d_.delivery.ParkedPulls(name);
  uint32_t in_flight = 0;
  for (const auto& [lease_id, ref] : d_.groups.leases()) in_flight += ref.group == g;
  if ((!live.empty() || parked > 0 || in_flight > 0) && !call.force) {
    std::string what = live.empty() ? "" : DescribeConsumers(live);
    if (in_flight > 0) {
      what += (what.empty() ? "" : ", ") + std::to_string(in_flight) + " message" +
              (in_flight == 1 ? "" : "s") + " in flight";
    }
    if (what.empty()) what = std::to_string(parked) + " waiting pulls";
    return refuse(Status::FailedPrecondition(
        "consumer group '" + name + "' is live: " + what +
        "; stop its consumers first, or pass --force (a consumer still running starts the "
        "group over, from each topic's start or end as it asks)"));
  }
  uint64_t dead = DeadLettersArriving(dlq);  // on their way: they count too
  ForEachDeadLetter(d_.core, dlq, 0, [&](uint64_t, const storage::MessageView&) {
    ++dead;
    return true;
  });
  if (dead > 0 && !call.force) {
    return refuse(Status::FailedPrecondition(
        "consumer group '" + name + "' has " + std::to_string(dead) + " dead letter" +
        (dead == 1 ? "" : "s") + ", which deleting the group deletes too: look at them (txmqctl " +
        "dlq list " + name + "), purge them (txmqctl dlq purge " + name +
        " --all), or pass --force"));
  }

  auto reply = std::make_shared<wire::OutFrame>(call.ctx.request_id);
  auto ok = reply->envelope().initLifecycleOk();
  ok.setDryRun(call.dry_run);
  auto report = ok.initGroupDeleted();
  GroupState none;
  none.name = name;
  d_.inspect.FillGroup(g != nullptr ? *g : none, true, report.initGroup());
  uint64_t copied = 0;
  if (copies != nullptr) {
    for (const QueueState& q : copies->queues) copied += q.visible_end - q.min_offset;
  }
  report.setRetryCopies(copied);
  report.setParkedPulls(static_cast<uint32_t>(parked));
  object += " topics=" + std::to_string(g != nullptr ? g->subscriptions.size() : 0) +
            " retries=" + std::to_string(g != nullptr ? g->retries.size() : 0) +
            " dead-letters=" + std::to_string(dead);
  if (call.dry_run) return Finish(call, kAction, object, reply);

  d_.groups.Erase(name);
  d_.delivery.AnswerParkedOf(name);
  for (const std::string& topic : {RetryTopic(name), DeadLetterTopic(name)}) {
    if (d_.topics.Find(topic) != nullptr) RemoveTopic(topic);
  }
  Logger("broker")->info("deleted consumer group '{}'", name);
  Finish(call, kAction, object, reply);
}

void LifecycleService::ResetGroup(const Call& call, wire::GroupResetRequest::Reader request) {
  constexpr std::string_view kAction = "group-reset";
  const std::string group = wire::ToString(request.getGroup());
  const std::string topic_name = wire::ToString(request.getTopic());
  const wire::ResetTarget to = request.getTo();
  const std::string target_name = TargetName(request);
  std::string object = "group=" + AuditToken(group) + " topic=" + AuditToken(topic_name) +
                       " to=" + AuditToken(target_name);
  const auto refuse = [&](const Status& s) { Refuse(call, kAction, object, s); };
  if (Status s = Admit(call, kAction); !s.ok()) return refuse(s);
  if (Status s = ValidateName("group", group); !s.ok()) return refuse(s);
  if (Status s = ValidateNameOrSystem("topic", topic_name); !s.ok()) return refuse(s);
  TopicState* topic = d_.topics.Find(topic_name);
  if (topic == nullptr) return refuse(d_.topics.Missing(topic_name));
  GroupState* g = d_.groups.Find(group);
  if (g == nullptr) {
    return refuse(Status::NotFound("consumer group '" + group +
                                   "' has never consumed here; a new group starts where its "
                                   "consumers ask (the start of each topic, or its end)"));
  }
  const auto n = static_cast<uint32_t>(topic->queues.size());
  auto existing = g->subscriptions.find(topic_name);
  const Subscription* sub = existing == g->subscriptions.end() ? nullptr : &existing->second;

  // Where each queue's cursor goes; a reset to offsets leaves the queues
  // it does not name as they are.
  std::vector<uint64_t> target(n);
  std::vector<bool> moved(n, to != wire::ResetTarget::OFFSETS);
  for (uint32_t q = 0; q < n; ++q) {
    const QueueState& qs = topic->queues[q];
    switch (to) {
      case wire::ResetTarget::EARLIEST:
        target[q] = qs.min_offset;
        break;
      case wire::ResetTarget::LATEST:
        target[q] = qs.visible_end;
        break;
      case wire::ResetTarget::TIME:
        target[q] = d_.topics.FirstStoredAtOrAfter(*topic, q, request.getTimeMs());
        break;
      case wire::ResetTarget::OFFSETS:  // set below for the queues named
        break;
    }
  }
  if (to == wire::ResetTarget::OFFSETS) {
    if (request.getOffsets().size() == 0) {
      return refuse(Status::InvalidArgument("name at least one queue:offset to reset to"));
    }
    std::set<uint32_t> named;
    for (auto qo : request.getOffsets()) {
      const uint32_t q = qo.getQueue();
      if (q >= n) {
        return refuse(Status::InvalidArgument("queue " + std::to_string(q) + " does not exist: '" +
                                              topic_name + "' has queues 0-" +
                                              std::to_string(n - 1)));
      }
      if (!named.insert(q).second) {
        return refuse(Status::InvalidArgument("queue " + std::to_string(q) + " is named twice"));
      }
      const QueueState& qs = topic->queues[q];
      if (qo.getOffset() < qs.min_offset || qo.getOffset() > qs.visible_end) {
        return refuse(Status::InvalidArgument(
            "offset " + std::to_string(qo.getOffset()) + " of queue " + std::to_string(q) +
            " is outside what it stores: " + std::to_string(qs.min_offset) + " (first kept) to " +
            std::to_string(qs.visible_end) + " (its end)"));
      }
      target[q] = qo.getOffset();
      moved[q] = true;
    }
  } else if (request.getOffsets().size() != 0) {
    return refuse(Status::InvalidArgument("queue offsets go only with a reset to offsets"));
  }

  const auto live = ConsumersOf({group});
  const uint32_t in_flight = InFlight(g, topic_name);
  if ((!live.empty() || in_flight > 0) && !call.force) {
    std::string what = live.empty() ? "" : DescribeConsumers(live);
    if (in_flight > 0) {
      what += (what.empty() ? "" : ", ") + std::to_string(in_flight) + " message" +
              (in_flight == 1 ? "" : "s") + " of '" + topic_name + "' in flight";
    }
    return refuse(Status::FailedPrecondition(
        "consumer group '" + group + "' is live: " + what +
        "; stop its consumers first, or pass --force (their leases on '" + topic_name +
        "' end; what they still hold may run again)"));
  }
  // Redeliveries of the queues moved go: from the new position on the
  // cursor delivers them again, and before it the operator chose to skip.
  std::vector<uint64_t> retries;
  uint32_t leases = 0;
  for (const auto& [id, e] : g->retries) {
    if (e.record.topic != topic_name || e.record.queue >= n || !moved[e.record.queue]) continue;
    retries.push_back(id);
    leases += e.lease.has_value();
  }
  if (sub != nullptr) {
    for (uint32_t q = 0; q < n; ++q) {
      if (moved[q]) leases += static_cast<uint32_t>(sub->queues[q].leased.size());
    }
  }

  auto reply = std::make_shared<wire::OutFrame>(call.ctx.request_id);
  auto ok = reply->envelope().initLifecycleOk();
  ok.setDryRun(call.dry_run);
  auto report = ok.initGroupReset();
  report.setGroup(group);
  report.setTopic(topic_name);
  auto moves =
      report.initMoves(static_cast<unsigned>(std::count(moved.begin(), moved.end(), true)));
  unsigned i = 0;
  for (uint32_t q = 0; q < n; ++q) {
    if (!moved[q]) continue;
    moves[i].setQueue(q);
    moves[i].setFrom(sub != nullptr ? sub->queues[q].floor() : target[q]);
    moves[i].setTo(target[q]);
    moves[i].setMinOffset(topic->queues[q].min_offset);
    moves[i].setEndOffset(topic->queues[q].visible_end);
    ++i;
  }
  report.setRetriesDropped(static_cast<uint32_t>(retries.size()));
  report.setLeasesDropped(leases);
  FillClients(live, d_.core.SteadyNow(),
              report.initLiveConsumers(static_cast<unsigned>(live.size())));
  report.setNewCursors(sub == nullptr);
  if (call.dry_run) return Finish(call, kAction, object, reply);

  Subscription* cursors = d_.groups.Subscribe(*g, *topic, false);
  for (uint32_t q = 0; q < n; ++q) {
    if (!moved[q]) continue;
    QueueCursor& c = cursors->queues[q];
    for (const auto& [offset, lease] : c.leased) d_.groups.RemoveLease(lease.lease_id);
    c.leased.clear();
    c.next = target[q];
    d_.groups.MarkDirty(c);
  }
  for (uint64_t id : retries) d_.groups.DropRetry(*g, id);
  Logger("broker")->info("consumer group '{}' reset on '{}' to {}", group, topic_name, target_name);
  Finish(call, kAction, object, reply, [this, topic_name] {
    // Parked pulls of the group may find messages again.
    d_.delivery.OnTopicsAdvanced({topic_name});
  });
}

}  // namespace txmq::broker
