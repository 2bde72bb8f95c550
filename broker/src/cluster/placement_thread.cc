#include "broker/src/cluster/placement_thread.h"

#include <pthread.h>

#include <algorithm>

#include "protocol/src/log.h"

namespace txmq::cluster {

PlacementThread::PlacementThread(std::unique_ptr<Coordinator> coordinator, std::string cluster,
                                 std::chrono::milliseconds poll_every,
                                 std::function<void()> on_placed, GroupWeight weight)
    : coordinator_(std::move(coordinator)),
      cluster_(std::move(cluster)),
      poll_every_(poll_every),
      on_placed_(std::move(on_placed)),
      weight_(std::move(weight)),
      weight_published_(weight_.group.empty()),
      map_(std::make_shared<const ClusterMap>()) {
  thread_ = std::thread([this] { Loop(); });
}

PlacementThread::~PlacementThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

PlacementLookup PlacementThread::Lookup(const std::string& topic, uint32_t queue_count) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = map_->topics.find(topic); it != map_->topics.end()) {
    // Shares the map's ownership: valid as long as the caller keeps it.
    return {std::shared_ptr<const TopicPlacement>(map_, &it->second), Status::OK()};
  }
  if (auto failed = failed_.find(topic); failed != failed_.end()) {
    // A look leaves the failure for the parked requests that look next;
    // a request that asks takes it, and the one after asks again.
    if (queue_count == 0) return {nullptr, failed->second};
    Status why = failed->second;
    failed_.erase(failed);
    return {nullptr, why};
  }
  if (queue_count == 0) return {nullptr, Status::OK()};  // only a look
  const bool asked =
      std::any_of(asked_.begin(), asked_.end(), [&](const auto& a) { return a.first == topic; });
  if (!asked) {
    asked_.emplace_back(topic, queue_count);
    wake_.notify_all();
  }
  return {nullptr, Status::OK()};
}

std::shared_ptr<const ClusterMap> PlacementThread::map() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_;
}

bool PlacementThread::WaitForFreshMap(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t before = map_reads_;
  wake_.notify_all();
  return refreshed_.wait_for(lock, timeout, [&] { return map_reads_ > before || stop_; }) &&
         map_reads_ > before;
}

Status PlacementThread::coordinator_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return coordinator_error_;
}

uint64_t PlacementThread::placement_version() const {
  return placement_version_.load(std::memory_order_acquire);
}

uint64_t PlacementThread::RequestMove(MoveRequest request) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t ticket = next_move_ticket_++;
  moves_.push_back({ticket, std::move(request)});
  wake_.notify_all();
  return ticket;
}

std::optional<Result<QueueMoves>> PlacementThread::TakeMoveOutcome(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = moved_.find(ticket);
  if (it == moved_.end()) return std::nullopt;
  Result<QueueMoves> outcome = std::move(it->second);
  moved_.erase(it);
  return outcome;
}

void PlacementThread::ReportDrains(std::map<QueueGeneration, std::vector<std::string>> reports) {
  std::lock_guard<std::mutex> lock(mu_);
  if (drains_ == reports) return;
  drains_ = std::move(reports);
  wake_.notify_all();  // a consumer group drained: the group it moved to waits for word
}

void PlacementThread::WriteDrainReports() {
  std::map<QueueGeneration, std::vector<std::string>> reports;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reports = drains_;
  }
  for (const auto& [id, pending] : reports) {
    if (auto it = drains_written_.find(id); it != drains_written_.end() && it->second == pending) {
      continue;
    }
    // Only while the topic is placed: a topic deleted everywhere had its
    // reports deleted with its placement (ForgetPlacement), and one written
    // now from a map read before that would outlive it, to be taken for
    // the report of a queue of the name placed anew.
    Txn txn;
    txn.compares = {Compare::Absent(PlacementKey(cluster_, id.topic))};
    txn.on_success = {WriteOp::Delete(DrainKey(cluster_, id))};
    txn.on_failure = {WriteOp::Put(DrainKey(cluster_, id), EncodeDrainReport(pending))};
    auto put = coordinator_->Commit(txn);
    if (!put.ok()) {
      Logger("cluster")->warn("topic {} queue {}: cannot report its drain yet: {}", id.topic,
                              id.queue, put.status().ToString());
      return;  // the next poll tries again
    }
    drains_written_[id] = pending;
    if (put->succeeded) continue;  // no longer placed: nothing to report
    Logger("cluster")->info(
        "topic {} queue {} (moved away, generation {}): {}", id.topic, id.queue, id.generation,
        pending.empty() ? std::string("drained for every consumer group")
                        : std::to_string(pending.size()) + " consumer group(s) still reading it");
  }
}

