// Queue ownership within a consumer group: each queue of a topic the group
// reads is owned by one of the consumers pulling that topic, and only its
// owner is handed the queue's messages, fresh ones and redeliveries. So a
// queue's ordered stream is held by one consumer at a time, and a key's
// messages (all on one queue) never run on two consumers at once.
//
// Assignment is least-loaded and sticky. When a consumer joins or leaves,
// each of m members gets a share of n/m queues (the n%m members holding
// most get one more), keeps what it owns up to its share, gives up idle
// queues before busy ones, and the queues given up or left behind go to the
// members holding fewest (ties broken by a hash of topic, queue and member,
// so that equal members do not all win the same queues).
//
// The hand-off: a queue given to a new owner reaches it only once no other
// client holds a lease on it (the old owner acked, failed or gave back what
// it had, or its leases ran out). Until then neither takes from it.
//
// A member is a consumer connection (routing id) that pulled the topic for
// the group or extended a lease on it within max_long_poll + client_timeout,
// or has a pull parked; it leaves earlier when it says goodbye or vanishes.
//
// Across broker groups (a broker serving some of a topic's queues, the
// other groups the rest) a consumer is one connection at each group, and
// sharing each group's queues on its own would be blind to what consumers
// own elsewhere (two groups of one queue each could both give theirs to
// the same consumer of two, leaving the other idle). There every broker
// computes one assignment of all the topic's queues among the consumer
// instances (hello's instance: the same on each of a consumer's
// connections) and applies its own queues' part. The rule is a function
// of the instances and the queue count alone, so the groups agree without
// talking: queues in order, each to the instance scoring highest on the
// tie-break hash that still has room, room being n/k per instance and one
// more for the first n%k to reach it. Balanced within one queue over the
// whole topic; not sticky like the rule above (a join or leave may move
// more than its share), and blind to busy queues; the hand-off below
// keeps that safe. While a consumer has joined some groups and not yet
// others the groups disagree for a moment: the shares are uneven until it
// pulls there, but every queue still has one owner (each queue is
// assigned only where it is served). An instance must name one consumer:
// the library uses its home connection's client id, unique at that
// broker. A consumer that sends none (older than hello's instance) is a
// different instance at each group, shared among as before but without
// the balance over the whole topic.
//
// Memory only, as leases are: after a restart or a failover the members
// join again with their next pull.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/src/groups.h"

namespace txmq::broker {

// Whether `client` may be handed messages of queue `c` now: it owns the
// queue and no other client holds a lease on it.
bool MayTake(const QueueCursor& c, std::string_view client);

struct Joiner {
  std::string client;      // its routing id
  std::string instance{};  // the client instance it is a connection of ("": client)
};

// `who` pulled the subscription's topic `topic` now; `served` are the
// queues of the topic this broker serves (empty: all; in a cluster the
// others are other broker groups' and never owned here). True when the
// owners were shared anew: `who` is new, or `served` changed.
bool JoinOwners(Subscription& sub, std::string_view topic, const Joiner& who, SteadyTime now,
                const std::vector<uint32_t>& served = {});

// `client` leaves. True when it was a member (the owners were shared anew).
bool LeaveOwners(Subscription& sub, std::string_view topic, std::string_view client);

// Shares sub.shared (all queues when empty) among the current members (see
// the top of the file): by the sticky rule when this broker serves every
// queue of the topic, by the rule across groups when it serves some; the
// other queues have no owner.
void ShareQueues(Subscription& sub, std::string_view topic);

}  // namespace txmq::broker
