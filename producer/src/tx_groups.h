// Where a transaction producer's halves, ends and check answers go when a
// cluster has several broker groups (DESIGN.md "Transactions across broker
// groups").
//
// A transaction is one group's: its half and its end go to the group that
// serves its messages' queues. A keyed message's queue is its key's
// (StableHash(key) % queues, as the broker computes it); a keyless one may
// go to any group serving a queue of its topic. A transaction whose
// messages no one group can take is refused before anything is sent.
//
// The home client (on the producer's own connection) serves the group its
// broker belongs to, and everything on a single broker. Every other group
// gets a client of its own, opened at all of that group's live nodes (so
// it follows their leader by itself) and registered there as a checker:
// check-backs of halves stored in that group reach this producer, also the
// halves of an earlier run of it, because a producer registers with every
// group it hears of, not only those it sent to.
//
// Threads: "txmq-tx-groups" lists the cluster's groups (cluster status,
// through home) every few seconds and opens clients for new ones. For may
// be called from any thread except a connection's completion (it may ask a
// route or the groups and wait). mu_ guards routes_ and groups_; a client,
// once opened, lives as long as the TxGroups.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "producer/src/tx_client.h"
#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq::producer {

class TxGroups {
 public:
  // Opens the client of broker group `group` at `broker` (its nodes'
  // URLs, comma-separated).
  using OpenFn = std::function<Result<std::unique_ptr<TxClient>>(const std::string& group,
                                                                 const std::string& broker)>;
  TxGroups(std::unique_ptr<TxClient> home, OpenFn open, std::chrono::milliseconds timeout);
  // Closes home (a listing in progress gives up), stops the thread, then
  // destroys the other groups' clients and home's.
  ~TxGroups();
  TxGroups(const TxGroups&) = delete;
  TxGroups& operator=(const TxGroups&) = delete;

  TxClient& home() { return *home_; }
  // The client whose group takes all of `messages` (prepared or not: only
  // topics and keys are read). INVALID_ARGUMENT naming two messages that
  // no one group serves together; UNAVAILABLE when the group is known by
  // name only (no live node).
  Result<TxClient*> For(const std::vector<Message>& messages);
  // Their topics' routes are asked again next time (a WRONG_GROUP answer).
  void Forget(const std::vector<Message>& messages);
  // Home first.
  std::vector<TxClient*> All();
  // Closes every client (calls waiting on a broker fail at once) and opens
  // no more: For then answers UNAVAILABLE for a group without one.
  void CloseAll();

 private:
  struct Route {
    std::vector<std::string> groups;  // per queue; empty: home serves every queue
    std::string home_group;           // the group of the broker that answered
  };
  Result<Route> RouteOf(const std::string& topic);
  // Lists the groups and opens a client for each new one but home's.
  void Refresh();
  void Loop();

  std::unique_ptr<TxClient> home_;
  const OpenFn open_;
  const std::chrono::milliseconds timeout_;

  std::mutex refresh_mu_;  // one Refresh at a time
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;                                    // guarded by mu_
  std::map<std::string, Route> routes_;                      // guarded by mu_
  std::map<std::string, std::unique_ptr<TxClient>> groups_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::producer
