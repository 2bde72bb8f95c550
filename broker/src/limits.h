// The broker's limits: what one client, or a flood of requests, may take of
// its memory and time (BrokerOptions, "limits"). Each service asks here
// before it takes something a client could pile up, and a refusal is a
// Status naming the limit, its value and the txmqd flag that sets it:
//
//   reply bytes waiting for a client, and for all   ReplyBudget (reply_budget.h)
//   requests of a client in flight                   Begin/EndRequest, Answered
//   long polls parked, per client and in all         AdmitPark, Parked, Unparked
//   topics, consumer groups: counts and rates,       AdmitTopic, AdmitGroup
//     in all and per principal
//   open transactions, per producer group and all    AdmitTransaction
//   connections of a principal (CURVE)               Claimed, SetClaimed
//                                                      (ConnectionGuard counts)
//
// Whose budget ("per client" in the flags' names): with CURVE, the
// connection's principal, so all connections of one key share one budget
// and a principal cannot widen its share by opening more connections; in
// plaintext mode, the connection (there is nobody to trust with a name).
// Server::Dispatch tells each request's principal (Seen) before it counts.
//
// Every refusal is counted by limit (txmqctl status shows them) and logged,
// at most once per limit every 10 s, with how many since.
//
// Thread safety: the core thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/src/clock.h"
#include "broker/src/reply_budget.h"
#include "protocol/src/util.h"
#include "protocol/txmq.capnp.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq::broker {

// Checks the limit fields of BrokerOptions; the error names the field.
Status ValidateLimitOptions(const BrokerOptions& options);

// A rate with bursts: `per_second` tokens a second, holding at most
// `capacity`. Starts full.
class TokenBucket {
 public:
  TokenBucket(double per_second, double capacity, SteadyTime now);
  // Takes a token if there is one.
  bool Take(SteadyTime now);
  // Whether Take would succeed now.
  bool Has(SteadyTime now);

 private:
  void Refill(SteadyTime now);
  double per_second_;
  double capacity_;
  double tokens_;
  SteadyTime at_;
};

// How many names of one kind (topics, or consumer groups) each principal
// created that still exist: what the per-principal counts are checked
// against. "" (no principal) is not counted.
class CreatorCounts {
 public:
  void Add(std::string_view principal);
  void Remove(std::string_view principal);
  size_t Of(std::string_view principal) const;
  size_t Largest() const;

 private:
  std::map<std::string, size_t, std::less<>> counts_;  // no zero entries
};

class Limits {
 public:
  enum Which : int {
    kReplyBytesPerClient,
    kReplyBytes,
    kInFlightPerClient,
    kParkedPerClient,
    kParked,
    kOpenTxPerGroup,
    kOpenTx,
    kTopics,
    kTopicRate,
    kGroups,
    kGroupRate,
    kConnectionsPerPrincipal,
    kTopicsPerPrincipal,
    kTopicRatePerPrincipal,
    kGroupsPerPrincipal,
    kGroupRatePerPrincipal,
    kCount,
  };
  // The txmqd flag (without "--") that sets a limit.
  static const char* FlagOf(Which which);

  // `clock` (the core's) must outlive the limits.
  Limits(const BrokerOptions& options, const BrokerClock& clock);
  Limits(const Limits&) = delete;
  Limits& operator=(const Limits&) = delete;

  // ---- whose budget (see the top) ----
  // A request arrived on `routing_id`, authenticated as `principal` ("" in
  // plaintext mode). Call before BeginRequest; a connection never seen
  // counts as its own client.
  void Seen(const std::string& routing_id, const std::string& principal);
  // Whether the connection was counted among its principal's connections
  // (ConnectionGuard::principals) on descriptor `fd` with no claim given
  // back since (`releases`: PrincipalConnections::releases()), and to say
  // it was. A client that reconnects keeps its routing id on a new
  // descriptor, and a release may have been its old one: then it is
  // claimed again.
  bool Claimed(const std::string& routing_id, int fd, uint64_t releases) const;
  void SetClaimed(const std::string& routing_id, int fd, uint64_t releases);
  // A refusal decided elsewhere (a principal's connection count): counted
  // and logged like the others; returns `why`.
  Status Refused(Which which, Status why) { return Refuse(which, std::move(why)); }