bool PlacementThread::PublishWeight() {
  if (weight_published_) return true;
  auto log = Logger("cluster");
  auto before = PublishGroupWeight(*coordinator_, cluster_, weight_.group, weight_.weight);
  if (!before.ok()) {
    if (!weight_warned_) {
      log->warn("group {}: cannot store its weight {} yet (asking again every poll): {}",
                weight_.group, weight_.weight, before.status().ToString());
    }
    weight_warned_ = true;
    return false;
  }
  if (*before != weight_.weight) {
    log->info("group {}: weight {} (was {}); topics placed from now on use it", weight_.group,
              weight_.weight, *before == 0 ? std::string("unset, so 1") : std::to_string(*before));
  }
  weight_published_ = true;
  return true;
}

void PlacementThread::Refresh() {
  auto read = ReadClusterMap(*coordinator_, cluster_);
  std::lock_guard<std::mutex> lock(mu_);
  coordinator_error_ = read.ok() ? Status::OK() : read.status();
  if (read.ok()) {
    const bool changed = read->topics != map_->topics || read->drains != map_->drains;
    map_ = std::make_shared<const ClusterMap>(std::move(*read));
    // After the map: whoever sees the new version finds the new map.
    if (changed) placement_version_.fetch_add(1, std::memory_order_release);
  }
  ++map_reads_;
  refreshed_.notify_all();
}

void PlacementThread::Loop() {
  pthread_setname_np(pthread_self(), "txmq-placement");
  auto log = Logger("cluster");
  auto next_poll = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!asked_.empty()) {
      auto [topic, queues] = asked_.front();
      lock.unlock();
      auto placed = EnsurePlacement(*coordinator_, cluster_, topic, queues);
      if (placed.ok()) {
        log->info("topic {}: {} queues placed on groups [{}]", topic, placed->queue_count, [&] {
          std::string groups;
          for (const std::string& g : placed->groups) {
            groups += (groups.empty() ? "" : " ") + g;
          }
          return groups;
        }());
        Refresh();  // the map has it before the topic leaves asked_
      } else {
        log->warn("topic {} cannot be placed now: {}", topic, placed.status().ToString());
      }
      lock.lock();
      if (!placed.ok()) failed_[topic] = placed.status();
      asked_.pop_front();
      if (on_placed_) {
        lock.unlock();
        on_placed_();
        lock.lock();
      }
      continue;
    }
    if (!moves_.empty()) {
      MoveAsked asked = moves_.front();
      moves_.pop_front();
      lock.unlock();
      const MoveRequest& move = asked.request;
      auto moved =
          move.forget    ? ForgetPlacement(*coordinator_, cluster_, move.topic, move.write)
          : move.release ? ReleaseDrain(*coordinator_, cluster_, move.topic, move.queue, move.write,
                                        move.force)
          : move.queue == kEveryQueue
              ? RebalanceTopic(*coordinator_, cluster_, move.topic, move.write)
              : MoveQueue(*coordinator_, cluster_, move.topic, move.queue, move.to, move.write);
      if (moved.ok() && move.write && move.forget) {
        log->warn(
            "topic {}: its placement ({} queues) deleted by an operator after the topic "
            "was deleted; the name is placed anew when it is used again",
            move.topic, moved->placement.queue_count);
        Refresh();
      } else if (moved.ok() && move.write && move.release) {
        log->warn(
            "topic {}: queue {} released from group {} by an operator: group {} hands out its "
            "messages of it without waiting; what group {} still holds of it is not delivered",
            move.topic, move.queue, moved->released_from, moved->placement.groups[move.queue],
            moved->released_from);
        Refresh();
      } else if (moved.ok() && move.write) {
        for (uint32_t q : moved->moved) {
          log->warn(
              "topic {}: queue {} moved to group {} (generation {}); group {} delivers "
              "what it holds of it first",
              move.topic, q, moved->placement.groups[q], moved->placement.GenerationOf(q),
              moved->placement.DrainingFrom(q));
        }
        Refresh();
      } else if (!moved.ok()) {
        log->warn("topic {}: {} not moved: {}", move.topic,
                  move.queue == kEveryQueue ? std::string("its queues")
                                            : "queue " + std::to_string(move.queue),
                  moved.status().ToString());
      }
      lock.lock();
      moved_.emplace(asked.ticket, std::move(moved));
      // An outcome nobody took (the asker gave up waiting) goes in time.
      while (moved_.size() > kKeptMoveOutcomes) moved_.erase(moved_.begin());
      if (on_placed_) {
        lock.unlock();
        on_placed_();
        lock.lock();
      }
      continue;
    }
    if (std::chrono::steady_clock::now() >= next_poll) {
      lock.unlock();
      PublishWeight();
      WriteDrainReports();
      Refresh();
      lock.lock();
      next_poll = std::chrono::steady_clock::now() + poll_every_;
      continue;
    }
    wake_.wait_until(lock, next_poll);
    // A WaitForFreshMap wakes this thread without a request: read now.
    if (asked_.empty() && !stop_) next_poll = std::min(next_poll, std::chrono::steady_clock::now());
  }
}

}  // namespace txmq::cluster
