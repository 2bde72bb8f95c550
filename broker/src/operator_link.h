// The server's ClientLink (core.h): a reply to the HTTP console's routing
// id (kConsoleRoutingId) goes back through the operator mailbox to the
// thread that asked; every other frame goes out on the ROUTER socket.
#pragma once

#include "broker/src/core.h"
#include "broker/src/operator_mailbox.h"

namespace txmq::broker {

// Thread safety: the core thread only.
class OperatorLink final : public ClientLink {
 public:
  // `network` must outlive the link, and so must `mailbox` (null: nobody
  // makes console requests, and a frame for the console is dropped).
  OperatorLink(ClientLink& network, OperatorMailbox* mailbox)
      : network_(network), mailbox_(mailbox) {}

  bool Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) override;

 private:
  ClientLink& network_;
  OperatorMailbox* mailbox_;
};

}  // namespace txmq::broker
