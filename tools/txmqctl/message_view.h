// How one message is shown by msg show, dlq show and tx show: the same
// fields in the same order everywhere.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

#include "protocol/txmq.capnp.h"
#include "tools/txmqctl/table.h"

namespace txmq::ctl {

// id, topic, key, born_ms, delay_ms, properties and the whole body
// (body_base64 when it is not UTF-8).
nlohmann::json MessageJson(wire::Message::Reader m);

// The headers and properties as fields; the body is printed after them by
// PrintBody, since it may take several lines.
void AddMessageFields(Fields& fields, wire::Message::Reader m);

// "body (N bytes):" and a preview of at most `max` bytes.
void PrintBody(std::ostream& out, wire::Message::Reader m, size_t max);

}  // namespace txmq::ctl
