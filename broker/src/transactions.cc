#include "broker/src/transactions.h"

#include <algorithm>
#include <memory>
#include <set>

#include "broker/src/message_check.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::broker {

using storage::TxStateCode;

namespace {

constexpr size_t kMaxTxMessages = wire::kMaxMessagesPerRequest;

wire::TxState ToWire(TxStateCode s) {
  switch (s) {
    case TxStateCode::kPrepared:
      return wire::TxState::PREPARED;
    case TxStateCode::kCommitted:
      return wire::TxState::COMMITTED;
    case TxStateCode::kRolledBack:
      return wire::TxState::ROLLED_BACK;
  }
  return wire::TxState::PREPARED;
}

}  // namespace

const char* TxStateName(TxStateCode s) {
  switch (s) {
    case TxStateCode::kPrepared:
      return "PREPARED";
    case TxStateCode::kCommitted:
      return "COMMITTED";
    case TxStateCode::kRolledBack:
      return "ROLLED_BACK";
  }
  return "?";
}

TransactionService::TransactionService(Core& core, TopicManager& topics, DelayedMessages& delayed,
                                       DedupWindow& dedup, ClientRegistry& clients)
    : core_(core),
      topics_(topics),
      delayed_(delayed),
      dedup_(dedup),
      clients_(clients),
      check_tokens_(core.options().checks_per_second),
      tokens_at_(core.SteadyNow()) {}

Status TransactionService::Recover() {
  Status bad;
  Status s = core_.store().ForEachScheduledCheck([&](int64_t next_ms, std::string_view id) {
    OpenTx tx;
    tx.id = std::string(id);
    auto record = core_.store().GetTx(id);
    if (!record || record->state != TxStateCode::kPrepared) {
      bad = Status::Corruption("check schedule names transaction '" + tx.id +
                               "' without an open record");
      return false;
    }
    tx.record = std::move(*record);
    tx.record.next_check_ms = next_ms;
    if (tx.record.stuck) ++stuck_count_;
    schedule_.emplace(tx.record.next_check_ms, tx.id);
    Open(std::move(tx));
    return true;
  });
  if (!bad.ok()) return bad;
  if (!s.ok()) return s;
  if (Status found = RecoverUnscheduled(); !found.ok()) return found;
  Logger("broker")->info("transactions: {} open ({} stuck), checks rescheduled", open_.size(),
                         stuck_count_);
  return Status::OK();
}

Status TransactionService::RecoverUnscheduled() {
  // The schedule is an index like any other: an open transaction missing
  // from it would never be checked, listed or ended, its messages neither
  // delivered nor dropped. Its halves still name it.
  std::vector<std::string> unscheduled;
  Status s = core_.store().ForEachHalf([&](std::string_view tx_id, uint32_t, uint64_t) {
    if (!open_.count(std::string(tx_id)) && (unscheduled.empty() || unscheduled.back() != tx_id)) {
      unscheduled.emplace_back(tx_id);
    }
    return true;
  });
  if (!s.ok()) return s;
  for (const std::string& id : unscheduled) {
    auto record = core_.store().GetTx(id);
    if (!record || record->state != TxStateCode::kPrepared) {
      Logger("broker")->error(
          "half messages of transaction '{}' have no open transaction record ({}); they are "
          "never delivered",
          id, record ? TxStateName(record->state) : "no record");
      continue;
    }
    Logger("broker")->error(
        "transaction '{}' of group '{}' is open but was missing from the check schedule; "
        "scheduled again",
        id, record->group);
    OpenTx tx;
    tx.id = id;
    tx.record = std::move(*record);
    if (tx.record.stuck) ++stuck_count_;
    schedule_.emplace(tx.record.next_check_ms, tx.id);
    core_.store().ScheduleCheck(tx.record.next_check_ms, tx.id);
    Open(std::move(tx));
  }
  return Status::OK();
}

