// Serves `send`: check, dedup, choose the queue, store in the open round,
// and answer once the round is durable.
#pragma once

#include "broker/src/core.h"
#include "broker/src/dedup.h"
#include "broker/src/delayed.h"
#include "broker/src/topics.h"

namespace txmq::broker {

class SendService {
 public:
  SendService(Core& core, TopicManager& topics, DedupWindow& dedup, DelayedMessages& delayed)
      : core_(core), topics_(topics), dedup_(dedup), delayed_(delayed) {}

  void Handle(const RequestContext& ctx, wire::SendRequest::Reader request);
  // Answers a send of `message_id`, which the window holds (`hit`), with
  // what was stored first: at once, or once that first copy is durable.
  void AnswerDuplicate(const RequestContext& ctx, const std::string& message_id,
                       const DedupWindow::Hit& hit);

 private:
  void ReplyStored(const std::string& routing_id, uint64_t request_id,
                   const std::string& message_id, const storage::DedupRecord& where,
                   bool duplicate);

  Core& core_;
  TopicManager& topics_;
  DedupWindow& dedup_;
  DelayedMessages& delayed_;
};

}  // namespace txmq::broker
