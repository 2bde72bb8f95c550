// Status and Result<T>: how every txmq call reports failure.
//
// A Status is a cheap value: a code and, when not OK, a message that names
// the bad value and the rule it broke. The code tells the caller whether a
// retry can help (IsRetryable()): kTimeout, kUnavailable, kOverloaded,
// kResourceExhausted, kNotLeader and kWrongGroup are transient; everything else will fail the same
// way again.
//
// Thread safety: values; safe to copy between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace txmq {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,      // the request is wrong: bad name, bad option
  kNotFound = 2,             // unknown topic, transaction, message
  kConflict = 3,             // a final state already exists and differs
  kTimeout = 4,              // no answer in time; the outcome is unknown
  kUnavailable = 5,          // not connected, broker stopping; retry later
  kOverloaded = 6,           // too much in flight; back off and retry
  kTooLarge = 7,             // message or frame above the configured maximum
  kCorruption = 8,           // stored or received bytes cannot be decoded
  kAborted = 9,              // the operation was cancelled by a concurrent decision
  kFailedPrecondition = 10,  // called in the wrong state (not started, shut down)
  kInternal = 11,            // a bug or an I/O error; see the broker log
  // A broker limit is reached: free disk space is low (--min-free-disk) or
  // a configured count is (topics, consumer groups, open transactions of a
  // producer group). The message names the limit, its value and the txmqd
  // flag that sets it. Retryable: it passes once something is freed (disk
  // space, transactions end, an operator deletes) or the limit is raised.
  // Rates and queues that drain by themselves are kOverloaded instead.
  kResourceExhausted = 12,
  kPermissionDenied = 13,  // the caller's key or principal may not do this
  // A node of a replicated broker group that does not lead it. The client
  // libraries follow the leader the node names (or try the next bootstrap
  // URL) by themselves; a caller sees this only when no leader answered
  // before the call's deadline. Retryable.
  kNotLeader = 14,
  // The message's queue is placed on another broker group of the cluster
  // (the key decides the queue, the placement the group). Nothing was
  // stored. The producer libraries route by placement and handle it by
  // themselves (they read the route again); a caller sees it only from a
  // raw request or when the route kept changing until the deadline.
  // Retryable.
  kWrongGroup = 15,
};

// "INVALID_ARGUMENT", "NOT_FOUND", ...
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Overloaded(std::string m) { return {StatusCode::kOverloaded, std::move(m)}; }
  static Status TooLarge(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // True when the same call may succeed later without any change.
  bool IsRetryable() const {
    return code_ == StatusCode::kTimeout || code_ == StatusCode::kUnavailable ||
           code_ == StatusCode::kOverloaded || code_ == StatusCode::kResourceExhausted ||
           code_ == StatusCode::kNotLeader || code_ == StatusCode::kWrongGroup;
  }

  // "OK" or "NOT_FOUND: topic 'orders' does not exist".
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {
    if (status_.ok()) status_ = Status::Internal("Result built from an OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace txmq
