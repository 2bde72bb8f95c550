#include "protocol/src/message_codec.h"

#include "protocol/src/util.h"

namespace txmq::wire {

void MessageToWire(const ::txmq::Message& message, int64_t born_ms, wire::Message::Builder out) {
  out.setId(AsText(message.id));
  out.setTopic(AsText(message.topic));
  out.setKey(AsText(message.key));
  out.setBody(AsData(message.body));
  out.setBornMs(born_ms);
  out.setDelayMs(message.delay.count());
  if (!message.properties.empty()) {
    auto props = out.initProperties(static_cast<unsigned>(message.properties.size()));
    unsigned i = 0;
    for (const auto& [k, v] : message.properties) {
      props[i].setKey(AsText(k));
      props[i].setValue(AsText(v));
      ++i;
    }
  }
}

Received DeliveredFromWire(wire::Delivered::Reader in) {
  Received r;
  auto m = in.getMessage();
  r.id = ToString(m.getId());
  r.topic = ToString(m.getTopic());
  r.key = ToString(m.getKey());
  r.body = ToString(m.getBody());
  for (auto p : m.getProperties())
    r.properties.emplace(ToString(p.getKey()), ToString(p.getValue()));
  r.queue = in.getQueue();
  r.offset = in.getOffset();
  r.delivery_count = in.getDeliveryCount();
  r.born_at = FromEpochMs(m.getBornMs());
  r.stored_at = FromEpochMs(in.getStoredMs());
  r.lease.retry_id = in.getReceipt().getRetryId();
  r.lease.lease_id = in.getReceipt().getLeaseId();
  return r;
}

SendResult SendResultFromWire(wire::SendOk::Reader in) {
  SendResult r;
  r.message_id = ToString(in.getMessageId());
  r.topic = ToString(in.getTopic());
  r.queue = in.getQueue();
  if (in.getHasOffset()) r.offset = in.getOffset();
  r.duplicate = in.getDuplicate();
  return r;
}

}  // namespace txmq::wire
