#include "broker/src/send_service.h"

#include "broker/src/message_check.h"
#include "protocol/src/util.h"

namespace txmq::broker {

void SendService::ReplyStored(const std::string& routing_id, uint64_t request_id,
                              const std::string& message_id, const storage::DedupRecord& where,
                              bool duplicate) {
  wire::OutFrame reply(request_id);
  auto ok = reply.envelope().initSendOk();
  ok.setMessageId(message_id);
  ok.setTopic(where.topic);
  ok.setQueue(where.queue);
  ok.setHasOffset(where.has_offset);
  ok.setOffset(where.offset);
  ok.setDuplicate(duplicate);
  core_.Reply(routing_id, reply);
}

void SendService::AnswerDuplicate(const RequestContext& ctx, const std::string& message_id,
                                  const DedupWindow::Hit& hit) {
  core_.counters().duplicates++;
  if (hit.durable) {
    return ReplyStored(ctx.routing_id, ctx.request_id, message_id, hit.first, true);
  }
  // The first copy is still on its way to disk: answer when it arrived.
  core_.OnDurable([this, routing_id = ctx.routing_id, request_id = ctx.request_id, message_id,
                   first = hit.first](const Status& s) {
    if (!s.ok()) {
      return core_.ReplyError({routing_id, request_id, nullptr},
                              Status::Unavailable("message not stored: " + s.message()));
    }
    ReplyStored(routing_id, request_id, message_id, first, true);
  });
}

void SendService::Handle(const RequestContext& ctx, wire::SendRequest::Reader request) {
  if (Status s = core_.CheckWritable(); !s.ok()) return core_.ReplyError(ctx, s);
  auto in = request.getMessage();
  storage::MessageView m;
  if (Status s = CheckMessage(in, core_.options(), false, &m); !s.ok()) {
    return core_.ReplyError(ctx, s);
  }
  std::string message_id(m.id);

  if (auto hit = dedup_.Find(m.id)) return AnswerDuplicate(ctx, message_id, *hit);

  // After the dedup window: a resend of a stored message writes nothing.
  if (Status s = core_.CheckAcceptsNewData(); !s.ok()) return core_.ReplyError(ctx, s);
  const bool create = core_.options().auto_create_topics;
  if (create && topics_.Find(m.topic) == nullptr) {
    if (Status s = topics_.AdmitNew(m.topic, ctx); !s.ok()) return core_.ReplyError(ctx, s);
  }
  auto topic = topics_.GetOrCreate(m.topic, create, 0, ctx.creator());
  if (!topic.ok()) return core_.ReplyError(ctx, topic.status());
  TopicState& t = **topic;

  storage::DedupRecord where;
  where.stored_ms = m.stored_ms = core_.NowMs();
  where.topic = t.name;
  where.queue = topics_.SelectQueue(t, m.key);
  const int64_t delay = in.getDelayMs();
  int64_t due = 0;
  uint64_t delayed_seq = 0;
  if (delay > 0) {
    due = m.stored_ms + delay;
    delayed_seq = delayed_.Add(due, t, where.queue, m);
  } else {
    where.offset = topics_.Append(t, where.queue, m);
    where.has_offset = true;
  }
  dedup_.Remember(message_id, where);
  core_.counters().messages_stored++;

  core_.OnDurable([this, routing_id = ctx.routing_id, request_id = ctx.request_id,
                   message_id = std::move(message_id), where, due, delayed_seq](const Status& s) {
    dedup_.Settled(message_id);
    if (!s.ok()) {
      return core_.ReplyError({routing_id, request_id, nullptr},
                              Status::Unavailable("message not stored: " + s.message()));
    }
    if (delayed_seq != 0) delayed_.Schedule(due, delayed_seq);
    ReplyStored(routing_id, request_id, message_id, where, false);
  });
}

}  // namespace txmq::broker
