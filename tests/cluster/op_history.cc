#include "tests/cluster/op_history.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

namespace txmq::testing {

namespace {

// Only refusals prove that nothing was stored; a timeout, an unreachable
// broker or a leader that stepped down leave the outcome open (an earlier
// attempt of the same send may have been committed).
bool Refused(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kTooLarge ||
         s.code() == StatusCode::kPermissionDenied;
}

void Example(HistoryVerdict& v, const std::string& what) {
  if (v.examples.size() < 10) v.examples.push_back(what);
}

}  // namespace

OpHistory::Invocation OpHistory::Invoke(const std::string& key, const std::string& id_prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op;
  op.key = key;
  op.seq = next_seq_[key]++;
  op.id = id_prefix + "-" + key + "-" + std::to_string(op.seq);
  op.invoked = std::chrono::steady_clock::now();
  ops_.push_back(op);
  return {ops_.size() - 1, op.id};
}

void OpHistory::Complete(size_t index, const Result<SendResult>& outcome) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Op& op = ops_.at(index);
  op.completed = now;
  if (outcome.ok()) {
    op.state = OpState::kOk;
    op.queue = outcome->queue;
    op.offset = outcome->offset;
    op.duplicate = outcome->duplicate;
    ++acknowledged_;
    return;
  }
  op.state = Refused(outcome.status()) ? OpState::kFail : OpState::kUnknown;
  op.status = outcome.status().ToString();
}

std::vector<Op> OpHistory::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

size_t OpHistory::acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acknowledged_;
}

std::optional<std::chrono::steady_clock::time_point> OpHistory::FirstAckAfter(
    std::chrono::steady_clock::time_point t) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<std::chrono::steady_clock::time_point> first;
  for (const Op& op : ops_) {
    if (op.state == OpState::kOk && op.invoked > t && (!first || op.completed < *first)) {
      first = op.completed;
    }
  }
  return first;
}

HistoryVerdict CheckHistory(const std::vector<Op>& ops, const std::vector<Delivery>& deliveries) {
  HistoryVerdict v;
  std::map<std::string, const Op*> by_id;
  for (const Op& op : ops) {
    by_id[op.id] = &op;
    ++v.invoked;
    v.ok += op.state == OpState::kOk;
    v.fail += op.state == OpState::kFail;
    v.unknown += op.state == OpState::kUnknown || op.state == OpState::kInvoked;
  }

  // Where each id is stored: a redelivery names the same (queue, offset)
  // again, a second stored copy another one.
  std::map<std::string, std::set<std::pair<uint32_t, uint64_t>>> stored;
  std::set<std::pair<uint32_t, uint64_t>> seen;
  for (const Delivery& d : deliveries) {
    if (!seen.insert({d.queue, d.offset}).second) ++v.redeliveries;
    stored[d.id].insert({d.queue, d.offset});
    const auto op = by_id.find(d.id);
    if (op == by_id.end() || op->second->state == OpState::kFail || op->second->key != d.key) {
      ++v.unexpected;
      Example(v, "unexpected delivery " + d.id + " (key " + d.key + ")");
    }
  }
  v.delivered_ids = stored.size();
  for (const auto& [id, places] : stored) {
    if (places.size() > 1) {
      ++v.stored_twice;
      Example(v, id + " stored " + std::to_string(places.size()) + " times");
    }
  }

  // Per key, in invocation order: each acknowledged send stored after the
  // acknowledged one before it (the producer keeps one send per key in
  // flight, so an acknowledged send was stored before the next was made).
  std::map<std::string, std::vector<const Op*>> acked_by_key;
  for (const Op& op : ops) {
    if (op.state != OpState::kOk) continue;
    if (!stored.count(op.id)) {
      ++v.lost_acknowledged;
      Example(v, "acknowledged " + op.id + " lost");
      continue;
    }
    v.dedup_acks += op.duplicate;
    const auto at = *stored[op.id].begin();
    if (op.offset && (at.first != op.queue || at.second != *op.offset)) {
      ++v.misplaced_acks;
      Example(v, op.id + " acknowledged at " + std::to_string(op.queue) + "/" +
                     std::to_string(*op.offset) + ", delivered from " + std::to_string(at.first) +
                     "/" + std::to_string(at.second));
    }
    acked_by_key[op.key].push_back(&op);
  }
  for (auto& [key, list] : acked_by_key) {
    std::sort(list.begin(), list.end(), [](const Op* a, const Op* b) { return a->seq < b->seq; });
    for (size_t i = 1; i < list.size(); ++i) {
      const auto before = *stored[list[i - 1]->id].begin();
      const auto after = *stored[list[i]->id].begin();
      if (before.first != after.first || before.second >= after.second) {
        ++v.order_inversions;
        Example(v, "key " + key + ": " + list[i - 1]->id + " at " + std::to_string(before.first) +
                       "/" + std::to_string(before.second) + " but " + list[i]->id + " at " +
                       std::to_string(after.first) + "/" + std::to_string(after.second));
      }
    }
  }
  return v;
}

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * samples.size()));
  return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
}

}  // namespace txmq::testing
