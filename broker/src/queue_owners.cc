#include "broker/src/queue_owners.h"

#include <algorithm>
#include <map>
#include <vector>

#include "protocol/src/util.h"

namespace txmq::broker {

namespace {

// The tie-break among members holding equally few: rendezvous on (topic,
// queue, member), stable for as long as the member is.
uint64_t Score(std::string_view topic, uint32_t queue, std::string_view member) {
  std::string key;
  key.reserve(topic.size() + member.size() + 12);
  key.append(topic).push_back('\0');
  key.append(std::to_string(queue)).push_back('\0');
  key.append(member);
  return StableHash(key);
}

// The rule across broker groups (see the header): every queue of the
// topic to an instance, the served ones to that instance's connection.
void ShareAcrossGroups(Subscription& sub, std::string_view topic, const std::vector<bool>& served) {
  // Instance -> its connection here: the one seen last (ties: the first),
  // as a consumer's old connection at a group may linger beside its new one.
  std::map<std::string_view, std::string_view> connection_of;
  for (const auto& [client, m] : sub.members) {
    auto [it, added] = connection_of.try_emplace(m.instance, client);
    if (!added && m.seen > sub.members.find(it->second)->second.seen) it->second = client;
  }
  const auto n = static_cast<uint32_t>(sub.queues.size());
  const size_t k = connection_of.size();
  const size_t share = n / k;
  size_t bigger_shares = n % k;  // how many instances may still hold share + 1
  std::map<std::string_view, size_t> held;
  for (uint32_t q = 0; q < n; ++q) {
    std::string_view best;
    uint64_t best_score = 0;
    for (const auto& [instance, connection] : connection_of) {
      const size_t h = held[instance];
      if (h > share || (h == share && bigger_shares == 0)) continue;
      const uint64_t score = Score(topic, q, instance);
      if (best.empty() || score > best_score) {
        best = instance;
        best_score = score;
      }
    }
    if (held[best]++ == share) --bigger_shares;
    sub.queues[q].owner = served[q] ? std::string(connection_of[best]) : std::string();
  }
}

}  // namespace

bool MayTake(const QueueCursor& c, std::string_view client) {
  if (c.owner != client) return false;
  return c.holders.empty() || (c.holders.size() == 1 && c.holders.begin()->first == client);
}

bool JoinOwners(Subscription& sub, std::string_view topic, const Joiner& who, SteadyTime now,
                const std::vector<uint32_t>& served) {
  auto [it, added] = sub.members.try_emplace(
      who.client,
      Member{.seen = now, .instance = who.instance.empty() ? who.client : who.instance});
  it->second.seen = now;
  if (!added && served == sub.shared) return false;
  sub.shared = served;
  ShareQueues(sub, topic);
  return true;
}

bool LeaveOwners(Subscription& sub, std::string_view topic, std::string_view client) {
  auto it = sub.members.find(client);
  if (it == sub.members.end()) return false;
  sub.members.erase(it);
  ShareQueues(sub, topic);
  return true;
}

void ShareQueues(Subscription& sub, std::string_view topic) {
  std::vector<uint32_t> shared;
  std::vector<bool> served(sub.queues.size(), false);
  for (uint32_t q = 0; q < sub.queues.size(); ++q) {
    if (sub.shared.empty() ||
        std::find(sub.shared.begin(), sub.shared.end(), q) != sub.shared.end()) {
      shared.push_back(q);
      served[q] = true;
    } else {
      sub.queues[q].owner.clear();  // another broker group's
    }
  }
  const auto n = static_cast<uint32_t>(shared.size());
  const size_t m = sub.members.size();
  if (m == 0) {
    for (uint32_t q : shared) sub.queues[q].owner.clear();
    return;
  }
  if (n < sub.queues.size()) {
    ShareAcrossGroups(sub, topic, served);
    return;
  }
  std::map<std::string_view, std::vector<uint32_t>> owned;  // member -> its queues
  for (const auto& [member, unused] : sub.members) owned[member];
  std::vector<uint32_t> open;
  for (uint32_t q : shared) {
    auto it = owned.find(sub.queues[q].owner);
    if (it == owned.end()) {
      open.push_back(q);
    } else {
      it->second.push_back(q);
    }
  }
  // The members holding most keep the larger shares: fewest queues move.
  std::vector<std::string_view> by_holding;
  for (const auto& [member, queues] : owned) by_holding.push_back(member);
  std::stable_sort(
      by_holding.begin(), by_holding.end(),
      [&](std::string_view a, std::string_view b) { return owned[a].size() > owned[b].size(); });
  std::map<std::string_view, size_t> share;
  for (size_t i = 0; i < m; ++i) share[by_holding[i]] = n / m + (i < n % m ? 1 : 0);
  const auto busy = [&](uint32_t q) { return !sub.queues[q].holders.empty(); };
  for (auto& [member, queues] : owned) {
    // Over its share: idle queues go first (they move at once), busy last.
    std::sort(queues.begin(), queues.end(),
              [&](uint32_t a, uint32_t b) { return busy(a) != busy(b) ? busy(a) : a < b; });
    while (queues.size() > share[member]) {
      open.push_back(queues.back());
      queues.pop_back();
    }
  }
  std::sort(open.begin(), open.end());
  for (uint32_t q : open) {
    std::string_view best;
    size_t best_held = 0;
    uint64_t best_score = 0;
    for (const auto& [member, queues] : owned) {
      if (queues.size() >= share[member]) continue;
      const uint64_t score = Score(topic, q, member);
      if (best.empty() || queues.size() < best_held ||
          (queues.size() == best_held && score > best_score)) {
        best = member;
        best_held = queues.size();
        best_score = score;
      }
    }
    if (best.empty()) break;  // cannot happen: the shares add up to n
    owned[best].push_back(q);
    sub.queues[q].owner = std::string(best);
  }
}

}  // namespace txmq::broker
