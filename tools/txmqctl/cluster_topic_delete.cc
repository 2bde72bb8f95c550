// txmqctl topic delete in a cluster (of one broker group or more). Each group
// holds its part of a topic (the queues placed on it, their cursors and
// redeliveries) and etcd holds the topic's placement, which fixes its
// queue count and where each queue lives. Deleting only the asked group's
// part left the others and the placement behind: the topic half-existed,
// and creating it again with another queue count was refused. So without
// --broker-group the deletion goes to every group (--broker's first), and
// then the placement is deleted through --broker's group, but only once
// no group holds a part: another group that refused or could not be asked
// keeps its part, and the placement stays until the command is run again.
// When --broker's group refuses (live consumers, open transactions),
// nothing is asked of the others.
//
// Producers still sending to the topic create it again (in the group of
// each message's queue, by the placement they knew): stop them first, as
// on a single broker.
#include <iostream>
#include <optional>
#include <vector>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/lifecycle_view.h"

namespace txmq::ctl {

namespace {

enum class Outcome { kDeleted, kAbsent, kFailed };

Outcome OutcomeOf(const Result<wire::Frame>& reply) {
  if (reply.ok()) return Outcome::kDeleted;
  return reply.status().code() == StatusCode::kNotFound ? Outcome::kAbsent : Outcome::kFailed;
}

const char* Name(Outcome o) {
  switch (o) {
    case Outcome::kDeleted:
      return "deleted";
    case Outcome::kAbsent:
      return "absent";
    case Outcome::kFailed:
      break;
  }
  return "failed";
}

}  // namespace

int DeleteTopicInEveryGroup(Ctl& ctl, const std::string& topic, bool dry_run, bool force,
                            const std::string& home, Result<wire::Frame> first,
                            std::vector<BrokerGroupView> others) {
  others.insert(others.begin(), BrokerGroupView{home, std::move(first)});
  std::vector<std::string> staying;  // groups whose part stays
  bool found = false;
  for (const BrokerGroupView& v : others) {
    const Outcome o = OutcomeOf(v.reply);
    found = found || o == Outcome::kDeleted;
    if (o == Outcome::kFailed) staying.push_back(v.broker_group);
  }
  // The placement goes once every part has: asked (a dry run too, which
  // says what it would delete) only when no group keeps one.
  std::optional<Result<wire::Frame>> placement;
  if (staying.empty()) {
    placement = CallLifecycle(ctl, dry_run, force, [&](wire::LifecycleRequest::Builder r) {
      r.setForgetPlacement(topic);
    });
  }
  const Outcome placement_outcome =
      placement ? OutcomeOf(*placement) : Outcome::kFailed;  // not asked: it stays
  if (!found && placement_outcome == Outcome::kAbsent) {
    return ctl.Fail(Status::NotFound("topic '" + topic +
                                     "' does not exist in any broker group of the cluster, and "
                                     "has no placement"));
  }

  if (ctl.json()) {
    nlohmann::json j = {{"action", "topic-delete"},
                        {"dry_run", dry_run},
                        {"operator", ctl.operator_name()},
                        {"topic", topic},
                        {"broker_groups", nlohmann::json::array()},
                        {"other_groups", staying}};
    for (const BrokerGroupView& v : others) {
      const Outcome o = OutcomeOf(v.reply);
      nlohmann::json g = {{"broker_group", v.broker_group}, {"outcome", Name(o)}};
      if (o == Outcome::kDeleted) {
        g.update(TopicDeletionJson(v.reply->envelope().getLifecycleOk().getTopicDeleted()));
      } else if (o == Outcome::kFailed) {
        g["error"] = v.reply.status().ToString();
      }
      j["broker_groups"].push_back(std::move(g));
    }
    nlohmann::json p = {{"outcome", placement ? Name(placement_outcome) : "kept"}};
    if (placement && placement_outcome == Outcome::kDeleted) {
      p["queues"] = (*placement)->envelope().getLifecycleOk().getPlacementForgotten();
    } else if (placement && placement_outcome == Outcome::kFailed) {
      p["error"] = placement->status().ToString();
    }
    j["placement"] = std::move(p);
    PrintJson(j);
  } else {
    for (const BrokerGroupView& v : others) {
      std::cout << "broker group " << v.broker_group << ": ";
      switch (OutcomeOf(v.reply)) {
        case Outcome::kDeleted:
          if (dry_run) std::cout << "\n";
          PrintTopicDeletionText(v.reply->envelope().getLifecycleOk().getTopicDeleted(), dry_run);
          break;
        case Outcome::kAbsent:
          std::cout << "holds no part of topic '" << topic << "'\n";
          break;
        case Outcome::kFailed:
          std::cout << "its part stays: " << v.reply.status().ToString() << "\n";
          break;
      }
    }
    if (!placement) {
      std::cout << "the topic's placement stays while a broker group holds a part of it ("
                << staying.size() << " of " << others.size()
                << "); run this again once they can delete it\n";
    } else if (placement_outcome == Outcome::kDeleted) {
      const uint32_t queues = (*placement)->envelope().getLifecycleOk().getPlacementForgotten();
      std::cout << (dry_run ? "would delete" : "deleted") << " the topic's placement ("
                << Count(queues, "queue")
                << (dry_run ? ")\n"
                            : "): the name is placed anew when it is used again, with "
                              "another queue count if asked\n");
    } else if (placement_outcome == Outcome::kAbsent) {
      std::cout << "the topic had no placement left\n";
    } else {
      std::cout << "the topic's placement stays: " << placement->status().ToString() << "\n";
    }
  }
  // Exit: the first failure's, as if it were the only one.
  for (const BrokerGroupView& v : others) {
    if (OutcomeOf(v.reply) == Outcome::kFailed) {
      return ctl.Fail(Status(v.reply.status().code(),
                             "broker group " + v.broker_group + ": " + v.reply.status().message()));
    }
  }
  if (placement && placement_outcome == Outcome::kFailed) {
    return ctl.Fail(Status(placement->status().code(),
                           "the topic's placement: " + placement->status().message()));
  }
  return kExitOk;
}

}  // namespace txmq::ctl