void TransactionService::HandleSendHalf(const RequestContext& ctx,
                                        wire::SendHalfRequest::Reader request) {
  if (Status s = core_.CheckAcceptsNewData(); !s.ok()) return core_.ReplyError(ctx, s);
  // Earlier transactions' ends first, into the round the half joins: every
  // one of them is answered (durably) before the half's reply is sent,
  // because completions of one round run in the order they were added.
  auto ends = std::make_shared<std::vector<EndDone>>();
  if (request.hasEnds()) {
    auto carried = request.getEnds();
    if (carried.size() > wire::kMaxEndsPerHalf) {
      return core_.ReplyError(
          ctx, Status::InvalidArgument("a half message carries at most " +
                                       std::to_string(wire::kMaxEndsPerHalf) + " ends (got " +
                                       std::to_string(carried.size()) + ")"));
    }
    ends->resize(carried.size());
    stats_.ends_carried += carried.size();
    for (unsigned i = 0; i < carried.size(); ++i) {
      EndOne(ctx, carried[i], [ends, i](const EndDone& done) { (*ends)[i] = done; });
    }
  }
  const auto reply_half = [this, ends](const std::string& routing_id, uint64_t request_id,
                                       const std::string& tx_id, TxStateCode state) {
    wire::OutFrame reply(request_id);
    auto ok = reply.envelope().initSendHalfOk();
    ok.setTransactionId(tx_id);
    ok.setState(ToWire(state));
    auto list = ok.initEnds(static_cast<unsigned>(ends->size()));
    for (unsigned i = 0; i < ends->size(); ++i) {
      const EndDone& e = (*ends)[i];
      list[i].setTransactionId(e.tx_id);
      list[i].setState(ToWire(e.state));
      list[i].setAlreadyFinal(e.already_final);
      auto error = list[i].initError();
      error.setCode(wire::ToWireCode(e.status.code()));
      error.setMessage(e.status.message());
    }
    core_.Reply(routing_id, reply);
  };
  std::string tx_id = wire::ToString(request.getTransactionId());
  if (tx_id.empty()) tx_id = NewUuidV7();
  if (Status s = CheckMessageId(tx_id); !s.ok()) {
    return core_.ReplyError(ctx, Status::InvalidArgument("transaction id: " + s.message()));
  }
  const std::string group = wire::ToString(request.getProducerGroup());
  if (Status s = ValidateName("producer group", group); !s.ok()) return core_.ReplyError(ctx, s);
  auto messages = request.getMessages();
  if (messages.size() == 0 || messages.size() > kMaxTxMessages) {
    return core_.ReplyError(
        ctx, Status::InvalidArgument("a transaction carries 1-" + std::to_string(kMaxTxMessages) +
                                     " messages (got " + std::to_string(messages.size()) + ")"));
  }

  // A resend of a half already stored (or already ended) changes nothing.
  std::optional<TxStateCode> known;
  std::string known_group;
  if (auto it = open_.find(tx_id); it != open_.end()) {
    known = TxStateCode::kPrepared;
    known_group = it->second.record.group;
  } else if (auto resolved = FindResolved(tx_id)) {
    known = resolved->state;
    known_group = resolved->group;
  }
  if (known && known_group != group) {
    // Not a resend: another group's id. Its state and group are that
    // group's business; its commit must not end the other transaction.
    return core_.ReplyError(
        ctx, Status::Conflict("transaction id '" + tx_id +
                              "' is in use by another producer group; choose another id"));
  }
  if (known) {
    core_.OnDurable([this, reply_half, routing_id = ctx.routing_id, request_id = ctx.request_id,
                     tx_id, state = *known](const Status& s) {
      // The first one may still be in a round that failed: never PREPARED
      // for halves that are not stored.
      if (!s.ok()) {
        return core_.ReplyError({routing_id, request_id, nullptr},
                                Status::Unavailable("half message not stored: " + s.message()));
      }
      reply_half(routing_id, request_id, tx_id, state);
    });
    return;
  }

  {
    auto n = open_by_group_.find(group);
    if (Status s = core_.limits().AdmitTransaction(group, n == open_by_group_.end() ? 0 : n->second,
                                                   open_.size());
        !s.ok()) {
      return core_.ReplyError(ctx, s);
    }
  }

  std::vector<storage::MessageView> views(messages.size());
  std::set<std::string_view> ids;
  std::set<std::string_view> new_topics;  // created when it commits
  size_t total = 0;
  for (unsigned i = 0; i < messages.size(); ++i) {
    size_t counted = 0;
    if (Status s = CheckMessage(messages[i], core_.options(), false, &views[i], &counted);
        !s.ok()) {
      return core_.ReplyError(
          ctx, Status(s.code(), "message " + std::to_string(i) + ": " + s.message()));
    }
    if (!ids.insert(views[i].id).second) {
      return core_.ReplyError(ctx,
                              Status::InvalidArgument("message id '" + std::string(views[i].id) +
                                                      "' appears twice in the transaction"));
    }
    total += counted;  // the size rule of a send, for all messages together
    if (topics_.Find(views[i].topic) == nullptr) {
      if (!core_.options().auto_create_topics) {
        return core_.ReplyError(ctx, Status::NotFound("topic '" + std::string(views[i].topic) +
                                                      "' does not exist and the broker does not "
                                                      "create topics on first send"));
      }
      new_topics.insert(views[i].topic);
    }
  }
  if (total > core_.options().max_message_bytes) {
    return core_.ReplyError(
        ctx, Status::TooLarge("the transaction's messages take " + std::to_string(total) +
                              " bytes together (body + key + properties not starting with "
                              "'txmq.'); the broker's limit for one request is " +
                              std::to_string(core_.options().max_message_bytes) + " bytes"));
  }
  // A topic the commit will create is checked against the topic count now
  // (the commit itself must not fail), counting the others this half and
  // every open one will create (reserved: Open reserves them for good);
  // the creation rate is not: halves naming a topic create nothing, and
  // many may name the same one.
  {
    std::vector<std::string_view> admitted;
    Status refused;
    for (std::string_view name : new_topics) {
      refused = topics_.AdmitNew(name, ctx, false);
      if (!refused.ok()) break;
      topics_.Reserve(name, ctx.creator());
      admitted.push_back(name);
    }
    for (std::string_view name : admitted) topics_.Unreserve(name);
    if (!refused.ok()) return core_.ReplyError(ctx, refused);
  }

  const int64_t now = core_.NowMs();
  OpenTx tx;
  tx.id = tx_id;
  storage::TxRecord& r = tx.record;
  r.group = group;
  r.instance = ctx.client_id();
  r.principal = std::string(ctx.creator());
  r.born_ms = now;
  r.next_check_ms = now + core_.options().transaction_timeout.count();
  for (unsigned i = 0; i < views.size(); ++i) {
    storage::MessageView& m = views[i];
    m.stored_ms = now;
    r.messages.push_back({std::string(m.id), std::string(m.topic), std::string(m.key)});
    core_.store().PutHalf({tx_id, i, static_cast<uint64_t>(messages[i].getDelayMs()), m});
  }
  core_.store().ScheduleCheck(r.next_check_ms, tx_id);
  schedule_.emplace(r.next_check_ms, tx_id);
  tx.halves_durable = false;
  OpenTx& stored = Open(std::move(tx));
  Persist(stored);
  stats_.halves_stored += views.size();

  core_.OnDurable([this, reply_half, routing_id = ctx.routing_id, request_id = ctx.request_id,
                   tx_id](const Status& s) {
    if (!s.ok()) {
      return core_.ReplyError({routing_id, request_id, nullptr},
                              Status::Unavailable("half message not stored: " + s.message()));
    }
    if (auto it = open_.find(tx_id); it != open_.end()) it->second.halves_durable = true;
    reply_half(routing_id, request_id, tx_id, TxStateCode::kPrepared);
  });
}

