#include "broker/src/core.h"

#include "broker/src/auth/acl.h"
#include "broker/src/clients.h"
#include "broker/src/disk_watermark.h"

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

std::string RequestContext::client_id() const {
  if (client != nullptr) return client->id;
  return console() ? "http@" + console_peer : "";
}

std::string RequestContext::principal_name() const {
  return principal != nullptr ? principal->name : "(unauthenticated)";
}

std::string_view RequestContext::creator() const {
  return principal != nullptr && !principal->admin ? std::string_view(principal->name)
                                                   : std::string_view();
}

Status Core::CheckAcceptsNewData() const {
  if (Status s = CheckWritable(); !s.ok()) return s;
  return disk_ != nullptr ? disk_->CheckAccepts() : Status::OK();
}

bool Core::Deliver(const std::string& routing_id, wire::OutFrame& frame) {
  limits_.Answered(routing_id, frame.request_id());
  auto ticket = limits_.ReserveReply(routing_id, frame.EncodedBytes(), false);
  if (ticket.ok()) {
    if (link_.Send(routing_id, frame, std::move(ticket.value()))) return true;
    counters_.dropped_replies++;
    return false;
  }
  counters_.dropped_replies++;
  // The client reads too slowly for what it asks: it learns why instead of
  // waiting for a timeout (a check sent to a producer is not a reply; it
  // just counts as not delivered).
  if (frame.envelope().which() != wire::Envelope::CHECK_TRANSACTION) {
    wire::OutFrame error(frame.request_id());
    wire::SetError(error.envelope(), ticket.status());
    auto room = limits_.ReserveReply(routing_id, error.EncodedBytes(), true);
    if (room.ok()) link_.Send(routing_id, error, std::move(room.value()));
  }
  return false;
}

void Core::ReplyError(const RequestContext& ctx, const Status& status) {
  auto reply = NewReply(ctx);
  wire::SetError(reply.envelope(), status);
  Reply(ctx, reply);
}

}  // namespace txmq::broker
