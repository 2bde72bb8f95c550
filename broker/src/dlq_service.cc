#include "broker/src/dlq_service.h"

#include <set>

#include "broker/src/inspect_service.h"
#include "broker/src/stored_message.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::broker {

namespace {

constexpr uint32_t kDefaultListLimit = 100;
constexpr uint32_t kMaxListLimit = 10000;

std::string Property(const storage::MessageView& m, std::string_view name) {
  for (const auto& [k, v] : m.properties) {
    if (k == name) return std::string(v);
  }
  return {};
}

uint64_t Number(const std::string& s) { return s.empty() ? 0 : std::stoull(s); }

void FillLetter(uint64_t offset, const storage::MessageView& m, wire::DeadLetter::Builder out) {
  CopyText(m.id, [&](unsigned n) { return out.initId(n); });
  out.setOffset(offset);
  out.setOriginTopic(Property(m, property::kDeadLetterTopic));
  out.setOriginQueue(static_cast<uint32_t>(Number(Property(m, property::kDeadLetterQueue))));
  out.setOriginOffset(Number(Property(m, property::kDeadLetterOffset)));
  out.setDeliveries(static_cast<uint32_t>(Number(Property(m, property::kDeadLetterDeliveries))));
  out.setStoredMs(m.stored_ms);
  CopyText(m.key, [&](unsigned n) { return out.initKey(n); });
  out.setBodyBytes(static_cast<uint32_t>(m.body.size()));
}

Status CheckGroup(const std::string& group) { return ValidateName("group", group); }

}  // namespace

void DlqService::HandleList(const RequestContext& ctx, wire::DlqListRequest::Reader request) {
  const std::string group = wire::ToString(request.getGroup());
  if (Status s = CheckGroup(group); !s.ok()) return core_.ReplyError(ctx, s);
  const uint32_t limit =
      std::min(request.getLimit() == 0 ? kDefaultListLimit : request.getLimit(), kMaxListLimit);
  const uint64_t from = request.getHasAfter() ? request.getAfterOffset() + 1 : 0;
  struct Row {
    uint64_t offset;
    storage::MessageView m;  // views into the log
  };
  auto dlq = DeadLetterTopicOf(topics_, groups_, group);
  if (!dlq.ok()) return core_.ReplyError(ctx, dlq.status());
  std::vector<Row> rows;
  bool more = false;
  uint64_t total = 0;
  // One pass: count them all, keep the page.
  ForEachDeadLetter(core_, *dlq, 0, [&](uint64_t offset, const storage::MessageView& m) {
    ++total;
    if (offset < from) return true;
    if (rows.size() < limit) {
      rows.push_back({offset, m});
    } else {
      more = true;
    }
    return true;
  });
  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initDlqListOk();
  auto list = ok.initMessages(static_cast<unsigned>(rows.size()));
  for (unsigned i = 0; i < rows.size(); ++i) FillLetter(rows[i].offset, rows[i].m, list[i]);
  ok.setMore(more);
  ok.setTotal(total);
  core_.Reply(ctx, reply);
}

void DlqService::HandleShow(const RequestContext& ctx, wire::DlqShowRequest::Reader request) {
  const std::string group = wire::ToString(request.getGroup());
  const std::string id = wire::ToString(request.getMessageId());
  if (Status s = CheckGroup(group); !s.ok()) return core_.ReplyError(ctx, s);
  auto dlq = DeadLetterTopicOf(topics_, groups_, group);
  if (!dlq.ok()) return core_.ReplyError(ctx, dlq.status());
  std::optional<uint64_t> found;
  storage::MessageView m;
  ForEachDeadLetter(core_, *dlq, 0, [&](uint64_t offset, const storage::MessageView& letter) {
    if (letter.id != id) return true;
    found = offset;
    m = letter;
    return false;
  });
  if (!found) {
    return core_.ReplyError(
        ctx, Status::NotFound("message '" + id + "' is not in the dead-letter queue of group '" +
                              group + "'"));
  }
  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initDlqShowOk();
  FillLetter(*found, m, ok.initLetter());
  FillWireMessage(m, 0, ok.initMessage());
  core_.Reply(ctx, reply);
}

