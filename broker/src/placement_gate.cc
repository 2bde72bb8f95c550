#include "broker/src/placement_gate.h"

#include <algorithm>

#include "protocol/src/log.h"

namespace txmq::broker {

void PlacementGate::Revalidate() {
  const uint64_t version = replicator_->PlacementVersion();
  if (version == known_version_) return;
  known_.clear();
  known_version_ = version;
}

uint64_t PlacementGate::version() {
  if (!active()) return 0;
  Revalidate();
  return known_version_;
}

cluster::PlacementLookup PlacementGate::Lookup(std::string_view topic, uint32_t queue_count) {
  Revalidate();
  if (auto it = known_.find(topic); it != known_.end()) return {it->second, Status::OK()};
  cluster::PlacementLookup found = replicator_->LookupPlacement(std::string(topic), queue_count);
  if (found.placement) known_.emplace(std::string(topic), found.placement);
  return found;
}

std::shared_ptr<const cluster::TopicPlacement> PlacementGate::Known(std::string_view topic) {
  if (!active()) return nullptr;
  Revalidate();
  if (auto it = known_.find(topic); it != known_.end()) return it->second;
  // Only a look: a topic nobody asked to place stays unplaced (queue
  // count 0 would be refused by the thread anyway).
  auto map_entry = replicator_->LookupPlacement(std::string(topic), 0);
  if (map_entry.placement) known_.emplace(std::string(topic), map_entry.placement);
  return map_entry.placement;
}

PlacementGate::Decision PlacementGate::Admit(std::string_view topic, std::string_view key,
                                             uint32_t queues_here, uint32_t default_queues) {
  if (!active()) return {};
  auto found = Lookup(topic, queues_here != 0 ? queues_here : default_queues);
  if (!found.placement) {
    if (found.error.ok()) return {Decision::Kind::kPark, {}, {}};
    return {Decision::Kind::kRefuse,
            Status(found.error.code() == StatusCode::kCorruption ? StatusCode::kCorruption
                                                                 : StatusCode::kUnavailable,
                   "topic " + std::string(topic) +
                       " cannot be placed on the cluster's groups: " + found.error.ToString()),
            {}};
  }
  const cluster::TopicPlacement& p = *found.placement;
  if (queues_here != 0 && queues_here != p.queue_count) {
    return {Decision::Kind::kRefuse,
            Status::FailedPrecondition(
                "topic " + std::string(topic) + " has " + std::to_string(queues_here) +
                " queues on this node but is placed with " + std::to_string(p.queue_count) +
                " in etcd (it was created here before it was placed); recreate it with " +
                std::to_string(p.queue_count) + " queues"),
            {}};
  }
  const std::string& mine = group_;
  uint32_t queue = 0;
  if (!key.empty()) {
    queue = static_cast<uint32_t>(StableHash(key) % p.queue_count);
  } else {
    // Keyless: any queue this group serves (the topic manager picks).
    for (const std::string& g : p.groups) {
      if (g == mine) return {};
    }
  }
  if (p.groups[queue] == mine) return {};
  const std::string& owner = p.groups[queue];
  return {Decision::Kind::kRefuse,
          Status(StatusCode::kWrongGroup, "queue " + std::to_string(queue) + " of topic " +
                                              std::string(topic) + " is served by broker group " +
                                              owner + ", not " + mine),
          replicator_->LeaderUrlOf(owner)};
}

std::optional<TopicPlacementSource::Served> PlacementGate::ServedQueues(std::string_view topic) {
  auto p = Known(topic);
  if (!p) return std::nullopt;
  std::vector<uint32_t> queues = p->QueuesOf(group_);
  for (uint32_t q : p->QueuesDrainingFrom(group_)) queues.push_back(q);
  std::sort(queues.begin(), queues.end());
  return Served{p->queue_count, std::move(queues), p->groups};
}

std::optional<TopicPlacementSource::Draining> PlacementGate::DrainingOf(std::string_view topic,
                                                                        uint32_t queue) {
  auto p = active() ? Known(topic) : nullptr;
  if (!p || queue >= p->queue_count || p->DrainingFrom(queue).empty()) return std::nullopt;
  return Draining{std::string(p->DrainingFrom(queue)),
                  replicator_->DrainPending({std::string(topic), queue, p->GenerationOf(queue)})};
}

bool PlacementGate::HeldBack(std::string_view topic, uint32_t queue, std::string_view group) {
  auto draining = DrainingOf(topic, queue);
  if (!draining || draining->from == group_) return false;  // the old group is never held
  const auto& pending = draining->pending;
  return !pending || std::find(pending->begin(), pending->end(), group) != pending->end();
}

void PlacementGate::ParkMove(uint64_t ticket, SteadyTime now,
                             std::function<void(Result<cluster::QueueMoves>)> resume) {
  moves_.push_back({ticket, now + kParkLimit, std::move(resume)});
}

void PlacementGate::Park(std::string topic, SteadyTime now,
                         std::function<void(const Status&)> resume) {
  if (parked_.size() >= kMaxParked) {
    return resume(Status::Overloaded(std::to_string(kMaxParked) +
                                     " requests already wait for topics to be placed; try again"));
  }
  parked_.push_back({std::move(topic), now + kParkLimit, std::move(resume)});
}

void PlacementGate::ResumeParked(SteadyTime now) {
  for (auto it = moves_.begin(); it != moves_.end();) {
    auto outcome = replicator_->TakeMoveOutcome(it->ticket);
    if (!outcome && now < it->deadline) {
      ++it;
      continue;
    }
    auto resume = std::move(it->resume);
    it = moves_.erase(it);
    if (outcome) known_.clear();  // the map read after the move has it
    resume(outcome ? std::move(*outcome)
                   : Result<cluster::QueueMoves>(Status::Unavailable(
                         "the move was not written within " + std::to_string(kParkLimit.count()) +
                         " s (is etcd reachable from the broker?); look with txmqctl topic "
                         "show before asking again")));
  }
  if (parked_.empty()) return;
  // Resuming may park again (a placement known only to a map read after
  // it): those wait for the next call.
  std::deque<Parked> waiting;
  waiting.swap(parked_);
  std::map<std::string, Status, std::less<>> decided;  // one lookup per topic
  for (Parked& p : waiting) {
    auto d = decided.find(p.topic);
    if (d == decided.end()) {
      auto found = Lookup(p.topic, 0);
      Status outcome = found.placement ? Status::OK() : found.error;
      if (!found.placement && outcome.ok()) outcome = Status(StatusCode::kNotLeader, "pending");
      d = decided.emplace(p.topic, outcome).first;
    }
    if (d->second.code() == StatusCode::kNotLeader) {  // still pending
      if (now < p.deadline) {
        parked_.push_back(std::move(p));
        continue;
      }
      Logger("broker")->warn("topic {}: no placement within {} s; answering UNAVAILABLE", p.topic,
                             kParkLimit.count());
      p.resume(Status::Unavailable("topic " + p.topic + " could not be placed within " +
                                   std::to_string(kParkLimit.count()) +
                                   " s (is etcd reachable from the broker?); try again"));
      continue;
    }
    p.resume(d->second.ok() ? Status::OK()
                            : Status::Unavailable("topic " + p.topic +
                                                  " cannot be placed: " + d->second.ToString()));
  }
}

}  // namespace txmq::broker
