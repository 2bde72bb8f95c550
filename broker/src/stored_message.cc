#include "broker/src/stored_message.h"

namespace txmq::broker {

void FillWireMessage(const storage::MessageView& m, uint64_t delay_ms, wire::Message::Builder out) {
  CopyText(m.id, [&](unsigned n) { return out.initId(n); });
  CopyText(m.topic, [&](unsigned n) { return out.initTopic(n); });
  CopyText(m.key, [&](unsigned n) { return out.initKey(n); });
  out.setBody(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(m.body.data()), m.body.size()));
  out.setBornMs(m.born_ms);
  out.setDelayMs(static_cast<int64_t>(delay_ms));
  if (m.properties.empty()) return;
  auto props = out.initProperties(static_cast<unsigned>(m.properties.size()));
  for (unsigned p = 0; p < m.properties.size(); ++p) {
    const auto& [k, v] = m.properties[p];
    CopyText(k, [&](unsigned n) { return props[p].initKey(n); });
    CopyText(v, [&](unsigned n) { return props[p].initValue(n); });
  }
}

}  // namespace txmq::broker
