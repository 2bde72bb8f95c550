#include "broker/src/stored_message.h"

namespace txmq::broker {

void FillWireMessage(const storage::MessageView& m, uint64_t delay_ms, wire::Message::Builder out) {
  out.setId(capnp::Text::Reader(m.id.data(), m.id.size()));
  out.setTopic(capnp::Text::Reader(m.topic.data(), m.topic.size()));
  out.setKey(capnp::Text::Reader(m.key.data(), m.key.size()));
  out.setBody(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(m.body.data()), m.body.size()));
  out.setBornMs(m.born_ms);
  out.setDelayMs(static_cast<int64_t>(delay_ms));
  if (m.properties.empty()) return;
  auto props = out.initProperties(static_cast<unsigned>(m.properties.size()));
  for (unsigned p = 0; p < m.properties.size(); ++p) {
    const auto& [k, v] = m.properties[p];
    props[p].setKey(capnp::Text::Reader(k.data(), k.size()));
    props[p].setValue(capnp::Text::Reader(v.data(), v.size()));
  }
}

}  // namespace txmq::broker
