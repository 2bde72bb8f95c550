// Transaction requests as the wire has them, for tests that choose the
// transaction id, send what the client library never would (65 messages, a
// half resent after the end) or must not depend on the client's retries.
#pragma once

#include <string>
#include <vector>

#include "protocol/src/message_codec.h"
#include "tests/testutil/admin_client.h"

namespace txmq::testing {

struct HalfMessage {
  std::string id;
  std::string topic = "t";
  std::string body = "x";
  std::string key = "";
};

// SendHalf; the state the broker answers with (PREPARED for a new half).
inline Result<wire::TxState> SendHalf(AdminClient& client, const std::string& tx_id,
                                      const std::string& group,
                                      const std::vector<HalfMessage>& messages) {
  auto r = client.Call([&](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId(tx_id);
    h.setProducerGroup(group);
    auto list = h.initMessages(static_cast<unsigned>(messages.size()));
    for (unsigned i = 0; i < messages.size(); ++i) {
      list[i].setId(messages[i].id);
      list[i].setTopic(messages[i].topic);
      list[i].setKey(messages[i].key);
      list[i].setBody(wire::AsData(messages[i].body));
    }
  });
  if (!r.ok()) return r.status();
  return r->envelope().getSendHalfOk().getState();
}

}  // namespace txmq::testing
