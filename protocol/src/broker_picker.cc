#include "protocol/src/broker_picker.h"

#include <algorithm>

namespace txmq::net {

BrokerPicker::BrokerPicker(std::vector<std::string> bootstrap, Options options)
    : bootstrap_(std::move(bootstrap)),
      options_(options),
      current_(bootstrap_.front()),
      backoff_(options.min_backoff) {}

std::string BrokerPicker::OnNotLeader(const std::string& leader, SteadyTime now) {
  if (!leader.empty() && leader != named_) {
    // A leader named in place of another has just been elected: it
    // rebuilds its store before it binds the client endpoint, and refuses
    // meanwhile. Its refusals count only after that grace.
    named_since_ = named_.empty() ? now : now + options_.leader_start_grace;
    named_ = leader;
  }
  // Failed since it is the leader named: most likely dead, and named only
  // until its lease ends. Failed before: the old name was the dead one,
  // and this one refused while it took over.
  const auto failed = refused_.find(leader);
  const bool failed_as_leader = failed != refused_.end() && failed->second.when >= named_since_;
  if (!leader.empty() && leader != current_ && !(failed_as_leader && RefusedLately(leader, now))) {
    current_ = leader;
    return current_;
  }
  Hold(now);
  // It names itself: elected, and about to serve once its first entry
  // commits. Ask it again.
  if (leader == current_) return "";
  return Next(now);
}

std::string BrokerPicker::OnLinkDown(SteadyTime now, bool slow) {
  refused_[current_] = {now, slow};
  const std::string next = Next(now);
  if (!next.empty()) Hold(now);
  return next;
}

std::string BrokerPicker::OnSilent(SteadyTime now) {
  if (bootstrap_.size() == 1) return "";
  return OnLinkDown(now, /*slow=*/true);
}

void BrokerPicker::OnServed() {
  backoff_ = options_.min_backoff;
  // It serves, so it leads (or is a single broker) since before any
  // failure seen from now on: a NOT_LEADER naming it later is not news.
  if (named_ != current_) {
    named_ = current_;
    named_since_ = SteadyTime{};
  }
}

std::string BrokerPicker::Next(SteadyTime now) {
  // One bootstrap URL and there already: nowhere else to go.
  if (bootstrap_.size() == 1 && current_ == bootstrap_.front()) return "";
  // The next URL in turn that is not this one and did not fail lately; if
  // all did, the first that only refused before the first that hung (a
  // dead or paused leader stays in the list).
  std::string best;
  int best_rank = 3;
  for (size_t tried = 0; tried < bootstrap_.size() && best_rank > 0; ++tried) {
    const std::string& candidate = bootstrap_[next_++ % bootstrap_.size()];
    if (candidate == current_) continue;
    if (const int rank = FailureRank(candidate, now); rank < best_rank) {
      best = candidate;
      best_rank = rank;
    }
  }
  current_ = best.empty() ? bootstrap_.front() : best;
  return current_;
}

bool BrokerPicker::RefusedLately(const std::string& url, SteadyTime now) const {
  const auto refused = refused_.find(url);
  return refused != refused_.end() && now - refused->second.when < options_.refused_memory;
}

int BrokerPicker::FailureRank(const std::string& url, SteadyTime now) const {
  const auto failed = refused_.find(url);
  if (failed == refused_.end()) return 0;
  const auto age = now - failed->second.when;
  if (failed->second.slow) return age < options_.slow_memory ? 2 : 0;
  return age < options_.refused_memory ? 1 : 0;
}

void BrokerPicker::Hold(SteadyTime now) {
  hold_until_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
}

}  // namespace txmq::net
