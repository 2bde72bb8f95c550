#include "broker/src/operator_link.h"

namespace txmq::broker {

bool OperatorLink::Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) {
  if (routing_id != kConsoleRoutingId) return network_.Send(routing_id, frame, std::move(ticket));
  if (mailbox_ == nullptr) return false;
  // The reply leaves the core here, so its reservation in the reply budget
  // (`ticket`) ends here too.
  zmq::message_t bytes = frame.Encode();
  mailbox_->Answer(frame.request_id(), bytes.to_string());
  return true;
}

}  // namespace txmq::broker
