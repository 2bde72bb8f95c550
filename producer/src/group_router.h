// Where a producer's sends go when a cluster has several broker groups
// (DESIGN.md "Cluster: placement of queues on groups").
//
// Each topic's route is asked once, of the broker the producer's own
// connection talks to (a route request, which also places a topic that
// has no placement yet, as its first send would). A topic that one broker
// serves (a single broker, the one group of the broker asked, or a broker
// too old to know routes) keeps using that connection: nothing changes for
// it. Across
// groups, a message goes to the group serving its queue (the key's queue,
// StableHash(key) % queues, as the broker computes it; keyless messages
// turn round the topic's queues), through one connection per group, opened
// at its leader on first use and following that group's leader moves
// (NOT_LEADER) by itself. A WRONG_GROUP answer, or a group connection that
// failed a call, makes the topic's route be asked again.
//
// A message whose send ended without an answer (UNAVAILABLE, TIMEOUT) may
// be stored in the group it went to. The router remembers that group by
// message id (the newest 10,000), and while the message's queue drains from
// it after a move, a resend goes there first: that group answers a message
// it holds as a duplicate and one it does not hold WRONG_GROUP, and only
// then is it sent to the queue's new group. Otherwise it would be stored in
// both, each group's dedup window knowing only its own. A keyless resend,
// which any queue would take, goes to a queue of that group for the same
// reason.
//
// Threads: Resolve may be called from any thread, and also from a
// connection's I/O thread (completions call it to send again elsewhere):
// it never waits; a route being asked is answered on the asking
// connection's I/O thread. mu_ guards the routes, the waiters and the
// group connections.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/src/connection.h"
#include "txmq/producer.h"
#include "txmq/status.h"

namespace txmq::producer {

// Held by shared_ptr: completions keep only a weak one, so a router being
// destroyed (its connections failing their calls) is never called back.
class GroupRouter : public std::enable_shared_from_this<GroupRouter> {
 public:
  // `home`: the producer's connection (must outlive the router);
  // `group_options`: what a group connection is opened with (its broker
  // is set per group, its client id is group_options' or else home's,
  // then "." and the group); `timeout`: a route request's.
  GroupRouter(net::Connection& home, net::ConnectionOptions group_options,
              std::chrono::milliseconds timeout);
  ~GroupRouter();
  // Closes the group connections (joining their I/O threads; one whose
  // own I/O thread runs this is closed on another thread) and fails the
  // sends waiting for a route; later ones fail at once. The destructor
  // calls it; the router's last reference may go in a completion.
  void Close();
  // Refuses what comes next (routes, new connections), destroying
  // nothing: the owner calls it when it shuts down, so a completion still
  // holding the router does not reroute through connections going away.
  void Shut();
  GroupRouter(const GroupRouter&) = delete;
  GroupRouter& operator=(const GroupRouter&) = delete;

  struct Target {
    net::Connection* connection = nullptr;
    // Sent to a group of a cluster with several: a failure there may mean
    // the route changed (the caller forgets the topic and resolves again).
    bool routed = false;
    std::string group;  // the group it serves; "": not known (one broker)
  };
  using ResolveFn = std::function<void(Result<Target>)>;
  // Calls `done` with where a message of `topic` with `key` goes: at once
  // when the route is known, else once it was asked.
  // `unsure_group`: a group an earlier send of the message may have stored
  // it in ("" none); see the top of this file.
  void Resolve(const std::string& topic, const std::string& key, ResolveFn done,
               const std::string& unsure_group = "");
  // The topic's route is asked again on its next use.
  void Forget(const std::string& topic);

  // What the router remembers of sends without an answer, by message id.
  void NoteUnsure(const std::string& message_id, const std::string& group);
  void NoteSettled(const std::string& message_id);
  std::string UnsureGroupOf(const std::string& message_id);
  static constexpr size_t kMaxUnsure = 10'000;

 private:
  struct Route {
    // Empty: the home connection serves every queue.
    std::vector<std::string> groups;  // per queue
    std::vector<std::string> urls;    // per queue: its group leader's client URL
    // Per queue: the group it moved from that still drains it, and that
    // group's leader's URL ("" none).
    std::vector<std::string> draining_from;
    std::vector<std::string> draining_urls;
    // With no groups (the home connection serves every queue): its group;
    // draining_from may then still name where queues drain from.
    std::string home_group;
    uint32_t next = 0;  // keyless messages turn round the queues
  };
  struct Waiting {
    std::string key;
    std::string unsure_group;
    ResolveFn done;
  };
  // Under mu_: where `key` goes by `route`.
  Result<Target> Pick(const std::string& topic, Route& route, const std::string& key,
                      const std::string& unsure_group);
  // Under mu_: the connection to `group`'s leader at `url`, opened on first use.
  Result<Target> ConnectionTo(const std::string& topic, const std::string& group,
                              const std::string& url);
  // The route request's answer (I/O thread of home_).
  void OnRoute(const std::string& topic, Result<wire::Frame> reply);

  net::Connection& home_;
  const net::ConnectionOptions group_options_;
  const std::chrono::milliseconds timeout_;

  std::mutex mu_;
  std::map<std::string, Route> routes_;                 // guarded by mu_
  std::map<std::string, std::vector<Waiting>> asking_;  // mu_
  // By "group|url": a group whose leader moved gets a new connection
  // when its route names the new URL.
  std::map<std::string, std::unique_ptr<net::Connection>> groups_;  // guarded by mu_
  bool closed_ = false;                                             // guarded by mu_
  struct Unsure {
    std::string group;
    uint64_t noted = 0;  // when it was noted (a count)
  };
  std::map<std::string, Unsure> unsure_;  // by message id; guarded by mu_
  // Ids as they were noted, oldest first, with their count; guarded by mu_.
  std::deque<std::pair<std::string, uint64_t>> unsure_order_;
  uint64_t unsure_noted_ = 0;  // guarded by mu_
};

// Sends `message` where `router` says, and when the route turned out stale
// (WRONG_GROUP, or its group's connection failed the send) asks the route
// again and sends again with the same id, `reroutes` times. Runs on the
// caller's thread, then on I/O threads (never waits). `options` must
// outlive the send.
void SendRouted(std::shared_ptr<GroupRouter> router, const ProducerOptions& options,
                std::shared_ptr<const Message> message, SendCallback done, int reroutes = 3);

}  // namespace txmq::producer
