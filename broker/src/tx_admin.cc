// The operator's view of transactions: list, show, check now, counters.
#include <algorithm>

#include "broker/src/transactions.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"

namespace txmq::broker {

using storage::TxStateCode;

namespace {

constexpr uint32_t kDefaultListLimit = 100;
constexpr uint32_t kMaxListLimit = 10000;

void FillSummary(const std::string& id, const storage::TxRecord& r, wire::TxSummary::Builder out) {
  out.setTransactionId(id);
  out.setState(r.state == TxStateCode::kPrepared    ? wire::TxState::PREPARED
               : r.state == TxStateCode::kCommitted ? wire::TxState::COMMITTED
                                                    : wire::TxState::ROLLED_BACK);
  out.setStuck(r.stuck);
  out.setProducerGroup(r.group);
  out.setProducerInstance(r.instance);
  auto topics = out.initTopics(static_cast<unsigned>(r.messages.size()));
  auto keys_out = out.initKeys(static_cast<unsigned>(r.messages.size()));
  auto ids = out.initMessageIds(static_cast<unsigned>(r.messages.size()));
  for (unsigned i = 0; i < r.messages.size(); ++i) {
    topics.set(i, r.messages[i].topic);
    keys_out.set(i, r.messages[i].key);
    ids.set(i, r.messages[i].id);
  }
  out.setBornMs(r.born_ms);
  out.setCheckCount(r.check_count);
  out.setNoProducerChecks(r.no_producer_checks);
  out.setLastCheckMs(r.last_check_ms);
  out.setNextCheckMs(r.state == TxStateCode::kPrepared ? r.next_check_ms : 0);
  out.setLastAnswer(static_cast<wire::CheckAnswer>(r.last_answer));
  out.setLastError(r.last_error);
  out.setResolvedMs(r.resolved_ms);
  out.setResolvedBy(r.resolved_by);
}

}  // namespace

void TransactionService::HandleList(const RequestContext& ctx,
                                    wire::ListTransactionsRequest::Reader request) {
  const std::string group = wire::ToString(request.getGroup());
  const std::string topic = wire::ToString(request.getTopic());
  const std::string after = wire::ToString(request.getAfter());
  const int64_t born_before =
      request.getOlderThanMs() > 0 ? core_.NowMs() - request.getOlderThanMs() : INT64_MAX;
  uint32_t limit = request.getLimit() == 0 ? kDefaultListLimit : request.getLimit();
  limit = std::min(limit, kMaxListLimit);

  std::vector<const OpenTx*> hits;
  bool more = false;
  for (auto it = after.empty() ? open_.begin() : open_.upper_bound(after); it != open_.end();
       ++it) {
    const storage::TxRecord& r = it->second.record;
    if (request.getStuckOnly() && !r.stuck) continue;
    if (request.getPendingOnly() && r.stuck) continue;
    if (!group.empty() && r.group != group) continue;
    if (r.born_ms >= born_before) continue;
    if (!topic.empty() && std::none_of(r.messages.begin(), r.messages.end(),
                                       [&](const auto& m) { return m.topic == topic; })) {
      continue;
    }
    if (hits.size() == limit) {
      more = true;
      break;
    }
    hits.push_back(&it->second);
  }
  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initListTransactionsOk();
  auto list = ok.initTransactions(static_cast<unsigned>(hits.size()));
  for (unsigned i = 0; i < hits.size(); ++i) FillSummary(hits[i]->id, hits[i]->record, list[i]);
  ok.setMore(more);
  core_.Reply(ctx, reply);
}

void TransactionService::HandleShow(const RequestContext& ctx, capnp::Text::Reader tx_id_text) {
  const std::string tx_id = wire::ToString(tx_id_text);
  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initShowTransactionOk();
  if (auto it = open_.find(tx_id); it != open_.end()) {
    FillSummary(tx_id, it->second.record, ok.initSummary());
    auto list = ok.initMessages(static_cast<unsigned>(it->second.record.messages.size()));
    for (uint32_t i = 0; i < list.size(); ++i) {
      if (auto half = core_.store().ReadHalf(tx_id, i); half.ok()) {
        FillWireMessage(half->body.message, half->body.delay_ms, list[i]);
      }
    }
  } else if (auto resolved = FindResolved(tx_id)) {
    FillSummary(tx_id, *resolved, ok.initSummary());
  } else {
    return core_.ReplyError(
        ctx,
        Status::NotFound("transaction '" + tx_id +
                         "' is unknown: never prepared here, or ended "
                         "more than " +
                         FormatDurationMs(core_.options().resolved_retention.count()) + " ago"));
  }
  core_.Reply(ctx, reply);
}

void TransactionService::HandleCheckNow(const RequestContext& ctx,
                                        wire::CheckNowRequest::Reader request) {
  if (Status s = core_.CheckWritable(); !s.ok()) return core_.ReplyError(ctx, s);
  const std::string tx_id = wire::ToString(request.getTransactionId());
  const std::string group = wire::ToString(request.getGroup());
  const std::string op = wire::ToString(request.getOperator());
  const std::string reason = wire::ToString(request.getReason());
  const int64_t now = core_.NowMs();
  uint32_t scheduled = 0;
  auto schedule_now = [&](OpenTx& tx) {
    if (tx.record.stuck && request.getStuckOnly()) {
      // Back on the schedule with a fresh allowance of checks.
      tx.record.stuck = false;
      tx.record.check_count = 0;
      tx.record.no_producer_checks = 0;
      --stuck_count_;
    }
    Reschedule(tx, now);
    Persist(tx);
    ++scheduled;
  };
  // One audit line per check asked for, also a refused one (as for commit
  // and rollback: who tried what is the point).
  auto audit_check = [&](const std::string& tx_group, const std::string& result) {
    Logger("audit")->warn(
        "operator='{}' principal='{}' client={} action=check tx={} group={} result={} reason='{}'",
        AuditField(op), AuditField(ctx.principal_name()), AuditToken(ctx.client_id()),
        AuditToken(tx_id), AuditToken(tx_group), result, AuditField(reason));
  };
  if (!tx_id.empty()) {
    auto it = open_.find(tx_id);
    if (it == open_.end()) {
      auto resolved = FindResolved(tx_id);
      audit_check(resolved ? resolved->group : "",
                  resolved ? std::string("refused (already ") + TxStateName(resolved->state) + ")"
                           : "not found");
      return core_.ReplyError(
          ctx, resolved ? Status::FailedPrecondition("transaction '" + tx_id + "' is already " +
                                                     TxStateName(resolved->state) +
                                                     "; there is nothing to check")
                        : Status::NotFound("transaction '" + tx_id + "' is unknown"));
    }
    schedule_now(it->second);
    audit_check(it->second.record.group, "scheduled");
  } else if (request.getStuckOnly()) {
    for (auto& [id, tx] : open_) {
      if (tx.record.stuck && (group.empty() || tx.record.group == group)) schedule_now(tx);
    }
    Logger("audit")->warn(
        "operator='{}' principal='{}' client={} action=recheck group={} scheduled={} reason='{}'",
        AuditField(op), AuditField(ctx.principal_name()), AuditToken(ctx.client_id()),
        group.empty() ? "*" : AuditToken(group), scheduled, AuditField(reason));
  } else {
    return core_.ReplyError(
        ctx, Status::InvalidArgument("name a transaction, or ask for the stuck ones"));
  }
  core_.OnDurable(
      [this, routing_id = ctx.routing_id, request_id = ctx.request_id, scheduled](const Status& s) {
        if (!s.ok()) {
          return core_.ReplyError({routing_id, request_id, nullptr},
                                  Status::Unavailable("not recorded: " + s.message()));
        }
        wire::OutFrame reply(request_id);
        reply.envelope().initCheckNowOk().setScheduled(scheduled);
        core_.Reply(routing_id, reply);
      });
}

void TransactionService::FillCounters(wire::TxCounters::Builder out) const {
  out.setHalvesStored(stats_.halves_stored);
  out.setCommitted(stats_.committed);
  out.setRolledBack(stats_.rolled_back);
  out.setChecksSent(stats_.checks_sent);
  using A = storage::CheckAnswerCode;
  out.setAnswersCommit(stats_.answers[static_cast<int>(A::kCommit)]);
  out.setAnswersRollback(stats_.answers[static_cast<int>(A::kRollback)]);
  out.setAnswersUnknown(stats_.answers[static_cast<int>(A::kUnknown)]);
  out.setAnswersError(stats_.answers[static_cast<int>(A::kError)]);
  out.setNoAnswer(stats_.answers[static_cast<int>(A::kNoAnswer)]);
  out.setNoProducer(stats_.answers[static_cast<int>(A::kNoProducer)]);
  out.setOpen(open_.size());
  out.setStuck(stuck_count_);
  out.setEndsCarried(stats_.ends_carried);
  int64_t oldest = INT64_MAX;
  for (const auto& [id, tx] : open_) oldest = std::min(oldest, tx.record.born_ms);
  out.setOldestOpenAgeMs(open_.empty() ? 0 : core_.NowMs() - oldest);
}

}  // namespace txmq::broker
