// The web console's JSON API (GET and POST under /api/, console_routes.cc
// wires it to HTTP): each call becomes the operator request txmqctl would
// send (ListTransactions, EndTransaction with operator and reason, ...),
// served by the broker's core thread through Broker::Operate, and its
// reply becomes JSON. So the console reads nothing the core owns, and its
// actions pass the same rights check and write the same audit lines as
// txmqctl's.
//
//   GET  /api/transactions?filter=open|stuck|pending&group=G&topic=T&older_than=10m&after=ID
//   GET  /api/transactions/ID                 summary, messages, checks and answers
//   POST /api/transactions/ID/commit          {"operator": "...", "reason": "..."}
//   POST /api/transactions/ID/rollback        the same
//   POST /api/transactions/ID/recheck         the same: check it now (a stuck one too)
//   GET  /api/topics
//   GET  /api/groups                          with lag, in flight, retrying, dead letters
//   GET  /api/dlq/GROUP?after=OFFSET          the group's dead letters
//   POST /api/dlq/GROUP/resend                {"operator", "reason", "message_ids": [...]}
//
// Errors are {"error": "...", "code": "NOT_FOUND"} with the HTTP status of
// the broker's code (HttpStatusOf); the message names the bad value.
//
// Thread safety: any thread (the HTTP workers call it concurrently).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "protocol/src/codec.h"
#include "txmq/status.h"

namespace txmq::broker::http {

struct ApiReply {
  int status = 200;
  nlohmann::json body;
};

using Query = std::multimap<std::string, std::string>;

// Broker::Operate: an encoded request in, the encoded reply out.
using OperatorCall = std::function<Result<std::string>(std::string request, std::string peer,
                                                       std::chrono::milliseconds timeout)>;

// The HTTP status for a broker status code (400, 403, 404, 409, 503, ...).
int HttpStatusOf(StatusCode code);
ApiReply ErrorReply(const Status& status);
ApiReply ErrorReply(int http_status, const std::string& message);

class ConsoleApi {
 public:
  static constexpr std::chrono::milliseconds kCallTimeout{5000};
  static constexpr size_t kMaxOperatorBytes = 128;
  static constexpr size_t kMaxReasonBytes = 1024;
  static constexpr size_t kMaxListed = 500;

  explicit ConsoleApi(OperatorCall call) : call_(std::move(call)) {}
  ConsoleApi(const ConsoleApi&) = delete;
  ConsoleApi& operator=(const ConsoleApi&) = delete;

  // `peer`: who asks (the HTTP client's address), for the audit line.
  ApiReply ListTransactions(const Query& query, const std::string& peer);
  ApiReply ShowTransaction(const std::string& id, const std::string& peer);
  // `action`: commit, rollback or recheck; `body`: the JSON request body.
  ApiReply ActOnTransaction(const std::string& id, const std::string& action,
                            const std::string& body, const std::string& peer);
  ApiReply Topics(const std::string& peer);
  ApiReply Groups(const std::string& peer);
  ApiReply DeadLetters(const std::string& group, const Query& query, const std::string& peer);
  ApiReply Resend(const std::string& group, const std::string& body, const std::string& peer);

 private:
  // Sends one request built by `fill`; the reply, or its error as a Status.
  Result<wire::Frame> Call(const std::function<void(wire::Envelope::Builder)>& fill,
                           const std::string& peer);

  OperatorCall call_;
  std::atomic<uint64_t> next_request_id_{0};
};

// Who acts and why, from an action's JSON body: INVALID_ARGUMENT naming
// the field when the body is not a JSON object, or operator or reason is
// missing, empty or too long.
struct ActionBody {
  std::string operator_name;
  std::string reason;
  nlohmann::json json;  // the whole body, for fields of one action
};
Result<ActionBody> ParseActionBody(const std::string& body);

// A message's fields for the page; the body as text when it is UTF-8
// (cut at kBodyPreviewBytes), else only its size.
nlohmann::json MessageJson(wire::Message::Reader m);
inline constexpr size_t kBodyPreviewBytes = 4096;

}  // namespace txmq::broker::http
