// Check-back: asking a producer group about transactions whose outcome
// never arrived, and what the answers do.
#include <algorithm>
#include <cmath>

#include "broker/src/transactions.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"

namespace txmq::broker {

using storage::CheckAnswerCode;
using storage::TxStateCode;

namespace {

const char* AnswerName(CheckAnswerCode a) {
  switch (a) {
    case CheckAnswerCode::kNone:
      return "none";
    case CheckAnswerCode::kCommit:
      return "commit";
    case CheckAnswerCode::kRollback:
      return "rollback";
    case CheckAnswerCode::kUnknown:
      return "unknown";
    case CheckAnswerCode::kError:
      return "error";
    case CheckAnswerCode::kNoAnswer:
      return "no answer";
    case CheckAnswerCode::kNoProducer:
      return "no producer";
  }
  return "?";
}

}  // namespace

int64_t TransactionService::IntervalAfter(uint32_t checks) const {
  const BrokerOptions& o = core_.options();
  // Clamp in floating point: 1.5^n overflows int64 for large check counts.
  const double grown = static_cast<double>(o.check_interval.count()) *
                       std::pow(1.5, static_cast<double>(std::max<uint32_t>(checks, 1) - 1));
  const double cap = static_cast<double>(o.check_interval_max.count());
  // From the last counted check on, the transaction is (about to be) stuck:
  // it is still checked, but only at the capped interval.
  if (checks >= o.check_max) return o.check_interval_max.count();
  return static_cast<int64_t>(std::min(grown, cap));
}

std::vector<const ClientInfo*> TransactionService::CheckersInOrder(const OpenTx& tx) {
  auto checkers = clients_.Checkers(tx.record.group);
  if (checkers.empty()) return checkers;
  // The instance that started it knows best (it may answer from its own
  // local store); the other members of the group take turns when it is gone.
  uint32_t& rr = round_robin_[tx.record.group];
  std::rotate(checkers.begin(), checkers.begin() + rr++ % checkers.size(), checkers.end());
  auto origin = std::find_if(checkers.begin(), checkers.end(),
                             [&](const ClientInfo* c) { return c->id == tx.record.instance; });
  if (origin != checkers.end()) std::rotate(checkers.begin(), origin, origin + 1);
  return checkers;
}

void TransactionService::ForgetCheck(OpenTx& tx) {
  if (tx.check_request == 0) return;
  outstanding_.erase(tx.check_request);
  check_deadlines_.erase({tx.check_deadline, tx.check_request});
  tx.check_request = 0;
  auto it = checks_in_flight_.find(tx.checked_instance);
  if (it != checks_in_flight_.end() && --it->second <= 0) checks_in_flight_.erase(it);
}

void TransactionService::StartServing(SteadyTime now) {
  grace_until_ = now + core_.options().client_timeout + kReconnectAllowance;
  if (!open_.empty()) {
    Logger("broker")->info(
        "{} open transactions; for the next {} a due check whose producer group has no live "
        "producer waits for one to reconnect (it does not count)",
        open_.size(),
        FormatDurationMs(
            std::chrono::duration_cast<std::chrono::milliseconds>(grace_until_ - now).count()));
  }
}

void TransactionService::Tick(SteadyTime now) {
  if (core_.storage_failed()) return;
  // Answers that never came.
  while (!check_deadlines_.empty() && check_deadlines_.begin()->first <= now) {
    const uint64_t request = check_deadlines_.begin()->second;
    auto tx = open_.find(outstanding_.at(request));
    ApplyAnswer(tx->second, CheckAnswerCode::kNoAnswer,
                "no reply from producer " + tx->second.checked_instance + " within " +
                    FormatDurationMs(core_.options().check_timeout.count()),
                tx->second.checked_instance);
  }

  // Rate limit: a token per check, refilled at checks_per_second.
  const double rate = core_.options().checks_per_second;
  check_tokens_ = std::min(
      rate, check_tokens_ + rate * std::chrono::duration<double>(now - tokens_at_).count());
  tokens_at_ = now;
  const int64_t now_ms = core_.NowMs();
  std::map<std::string, uint32_t> orphaned;  // group -> due checks with no producer to ask
  std::set<std::string> saturated;           // groups whose checkers have enough to answer
  std::set<std::string> deferred;            // groups with no producer back yet (grace)
  size_t scanned = 0, sent = 0;
  for (auto it = schedule_.begin(); it != schedule_.end() && it->first <= now_ms &&
                                    check_tokens_ >= 1 && scanned < kMaxScanPerTick;
       ++scanned) {
    OpenTx& tx = open_.at(it->second);
    ++it;  // SendCheck moves tx in the schedule
    // Its halves are not written yet (an operator's check now, or a round
    // slower than the transaction timeout): asked once they are.
    if (!tx.halves_durable) continue;
    // A copy: SendCheck may end the transaction (a stuck policy) and erase tx.
    const std::string group = tx.record.group;
    if (saturated.count(group) || deferred.count(group)) continue;
    switch (SendCheck(tx, now, now_ms)) {
      case CheckSent::kSent:
        check_tokens_ -= 1;
        ++sent;
        break;
      case CheckSent::kNoProducer:
        check_tokens_ -= 1;
        ++sent;
        orphaned[group]++;
        break;
      case CheckSent::kProducersBusy:
        saturated.insert(group);  // ask again when they have answered
        break;
      case CheckSent::kDeferred:
        deferred.insert(group);  // until a producer of it says hello, or the grace ends
        if (grace_logged_.insert(group).second) {
          Logger("broker")->info(
              "transactions of producer group '{}' are due for a check, but none of its "
              "producers has connected since the broker started; they wait up to {} for one "
              "to reconnect",
              group,
              FormatDurationMs(
                  std::chrono::duration_cast<std::chrono::milliseconds>(grace_until_ - now)
                      .count()));
        }
        break;
    }
  }
  // Due checks left behind (no tokens, every checker busy, or waiting for
  // producers to reconnect): come back a little later instead of spinning
  // on a schedule that is already due.
  next_dispatch_ = now;
  if (!schedule_.empty() && schedule_.begin()->first <= now_ms) {
    auto wait = std::chrono::milliseconds(check_tokens_ < 1 ? 5 : 20);
    if (sent == 0 && !deferred.empty()) wait = std::chrono::milliseconds(100);
    next_dispatch_ = now + wait;
  }
  for (const auto& [group, n] : orphaned) {
    SteadyTime& last = no_producer_logged_[group];
    if (now - last < core_.options().check_interval) continue;
    last = now;
    size_t open_in_group = std::count_if(open_.begin(), open_.end(), [&](const auto& kv) {
      return kv.second.record.group == group;
    });
    Logger("broker")->error(
        "producer group '{}' has {} transactions due for a check but no live "
        "producer that answers checks ({} open in the group); they stay open "
        "and are checked again later",
        group, n, open_in_group);
  }
}

TransactionService::CheckSent TransactionService::SendCheck(OpenTx& tx, SteadyTime now,
                                                            int64_t now_ms) {
  storage::TxRecord& r = tx.record;
  if (tx.check_request != 0) {  // the previous check is still unanswered
    if (!ApplyAnswer(tx, CheckAnswerCode::kNoAnswer, "no reply before the next check",
                     tx.checked_instance)) {
      return CheckSent::kSent;
    }
  }
  // A checker answers one check at a time per thread; sending it more than
  // it can answer in time only turns every check into a timeout.
  std::vector<const ClientInfo*> checkers = CheckersInOrder(tx);
  std::erase_if(checkers, [this](const ClientInfo* c) {
    auto it = checks_in_flight_.find(c->id);
    return it != checks_in_flight_.end() && it->second >= kMaxChecksInFlightPerProducer;
  });
  if (checkers.empty() && !clients_.Checkers(r.group).empty()) return CheckSent::kProducersBusy;
  if (checkers.empty()) return NoProducer(tx, now, now_ms);

  wire::OutFrame call(next_check_request_++);
  auto check = call.envelope().initCheckTransaction();
  check.setTransactionId(tx.id);
  check.setProducerGroup(r.group);
  check.setCheckCount(r.check_count + 1);
  check.setBornMs(r.born_ms);
  auto list = check.initMessages(static_cast<unsigned>(r.messages.size()));
  for (uint32_t i = 0; i < r.messages.size(); ++i) {
    if (auto half = core_.store().ReadHalf(tx.id, i); half.ok()) {
      FillWireMessage(half->body.message, half->body.delay_ms, list[i]);
    } else {  // still name it, so the checker can answer from the id
      list[i].setId(r.messages[i].id);
      list[i].setTopic(r.messages[i].topic);
      list[i].setKey(r.messages[i].key);
    }
  }
  // A registered producer may have disconnected since it was last heard;
  // the socket knows at once, so try the next one.
  const ClientInfo* target = nullptr;
  for (const ClientInfo* c : checkers) {
    if (core_.Deliver(c->routing_id, call)) {
      target = c;
      break;
    }
  }
  if (target == nullptr) return NoProducer(tx, now, now_ms);
  r.check_count++;
  r.no_producer_checks = 0;
  r.last_check_ms = now_ms;
  Reschedule(tx, now_ms + IntervalAfter(r.check_count));
  stats_.checks_sent++;
  StatsOf(r.group).checks_sent++;
  checks_in_flight_[target->id]++;
  tx.check_request = call.request_id();
  tx.check_deadline = now + core_.options().check_timeout;
  tx.checked_instance = target->id;
  outstanding_[tx.check_request] = tx.id;
  check_deadlines_.emplace(tx.check_deadline, tx.check_request);
  Persist(tx);
  return CheckSent::kSent;
}

TransactionService::CheckSent TransactionService::NoProducer(OpenTx& tx, SteadyTime now,
                                                             int64_t now_ms) {
  // Producers are still reconnecting to a broker that just started.
  if (now < grace_until_) return CheckSent::kDeferred;
  storage::TxRecord& r = tx.record;
  r.no_producer_checks++;
  r.last_check_ms = now_ms;
  Reschedule(tx, now_ms + IntervalAfter(r.no_producer_checks));
  ApplyAnswer(tx, CheckAnswerCode::kNoProducer,
              "no live producer of group '" + r.group + "' answers checks (" +
                  std::to_string(r.no_producer_checks) + " attempt" +
                  (r.no_producer_checks == 1 ? "" : "s") + " in a row)",
              "");
  return CheckSent::kNoProducer;
}

void TransactionService::NoteAnswer(OpenTx& tx, CheckAnswerCode answer, const std::string& error) {
  ForgetCheck(tx);
  tx.record.last_answer = answer;
  tx.record.last_error = error;
  stats_.answers[static_cast<int>(answer)]++;
  StatsOf(tx.record.group).answers[static_cast<int>(answer)]++;
}

bool TransactionService::ApplyAnswer(OpenTx& tx, CheckAnswerCode answer, const std::string& error,
                                     const std::string& from) {
  if ((answer == CheckAnswerCode::kCommit || answer == CheckAnswerCode::kRollback) &&
      !tx.halves_durable) {
    // An answer nobody asked for yet (no check goes out before the halves
    // are written): a commit now would find no half to store. It counts as
    // unknown; the check to come asks again.
    answer = CheckAnswerCode::kUnknown;
  }
  NoteAnswer(tx, answer, error);
  if (answer == CheckAnswerCode::kCommit || answer == CheckAnswerCode::kRollback) {
    Finish(tx,
           answer == CheckAnswerCode::kCommit ? TxStateCode::kCommitted : TxStateCode::kRolledBack,
           "check answer from " + from, nullptr);
    return false;
  }
  const uint32_t max = core_.options().check_max;
  if ((tx.record.check_count >= max || tx.record.no_producer_checks >= max) && !tx.record.stuck &&
      !MarkStuck(tx)) {
    return false;  // the stuck policy ended it
  }
  Persist(tx);
  return true;
}

bool TransactionService::MarkStuck(OpenTx& tx) {
  storage::TxRecord& r = tx.record;
  r.stuck = true;
  ++stuck_count_;
  const StuckPolicy policy = core_.options().stuck_policy;
  Logger("broker")->warn(
      "transaction {} of group '{}' (topic '{}') is STUCK after {} checks{}, last answer: {}{}{}; "
      "{}",
      tx.id, r.group, r.messages.empty() ? "" : r.messages[0].topic, r.check_count,
      r.no_producer_checks == 0
          ? std::string()
          : " and " + std::to_string(r.no_producer_checks) + " attempts with no live producer",
      AnswerName(r.last_answer), r.last_error.empty() ? "" : " - ", r.last_error,
      policy == StuckPolicy::kPark     ? "kept for an operator (txmqctl tx show " + tx.id + ")"
      : policy == StuckPolicy::kCommit ? std::string("committing it (stuck policy)")
                                       : std::string("rolling it back (stuck policy)"));
  if (policy == StuckPolicy::kCommit) {
    Finish(tx, TxStateCode::kCommitted, "stuck policy commit", nullptr);
    return false;
  }
  if (policy == StuckPolicy::kRollback) {
    Finish(tx, TxStateCode::kRolledBack, "stuck policy rollback", nullptr);
    return false;
  }
  return true;
}

void TransactionService::HandleCheckReply(const RequestContext& ctx,
                                          wire::CheckReply::Reader reply) {
  const std::string tx_id = wire::ToString(reply.getTransactionId());
  auto found = open_.find(tx_id);
  if (found == open_.end()) return;  // ended meanwhile
  OpenTx& tx = found->second;
  CheckAnswerCode answer = CheckAnswerCode::kUnknown;
  std::string error = wire::ToString(reply.getError());
  switch (reply.getOutcome()) {
    case wire::TxOutcome::COMMIT:
      answer = CheckAnswerCode::kCommit;
      break;
    case wire::TxOutcome::ROLLBACK:
      answer = CheckAnswerCode::kRollback;
      break;
    default:
      answer = error.empty() ? CheckAnswerCode::kUnknown : CheckAnswerCode::kError;
  }
  auto pending = outstanding_.find(ctx.request_id);
  const bool current = pending != outstanding_.end() && pending->second == tx_id &&
                       ctx.client != nullptr && tx.checked_instance == ctx.client->id;
  if (!current) {
    // A late answer to an earlier check. A decision is still the truth (a
    // checker says commit or rollback only when it knows), so it counts; a
    // late "unknown" says nothing new.
    if (answer != CheckAnswerCode::kCommit && answer != CheckAnswerCode::kRollback) return;
    if (ctx.client == nullptr || ctx.client->group != tx.record.group) {
      return;  // only the group's producers decide its transactions
    }
  }
  if (current) {
    // Sent check_timeout before its deadline.
    const auto waited = core_.SteadyNow() - (tx.check_deadline - core_.options().check_timeout);
    StatsOf(tx.record.group)
        .check_latency.Observe(static_cast<uint64_t>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::microseconds>(waited).count())));
  }
  ApplyAnswer(tx, answer, error, ctx.client_id());
}

SteadyTime TransactionService::NextWake() const {
  SteadyTime wake = SteadyTime::max();
  if (!check_deadlines_.empty()) wake = check_deadlines_.begin()->first;
  if (!schedule_.empty()) {
    const int64_t in_ms = std::max<int64_t>(0, schedule_.begin()->first - core_.NowMs());
    wake = std::min(wake,
                    std::max(next_dispatch_, core_.SteadyNow() + std::chrono::milliseconds(in_ms)));
  }
  return wake;
}

}  // namespace txmq::broker
