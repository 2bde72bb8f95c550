// The messages a consumer holds a lease on, and which of them may run now.
//
// Same-key order: messages with a key run one at a time per (topic, key),
// in the order they arrived. Each key has a lane; its front is the active
// message (ready, running, reporting a failure, or waiting for its retry);
// the others wait behind it. When the front finishes, the next one becomes
// ready. Messages without a key are ready at once and run in parallel.
//
// Lease upkeep: a message that is held but not running (waiting in a lane,
// ready in the queue, or waiting for its retry) keeps its lease alive by
// renewal; a running handler does not (visibility_timeout bounds a run).
//
// Thread safety: none; the consumer guards it with its mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/src/util.h"
#include "txmq/message.h"

namespace txmq {

class HeldMessages {
 public:
  using Id = uint64_t;

  enum class State {
    kWaiting,    // behind an earlier message of its key
    kReady,      // in the ready queue
    kRunning,    // its handler runs
    kReporting,  // its failure is being reported to the broker
    kBackoff,    // failed; runs again at retry_at, before its key's later messages
  };

  struct Entry {
    Received message;
    uint32_t source = 0;  // the consumer's connection it came from (and is acked through)
    std::string lane;     // empty: no key
    State state = State::kReady;
    SteadyTime lease_until;  // when the broker's lease ends, by our clock (an estimate)
    SteadyTime retry_at;     // kBackoff: when it runs again
    bool renewing = false;   // a renewal for it is in flight
  };

  // Holds a message just received through `source`; its lease ends
  // around `lease_until`.
  Id Add(Received message, SteadyTime lease_until, uint32_t source = 0);

  // The oldest ready message, now running; nullopt when none is ready.
  std::optional<Id> TakeReady();
  bool HasReady() const { return !ready_.empty(); }

  // Null when the message is no longer held.
  Entry* Find(Id id);

  // The message is done with here (acked, nacked, dead-lettered, or its
  // lease was lost): forget it; the next message of its key becomes ready.
  void Finish(Id id);
  // It failed and runs again at `at`, before its key's later messages.
  void Backoff(Id id, SteadyTime at);
  // Retries whose time came become ready; returns how many did.
  size_t WakeDue(SteadyTime now);

  // Held messages that are not running, not reporting and not being
  // renewed, whose lease ends before `horizon`; marked as being renewed.
  std::vector<Id> TakeForRenewal(SteadyTime horizon);
  // When something next needs doing: a retry's time, or a lease that ends
  // within `renew_margin` of then (SteadyTime::max() when nothing waits).
  SteadyTime NextDue(std::chrono::milliseconds renew_margin) const;

  // Removes every message that is not running or reporting and returns
  // them in the order to give them back: each key's in arrival order.
  struct Idle {
    uint32_t source;
    Received message;
  };
  std::vector<Idle> TakeIdle();

  // Messages held, in any state.
  size_t size() const { return entries_.size(); }

 private:
  static bool Renewable(State s) {
    return s == State::kWaiting || s == State::kReady || s == State::kBackoff;
  }
  void MakeReady(Id id, Entry& e);

  Id next_id_ = 1;
  std::map<Id, Entry> entries_;                  // by arrival
  std::deque<Id> ready_;                         // may hold ids finished meanwhile
  std::map<std::string, std::deque<Id>> lanes_;  // by topic and key; front is the active one
};

}  // namespace txmq
