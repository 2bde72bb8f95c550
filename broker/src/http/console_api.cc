#include "broker/src/http/console_api.h"

#include <limits>

#include "protocol/src/message_codec.h"

namespace txmq::broker::http {

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kTooLarge:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kOverloaded:
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
    case StatusCode::kNotLeader:
    case StatusCode::kWrongGroup:
      return 503;
    case StatusCode::kTimeout:
      return 504;
    default:
      return 500;
  }
}

ApiReply ErrorReply(const Status& status) {
  return {HttpStatusOf(status.code()),
          {{"error", status.message()}, {"code", std::string(StatusCodeName(status.code()))}}};
}

ApiReply ErrorReply(int http_status, const std::string& message) {
  return {http_status, {{"error", message}}};
}

Result<wire::Frame> ConsoleApi::Call(const std::function<void(wire::Envelope::Builder)>& fill,
                                     const std::string& peer) {
  wire::OutFrame request(++next_request_id_);
  fill(request.envelope());
  const std::string bytes = request.Encode().to_string();
  auto reply = call_(bytes, peer, kCallTimeout);
  if (!reply.ok()) {
    if (reply.status().code() == StatusCode::kUnavailable) {
      return Status::Unavailable(reply.status().message() +
                                 " (an action may still be carried out: look again)");
    }
    return reply.status();
  }
  auto frame = wire::DecodeFrame(zmq::message_t(reply->data(), reply->size()), {});
  if (!frame.ok()) return frame.status();
  if (Status s = wire::StatusOf(frame->envelope()); !s.ok()) return s;
  return frame;
}

Result<ActionBody> ParseActionBody(const std::string& body) {
  ActionBody out;
  out.json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out.json.is_discarded()) {
    return Status::InvalidArgument(
        "the request body is not JSON; send an object like {\"operator\": \"alice\", "
        "\"reason\": \"producer gone, order paid\"}");
  }
  if (!out.json.is_object()) return Status::InvalidArgument("the request body must be an object");
  auto text = [&](const char* field, size_t max, std::string* to) -> Status {
    auto it = out.json.find(field);
    if (it == out.json.end() || !it->is_string() || it->get<std::string>().empty()) {
      return Status::InvalidArgument(std::string("\"") + field +
                                     "\" is missing: a non-empty string is required");
    }
    *to = it->get<std::string>();
    if (to->size() > max) {
      return Status::InvalidArgument(std::string("\"") + field + "\" is " +
                                     std::to_string(to->size()) + " bytes; at most " +
                                     std::to_string(max));
    }
    return Status::OK();
  };
  if (Status s = text("operator", ConsoleApi::kMaxOperatorBytes, &out.operator_name); !s.ok())
    return s;
  if (Status s = text("reason", ConsoleApi::kMaxReasonBytes, &out.reason); !s.ok()) return s;
  return out;
}

