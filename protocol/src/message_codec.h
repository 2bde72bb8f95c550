// Conversion between the public value types (txmq/message.h) and the wire.
#pragma once

#include "protocol/txmq.capnp.h"
#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq::wire {

inline std::string ToString(capnp::Text::Reader text) { return {text.begin(), text.size()}; }
inline std::string ToString(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}
inline capnp::Data::Reader AsData(const std::string& s) {
  return {reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}
inline capnp::Text::Reader AsText(const std::string& s) { return {s.data(), s.size()}; }

// `message.id` must already be set. born_ms: producer clock.
void MessageToWire(const ::txmq::Message& message, int64_t born_ms, wire::Message::Builder out);
Received DeliveredFromWire(wire::Delivered::Reader in);
SendResult SendResultFromWire(wire::SendOk::Reader in);

}  // namespace txmq::wire