  // ---- requests in flight (accepted, not answered yet) ----
  // Requests of these kinds are answered at once or never (a check answer
  // has no reply): not counted, never refused.
  static bool Counted(wire::Envelope::Which kind);
  // Before a request is served: OVERLOADED when its client has the most
  // requests in flight already. Always pair with EndRequest.
  Status BeginRequest(const std::string& routing_id, uint64_t request_id);
  // After its handler returned: not answered yet, it is in flight.
  void EndRequest();
  // A frame answering `request_id` goes to `routing_id` (or was meant to).
  void Answered(const std::string& routing_id, uint64_t request_id);
  // A request that will never be answered (a parked pull of a client that
  // vanished).
  void Abandon(const std::string& routing_id, uint64_t request_id);
  // The client is gone: forget what it had in flight.
  void ForgetClient(const std::string& routing_id);
  uint32_t InFlight(const std::string& routing_id) const;

  // ---- long polls ----
  // OVERLOADED when the client, or the broker, has the most parked.
  Status AdmitPark(const std::string& routing_id);
  void Parked(const std::string& routing_id);
  void Unparked(const std::string& routing_id);
  uint32_t parked() const { return parked_; }

  // ---- names a client may create ----
  // Who asks to create a name. A principal (CURVE) that is not an admin is
  // also held to its own share: `created` is how many names of the kind
  // it created that still exist (the creator is stored with each, so the
  // count survives a restart). "" = no principal (plaintext mode, the
  // broker itself, an admin): only the broker-wide limits apply.
  struct Creator {
    std::string_view principal;
    size_t created = 0;
  };
  // A new topic (`existing` topics now): RESOURCE_EXHAUSTED past the
  // broker's count or the creator's, OVERLOADED past either rate. Takes a
  // token from each bucket when it admits.
  // With `take_token` false only the counts are checked and no token taken:
  // a half names a topic that only its commit creates, and many halves
  // may name the same one (the commit itself must not fail).
  Status AdmitTopic(std::string_view name, size_t existing, const Creator& by,
                    bool take_token = true);
  Status AdmitGroup(std::string_view name, size_t existing, const Creator& by);

  // ---- transactions ----
  // A new transaction of `group`, which has `open_in_group` open,
  // `open_total` in all: RESOURCE_EXHAUSTED past either.
  Status AdmitTransaction(std::string_view group, size_t open_in_group, size_t open_total);

  // ---- reply bytes ----
  // Room for a frame of `bytes` to the client (ReplyBudget::Reserve); a
  // refusal is counted, unless `is_error` (the error that replaces a
  // refused reply is not a second refusal).
  Result<ReplyTicket> ReserveReply(const std::string& routing_id, uint64_t bytes, bool is_error);
  const ReplyBudget& replies() const { return replies_; }
  // Reply bytes waiting for the budget `routing_id` draws on.
  uint64_t QueuedFor(const std::string& routing_id) const {
    auto it = connections_.find(routing_id);
    return replies_.queued_for(it == connections_.end() ? "c:" + routing_id : it->second.owner);
  }

  // Housekeeping: forgets idle clients and connections not heard from
  // for a minute, a bounded number per call. True when it stopped with
  // more to look at (call again soon).
  bool Sweep();
  size_t connections_known() const { return connections_.size(); }

