// Delayed messages: stored at once (durable, acknowledged) under their due
// time, and moved into their queue when due, in one round that appends the
// queue entry and deletes the delayed one.
#pragma once

#include <cstdint>
#include <set>
#include <utility>

#include "broker/src/core.h"
#include "broker/src/topics.h"
#include "storage/src/records.h"
#include "storage/src/store_format.h"

namespace txmq::broker {

class DelayedMessages {
 public:
  DelayedMessages(Core& core, TopicManager& topics) : core_(core), topics_(topics) {}

  Status Recover();

  // Writes the message to the open round; returns its sequence number. Call
  // Schedule(due, seq) once that round is durable.
  uint64_t Add(int64_t due_ms, const TopicState& topic, uint32_t queue,
               const storage::MessageView& message);
  void Schedule(int64_t due_ms, uint64_t seq) {
    added_.erase({due_ms, seq});
    due_.emplace(due_ms, seq);
  }
  // Added, its round not yet complete (Schedule to come): the index may
  // name it already (a cluster leader's completions wait for the quorum).
  bool Pending(int64_t due_ms, uint64_t seq) const { return added_.count({due_ms, seq}) > 0; }
  // Still waiting for its time (scheduled, not yet moved into its queue).
  bool Waiting(int64_t due_ms, uint64_t seq) const { return due_.count({due_ms, seq}) > 0; }
  // Came due but could not be moved (unreadable, or its queue cannot take
  // it): left in the store, and tried again only after a restart.
  bool Stranded(int64_t due_ms, uint64_t seq) const { return stranded_.count({due_ms, seq}) > 0; }
  // Deletes the store's entry of a message neither waiting nor pending (in
  // the open round): stranded, moved into its queue already (its delete is
  // on its way; a second one is harmless), or one nothing will deliver.
  void Forget(int64_t due_ms, uint64_t seq);

  // Moves up to `budget` due messages into their queues; one whose topic
  // was deleted meanwhile is deleted instead.
  void Tick(int64_t now_ms, uint32_t budget);
  // Deletes a waiting message `d` (its topic was deleted) and its id entry
  // in the open round.
  void Drop(int64_t due_ms, uint64_t seq, const storage::store::DelayedBody& d);

  // Earliest due time, or INT64_MAX.
  int64_t NextDueMs() const;
  size_t size() const { return due_.size(); }

 private:
  Core& core_;
  TopicManager& topics_;
  std::set<std::pair<int64_t, uint64_t>> due_;    // durable entries only
  std::set<std::pair<int64_t, uint64_t>> added_;  // Add()ed, not yet Schedule()d
  std::set<std::pair<int64_t, uint64_t>> stranded_;
  uint64_t next_seq_ = 1;
};

}  // namespace txmq::broker
