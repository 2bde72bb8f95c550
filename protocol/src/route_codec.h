// A topic's route (TopicRoute in txmq.capnp) as plain values, read one way
// by every client that routes by queue: Producer (group_router.cc),
// TransactionProducer (tx_groups.cc) and Consumer (consumer_sources.cc).
//
// Thread safety: plain data and pure functions.
#pragma once

#include <string>
#include <vector>

#include "protocol/src/message_codec.h"
#include "protocol/txmq.capnp.h"
#include "txmq/status.h"

namespace txmq::wire {

struct TopicRouteView {
  // The group of the broker that answered: "" for a single broker, and for
  // a broker from before the field (then its connection serves the topic).
  std::string answered_by;
  std::vector<std::string> groups;       // per queue: the group serving it
  std::vector<std::string> leader_urls;  // per queue: its leader's URL ("" none now)
  // Per queue: the group it moved from that still delivers what it holds
  // of it, and that group's leader's URL ("" none).
  std::vector<std::string> draining_from;
  std::vector<std::string> draining_urls;
};

inline TopicRouteView ReadTopicRoute(TopicRoute::Reader route) {
  TopicRouteView v;
  v.answered_by = ToString(route.getAnsweredBy());
  for (auto q : route.getQueues()) {
    v.groups.push_back(ToString(q.getGroup()));
    v.leader_urls.push_back(ToString(q.getLeaderUrl()));
    v.draining_from.push_back(ToString(q.getDrainingFrom()));
    v.draining_urls.push_back(ToString(q.getDrainingLeaderUrl()));
  }
  return v;
}

// Whether a route request failed because the broker is from before routes
// (it refused the request kind): such a broker serves every queue itself.
inline bool FromBeforeRoutes(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument &&
         s.message().find("is not one the broker serves") != std::string::npos;
}

}  // namespace txmq::wire