void TransactionService::HandleEndTransaction(const RequestContext& ctx,
                                              wire::EndTransactionRequest::Reader request) {
  EndOne(ctx, request,
         [this, routing_id = ctx.routing_id, request_id = ctx.request_id](const EndDone& done) {
           if (!done.status.ok())
             return core_.ReplyError({routing_id, request_id, nullptr}, done.status);
           ReplyEnded(routing_id, request_id, done.tx_id, done.state, done.already_final);
         });
}

void TransactionService::EndOne(const RequestContext& ctx,
                                wire::EndTransactionRequest::Reader request,
                                std::function<void(const EndDone&)> then) {
  const std::string tx_id = wire::ToString(request.getTransactionId());
  const auto fail = [&](Status s) { then(EndDone{tx_id, std::move(s)}); };
  if (Status s = core_.CheckWritable(); !s.ok()) return fail(s);
  if (Status s = CheckMessageId(tx_id); !s.ok()) {
    return fail(Status::InvalidArgument("transaction id: " + s.message()));
  }
  TxStateCode wanted;
  switch (request.getOutcome()) {
    case wire::TxOutcome::COMMIT:
      wanted = TxStateCode::kCommitted;
      break;
    case wire::TxOutcome::ROLLBACK:
      wanted = TxStateCode::kRolledBack;
      break;
    default:
      return fail(Status::InvalidArgument(
          "an end must be commit or rollback; to leave a transaction undecided, send nothing"));
  }
  const std::string op = wire::ToString(request.getOperator());
  const std::string reason = wire::ToString(request.getReason());
  // Every operator decision is audit-logged, also one that is refused or
  // changes nothing: who tried what is the point. With an ACL, an end that
  // only the admin right allowed is an operator decision whatever the
  // request says.
  auto audit = [&](const std::string& group, const std::string& result) {
    if (op.empty() && !ctx.as_admin) return;
    Logger("audit")->warn(
        "operator='{}' principal='{}' client={} action={} tx={} group={} reason='{}' result={}",
        AuditField(op), AuditField(ctx.principal_name()), AuditToken(ctx.client_id()),
        wanted == TxStateCode::kCommitted ? "commit" : "rollback", tx_id, AuditToken(group),
        AuditField(reason), result);
  };

  auto it = open_.find(tx_id);
  if (it != open_.end() && !it->second.halves_durable) {
    // A client that does not wait for its SendHalf's answer (or whose
    // SendHalf timed out), or an operator quicker than the disk.
    audit(it->second.record.group, "refused (not prepared yet)");
    return fail(Status::Unavailable("transaction '" + tx_id +
                                    "' is not prepared yet: its half messages are still being "
                                    "written; end it once its SendHalf is answered"));
  }
  if (it != open_.end()) {
    std::string by;
    if (!op.empty() || ctx.as_admin) {
      // The principal is who it was; the operator name is what it said.
      by = "operator " + (op.empty() ? ctx.principal_name() : op) +
           (ctx.principal != nullptr ? " (principal " + ctx.principal_name() + ")" : "") +
           (reason.empty() ? "" : " (" + reason + ")");
      audit(it->second.record.group, "applied");
    } else {
      by = "producer " + ctx.client_id();
    }
    Finish(it->second, wanted, by, [tx_id, wanted, then = std::move(then)](const Status& s) {
      if (!s.ok()) {
        return then(EndDone{tx_id, Status::Unavailable("outcome not recorded: " + s.message())});
      }
      then(EndDone{tx_id, Status::OK(), wanted, false});
    });
    return;
  }

  auto resolved = FindResolved(tx_id);
  if (!resolved) {
    audit("", "not found");
    return fail(Status::NotFound("transaction '" + tx_id +
                                 "' is unknown: never prepared here, or "
                                 "ended more than " +
                                 FormatDurationMs(core_.options().resolved_retention.count()) +
                                 " ago"));
  }
  if (resolved->state != wanted) {
    audit(resolved->group, std::string("conflict (already ") + TxStateName(resolved->state) + ")");
    return fail(Status::Conflict("transaction '" + tx_id + "' is already " +
                                 TxStateName(resolved->state) + " (by " + resolved->resolved_by +
                                 ")"));
  }
  audit(resolved->group, "already final");
  // The same end again: answer OK once what recorded it is durable.
  core_.OnDurable([tx_id, wanted, then = std::move(then)](const Status& s) {
    if (!s.ok()) {
      return then(EndDone{tx_id, Status::Unavailable("outcome not recorded: " + s.message())});
    }
    then(EndDone{tx_id, Status::OK(), wanted, true});
  });
}

