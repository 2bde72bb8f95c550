// Moving a queue between broker groups (placement_directory.h MoveQueue)
// and the drain reports that tell the group it went to when each consumer
// group has read what the group it left still holds (DESIGN.md "Moving a
// queue").
#include <algorithm>
#include <functional>

#include <nlohmann/json.hpp>

#include "broker/src/cluster/group_state.h"
#include "broker/src/cluster/placement_directory.h"

namespace txmq::cluster {

using nlohmann::json;

namespace {

// The moves that may be stacked on a record another writer keeps
// changing before ours lands: each retry reads it again.
constexpr int kMoveAttempts = 3;

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Whether the queue's last move still waits for consumer groups; OK when
// it moved never or is drained.
Status CheckDrained(Coordinator& coordinator, const std::string& cluster, const std::string& topic,
                    uint32_t queue, const TopicPlacement& p) {
  const std::string_view from = p.DrainingFrom(queue);
  if (from.empty()) return Status::OK();
  const QueueGeneration moved{topic, queue, p.GenerationOf(queue)};
  auto read = coordinator.Get(DrainKey(cluster, moved));
  if (!read.ok()) return read.status();
  const std::string head = "queue " + std::to_string(queue) + " of topic " + topic +
                           " is still draining from group " + std::string(from);
  if (read->kvs.empty()) {
    return Status::FailedPrecondition(head +
                                      " (no report from that group's leader yet: is it up?)");
  }
  auto pending = DecodeDrainReport(read->kvs.front().value);
  if (!pending.ok()) return pending.status();
  if (pending->empty()) return Status::OK();
  return Status::FailedPrecondition(head + ": consumer groups " + Joined(*pending) +
                                    " have not read its older messages");
}

// The nodes of `group` whose liveness key (held by their lease) is there.
Result<std::vector<std::string>> LiveNodesOf(Coordinator& coordinator, const std::string& cluster,
                                             const std::string& group) {
  const std::string prefix = BrokerKey(cluster, "");
  auto read = coordinator.GetPrefix(prefix);
  if (!read.ok()) return read.status();
  std::vector<std::string> nodes;
  for (const KeyValue& kv : read->kvs) {
    auto r = DecodeNodeRegistration(kv.value);
    if (r.ok() && r->group == group) nodes.push_back(kv.key.substr(prefix.size()));
  }
  return nodes;
}

}  // namespace

std::string DrainPrefix(const std::string& cluster) { return "/txmq/" + cluster + "/drain/"; }

std::string DrainKey(const std::string& cluster, const QueueGeneration& q) {
  // The topic last: a name may hold any character but the ones before it.
  return DrainPrefix(cluster) + std::to_string(q.queue) + "/" + std::to_string(q.generation) + "/" +
         q.topic;
}

std::string EncodeDrainReport(const std::vector<std::string>& pending) {
  return json{{"pending", pending}}.dump();
}

Result<std::vector<std::string>> DecodeDrainReport(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const json pending = j.is_object() ? j.value("pending", json()) : json();
  if (!pending.is_array()) return Status::Corruption("drain report: no pending list: " + text);
  std::vector<std::string> out;
  for (const json& g : pending) {
    if (!g.is_string()) return Status::Corruption("drain report: a group is not a name: " + text);
    out.push_back(g.get<std::string>());
  }
  return out;
}

namespace {

using Plan = std::vector<std::pair<uint32_t, std::string>>;  // queue -> the group it goes to

// The topic's placement record at `key` and the revision that wrote it.
struct StoredPlacement {
  TopicPlacement placement;
  Revision mod_revision = 0;
};
Result<StoredPlacement> ReadPlacement(Coordinator& coordinator, const std::string& key,
                                      const std::string& topic) {
  auto read = coordinator.Get(key);
  if (!read.ok()) return read.status();
  if (read->kvs.empty()) {
    return Status::NotFound("topic " + topic + " is not placed on the cluster's groups (" + key +
                            " is absent)");
  }
  auto placed = DecodeTopicPlacement(read->kvs.front().value);
  if (!placed.ok()) return Status::Corruption(key + ": " + placed.status().message());
  return StoredPlacement{std::move(*placed), read->kvs.front().mod_revision};
}

// Reads the topic's record, lets `change` make the new one, and writes it
// in one transaction on its revision (read again and changed again when
// another writer got between). Nothing is written when `change` names no
// queue or `write` is false (then what would be written is returned).
// The drain reports of the changed queues' generations before the change
// go in the same transaction: nobody waits on them any more (a move
// needed them drained, a release gave up on them), so the reports of a
// queue moved again and again do not pile up.
Result<QueueMoves> WritePlacementChange(
    Coordinator& coordinator, const std::string& cluster, const std::string& topic, bool write,
    const std::function<Result<QueueMoves>(const TopicPlacement&)>& change) {
  const std::string key = PlacementKey(cluster, topic);
  for (int attempt = 0;; ++attempt) {
    auto stored = ReadPlacement(coordinator, key, topic);
    if (!stored.ok()) return stored.status();
    const TopicPlacement* placed = &stored->placement;
    auto out = change(*placed);
    if (!out.ok() || out->moved.empty() || !write) return out;
    Txn txn;
    txn.compares = {Compare::ModRevisionIs(key, stored->mod_revision)};
    txn.on_success = {WriteOp::Put(key, EncodeTopicPlacement(out->placement))};
    for (uint32_t q : out->moved) {
      const uint32_t before = placed->GenerationOf(q);
      if (before > 0) {
        txn.on_success.push_back(WriteOp::Delete(DrainKey(cluster, {topic, q, before})));
      }
    }
    auto written = coordinator.Commit(txn);
    if (!written.ok()) return written.status();  // a timeout: the operator looks and asks again
    if (written->succeeded) return out;
    if (attempt + 1 == kMoveAttempts) {
      return Status::Unavailable(key + " kept changing while the change was written; try again");
    }
  }
}

// The moves `plan` chooses, each checked not to be draining still.
Result<QueueMoves> WriteMoves(Coordinator& coordinator, const std::string& cluster,
                              const std::string& topic, bool write,
                              const std::function<Result<Plan>(const TopicPlacement&)>& plan) {
  return WritePlacementChange(
      coordinator, cluster, topic, write, [&](const TopicPlacement& placed) -> Result<QueueMoves> {
        auto moves = plan(placed);
        if (!moves.ok()) return moves.status();
        QueueMoves out{placed, {}};
        for (const auto& [queue, to] : *moves) {
          if (Status s = CheckDrained(coordinator, cluster, topic, queue, out.placement); !s.ok()) {
            return s;
          }
          out.placement = out.placement.Moved(queue, to);
          out.moved.push_back(queue);
        }
        return out;
      });
}

}  // namespace

Result<QueueMoves> MoveQueue(Coordinator& coordinator, const std::string& cluster,
                             const std::string& topic, uint32_t queue, const std::string& to,
                             bool write) {
  return WriteMoves(
      coordinator, cluster, topic, write, [&](const TopicPlacement& p) -> Result<Plan> {
        if (Status s = p.CheckMove(topic, queue, to); !s.ok()) return s;
        auto groups = ListGroups(coordinator, cluster);
        if (!groups.ok()) return groups.status();
        std::vector<std::string> names;
        for (const GroupWeight& g : *groups) names.push_back(g.group);
        if (std::find(names.begin(), names.end(), to) == names.end()) {
          return Status::InvalidArgument("no broker group " + to + " in cluster " + cluster +
                                         " (groups: " + Joined(names) + ")");
        }
        return Plan{{queue, to}};
      });
}

Result<QueueMoves> RebalanceTopic(Coordinator& coordinator, const std::string& cluster,
                                  const std::string& topic, bool write) {
  return WriteMoves(coordinator, cluster, topic, write,
                    [&](const TopicPlacement& p) -> Result<Plan> {
                      auto groups = ListGroups(coordinator, cluster);
                      if (!groups.ok()) return groups.status();
                      auto proposal = PlaceQueues(topic, p.queue_count, *groups);
                      if (!proposal.ok()) return proposal.status();
                      Plan plan;
                      for (uint32_t q = 0; q < p.queue_count; ++q) {
                        if (proposal->groups[q] != p.groups[q])
                          plan.emplace_back(q, proposal->groups[q]);
                      }
                      return plan;
                    });
}

Result<QueueMoves> ReleaseDrain(Coordinator& coordinator, const std::string& cluster,
                                const std::string& topic, uint32_t queue, bool write, bool force) {
  return WritePlacementChange(
      coordinator, cluster, topic, write, [&](const TopicPlacement& p) -> Result<QueueMoves> {
        if (Status s = p.CheckQueue(topic, queue); !s.ok()) return s;
        const std::string_view from = p.DrainingFrom(queue);
        if (from.empty()) {
          return Status::FailedPrecondition("queue " + std::to_string(queue) + " of topic " +
                                            topic +
                                            " is not draining from another group: nothing to "
                                            "release");
        }
        if (!force) {
          // A group with a live node reports the drain itself: releasing
          // it would give up messages it still delivers, out of order.
          auto live = LiveNodesOf(coordinator, cluster, std::string(from));
          if (!live.ok()) return live.status();
          if (!live->empty()) {
            return Status::FailedPrecondition(
                "group " + std::string(from) + " still has live nodes (" + Joined(*live) +
                "): it reports queue " + std::to_string(queue) +
                " drained by itself once its consumer groups have read it. Release only a group "
                "that is gone for good (--force releases anyway, giving up what it holds of the "
                "queue)");
          }
        }
        return QueueMoves{p.Released(queue), {queue}, std::string(from)};
      });
}

Result<QueueMoves> ForgetPlacement(Coordinator& coordinator, const std::string& cluster,
                                   const std::string& topic, bool write) {
  const std::string key = PlacementKey(cluster, topic);
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    auto stored = ReadPlacement(coordinator, key, topic);
    if (!stored.ok()) return stored.status();
    const TopicPlacement* placed = &stored->placement;
    if (!write) return QueueMoves{*placed, {}};
    Txn txn;
    txn.compares = {Compare::ModRevisionIs(key, stored->mod_revision)};
    txn.on_success = {WriteOp::Delete(key)};
    for (uint32_t q = 0; q < placed->queue_count; ++q) {
      if (const uint32_t g = placed->GenerationOf(q); g > 0) {
        txn.on_success.push_back(WriteOp::Delete(DrainKey(cluster, {topic, q, g})));
      }
    }
    auto written = coordinator.Commit(txn);
    if (!written.ok()) return written.status();
    if (written->succeeded) return QueueMoves{*placed, {}};
  }
  return Status::Unavailable(key + " kept changing while it was deleted; try again");
}

}  // namespace txmq::cluster
