// The record of a producer's operations across failovers (one entry per
// send: invoked, then ok, fail or unknown) and the checks a drained topic
// must pass against it, in the spirit of a Jepsen history: an acknowledged
// send is delivered, nothing is delivered that was never sent, an id is
// stored once however often it was retried, and a key's acknowledged sends
// are stored in the order they were made.
//
// Thread safety: OpHistory is safe to use from any thread (a mutex guards
// it); CheckHistory works on copies.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq::testing {

enum class OpState {
  kInvoked,  // sent, no outcome yet
  kOk,       // acknowledged: must be delivered
  kFail,     // refused: nothing was stored
  kUnknown,  // timed out or unavailable: may or may not be stored
};

struct Op {
  std::string id;
  std::string key;
  int seq = 0;  // per key, from 0, in invocation order
  OpState state = OpState::kInvoked;
  std::chrono::steady_clock::time_point invoked{};
  std::chrono::steady_clock::time_point completed{};
  std::string status;  // the failure, for kFail and kUnknown
  // kOk: where the broker said it is stored, and whether dedup answered
  // (an earlier attempt of this send was stored).
  uint32_t queue = 0;
  std::optional<uint64_t> offset;
  bool duplicate = false;
};

class OpHistory {
 public:
  struct Invocation {
    size_t index;    // for Complete
    std::string id;  // the message id: PREFIX-KEY-SEQ
  };
  // Records the invocation of the next send of `key`.
  Invocation Invoke(const std::string& key, const std::string& id_prefix);
  void Complete(size_t index, const Result<SendResult>& outcome);
  std::vector<Op> Snapshot() const;
  size_t acknowledged() const;
  // When the first send invoked after `t` was acknowledged: a broker
  // killed or paused at `t` cannot have answered it (an answer it sent
  // just before may still be read after `t`).
  std::optional<std::chrono::steady_clock::time_point> FirstAckAfter(
      std::chrono::steady_clock::time_point t) const;

 private:
  mutable std::mutex mu_;
  std::vector<Op> ops_;                  // guarded by mu_
  std::map<std::string, int> next_seq_;  // guarded by mu_: per key
  size_t acknowledged_ = 0;              // guarded by mu_
};

// One delivery of a drained topic.
struct Delivery {
  std::string id;
  std::string key;
  uint32_t queue = 0;
  uint64_t offset = 0;
};

struct HistoryVerdict {
  size_t invoked = 0, ok = 0, fail = 0, unknown = 0;
  size_t delivered_ids = 0;           // distinct ids delivered
  size_t lost_acknowledged = 0;       // ok, never delivered
  size_t unexpected = 0;              // delivered, never invoked or refused
  size_t stored_twice = 0;            // an id at more than one (queue, offset)
  size_t redeliveries = 0;            // deliveries of a (queue, offset) already delivered
  size_t order_inversions = 0;        // a key's acknowledged sends stored out of order
  size_t misplaced_acks = 0;          // delivered elsewhere than the ack's queue and offset
  size_t dedup_acks = 0;              // acknowledged by the dedup window (a retry)
  std::vector<std::string> examples;  // a few of the violations, for the failure message
};

HistoryVerdict CheckHistory(const std::vector<Op>& ops, const std::vector<Delivery>& deliveries);

// Percentile `p` (0..100, nearest rank) of `samples`; 0 when empty.
double Percentile(std::vector<double> samples, double p);

}  // namespace txmq::testing
