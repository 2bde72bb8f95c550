#include "broker/src/message_check.h"

#include <string>

#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

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
                    storage::MessageView* out, size_t* counted_bytes) {
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
  if (props.size() > kMaxProperties + wire::kMaxReservedProperties) {
    return Status::InvalidArgument("message has " + std::to_string(props.size()) +
                                   " properties; at most " + std::to_string(kMaxProperties) +
                                   " (plus " + std::to_string(wire::kMaxReservedProperties) +
                                   " reserved 'txmq.' ones) are allowed");
  }
  // Reserved properties ("txmq.") are the libraries' and do not count
  // against max_message_bytes; they have their own, smaller bounds.
  size_t payload = out->body.size() + out->key.size();
  size_t user_properties = 0, reserved_properties = 0, reserved_bytes = 0;
  out->properties.clear();
  out->properties.reserve(props.size());
  for (auto p : props) {
    std::string_view k = View(p.getKey()), v = View(p.getValue());
    if (k.empty() || k.size() > kMaxPropertyNameBytes || !IsPrintable(k)) {
      return Status::InvalidArgument("property name '" + std::string(k.substr(0, 64)) +
                                     "' must be 1-256 printable ASCII characters");
    }
    if (property::IsReserved(k)) {
      if (!allow_system_topic && !property::IsClientStamped(k)) {
        return Status::InvalidArgument(
            "property name '" + std::string(k) + "' is reserved for txmq (it starts with '" +
            std::string(property::kReservedPrefix) + "') and is not one a client may send");
      }
      if (k == property::kCompensateTo) {
        if (Status s = ValidateSendTopic(v); !s.ok()) {
          return Status::InvalidArgument("property " + std::string(k) + ": " + s.message());
        }
      }
      ++reserved_properties;
      reserved_bytes += k.size() + v.size();
    } else {
      ++user_properties;
      payload += k.size() + v.size();
    }
    out->properties.emplace_back(k, v);
  }
  if (user_properties > kMaxProperties || reserved_properties > wire::kMaxReservedProperties) {
    return Status::InvalidArgument("message has " + std::to_string(user_properties) +
                                   " properties and " + std::to_string(reserved_properties) +
                                   " reserved ones; at most " + std::to_string(kMaxProperties) +
                                   " and " + std::to_string(wire::kMaxReservedProperties));
  }
  if (reserved_bytes > property::kMaxReservedBytes && !allow_system_topic) {
    return Status::TooLarge("the message's reserved ('txmq.') properties take " +
                            std::to_string(reserved_bytes) + " bytes; at most " +
                            std::to_string(property::kMaxReservedBytes) + " are allowed");
  }
  if (payload > options.max_message_bytes) {
    return Status::TooLarge("message of " + std::to_string(payload) +
                            " bytes (body + key + properties not starting with 'txmq.') is above "
                            "the broker's limit of " +
                            std::to_string(options.max_message_bytes) + " bytes");
  }
  if (counted_bytes != nullptr) *counted_bytes = payload;
  const int64_t delay = in.getDelayMs();
  if (delay < 0 || delay > options.max_delay.count()) {
    // In the limit's units too, unless rounding would make them look equal.
    const std::string max = FormatDurationMs(options.max_delay.count());
    const std::string as_duration = delay < 0 ? "" : FormatDurationMs(delay);
    return Status::InvalidArgument(
        "delay of " + std::to_string(delay) + " ms" +
        (as_duration.empty() || as_duration == max ? "" : " (" + as_duration + ")") +
        " must be between 0 and " + max);
  }
  return Status::OK();
}

}  // namespace txmq::broker
