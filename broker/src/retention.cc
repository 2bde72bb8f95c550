#include "broker/src/retention.h"

#include <algorithm>
#include <optional>

#include "protocol/src/log.h"

namespace txmq::broker {

bool Retention::Tick(int64_t now_ms, uint32_t budget) {
  if (core_.storage_failed()) return false;
  const int64_t cutoff = now_ms - core_.options().retention.count();
  bool more = ExpireRuns(cutoff, &budget);
  groups_.LogExpired();
  more |= ExpireIds(cutoff, &budget);
  more |= ReleaseSegments(&budget);
  return more;
}

bool Retention::ExpireRuns(int64_t cutoff_ms, uint32_t* budget) {
  storage::BrokerStore& store = core_.store();
  bool more = false;
  Status s = store.ForEachRunBefore(UINT64_MAX, [&](uint64_t position, uint32_t topic_id,
                                                    uint32_t queue, uint64_t first, uint64_t end) {
    ++examined_;
    const RunKey run{position, topic_id, queue, first};
    if (last_expired_run_ && run <= *last_expired_run_) return true;  // on its way out
    if (*budget == 0) {
      more = true;
      return false;
    }
    const auto time = store.EntryTime(position);
    if (time && *time >= cutoff_ms) return false;  // this round and every later one are young
    --*budget;
    store.DeleteRunByPosition(position, topic_id, queue, first);
    TopicState* topic = topics_.FindById(topic_id);
    if (topic != nullptr && queue < topic->queues.size()) {
      QueueState& q = topic->queues[queue];
      if (end > q.min_offset) {
        const uint64_t gone = end - std::max(first, q.min_offset);
        expired_ += gone;
        Logger("broker")->debug("retention: {}/{} offsets {}..{} expired", topic->name, queue,
                                q.min_offset, end - 1);
        groups_.NoteExpired(*topic, queue, q.min_offset, end);
        q.min_offset = end;
        store.SetQueueStart(topic_id, queue, end);
      }
    }
    last_expired_run_ = run;
    return true;
  });
  if (!s.ok()) Logger("broker")->error("retention: {}", s.ToString());
  return more;
}

bool Retention::ExpireIds(int64_t cutoff_ms, uint32_t* budget) {
  if (cutoff_ms <= 0) return false;
  storage::BrokerStore& store = core_.store();
  const uint64_t cutoff_bucket = static_cast<uint64_t>(cutoff_ms) / storage::store::kIdBucketMs;
  bool more = false;
  Status s = store.ForEachId(ids_expired_before_, [&](uint64_t bucket, std::string_view id) {
    ++examined_;
    if (bucket >= cutoff_bucket) return false;
    if (*budget == 0) {
      more = true;
      return false;
    }
    --*budget;
    store.DeleteId(bucket, id);
    ids_expired_before_ = bucket;  // this bucket may still hold more
    return true;
  });
  if (!s.ok()) Logger("broker")->error("retention: {}", s.ToString());
  if (!more) ids_expired_before_ = std::max(ids_expired_before_, cutoff_bucket);
  return more;
}

bool Retention::ReleaseSegments(uint32_t* budget) {
  storage::BrokerStore& store = core_.store();
  if (release_) return FinishRelease();
  const auto segments = store.Segments();
  if (segments.size() < 2) return false;  // the segment in use always stays
  // Where the oldest run still indexed lies: everything before it is free
  // of queue messages.
  uint64_t live = store.log_end();
  Status s = store.ForEachRunBefore(UINT64_MAX, [&](uint64_t position, uint32_t topic_id,
                                                    uint32_t queue, uint64_t first, uint64_t) {
    ++examined_;
    if (last_expired_run_ && RunKey{position, topic_id, queue, first} <= *last_expired_run_) {
      return true;  // on its way out
    }
    live = position;
    return false;
  });
  if (!s.ok()) return false;
  // Segments wholly before it, but never the one in use.
  uint64_t release_before = 0;
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    const uint64_t end = segments[i].base + segments[i].size;
    if (end > live) break;
    release_before = end;
  }
  if (release_before == 0) return false;
  // Halves and delayed messages there are copied forward first, at most
  // one batch at a time (the copies must reach the index before a later
  // tick looks again).
  if (relocating_) return true;
  bool pinned = false;
  uint32_t moved = 0, dropped = 0;
  s = store.ForEachHalf([&](std::string_view tx_id, uint32_t index, uint64_t position) {
    ++examined_;
    if (position >= release_before) return true;
    pinned = true;
    if (const std::string id(tx_id); !transactions_.open().count(id)) {
      if (transactions_.Ending(id)) return true;  // the end deletes it; wait for that
      // No transaction will ever end it (a half of a transaction that ended
      // without deleting it): it would only hold its segment for ever.
      Logger("broker")->warn(
          "retention: dropping the index entry of half message {} of transaction '{}', which "
          "is not open (its transaction ended without it)",
          index, id);
      store.DeleteHalf(tx_id, index);
      ++dropped;
      return true;
    }
    if (*budget == 0) return false;
    --*budget;
    if (auto half = store.ReadHalf(tx_id, index); half.ok()) {
      store.MoveHalf(half->body);
      ++moved;
    }
    return true;
  });
  if (s.ok()) {
    s = store.ForEachDelayedPosition([&](int64_t due, uint64_t seq, uint64_t position) {
      ++examined_;
      if (position >= release_before) return true;
      pinned = true;
      if (delayed_.Stranded(due, seq)) {
        // Came due and could not be moved: nothing will move it in this
        // run, and its entry would hold its segment, and every later one,
        // for ever.
        Logger("broker")->error(
            "retention: dropping delayed message {} due at {}, which came due and could not be "
            "moved into its queue; it is lost (its segment is deleted)",
            seq, due);
        delayed_.Forget(due, seq);
        ++dropped;
        return true;
      }
      // Written in a round whose completion (Schedule) has not run yet: a
      // cluster leader's waits for the quorum. Not to be touched.
      if (delayed_.Pending(due, seq)) return true;
      if (!delayed_.Waiting(due, seq)) {
        // Moved into its queue (its delete is on its way: a second one is
        // harmless, unlike a copy), or named by the index with nothing to
        // deliver it (a copy the relocation race before 0803e06 left):
        // either way its entry must not hold the segment.
        delayed_.Forget(due, seq);
        ++dropped;
        return true;
      }
      if (*budget == 0) return false;
      --*budget;
      if (auto d = store.ReadDelayed(due, seq); d.ok()) {
        store.PutDelayed(d->body);
        ++moved;
      }
      return true;
    });
  }
  if (!s.ok()) {
    Logger("broker")->error("retention: {}", s.ToString());
    return false;
  }
  if (moved + dropped > 0) {
    relocating_ = true;
    core_.OnDurable([this](const Status&) { relocating_ = false; });
  }
  if (moved > 0) {
    Logger("broker")->info(
        "retention: copied {} open half or delayed messages out of old log segments", moved);
  }
  // Relocations are in the open round: the segments go on a later tick,
  // once the new places are in the index and a checkpoint covers it.
  if (pinned) return true;
  // Nothing in the index points there any more, counting the deletes in
  // rounds not yet applied or not yet durable (this tick's among them).
  // A crash can still undo those, so the segments go once a checkpoint
  // covers every round up to the open one.
  release_.emplace(Release{release_before, 0, false, 0});
  core_.OnDurable([this](const Status&) {
    if (release_ && release_->written_end == 0) release_->written_end = core_.store().log_end();
  });
  return false;
}

bool Retention::FinishRelease() {
  storage::BrokerStore& store = core_.store();
  if (release_->written_end == 0) return false;  // the open round is not written yet
  if (store.checkpointed_position() < release_->written_end) {
    // One request, not one a tick; again only when a checkpoint came and
    // stopped short (it covers what the log has synced, which under
    // --flush async or on a cluster node may lag the round a little).
    const uint64_t checkpoints = store.stats().checkpoints;
    if (!release_->asked || checkpoints != release_->checkpoints_when_asked) {
      store.RequestCheckpoint();
      release_->asked = true;
      release_->checkpoints_when_asked = checkpoints;
    }
    return false;
  }
  const uint64_t before = release_->before;
  release_.reset();
  auto freed = store.DeleteLogBefore(before);
  if (!freed.ok()) {
    Logger("broker")->error("retention: deleting old log segments: {}", freed.status().ToString());
    return false;
  }
  if (*freed > 0) {
    Logger("broker")->info("retention: deleted {} MiB of old log segments", *freed >> 20);
    // For the replicas' stores, which delete them when they apply it.
    store.PutMeta(storage::BrokerStore::kLogReleasedMeta, std::to_string(store.log_start()));
  }
  return false;
}

}  // namespace txmq::broker