std::optional<std::string> TransactionService::GroupOf(const std::string& tx_id) {
  if (auto it = open_.find(tx_id); it != open_.end()) return it->second.record.group;
  if (auto resolved = FindResolved(tx_id)) return resolved->group;
  return std::nullopt;
}

void TransactionService::ReplyEnded(const std::string& routing_id, uint64_t request_id,
                                    const std::string& tx_id, TxStateCode state,
                                    bool already_final) {
  wire::OutFrame reply(request_id);
  auto ok = reply.envelope().initEndTransactionOk();
  ok.setTransactionId(tx_id);
  ok.setState(ToWire(state));
  ok.setAlreadyFinal(already_final);
  core_.Reply(routing_id, reply);
}

std::optional<storage::TxRecord> TransactionService::FindResolved(const std::string& tx_id) {
  if (auto it = resolving_.find(tx_id); it != resolving_.end()) return it->second;
  auto record = core_.store().GetTx(tx_id);
  if (record && record->state != TxStateCode::kPrepared) return record;
  return std::nullopt;
}

void TransactionService::Finish(OpenTx& tx, TxStateCode state, const std::string& resolved_by,
                                Then then) {
  const int64_t now = core_.NowMs();
  storage::TxRecord& r = tx.record;
  if (state == TxStateCode::kCommitted) {
    Commit(tx, now);
    stats_.committed++;
    StatsOf(r.group).committed++;
  } else {
    for (uint32_t i = 0; i < r.messages.size(); ++i) core_.store().DeleteHalf(tx.id, i);
    stats_.rolled_back++;
    StatsOf(r.group).rolled_back++;
  }
  ForgetCheck(tx);
  schedule_.erase({r.next_check_ms, tx.id});
  core_.store().UnscheduleCheck(r.next_check_ms, tx.id);
  if (r.stuck) --stuck_count_;
  for (const std::string& topic : tx.reserved_topics) topics_.Unreserve(topic);
  tx.reserved_topics.clear();
  r.state = state;
  r.stuck = false;
  r.resolved_ms = now;
  r.resolved_by = resolved_by;
  const int64_t forget_at = now + core_.options().resolved_retention.count();
  core_.store().ScheduleTxExpiry(forget_at, tx.id);
  Persist(tx);
  Logger("broker")->debug("transaction {} of group '{}' {} by {}", tx.id, r.group,
                          TxStateName(state), resolved_by);
  const std::string id = tx.id;
  if (auto n = open_by_group_.find(r.group); n != open_by_group_.end() && --n->second == 0) {
    open_by_group_.erase(n);
  }
  resolving_[id] = std::move(r);
  open_.erase(id);
  core_.OnDurable([this, id, then = std::move(then)](const Status& s) {
    resolving_.erase(id);
    if (then) then(s);
  });
}