void DlqService::HandleResend(const RequestContext& ctx, wire::DlqResendRequest::Reader request) {
  const std::string group = wire::ToString(request.getGroup());
  if (Status s = CheckGroup(group); !s.ok()) return core_.ReplyError(ctx, s);
  const bool dry_run = request.getDryRun();
  if (!dry_run) {
    if (Status s = core_.CheckAcceptsNewData(); !s.ok()) return core_.ReplyError(ctx, s);
  }
  std::set<std::string> wanted;
  for (auto id : request.getMessageIds()) wanted.insert(wire::ToString(id));
  if (!request.getAll() && wanted.empty()) {
    return core_.ReplyError(ctx, Status::InvalidArgument("name message ids, or ask for all"));
  }
  auto found = DeadLetterTopicOf(topics_, groups_, group);
  if (!found.ok()) return core_.ReplyError(ctx, found.status());
  const TopicState* dlq = *found;
  struct Letter {
    uint64_t offset;
    storage::MessageView m;  // views into the log
  };
  std::vector<Letter> letters;
  std::set<std::string> seen;
  ForEachDeadLetter(core_, dlq, 0, [&](uint64_t offset, const storage::MessageView& m) {
    if (request.getAll() || wanted.count(std::string(m.id))) {
      letters.push_back({offset, m});
      seen.insert(std::string(m.id));
    }
    return true;
  });

  std::vector<std::string> resent, missing;
  for (const auto& id : wanted) {
    if (!seen.count(id)) missing.push_back(id);
  }
  const std::string retry_topic = "%RETRY%" + group;
  for (const Letter& letter : letters) {
    storage::MessageView m = letter.m;
    resent.emplace_back(m.id);
    if (dry_run) continue;
    storage::Location as_known{
        Property(m, property::kDeadLetterTopic),
        static_cast<uint32_t>(Number(Property(m, property::kDeadLetterQueue))),
        Number(Property(m, property::kDeadLetterOffset))};
    std::erase_if(m.properties,
                  [](const auto& p) { return p.first.starts_with(property::kDeadLetterPrefix); });
    auto copies = topics_.GetOrCreate(retry_topic, true, 1);
    if (!copies.ok()) return core_.ReplyError(ctx, copies.status());
    m.topic = retry_topic;
    m.stored_ms = core_.NowMs();
    const uint64_t offset = topics_.Append(**copies, 0, m);
    delivery_.Redeliver(groups_.Get(group), as_known, {retry_topic, 0, offset});
    core_.store().RemoveMessage(dlq->id, 0, letter.offset);
  }
  if (!dry_run) {
    // Which messages, not only how many: the first kAuditedIds of them.
    constexpr size_t kAuditedIds = 20;
    std::string ids;
    for (size_t i = 0; i < resent.size() && i < kAuditedIds; ++i) {
      ids += (i == 0 ? "" : ",") + AuditToken(resent[i]);
    }
    if (resent.size() > kAuditedIds) ids += ",+" + std::to_string(resent.size() - kAuditedIds);
    Logger("audit")->warn(
        "operator='{}' principal='{}' client={} action=dlq-resend group={} messages={} ids={} "
        "missing={} reason='{}'",
        AuditField(wire::ToString(request.getOperator())), AuditField(ctx.principal_name()),
        AuditToken(ctx.client_id()), group, resent.size(), ids.empty() ? "-" : ids, missing.size(),
        AuditField(wire::ToString(request.getReason())));
  }
  core_.OnDurable([this, routing_id = ctx.routing_id, request_id = ctx.request_id, resent,
                   missing](const Status& s) {
    if (!s.ok()) {
      return core_.ReplyError({routing_id, request_id, nullptr},
                              Status::Unavailable("not resent: " + s.message()));
    }
    wire::OutFrame reply(request_id);
    auto ok = reply.envelope().initDlqResendOk();
    auto r = ok.initResent(static_cast<unsigned>(resent.size()));
    for (unsigned i = 0; i < resent.size(); ++i) r.set(i, resent[i]);
    auto m = ok.initMissing(static_cast<unsigned>(missing.size()));
    for (unsigned i = 0; i < missing.size(); ++i) m.set(i, missing[i]);
    core_.Reply(routing_id, reply);
  });
}

}  // namespace txmq::broker
