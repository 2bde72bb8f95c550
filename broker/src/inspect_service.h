// Read-only views for operators: topics and their queues, one message and
// where it is in each group, messages by key, consumer groups.
#pragma once

#include <functional>

#include "broker/src/clients.h"
#include "broker/src/core.h"
#include "broker/src/groups.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"

namespace txmq::broker {

class InspectService {
 public:
  InspectService(Core& core, TopicManager& topics, GroupTable& groups, ClientRegistry& clients)
      : core_(core), topics_(topics), groups_(groups), clients_(clients) {}

  void HandleTopicList(const RequestContext& ctx);
  void HandleTopicShow(const RequestContext& ctx, capnp::Text::Reader name);
  void HandleShowMessage(const RequestContext& ctx, wire::ShowMessageRequest::Reader request);
  void HandleFindMessages(const RequestContext& ctx, wire::FindMessagesRequest::Reader request);
  // txmqctl topic peek (inspect_peek.cc).
  void HandlePeek(const RequestContext& ctx, wire::PeekRequest::Reader request);
  void HandleGroupList(const RequestContext& ctx);
  void HandleGroupShow(const RequestContext& ctx, capnp::Text::Reader name);

  // What topic show and group show answer (also the reports of a topic or
  // group deletion: lifecycle_service.h).
  void FillTopic(const TopicState& topic, bool with_groups, wire::TopicInfo::Builder out);
  void FillGroup(GroupState& group, bool detailed, wire::GroupInfo::Builder out);

 private:
  // Where the message at topic/queue/offset stands in `group`.
  void FillDeliveryState(GroupState& group, const std::string& topic, uint32_t queue,
                         uint64_t offset, const std::string& message_id,
                         wire::DeliveryState::Builder out);

  Core& core_;
  TopicManager& topics_;
  GroupTable& groups_;
  ClientRegistry& clients_;
};

// Calls `fn` for each message of a dead-letter topic (null: none) from
// `from_offset` on, oldest first, until it returns false. `m` views into
// the log: valid until the core thread returns to its loop.
using DeadLetterFn = std::function<bool(uint64_t offset, const storage::MessageView& m)>;
void ForEachDeadLetter(Core& core, const TopicState* dlq, uint64_t from_offset,
                       const DeadLetterFn& fn);
// Dead letters appended to `dlq` (null: none) in a round not yet durable:
// not visible to ForEachDeadLetter, and on their way.
uint64_t DeadLettersArriving(const TopicState* dlq);

// The dead-letter topic of consumer group `group` (null: it has none yet).
// NOT_FOUND when neither the group nor a dead-letter topic of its name is
// known here: a typo must not read as an empty queue.
Result<const TopicState*> DeadLetterTopicOf(TopicManager& topics, GroupTable& groups,
                                            const std::string& group);

}  // namespace txmq::broker
