#include "broker/src/core.h"

#include "broker/src/clients.h"
#include "protocol/src/log.h"

namespace txmq::broker {

void Core::StampBrokerTime() {
  // A few bytes in a round that is written anyway: no write or fsync of its
  // own (a round of completions alone writes nothing, and gets none).
  if (!store_->round_writes_nothing()) {
    store_->PutMeta(kBrokerTimeMeta, EncodeBrokerTime(clock_.NowMs()));
  }
}

Status Core::CheckWritable() const {
  if (storage_error_.ok()) return Status::OK();
  return Status::Unavailable("broker storage failed and refuses writes until restarted: " +
                             storage_error_.message());
}

std::string RequestContext::client_id() const { return client != nullptr ? client->id : ""; }

bool Core::Deliver(const std::string& routing_id, wire::OutFrame& frame) {
  zmq::message_t payload = frame.Encode();
  try {
    auto first = router_->send(zmq::buffer(routing_id),
                               zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!first) {
      counters_.dropped_replies++;
      return false;
    }
    // Once the routing frame went out the payload cannot be refused for
    // lack of room (ZeroMQ queues whole multipart messages).
    router_->send(payload, zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client disconnected (ROUTER_MANDATORY says so).
    counters_.dropped_replies++;
    if (e.num() != EHOSTUNREACH) {
      // Routing ids are secrets (clients.h): never logged.
      Logger("broker")->warn("send to a client failed: {}", e.what());
    }
    return false;
  }
}

void Core::ReplyError(const RequestContext& ctx, const Status& status) {
  auto reply = NewReply(ctx);
  wire::SetError(reply.envelope(), status);
  Reply(ctx, reply);
}

}  // namespace txmq::broker
