#include "consumer/src/compensation_message.h"

#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::consumer {

Result<Message> MakeCompensation(const Received& m, const std::string& group,
                                 const std::string& reason) {
  // Messages stored by txmq 0.1 spell these "txmq-...": Find reads both.
  std::string topic;
  if (const std::string* to = property::Find(m.properties, property::kCompensateTo)) {
    topic = *to;
  } else if (const std::string* from = property::Find(m.properties, property::kProducerGroup)) {
    topic = CompensationTopic(*from);
  } else {
    return Status::FailedPrecondition("message " + m.id + " names no producer group (property " +
                                      property::kProducerGroup + ") and no compensation topic (" +
                                      property::kCompensateTo +
                                      "): the compensation cannot be addressed");
  }
  Message c;
  c.topic = topic;
  c.key = m.key;
  c.body = reason;
  c.properties = {{property::kOriginalId, m.id},
                  {property::kOriginalTopic, m.topic},
                  {property::kConsumerGroup, group},
                  {property::kReason, reason.substr(0, property::kMaxReasonBytes)}};
  if (const std::string* tx = property::Find(m.properties, property::kTransactionId)) {
    c.properties[property::kTransactionId] = *tx;
  }
  return c;
}

}  // namespace txmq::consumer