  // For status: each limit, its value, its use and its refusals. `used`
  // holds what the services count (topics, groups, open transactions);
  // the rest is known here.
  struct Use {
    std::string name;
    uint64_t limit = 0;
    uint64_t used = 0;
    uint64_t refused = 0;
  };
  struct Counts {
    size_t topics = 0;
    size_t groups = 0;
    size_t open_tx = 0;
    size_t open_tx_largest_group = 0;
    size_t connections_largest_principal = 0;
    size_t topics_largest_principal = 0;  // created by one principal, still there
    size_t groups_largest_principal = 0;
  };
  std::vector<Use> Report(const Counts& counts) const;
  uint64_t refused(Which which) const { return refused_[which]; }

 private:
  // What one budget's owner (a principal, or a plaintext connection) has
  // taken; kept only while it has something.
  struct Account {
    uint32_t in_flight = 0;
    uint32_t parked = 0;
  };
  // One connection: whose budget it draws on and what it holds of it, so
  // a connection that goes gives back exactly its own share.
  struct Connection {
    std::string owner;  // key of accounts_: "p:" + principal or "c:" + routing id
    std::string label;  // LabelOf(owner), made once for the errors
    uint32_t in_flight = 0;
    uint32_t parked = 0;
    // Request id -> how many with that id are unanswered (a client may
    // reuse ids; each reply ends one).
    std::unordered_map<uint64_t, uint32_t> pending;
    SteadyTime seen{};
    int claimed_fd = -1;  // counted among its principal's connections on it
    uint64_t claimed_at_releases = 0;
  };
  // What AdmitTopic and AdmitGroup share: the limits of one kind of name.
  struct NameLimits {
    const char* noun;    // "topic"
    const char* plural;  // "topics"
    Which count, rate, count_per_principal, rate_per_principal;
    uint32_t max, per_second, max_per_principal, per_second_per_principal;
    const char* advice;  // after the count's refusal
    TokenBucket* bucket;
    std::map<std::string, TokenBucket, std::less<>>* principal_buckets;
  };
  Status AdmitName(const NameLimits& kind, std::string_view name, size_t existing,
                   const Creator& by, bool take_token);
  Status Refuse(Which which, Status why);
  void CountRefusal(Which which, const Status& why);
  uint64_t LimitOf(Which which) const;
  Connection& Track(const std::string& routing_id);
  Account* AccountOf(const Connection& c);
  void EraseIfIdle(const std::string& owner);
  static std::string LabelOf(const std::string& owner);

  const BrokerOptions& options_;
  const BrokerClock& clock_;
  ReplyBudget replies_;
  std::map<std::string, Connection, std::less<>> connections_;  // by routing id
  std::unordered_map<std::string, Account> accounts_;           // by Connection::owner
  std::string sweep_after_;                                     // Sweep's cursor in connections_
  // When Sweep last ran: what Seen stamps a connection with, so a request
  // costs no clock read (forgetting may come one cleanup interval early).
  SteadyTime last_sweep_at_;
  uint32_t parked_ = 0;
  TokenBucket topic_bucket_;
  TokenBucket group_bucket_;
  // By principal; one per principal that created something (the ACL names
  // them all, so these stay small).
  std::map<std::string, TokenBucket, std::less<>> topic_buckets_;
  std::map<std::string, TokenBucket, std::less<>> group_buckets_;
  // The request being served (BeginRequest .. EndRequest).
  const std::string* current_client_ = nullptr;
  Connection* current_connection_ = nullptr;
  uint64_t current_request_ = 0;
  bool current_answered_ = false;
  std::array<uint64_t, kCount> refused_{};
  std::array<uint64_t, kCount> refused_logged_{};
  std::array<SteadyTime, kCount> logged_at_{};
};

// BeginRequest .. EndRequest around one request's handler.
class RequestScope {
 public:
  RequestScope(Limits& limits, const std::string& routing_id, uint64_t request_id)
      : limits_(limits), admitted_(limits.BeginRequest(routing_id, request_id)) {}
  ~RequestScope() { limits_.EndRequest(); }
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

  // OK, or why the request is refused (answer it with that).
  const Status& admitted() const { return admitted_; }

 private:
  Limits& limits_;
  Status admitted_;
};

}  // namespace txmq::broker
