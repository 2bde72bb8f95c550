#include "tools/txmqctl/message_view.h"

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"

namespace txmq::ctl {

nlohmann::json MessageJson(wire::Message::Reader m) {
  nlohmann::json props = nlohmann::json::object();
  for (auto p : m.getProperties()) props[wire::ToString(p.getKey())] = wire::ToString(p.getValue());
  nlohmann::json j = {{"id", wire::ToString(m.getId())},   {"topic", wire::ToString(m.getTopic())},
                      {"key", wire::ToString(m.getKey())}, {"born_ms", m.getBornMs()},
                      {"delay_ms", m.getDelayMs()},        {"properties", props},
                      {"body_bytes", m.getBody().size()}};
  PutBytes(j, "body", wire::ToString(m.getBody()));
  return j;
}

void AddMessageFields(Fields& fields, wire::Message::Reader m) {
  fields.Add("id", wire::ToString(m.getId()));
  fields.Add("topic", wire::ToString(m.getTopic()));
  fields.Add("key", m.getKey().size() == 0 ? "-" : wire::ToString(m.getKey()));
  if (m.getBornMs() > 0) {
    fields.Add("born",
               FormatTimeMs(m.getBornMs()) + " (producer clock, " + AgeMs(m.getBornMs()) + " ago)");
  }
  if (m.getDelayMs() > 0) fields.Add("delay", FormatDurationMs(m.getDelayMs()));
  if (m.getProperties().size() == 0) {
    fields.Add("properties", "-");
    return;
  }
  bool first = true;
  for (auto p : m.getProperties()) {
    fields.Add(first ? "properties" : "",
               wire::ToString(p.getKey()) + "=" + OneLine(wire::ToString(p.getValue()), 200));
    first = false;
  }
}

void PrintBody(std::ostream& out, wire::Message::Reader m, size_t max) {
  const std::string body = wire::ToString(m.getBody());
  out << "body (" << body.size() << " bytes):\n  " << Preview(body, max) << "\n";
}

}  // namespace txmq::ctl