void TransactionService::Commit(OpenTx& tx, int64_t now_ms) {
  for (uint32_t i = 0; i < tx.record.messages.size(); ++i) {
    auto half = core_.store().ReadHalf(tx.id, i);
    // The index entry goes either way: nothing will read an unreadable
    // half once its transaction has ended, and a reference left behind
    // would come back if the id were reused (the new half's put and
    // delete cancel in the index overlay, uncovering the old one).
    core_.store().DeleteHalf(tx.id, i);
    if (!half.ok()) {
      // Never drop silently: the transaction record stays (COMMITTED) and
      // the log names the message that was lost with its damage.
      Logger("broker")->critical(
          "transaction {}: half message {} is missing or unreadable ({}); the "
          "other messages are committed",
          tx.id, i, half.status().ToString());
      continue;
    }
    storage::MessageView& m = half->body.message;  // views into the log; appends copy
    if (auto first = dedup_.Find(m.id)) {
      // Stored already inside the window: by a plain send, or by an
      // earlier transaction the producer retried after an unknown outcome.
      core_.counters().duplicates++;
      Logger("broker")->debug(
          "transaction {}: message {} is already stored ({}/{}{}); not stored again", tx.id, m.id,
          first->first.topic, first->first.queue,
          first->first.has_offset ? "/" + std::to_string(first->first.offset) : " delayed");
      continue;
    }
    const uint64_t delay = half->body.delay_ms;
    auto topic = topics_.GetOrCreate(m.topic, true, 0, tx.record.principal);
    if (!topic.ok()) continue;  // cannot happen: creation is allowed here
    storage::DedupRecord where;
    where.stored_ms = m.stored_ms = now_ms;
    where.topic = (*topic)->name;
    where.queue = topics_.SelectQueue(**topic, m.key);
    if (delay > 0) {
      const int64_t due = now_ms + static_cast<int64_t>(delay);
      const uint64_t seq = delayed_.Add(due, **topic, where.queue, m);
      core_.OnDurable([this, due, seq](const Status& st) {
        if (st.ok()) delayed_.Schedule(due, seq);
      });
    } else {
      where.offset = topics_.Append(**topic, where.queue, m);
      where.has_offset = true;
    }
    core_.counters().messages_stored++;
    dedup_.Remember(m.id, where);
    core_.OnDurable([this, id = std::string(m.id)](const Status&) { dedup_.Settled(id); });
  }
}

