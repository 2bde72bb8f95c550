// Copying a stored message (storage::MessageView) onto the wire.
#pragma once

#include <cstring>
#include <string_view>

#include "protocol/txmq.capnp.h"
#include "storage/src/records.h"

namespace txmq::broker {

// Sets a Text field from bytes that are not NUL-terminated (views into
// stored records): `init(n)` is the field's initX(n). Text::Reader would
// require the terminating NUL.
template <typename Init>
void CopyText(std::string_view s, Init&& init) {
  auto text = init(static_cast<unsigned>(s.size()));
  if (!s.empty()) std::memcpy(text.begin(), s.data(), s.size());
}

void FillWireMessage(const storage::MessageView& m, uint64_t delay_ms, wire::Message::Builder out);

}  // namespace txmq::broker
