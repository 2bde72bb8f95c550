#include "broker/src/message_check.h"

#include <string>

#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::broker {
namespace {

std::string_view View(capnp::Text::Reader t) { return {t.begin(), t.size()}; }
std::string_view View(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}

bool IsPrintable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

Status CheckMessageId(std::string_view id) {
  if (id.empty() || id.size() > kMaxMessageIdBytes || !IsPrintable(id)) {
    return Status::InvalidArgument("message id must be 1-" + std::to_string(kMaxMessageIdBytes) +
                                   " printable ASCII characters without spaces (got " +
                                   std::to_string(id.size()) + " bytes)");
  }
  return Status::OK();
}

Status CheckMessage(wire::Message::Reader in, const BrokerOptions& options, bool allow_system_topic,
                    storage::MessageView* out) {
  out->id = View(in.getId());
  out->topic = View(in.getTopic());
  out->key = View(in.getKey());
  out->body = View(in.getBody());
  out->born_ms = in.getBornMs();

  if (Status s = CheckMessageId(out->id); !s.ok()) return s;
  // The broker's own paths may write to any of its topics.
  Status name = allow_system_topic ? ValidateNameOrSystem("topic", out->topic)
                                   : ValidateSendTopic(out->topic);
  if (!name.ok()) return name;
  if (out->key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("message key of " + std::to_string(out->key.size()) +
                                   " bytes is above the limit of " + std::to_string(kMaxKeyBytes));
  }
  auto props = in.getProperties();
  if (props.size() > kMaxProperties) {
    return Status::InvalidArgument("message has " + std::to_string(props.size()) +
                                   " properties; at most " + std::to_string(kMaxProperties) +
                                   " are allowed");
  }
  size_t payload = out->body.size() + out->key.size();
  out->properties.clear();
  out->properties.reserve(props.size());
  for (auto p : props) {
    std::string_view k = View(p.getKey()), v = View(p.getValue());
    if (k.empty() || k.size() > kMaxPropertyNameBytes || !IsPrintable(k)) {
      return Status::InvalidArgument("property name '" + std::string(k.substr(0, 64)) +
                                     "' must be 1-256 printable ASCII characters");
    }
    if (!allow_system_topic && k.starts_with("txmq.")) {
      return Status::InvalidArgument("property name '" + std::string(k) +
                                     "' starts with 'txmq.', which is reserved for the broker");
    }
    payload += k.size() + v.size();
    out->properties.emplace_back(k, v);
  }
  if (payload > options.max_message_bytes) {
    return Status::TooLarge("message of " + std::to_string(payload) +
                            " bytes (body + key + properties) is above the broker's limit of " +
                            std::to_string(options.max_message_bytes) + " bytes");
  }
  const int64_t delay = in.getDelayMs();
  if (delay < 0 || delay > options.max_delay.count()) {
    return Status::InvalidArgument("delay of " + std::to_string(delay) +
                                   " ms must be between 0 and " +
                                   FormatDurationMs(options.max_delay.count()));
  }
  return Status::OK();
}

}  // namespace txmq::broker