namespace {

// Whether `s` is well-formed enough to show as text (overlong forms are
// not looked for: the JSON writer replaces what it cannot encode).
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t extra = c < 0x80             ? 0
                         : (c & 0xE0) == 0xC0 ? 1
                         : (c & 0xF0) == 0xE0 ? 2
                         : (c & 0xF8) == 0xF0 ? 3
                                              : 4;
    if (extra == 4 || (extra > 0 && i + extra >= s.size())) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace

nlohmann::json MessageJson(wire::Message::Reader m) {
  nlohmann::json properties = nlohmann::json::object();
  for (auto p : m.getProperties())
    properties[wire::ToString(p.getKey())] = wire::ToString(p.getValue());
  const std::string body = wire::ToString(m.getBody());
  nlohmann::json j = {{"id", wire::ToString(m.getId())},   {"topic", wire::ToString(m.getTopic())},
                      {"key", wire::ToString(m.getKey())}, {"properties", properties},
                      {"body_bytes", body.size()},         {"born_ms", m.getBornMs()}};
  // A cut may split a character: back up to the start of one.
  size_t cut = std::min(body.size(), kBodyPreviewBytes);
  while (cut < body.size() && cut > 0 && (static_cast<unsigned char>(body[cut]) >> 6) == 2) --cut;
  const std::string_view preview(body.data(), cut);
  if (IsUtf8(preview)) {
    j["body"] = std::string(preview);
    j["body_truncated"] = cut < body.size();
  } else {
    j["body"] = nullptr;  // binary: the page says so instead of showing bytes
  }
  return j;
}

ApiReply ConsoleApi::Topics(const std::string& peer) {
  auto reply = Call([](wire::Envelope::Builder e) { e.setTopicList(); }, peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  nlohmann::json topics = nlohmann::json::array();
  for (auto t : reply->envelope().getTopicListOk().getTopics()) {
    topics.push_back({{"name", wire::ToString(t.getName())},
                      {"created_ms", t.getCreatedMs()},
                      {"queues", t.getQueues().size()},
                      {"messages", t.getMessages()}});
  }
  return {200, {{"topics", topics}}};
}

ApiReply ConsoleApi::Groups(const std::string& peer) {
  auto reply = Call([](wire::Envelope::Builder e) { e.setGroupList(); }, peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  nlohmann::json groups = nlohmann::json::array();
  for (auto g : reply->envelope().getGroupListOk().getGroups()) {
    nlohmann::json topics = nlohmann::json::array();
    for (auto t : g.getTopics()) topics.push_back(wire::ToString(t));
    groups.push_back({{"name", wire::ToString(g.getName())},
                      {"topics", topics},
                      {"members", g.getMembers().size()},
                      {"lag", g.getLag()},
                      {"in_flight", g.getInFlight()},
                      {"retrying", g.getRetrying()},
                      {"dead_letters", g.getDeadLetters()},
                      {"expired", g.getExpired()}});
  }
  return {200, {{"groups", groups}}};
}

ApiReply ConsoleApi::DeadLetters(const std::string& group, const Query& query,
                                 const std::string& peer) {
  uint64_t after = 0;
  bool has_after = false;
  if (auto it = query.find("after"); it != query.end() && !it->second.empty()) {
    try {
      size_t used = 0;
      after = std::stoull(it->second, &used);
      if (used != it->second.size()) throw std::invalid_argument("trailing");
      has_after = true;
    } catch (const std::exception&) {
      return ErrorReply(400, "after = '" + it->second + "' is not an offset (a whole number)");
    }
  }
  auto reply = Call(
      [&](wire::Envelope::Builder e) {
        auto l = e.initDlqList();
        l.setGroup(group);
        l.setLimit(kMaxListed);
        l.setAfterOffset(after);
        l.setHasAfter(has_after);
      },
      peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  auto ok = reply->envelope().getDlqListOk();
  nlohmann::json letters = nlohmann::json::array();
  for (auto d : ok.getMessages()) {
    letters.push_back({{"id", wire::ToString(d.getId())},
                       {"offset", d.getOffset()},
                       {"origin_topic", wire::ToString(d.getOriginTopic())},
                       {"origin_queue", d.getOriginQueue()},
                       {"origin_offset", d.getOriginOffset()},
                       {"deliveries", d.getDeliveries()},
                       {"stored_ms", d.getStoredMs()},
                       {"key", wire::ToString(d.getKey())},
                       {"body_bytes", d.getBodyBytes()}});
  }
  return {
      200,
      {{"group", group}, {"messages", letters}, {"more", ok.getMore()}, {"total", ok.getTotal()}}};
}

ApiReply ConsoleApi::Resend(const std::string& group, const std::string& body,
                            const std::string& peer) {
  auto parsed = ParseActionBody(body);
  if (!parsed.ok()) return ErrorReply(parsed.status());
  auto ids = parsed->json.find("message_ids");
  if (ids == parsed->json.end() || !ids->is_array() || ids->empty() || ids->size() > kMaxListed) {
    return ErrorReply(400, "\"message_ids\" must be a list of 1 to " + std::to_string(kMaxListed) +
                               " dead-letter message ids");
  }
  for (const auto& id : *ids) {
    if (!id.is_string() || id.get<std::string>().empty()) {
      return ErrorReply(400, "\"message_ids\" holds " + id.dump() + ", not a message id");
    }
  }
  auto reply = Call(
      [&](wire::Envelope::Builder e) {
        auto r = e.initDlqResend();
        r.setGroup(group);
        auto list = r.initMessageIds(static_cast<unsigned>(ids->size()));
        for (unsigned i = 0; i < ids->size(); ++i) list.set(i, (*ids)[i].get<std::string>());
        r.setOperator(parsed->operator_name);
        r.setReason(parsed->reason);
      },
      peer);
  if (!reply.ok()) return ErrorReply(reply.status());
  auto ok = reply->envelope().getDlqResendOk();
  nlohmann::json resent = nlohmann::json::array(), missing = nlohmann::json::array();
  for (auto id : ok.getResent()) resent.push_back(wire::ToString(id));
  for (auto id : ok.getMissing()) missing.push_back(wire::ToString(id));
  return {200,
          {{"group", group},
           {"resent", resent},
           {"missing", missing},
           {"operator", parsed->operator_name}}};
}

}  // namespace txmq::broker::http
