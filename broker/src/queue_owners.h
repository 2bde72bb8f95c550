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
// Each broker shares the queues it serves: across broker groups each
// group's broker shares its own queues among the same consumers.
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

// `client` pulled the subscription's topic `topic` now; `served` are the
// queues of the topic this broker serves (empty: all; in a cluster the
// others are other broker groups' and never shared here). True when the
// owners were shared anew: `client` is new, or `served` changed.
bool JoinOwners(Subscription& sub, std::string_view topic, const std::string& client,
                SteadyTime now, const std::vector<uint32_t>& served = {});

// `client` leaves. True when it was a member (the owners were shared anew).
bool LeaveOwners(Subscription& sub, std::string_view topic, std::string_view client);

// Shares sub.shared (all queues when empty) among the current members (see
// the top of the file); the other queues have no owner.
void ShareQueues(Subscription& sub, std::string_view topic);

}  // namespace txmq::broker
