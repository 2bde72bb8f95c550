// Retention: messages older than --retention go, in three steps, each a
// bounded amount of work per tick that costs what is due, never a pass over
// every queue:
//   1. queue runs (the offsets one round appended to a queue) whose round
//      is older than the cutoff leave the index, oldest first (runs listed
//      by log position are in time order); each queue's first kept offset
//      moves past them;
//   2. message ids older than the cutoff leave the id index;
//   3. a log segment that nothing points into any more is deleted, once a
//      checkpoint covers the index changes that freed it (steps 1 and 2,
//      and the copies and drops below): until then a crash can undo them,
//      and an index naming messages in a deleted segment is refused at
//      the next start. An open half
//      message or a waiting delayed message in such a segment is first
//      copied forward into the current round (relocated), so a transaction
//      stuck for longer than the retention loses nothing. One that is no
//      longer open or waiting (its end or delivery is in a round not yet
//      applied, whose delete frees the segment) is left alone: a copy put
//      after that delete would name it in the index again, for ever. A
//      half no transaction will end (its transaction ended without
//      deleting it), and a delayed message that came due but could not be
//      moved into its queue (stranded), have their index entry deleted
//      instead, with a line that names what is lost.
#pragma once

#include <cstdint>
#include <optional>
#include <tuple>

#include "broker/src/core.h"
#include "broker/src/delayed.h"
#include "broker/src/groups.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"

namespace txmq::broker {

class Retention {
 public:
  // `groups` hears of every queue start moved (GroupTable::NoteExpired).
  Retention(Core& core, TopicManager& topics, GroupTable& groups,
            const TransactionService& transactions, DelayedMessages& delayed)
      : core_(core),
        topics_(topics),
        groups_(groups),
        transactions_(transactions),
        delayed_(delayed) {}

  // Does up to `budget` units of work; true when more is waiting.
  bool Tick(int64_t now_ms, uint32_t budget);
  // Messages expired since start.
  uint64_t expired() const { return expired_; }
  // Index entries (queue runs, ids, halves, delayed messages) looked at
  // since start: what ticks cost. With nothing due a tick looks at one run
  // and one id bucket, however many topics and queues there are.
  uint64_t examined() const { return examined_; }

 private:
  bool ExpireRuns(int64_t cutoff_ms, uint32_t* budget);
  // Deletes the segments of the release decided before, once a checkpoint
  // covers every round up to the one open at the decision.
  bool FinishRelease();
  bool ExpireIds(int64_t cutoff_ms, uint32_t* budget);
  bool ReleaseSegments(uint32_t* budget);

  Core& core_;
  TopicManager& topics_;
  GroupTable& groups_;
  const TransactionService& transactions_;
  DelayedMessages& delayed_;
  uint64_t expired_ = 0;
  uint64_t examined_ = 0;
  // Work already put into a round that may not be applied yet: the next
  // tick must not do it again.
  // The last run expired (log position, topic id, queue, first offset: the
  // order runs are listed in); runs up to it are gone or going.
  using RunKey = std::tuple<uint64_t, uint32_t, uint32_t, uint64_t>;
  std::optional<RunKey> last_expired_run_;
  uint64_t ids_expired_before_ = 0;  // id bucket
  bool relocating_ = false;          // copies in a round not yet applied
  // Segments found free of index entries, waiting for a checkpoint that
  // covers the rounds that freed them: before them, that round's end once
  // it is written (0 until then), and whether a checkpoint was asked for
  // (and how many checkpoints there had been then).
  struct Release {
    uint64_t before = 0;
    uint64_t written_end = 0;
    bool asked = false;
    uint64_t checkpoints_when_asked = 0;
  };
  std::optional<Release> release_;
};

}  // namespace txmq::broker
