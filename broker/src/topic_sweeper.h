// Frees what the index still holds of deleted topics.
//
// Deleting a topic (lifecycle_service.h) takes it out of memory and its
// entry, cursors and redeliveries out of the store in one round. What the
// index derived from its messages is keyed by the topic's id, which is
// never used again, so it can go later, in batches: the queue runs (by
// offset and by log position), the message-id entries of those messages,
// queue starts, removal marks, and delayed messages waiting to enter it.
// Whatever of that has a topic id no topic has is garbage: a pass looks
// for such ids (one seek each), so it also finishes the work a restart
// interrupted. Log segments are then free to go with retention once
// nothing else in them is kept.
//
// A pass runs only when asked (after a deletion is durable, and at
// start-up) and does a bounded batch per tick; the next batch waits until
// the previous one is applied, so a scan never meets keys already deleted
// in a round on its way to disk.
//
// Thread safety: the core thread only.
#pragma once

#include <cstdint>

#include "broker/src/core.h"
#include "broker/src/delayed.h"
#include "broker/src/topics.h"

namespace txmq::broker {

class TopicSweeper {
 public:
  TopicSweeper(Core& core, TopicManager& topics, DelayedMessages& delayed)
      : core_(core), topics_(topics), delayed_(delayed) {}

  // At start-up: a pass if the last run did not finish one (a meta record
  // says so).
  Status Recover();
  // A topic leaves in the open round: notes in that round that a pass is
  // due (so a restart finishes it), and asks for one once it is applied.
  void Deleting();
  static constexpr std::string_view kPendingMeta = "topic-sweep-pending";
  // Deletes up to about `budget` index entries; true while more is waiting.
  bool Tick(uint32_t budget);
  // No pass asked for or under way.
  bool idle() const { return !requested_; }

 private:
  // One batch; how many entries it deleted.
  uint64_t SweepRuns(uint32_t budget);
  uint64_t SweepDelayed(uint32_t budget);

  Core& core_;
  TopicManager& topics_;
  DelayedMessages& delayed_;
  bool requested_ = false;
  bool waiting_ = false;  // a batch in a round not yet applied
  int unswept_ = 0;       // deletions in rounds not yet applied
  uint64_t runs_ = 0, ids_ = 0, marks_ = 0, delayed_dropped_ = 0;  // this pass
};

}  // namespace txmq::broker
