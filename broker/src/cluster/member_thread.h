// A GroupMember on a thread of its own, so that etcd being slow, paused or
// gone never stalls the replication thread: a leader must keep appending
// and acknowledging what its ISR holds, and a follower must keep
// answering appends, while etcd cannot be reached (DESIGN.md "Serving
// while etcd is unreachable"). A GroupMember call blocks for up to the
// coordinator's timeouts; here only this thread waits for them.
//
// Thread "txmq-member" owns the GroupMember (and through it every call to
// the Coordinator). It ticks it every `tick_every` and runs the ISR changes
// and the leave that the replication thread asks for, in the order asked.
// What it learns goes out as events (became leader, stepped down, ISR
// changed), taken in order by the replication thread, and as a view of
// the group record for the health board. Shared under mu_: the request
// queue, the events, the view.
//
// Thread safety: every public method may be called from any thread; the
// destructor stops the thread, then leaves the group (revoking the lease).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/src/cluster/group_member.h"
#include "broker/src/cluster/group_state.h"
#include "txmq/status.h"

namespace txmq::cluster {

struct MemberEvent {
  enum class Kind {
    kSteppedDown,   // stop leading (note says why)
    kBecameLeader,  // won `epoch` with `isr`
    kIsrChanged,    // the leader of `epoch` wrote a new `isr`
  };
  Kind kind = Kind::kSteppedDown;
  int64_t epoch = 0;
  std::vector<std::string> isr{};
  std::string note{};
};

// The member's view as of its last call to the coordinator.
struct MemberView {
  GroupState state;
  std::string leader_url;
  Status coordinator = Status::Unavailable("etcd not asked yet");
};

class MemberThread {
 public:
  // `on_view`, when given, is called with each new view on this thread
  // (under its lock: it must not call back into the MemberThread), so an
  // owner can publish the leader's URL as soon as it is read.
  MemberThread(std::unique_ptr<GroupMember> member, std::chrono::milliseconds tick_every,
               std::function<void(const MemberView&)> on_view = nullptr);
  ~MemberThread();
  MemberThread(const MemberThread&) = delete;
  MemberThread& operator=(const MemberThread&) = delete;

  // Events since the last call, oldest first.
  std::vector<MemberEvent> TakeEvents();
  MemberView view() const;

  // Leader only: take `node` out of the ISR, or into it. Asked again while
  // one for the node is pending, nothing is queued. The outcome is a
  // kIsrChanged event (or, for a write whose fate is unknown, kSteppedDown).
  void RequestShrink(const std::string& node);
  void RequestExpand(const std::string& node);
  // Give up the record at once (the lease is revoked), e.g. after winning
  // an epoch this node cannot lead.
  void RequestLeave();

 private:
  struct Request {
    enum class Kind { kShrink, kExpand, kLeave } kind;
    std::string node;
  };
  void Loop();
  void Run(const Request& request);
  // Under mu_: events for what `report` says, and the view.
  void Publish(const TickReport& report, int64_t epoch_before);
  void PublishView(const Status& coordinator);

  std::unique_ptr<GroupMember> member_;  // this thread's alone
  const std::chrono::milliseconds tick_every_;
  const std::function<void(const MemberView&)> on_view_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Request> requests_;     // guarded by mu_
  std::set<std::string> pending_;    // nodes with an ISR change queued; mu_
  std::vector<MemberEvent> events_;  // guarded by mu_
  MemberView view_;                  // guarded by mu_
  bool stop_ = false;                // guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::cluster
