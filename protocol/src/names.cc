#include "txmq/names.h"

#include <string>

namespace txmq {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Shows a name in an error message without flooding the log with a huge or
// binary value.
std::string Printable(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      out += '?';
    }
  }
  if (name.size() > 64) out += "...";
  return out;
}

Status CheckChars(std::string_view what, std::string_view full, std::string_view body) {
  if (body.empty() || full.size() > kMaxNameLength) {
    return Status::InvalidArgument(std::string(what) + " name '" + Printable(full) +
                                   "' must be 1-" + std::to_string(kMaxNameLength) +
                                   " characters of [A-Za-z0-9_.-]" + " (got " +
                                   std::to_string(full.size()) + ")");
  }
  for (char c : body) {
    if (!IsNameChar(c)) {
      return Status::InvalidArgument(std::string(what) + " name '" + Printable(full) +
                                     "' may only contain [A-Za-z0-9_.-]");
    }
  }
  return Status::OK();
}

}  // namespace

Status ValidateName(std::string_view what, std::string_view name) {
  if (IsSystemName(name)) {
    return Status::InvalidArgument(std::string(what) + " name '" + Printable(name) +
                                   "' starts with '%', which is reserved for the broker");
  }
  return CheckChars(what, name, name);
}

Status ValidateNameOrSystem(std::string_view what, std::string_view name) {
  if (!IsSystemName(name)) return ValidateName(what, name);
  // "%KIND%rest": KIND is upper-case letters, rest is a user name.
  size_t second = name.find('%', 1);
  if (second == std::string_view::npos || second == 1) {
    return Status::InvalidArgument(std::string(what) + " name '" + Printable(name) +
                                   "' is not a valid system name (%KIND%name)");
  }
  for (char c : name.substr(1, second - 1)) {
    if (c < 'A' || c > 'Z') {
      return Status::InvalidArgument(std::string(what) + " name '" + Printable(name) +
                                     "' is not a valid system name (%KIND%name)");
    }
  }
  return CheckChars(what, name, name.substr(second + 1));
}

std::string DeadLetterTopic(std::string_view group) { return "%DLQ%" + std::string(group); }

namespace {
constexpr std::string_view kCompensationPrefix = "%COMP%";
}  // namespace

std::string CompensationTopic(std::string_view producer_group) {
  return std::string(kCompensationPrefix) + std::string(producer_group);
}

Status ValidateSendTopic(std::string_view topic) {
  return topic.starts_with(kCompensationPrefix) ? ValidateNameOrSystem("topic", topic)
                                                : ValidateName("topic", topic);
}

}  // namespace txmq
