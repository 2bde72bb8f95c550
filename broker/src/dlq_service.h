// Dead letters: messages a consumer group failed max_reconsume_times
// times, kept in the topic %DLQ%<group>. Operators list them, look at one,
// and send them back to their group (only to that group: the other groups
// of the topic handled them fine).
//
// Resending copies the message into %RETRY%<group> and schedules it as a
// redelivery of its original topic/queue/offset with a fresh delivery
// count, and deletes it from the dead-letter topic, in one round.
#pragma once

#include "broker/src/core.h"
#include "broker/src/delivery.h"
#include "broker/src/groups.h"
#include "broker/src/topics.h"

namespace txmq::broker {

class DlqService {
 public:
  DlqService(Core& core, TopicManager& topics, GroupTable& groups, Delivery& delivery)
      : core_(core), topics_(topics), groups_(groups), delivery_(delivery) {}

  void HandleList(const RequestContext& ctx, wire::DlqListRequest::Reader request);
  void HandleShow(const RequestContext& ctx, wire::DlqShowRequest::Reader request);
  void HandleResend(const RequestContext& ctx, wire::DlqResendRequest::Reader request);

 private:
  Core& core_;
  TopicManager& topics_;
  GroupTable& groups_;
  Delivery& delivery_;
};

}  // namespace txmq::broker
