#include "broker/src/limits.h"

#include <algorithm>

#include "protocol/src/log.h"

namespace txmq::broker {

namespace {

// A creation rate's bucket holds this many seconds of it: a deployment that
// creates its topics (or a test its groups) all at once is not slowed.
constexpr double kBurstSeconds = 10;
// Idle clients Sweep looks at per call (once per cleanup interval).
constexpr size_t kSweepPerCall = 256;
constexpr auto kLogEvery = std::chrono::seconds(10);
// A connection that holds nothing and sent nothing for this long is
// forgotten (a client's heartbeats keep its connection known).
constexpr auto kForgetConnectionAfter = std::chrono::seconds(60);

}  // namespace

Status ValidateLimitOptions(const BrokerOptions& o) {
  auto bad = [](const std::string& field, uint64_t value, const std::string& rule) {
    return Status::InvalidArgument(field + " = " + std::to_string(value) + ": " + rule);
  };
  constexpr uint64_t kMiB = 1 << 20;
  if (o.max_reply_bytes_per_client < kMiB) {
    return bad("max_reply_bytes_per_client", o.max_reply_bytes_per_client,
               "must be at least 1 MiB");
  }
  if (o.max_reply_bytes < o.max_reply_bytes_per_client) {
    return bad("max_reply_bytes", o.max_reply_bytes,
               "must be at least max_reply_bytes_per_client (" +
                   std::to_string(o.max_reply_bytes_per_client) + ")");
  }
  if (o.max_parked_pulls_per_client < 1)
    return bad("max_parked_pulls_per_client", 0, "must be >= 1");
  if (o.max_parked_pulls < o.max_parked_pulls_per_client) {
    return bad("max_parked_pulls", o.max_parked_pulls,
               "must be at least max_parked_pulls_per_client (" +
                   std::to_string(o.max_parked_pulls_per_client) + ")");
  }
  if (o.max_in_flight_per_client < 1) return bad("max_in_flight_per_client", 0, "must be >= 1");
  if (o.max_open_transactions_per_group < 1) {
    return bad("max_open_transactions_per_group", 0, "must be >= 1");
  }
  if (o.max_open_transactions < o.max_open_transactions_per_group) {
    return bad("max_open_transactions", o.max_open_transactions,
               "must be at least max_open_transactions_per_group (" +
                   std::to_string(o.max_open_transactions_per_group) + ")");
  }
  if (o.max_topics < 1) return bad("max_topics", 0, "must be >= 1");
  if (o.max_groups < 1) return bad("max_groups", 0, "must be >= 1");
  if (o.topic_creates_per_second < 1) return bad("topic_creates_per_second", 0, "must be >= 1");
  if (o.group_creates_per_second < 1) return bad("group_creates_per_second", 0, "must be >= 1");
  if (o.max_topics_per_principal < 1) return bad("max_topics_per_principal", 0, "must be >= 1");
  if (o.max_groups_per_principal < 1) return bad("max_groups_per_principal", 0, "must be >= 1");
  if (o.topic_creates_per_second_per_principal < 1) {
    return bad("topic_creates_per_second_per_principal", 0, "must be >= 1");
  }
  if (o.group_creates_per_second_per_principal < 1) {
    return bad("group_creates_per_second_per_principal", 0, "must be >= 1");
  }
  return Status::OK();
}

TokenBucket::TokenBucket(double per_second, double capacity, SteadyTime now)
    : per_second_(per_second), capacity_(capacity), tokens_(capacity), at_(now) {}

void TokenBucket::Refill(SteadyTime now) {
  if (now <= at_) return;
  const double seconds = std::chrono::duration<double>(now - at_).count();
  tokens_ = std::min(capacity_, tokens_ + seconds * per_second_);
  at_ = now;
}

bool TokenBucket::Take(SteadyTime now) {
  if (!Has(now)) return false;
  tokens_ -= 1;
  return true;
}

bool TokenBucket::Has(SteadyTime now) {
  Refill(now);
  return tokens_ >= 1;
}

void CreatorCounts::Add(std::string_view principal) {
  if (principal.empty()) return;
  auto it = counts_.find(principal);
  if (it == counts_.end()) it = counts_.emplace(std::string(principal), 0).first;
  ++it->second;
}

void CreatorCounts::Remove(std::string_view principal) {
  auto it = counts_.find(principal);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

size_t CreatorCounts::Of(std::string_view principal) const {
  auto it = counts_.find(principal);
  return it == counts_.end() ? 0 : it->second;
}

size_t CreatorCounts::Largest() const {
  size_t largest = 0;
  for (const auto& [principal, n] : counts_) largest = std::max(largest, n);
  return largest;
}

const char* Limits::FlagOf(Which which) {
  switch (which) {
    case kReplyBytesPerClient:
      return "max-reply-bytes-per-client";
    case kReplyBytes:
      return "max-reply-bytes";
    case kInFlightPerClient:
      return "max-in-flight-per-client";
    case kParkedPerClient:
      return "max-parked-pulls-per-client";
    case kParked:
      return "max-parked-pulls";
    case kOpenTxPerGroup:
      return "max-open-transactions-per-group";
    case kOpenTx:
      return "max-open-transactions";
    case kTopics:
      return "max-topics";
    case kTopicRate:
      return "topic-creates-per-second";
    case kGroups:
      return "max-groups";
    case kGroupRate:
      return "group-creates-per-second";
    case kConnectionsPerPrincipal:
      return "max-connections-per-principal";
    case kTopicsPerPrincipal:
      return "max-topics-per-principal";
    case kTopicRatePerPrincipal:
      return "topic-creates-per-second-per-principal";
    case kGroupsPerPrincipal:
      return "max-groups-per-principal";
    case kGroupRatePerPrincipal:
      return "group-creates-per-second-per-principal";
    case kCount:
      break;
  }
  return "?";
}

Limits::Limits(const BrokerOptions& options, const BrokerClock& clock)
    : options_(options),
      clock_(clock),
      replies_(options.max_reply_bytes_per_client, options.max_reply_bytes),
      last_sweep_at_(clock.SteadyNow()),
      topic_bucket_(options.topic_creates_per_second,
                    options.topic_creates_per_second * kBurstSeconds, clock.SteadyNow()),
      group_bucket_(options.group_creates_per_second,
                    options.group_creates_per_second * kBurstSeconds, clock.SteadyNow()) {}

uint64_t Limits::LimitOf(Which which) const {
  const BrokerOptions& o = options_;
  switch (which) {
    case kReplyBytesPerClient:
      return o.max_reply_bytes_per_client;
    case kReplyBytes:
      return o.max_reply_bytes;
    case kInFlightPerClient:
      return o.max_in_flight_per_client;
    case kParkedPerClient:
      return o.max_parked_pulls_per_client;
    case kParked:
      return o.max_parked_pulls;
    case kOpenTxPerGroup:
      return o.max_open_transactions_per_group;
    case kOpenTx:
      return o.max_open_transactions;
    case kTopics:
      return o.max_topics;
    case kTopicRate:
      return o.topic_creates_per_second;
    case kGroups:
      return o.max_groups;
    case kGroupRate:
      return o.group_creates_per_second;
    case kConnectionsPerPrincipal:
      return o.max_connections_per_principal;
    case kTopicsPerPrincipal:
      return o.max_topics_per_principal;
    case kTopicRatePerPrincipal:
      return o.topic_creates_per_second_per_principal;
    case kGroupsPerPrincipal:
      return o.max_groups_per_principal;
    case kGroupRatePerPrincipal:
      return o.group_creates_per_second_per_principal;
    case kCount:
      break;
  }
  return 0;
}

Status Limits::Refuse(Which which, Status why) {
  CountRefusal(which, why);
  return why;
}

void Limits::CountRefusal(Which which, const Status& why) {
  ++refused_[which];
  // A flood refused a million times is one line every 10 s, not a million.
  const SteadyTime now = clock_.SteadyNow();
  if (refused_logged_[which] != 0 && now - logged_at_[which] < kLogEvery) return;
  const uint64_t since = refused_[which] - refused_logged_[which];
  Logger("broker")->warn("limit --{} refused {} request{} since the last report; latest: {}",
                         FlagOf(which), since, since == 1 ? "" : "s", why.ToString());
  refused_logged_[which] = refused_[which];
  logged_at_[which] = now;
}

bool Limits::Counted(wire::Envelope::Which kind) {
  using E = wire::Envelope;
  switch (kind) {
    case E::HELLO:
    case E::HEARTBEAT:
    case E::GOODBYE:
    case E::CHECK_REPLY:
      return false;
    default:
      return true;
  }
}

void Limits::Seen(const std::string& routing_id, const std::string& principal) {
  Connection& c = Track(routing_id);
  c.seen = last_sweep_at_;
  // The first request names the owner. A key's principal changes only with
  // an ACL reload that renames it; a connection holding something keeps its
  // owner until it holds nothing (its shares must go back where they came).
  const bool owned_by_principal = !principal.empty() && c.owner.size() == principal.size() + 2 &&
                                  c.owner.compare(0, 2, "p:") == 0 &&
                                  c.owner.compare(2, std::string::npos, principal) == 0;
  if (!principal.empty() && !owned_by_principal && c.in_flight == 0 && c.parked == 0) {
    EraseIfIdle(c.owner);
    c.owner = "p:" + principal;
    c.label = LabelOf(c.owner);
  }
}

bool Limits::Claimed(const std::string& routing_id, int fd, uint64_t releases) const {
  auto it = connections_.find(routing_id);
  return it != connections_.end() && it->second.claimed_fd == fd &&
         it->second.claimed_at_releases == releases;
}

void Limits::SetClaimed(const std::string& routing_id, int fd, uint64_t releases) {
  Connection& c = Track(routing_id);
  c.claimed_fd = fd;
  c.claimed_at_releases = releases;
}

Limits::Connection& Limits::Track(const std::string& routing_id) {
  auto [it, added] = connections_.try_emplace(routing_id);
  if (added) {
    it->second.owner = "c:" + routing_id;
    it->second.label = LabelOf(it->second.owner);
    it->second.seen = last_sweep_at_;
  }
  return it->second;
}

Limits::Account* Limits::AccountOf(const Connection& c) {
  auto it = accounts_.find(c.owner);
  return it == accounts_.end() ? nullptr : &it->second;
}

void Limits::EraseIfIdle(const std::string& owner) {
  auto it = accounts_.find(owner);
  if (it != accounts_.end() && it->second.in_flight == 0 && it->second.parked == 0) {
    accounts_.erase(it);
  }
}

std::string Limits::LabelOf(const std::string& owner) {
  return owner.rfind("p:", 0) == 0 ? "principal '" + owner.substr(2) + "'" : "this client";
}

Status Limits::BeginRequest(const std::string& routing_id, uint64_t request_id) {
  current_client_ = &routing_id;
  current_request_ = request_id;
  current_answered_ = false;
  Connection& c = Track(routing_id);
  current_connection_ = &c;
  const Account* a = AccountOf(c);
  if (a == nullptr || a->in_flight < options_.max_in_flight_per_client) return Status::OK();
  return Refuse(kInFlightPerClient,
                Status::Overloaded(c.label + " has " + std::to_string(a->in_flight) +
                                   " requests waiting for an answer; the limit is " +
                                   std::to_string(options_.max_in_flight_per_client) +
                                   " (--max-in-flight-per-client): wait for answers first"));
}

void Limits::EndRequest() {
  if (current_client_ != nullptr && !current_answered_) {
    Connection& c = current_connection_ != nullptr ? *current_connection_ : Track(*current_client_);
    ++c.pending[current_request_];
    ++c.in_flight;
    ++accounts_[c.owner].in_flight;
  }
  current_client_ = nullptr;
  current_connection_ = nullptr;
}

void Limits::Answered(const std::string& routing_id, uint64_t request_id) {
  if (current_client_ != nullptr && request_id == current_request_ &&
      routing_id == *current_client_) {
    current_answered_ = true;
    return;
  }
  Abandon(routing_id, request_id);
}

void Limits::Abandon(const std::string& routing_id, uint64_t request_id) {
  auto it = connections_.find(routing_id);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  auto p = c.pending.find(request_id);
  if (p == c.pending.end()) return;  // a broker-initiated call, or answered at once
  if (--p->second == 0) c.pending.erase(p);
  --c.in_flight;
  if (Account* a = AccountOf(c); a != nullptr && a->in_flight > 0) --a->in_flight;
  EraseIfIdle(c.owner);
}

void Limits::ForgetClient(const std::string& routing_id) {
  auto it = connections_.find(routing_id);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  if (Account* a = AccountOf(c); a != nullptr) a->in_flight -= std::min(a->in_flight, c.in_flight);
  c.pending.clear();
  c.in_flight = 0;
  const std::string owner = c.owner;
  // Its parked polls are unparked by whoever holds them (Delivery), later.
  if (c.parked == 0) {
    if (&c == current_connection_) current_connection_ = nullptr;
    connections_.erase(it);
  }
  EraseIfIdle(owner);
}

uint32_t Limits::InFlight(const std::string& routing_id) const {
  auto c = connections_.find(routing_id);
  if (c == connections_.end()) return 0;
  auto a = accounts_.find(c->second.owner);
  return a == accounts_.end() ? 0 : a->second.in_flight;
}

Status Limits::AdmitPark(const std::string& routing_id) {
  const Connection& c = Track(routing_id);
  const Account* a = AccountOf(c);
  const uint32_t mine = a == nullptr ? 0 : a->parked;
  if (mine >= options_.max_parked_pulls_per_client) {
    return Refuse(kParkedPerClient,
                  Status::Overloaded(c.label + " has " + std::to_string(mine) +
                                     " pulls waiting for messages already; the limit is " +
                                     std::to_string(options_.max_parked_pulls_per_client) +
                                     " (--max-parked-pulls-per-client)"));
  }
  if (parked_ >= options_.max_parked_pulls) {
    return Refuse(kParked,
                  Status::Overloaded(std::to_string(parked_) +
                                     " pulls wait for messages at the broker; the limit is " +
                                     std::to_string(options_.max_parked_pulls) +
                                     " (--max-parked-pulls): retry later"));
  }
  return Status::OK();
}

void Limits::Parked(const std::string& routing_id) {
  Connection& c = Track(routing_id);
  ++c.parked;
  ++accounts_[c.owner].parked;
  ++parked_;
}

void Limits::Unparked(const std::string& routing_id) {
  --parked_;
  auto it = connections_.find(routing_id);
  if (it == connections_.end() || it->second.parked == 0) return;
  Connection& c = it->second;
  --c.parked;
  if (Account* a = AccountOf(c); a != nullptr && a->parked > 0) --a->parked;
  EraseIfIdle(c.owner);
}

Status Limits::AdmitTopic(std::string_view name, size_t existing, const Creator& by,
                          bool take_token) {
  const BrokerOptions& o = options_;
  return AdmitName({"topic", "topics", kTopics, kTopicRate, kTopicsPerPrincipal,
                    kTopicRatePerPrincipal, o.max_topics, o.topic_creates_per_second,
                    o.max_topics_per_principal, o.topic_creates_per_second_per_principal,
                    ": use an existing topic or ask an operator", &topic_bucket_, &topic_buckets_},
                   name, existing, by, take_token);
}

Status Limits::AdmitGroup(std::string_view name, size_t existing, const Creator& by) {
  const BrokerOptions& o = options_;
  return AdmitName(
      {"consumer group", "groups", kGroups, kGroupRate, kGroupsPerPrincipal, kGroupRatePerPrincipal,
       o.max_groups, o.group_creates_per_second, o.max_groups_per_principal,
       o.group_creates_per_second_per_principal, "", &group_bucket_, &group_buckets_},
      name, existing, by, true);
}

Status Limits::AdmitName(const NameLimits& kind, std::string_view name, size_t existing,
                         const Creator& by, bool take_token) {
  const std::string what =
      std::string("cannot create ") + kind.noun + " '" + std::string(name) + "'";
  const std::string who = "principal '" + std::string(by.principal) + "'";
  if (existing >= kind.max) {
    return Refuse(kind.count, Status::ResourceExhausted(
                                  what + ": the broker has " + std::to_string(existing) + " " +
                                  kind.plural + "; the limit is " + std::to_string(kind.max) +
                                  " (--" + FlagOf(kind.count) + ")" + kind.advice));
  }
  const bool own_share = !by.principal.empty();
  if (own_share && by.created >= kind.max_per_principal) {
    return Refuse(
        kind.count_per_principal,
        Status::ResourceExhausted(what + ": " + who + " created " + std::to_string(by.created) +
                                  " " + kind.plural + " that still exist; the limit is " +
                                  std::to_string(kind.max_per_principal) + " (--" +
                                  FlagOf(kind.count_per_principal) + ")" + kind.advice));
  }
  if (!take_token) return Status::OK();
  const SteadyTime now = clock_.SteadyNow();
  TokenBucket* own = nullptr;
  if (own_share) {
    auto it = kind.principal_buckets->find(by.principal);
    if (it == kind.principal_buckets->end()) {
      const double rate = kind.per_second_per_principal;
      it = kind.principal_buckets
               ->emplace(std::string(by.principal), TokenBucket(rate, rate * kBurstSeconds, now))
               .first;
    }
    own = &it->second;
    // Checked before the broker's bucket, so a principal over its own rate
    // takes nothing from everyone's.
    if (!own->Has(now)) {
      return Refuse(
          kind.rate_per_principal,
          Status::Overloaded(what + " now: " + who + " creates " + kind.plural + " faster than " +
                             std::to_string(kind.per_second_per_principal) + " a second (--" +
                             FlagOf(kind.rate_per_principal) + "): retry later"));
    }
  }
  if (!kind.bucket->Take(now)) {
    return Refuse(kind.rate, Status::Overloaded(what + " now: " + kind.plural +
                                                " are being created faster than " +
                                                std::to_string(kind.per_second) + " a second (--" +
                                                FlagOf(kind.rate) + "): retry later"));
  }
  if (own != nullptr) own->Take(now);
  return Status::OK();
}

Status Limits::AdmitTransaction(std::string_view group, size_t open_in_group, size_t open_total) {
  if (open_in_group >= options_.max_open_transactions_per_group) {
    return Refuse(kOpenTxPerGroup,
                  Status::ResourceExhausted(
                      "producer group '" + std::string(group) + "' has " +
                      std::to_string(open_in_group) + " open transactions; the limit is " +
                      std::to_string(options_.max_open_transactions_per_group) +
                      " (--max-open-transactions-per-group): end or resolve them first (txmqctl "
                      "tx list --group " +
                      std::string(group) + ")"));
  }
  if (open_total >= options_.max_open_transactions) {
    return Refuse(kOpenTx,
                  Status::ResourceExhausted("the broker has " + std::to_string(open_total) +
                                            " open transactions; the limit is " +
                                            std::to_string(options_.max_open_transactions) +
                                            " (--max-open-transactions)"));
  }
  return Status::OK();
}

Result<ReplyTicket> Limits::ReserveReply(const std::string& routing_id, uint64_t bytes,
                                         bool is_error) {
  ReplyBudget::Over over;
  auto it = connections_.find(routing_id);
  auto ticket = it != connections_.end()
                    ? replies_.Reserve(it->second.owner, bytes, is_error, &over, it->second.label)
                    : replies_.Reserve("c:" + routing_id, bytes, is_error, &over, "this client");
  if (!ticket.ok() && !is_error) {
    CountRefusal(over == ReplyBudget::Over::kTotal ? kReplyBytes : kReplyBytesPerClient,
                 ticket.status());
  }
  return ticket;
}

bool Limits::Sweep() {
  replies_.Sweep(kSweepPerCall);
  // Connections come and go without a word to the broker: forget those
  // that hold nothing and were not heard from for a while, a bounded
  // number per call (their next request tracks them again).
  last_sweep_at_ = clock_.SteadyNow();
  const SteadyTime idle_since = last_sweep_at_ - kForgetConnectionAfter;
  auto it = connections_.upper_bound(sweep_after_);
  for (size_t looked = 0; looked < kSweepPerCall && it != connections_.end(); ++looked) {
    sweep_after_ = it->first;
    const Connection& c = it->second;
    if (c.in_flight == 0 && c.parked == 0 && c.seen < idle_since) {
      if (&c == current_connection_) current_connection_ = nullptr;
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
  if (it == connections_.end()) {
    sweep_after_.clear();  // next call starts over
    return false;
  }
  return true;
}

std::vector<Limits::Use> Limits::Report(const Counts& counts) const {
  uint64_t in_flight = 0, parked = 0;
  for (const auto& [id, a] : accounts_) {
    in_flight = std::max<uint64_t>(in_flight, a.in_flight);
    parked = std::max<uint64_t>(parked, a.parked);
  }
  std::vector<Use> out;
  for (int i = 0; i < kCount; ++i) {
    const auto which = static_cast<Which>(i);
    Use& u = out.emplace_back();
    u.name = FlagOf(which);
    u.limit = LimitOf(which);
    u.refused = refused_[i];
    switch (which) {
      case kReplyBytesPerClient:
        u.used = replies_.largest_queued();
        break;
      case kReplyBytes:
        u.used = replies_.total_queued();
        break;
      case kInFlightPerClient:
        u.used = in_flight;
        break;
      case kParkedPerClient:
        u.used = parked;
        break;
      case kParked:
        u.used = parked_;
        break;
      case kOpenTxPerGroup:
        u.used = counts.open_tx_largest_group;
        break;
      case kOpenTx:
        u.used = counts.open_tx;
        break;
      case kTopics:
        u.used = counts.topics;
        break;
      case kGroups:
        u.used = counts.groups;
        break;
      case kConnectionsPerPrincipal:
        u.used = counts.connections_largest_principal;
        break;
      case kTopicsPerPrincipal:
        u.used = counts.topics_largest_principal;
        break;
      case kGroupsPerPrincipal:
        u.used = counts.groups_largest_principal;
        break;
      case kTopicRate:
      case kGroupRate:
      case kTopicRatePerPrincipal:
      case kGroupRatePerPrincipal:
      case kCount:
        break;
    }
  }
  return out;
}

}  // namespace txmq::broker
