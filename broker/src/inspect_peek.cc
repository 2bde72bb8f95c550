// txmqctl topic peek: a topic's stored messages read in place. No group, no
// lease, no cursor: the only thing a peek costs the broker is the reads.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "broker/src/inspect_service.h"
#include "broker/src/stored_message.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace {

constexpr uint32_t kDefaultPeekMessages = 20;
constexpr uint32_t kMaxPeekMessages = 1024;
constexpr size_t kMaxPeekBytes = 4 * 1024 * 1024;  // as for a pull

// One queue being read: the next offset, and the message there once read.
struct QueueReader {
  uint32_t queue = 0;
  uint64_t next = 0;
  uint64_t end = 0;
  std::optional<storage::StoredMessage> head;
};

}  // namespace

void InspectService::HandlePeek(const RequestContext& ctx, wire::PeekRequest::Reader request) {
  const std::string name = wire::ToString(request.getTopic());
  if (Status s = ValidateNameOrSystem("topic", name); !s.ok()) return core_.ReplyError(ctx, s);
  TopicState* topic = topics_.Find(name);
  if (topic == nullptr) {
    return core_.ReplyError(ctx, topics_.Missing(name));
  }
  const auto queues = static_cast<uint32_t>(topic->queues.size());
  if (request.getOneQueue() && request.getQueue() >= queues) {
    return core_.ReplyError(
        ctx, Status::InvalidArgument("queue " + std::to_string(request.getQueue()) + ": topic '" +
                                     name + "' has " + std::to_string(queues) + " queues (0-" +
                                     std::to_string(queues - 1) + ")"));
  }
  const uint32_t max =
      std::min(request.getMaxMessages() == 0 ? kDefaultPeekMessages : request.getMaxMessages(),
               kMaxPeekMessages);

  std::vector<QueueReader> readers;
  for (uint32_t q = request.getOneQueue() ? request.getQueue() : 0; q < queues; ++q) {
    const QueueState& qs = topic->queues[q];
    QueueReader& r = readers.emplace_back();
    r.queue = q;
    r.end = qs.visible_end;
    r.next = request.getFromTimeMs() > 0
                 ? topics_.FirstStoredAtOrAfter(*topic, q, request.getFromTimeMs())
                 : std::clamp(request.getFromOffset(), qs.min_offset, qs.visible_end);
    if (request.getOneQueue()) break;
  }
  // Reads the next message a queue still stores (a dead letter resent is
  // taken out of its queue: passed over).
  storage::BrokerStore& store = core_.store();
  auto advance = [&](QueueReader& r) -> Status {
    r.head.reset();
    for (; r.next < r.end; ++r.next) {
      auto m = store.ReadMessage(topic->id, r.queue, r.next);
      if (m.ok()) {
        r.head = std::move(m.value());
        return Status::OK();
      }
      if (m.status().code() != StatusCode::kNotFound) {
        return Status(m.status().code(), "topic '" + name + "' queue " + std::to_string(r.queue) +
                                             " offset " + std::to_string(r.next) + ": " +
                                             m.status().message());
      }
    }
    return Status::OK();
  };
  for (QueueReader& r : readers) {
    if (Status s = advance(r); !s.ok()) return core_.ReplyError(ctx, s);
  }

  // Oldest first across queues (stored times never decrease along one).
  struct Peeked {
    uint32_t queue;
    uint64_t offset;
    storage::StoredMessage stored;
  };
  std::vector<Peeked> out;
  size_t bytes = 0;
  while (out.size() < max) {
    QueueReader* oldest = nullptr;
    for (QueueReader& r : readers) {
      if (r.head && (oldest == nullptr ||
                     r.head->body.message.stored_ms < oldest->head->body.message.stored_ms)) {
        oldest = &r;
      }
    }
    if (oldest == nullptr) break;
    const size_t size = oldest->head->body.message.body.size();
    if (!out.empty() && bytes + size > kMaxPeekBytes) break;
    bytes += size;
    out.push_back({oldest->queue, oldest->next, std::move(*oldest->head)});
    ++oldest->next;
    if (Status s = advance(*oldest); !s.ok()) return core_.ReplyError(ctx, s);
  }

  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initPeekOk();
  auto list = ok.initMessages(static_cast<unsigned>(out.size()));
  for (unsigned i = 0; i < out.size(); ++i) {
    const storage::MessageView& m = out[i].stored.body.message;
    FillWireMessage(m, 0, list[i].initMessage());
    auto loc = list[i].initLocation();
    loc.setTopic(name);
    loc.setQueue(out[i].queue);
    loc.setOffset(out[i].offset);
    loc.setStoredMs(m.stored_ms);
  }
  auto next = ok.initNext(static_cast<unsigned>(readers.size()));
  bool more = false;
  for (unsigned i = 0; i < readers.size(); ++i) {
    next[i].setQueue(readers[i].queue);
    next[i].setOffset(readers[i].next);
    more = more || readers[i].head.has_value();
  }
  ok.setMore(more);
  core_.Reply(ctx, reply);
}

}  // namespace txmq::broker