void TransactionService::Persist(const OpenTx& tx) { core_.store().PutTx(tx.id, tx.record); }

OpenTx& TransactionService::Open(OpenTx tx) {
  ++open_by_group_[tx.record.group];
  for (const auto& m : tx.record.messages) {
    if (topics_.Find(m.topic) != nullptr) continue;
    if (std::find(tx.reserved_topics.begin(), tx.reserved_topics.end(), m.topic) !=
        tx.reserved_topics.end()) {
      continue;
    }
    topics_.Reserve(m.topic, tx.record.principal);
    tx.reserved_topics.push_back(m.topic);
  }
  const std::string id = tx.id;
  return open_.emplace(id, std::move(tx)).first->second;
}

size_t TransactionService::LargestGroupOpen() const {
  size_t most = 0;
  for (const auto& [group, n] : open_by_group_) most = std::max<size_t>(most, n);
  return most;
}

TxStats& TransactionService::StatsOf(const std::string& group) {
  if (auto it = group_stats_.find(group); it != group_stats_.end()) return it->second;
  if (group_stats_.size() + 1 >= kMaxProducerGroupsTracked)
    return group_stats_[kOtherProducerGroups];
  return group_stats_[group];
}

void TransactionService::Reschedule(OpenTx& tx, int64_t next_check_ms) {
  storage::TxRecord& r = tx.record;
  schedule_.erase({r.next_check_ms, tx.id});
  core_.store().UnscheduleCheck(r.next_check_ms, tx.id);
  r.next_check_ms = next_check_ms;
  schedule_.emplace(r.next_check_ms, tx.id);
  core_.store().ScheduleCheck(r.next_check_ms, tx.id);
}

bool TransactionService::Cleanup(int64_t now_ms, uint32_t budget) {
  if (core_.storage_failed()) return false;
  uint32_t done = 0;
  std::vector<std::pair<int64_t, std::string>> due;
  Status s = core_.store().ForEachTxExpiry(now_ms, [&](int64_t ms, std::string_view id) {
    due.emplace_back(ms, std::string(id));
    return ++done < budget;
  });
  if (!s.ok()) Logger("broker")->error("transaction cleanup: {}", s.ToString());
  for (const auto& [ms, id] : due) {
    core_.store().DeleteTxExpiry(ms, id);
    if (!open_.count(id)) core_.store().DeleteTx(id);
  }
  return done >= budget;
}

}  // namespace txmq::broker
