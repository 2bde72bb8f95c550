#include "broker/src/topic_sweeper.h"

#include <vector>

#include "protocol/src/log.h"

namespace txmq::broker {

Status TopicSweeper::Recover() {
  if (core_.store().GetMeta(kPendingMeta)) {
    requested_ = true;
    Logger("broker")->info("deleted topics left index entries behind; sweeping them");
  }
  return Status::OK();
}

void TopicSweeper::Deleting() {
  ++unswept_;
  core_.store().PutMeta(kPendingMeta, "1");
  core_.OnDurable([this](const Status&) {
    --unswept_;
    requested_ = true;
  });
}

bool TopicSweeper::Tick(uint32_t budget) {
  if (!requested_ || core_.storage_failed()) return false;
  if (waiting_) return true;
  uint64_t done = SweepRuns(budget);
  if (done < budget) done += SweepDelayed(static_cast<uint32_t>(budget - done));
  if (done == 0) {
    requested_ = false;
    // Unless a deletion is still on its way to the index (it asks again).
    if (unswept_ == 0) core_.store().DeleteMeta(kPendingMeta);
    if (runs_ + ids_ + marks_ + delayed_dropped_ > 0) {
      Logger("broker")->info(
          "deleted topics: freed {} queue runs, {} message ids, {} queue marks and {} delayed "
          "messages from the index; their log segments go with retention",
          runs_, ids_, marks_, delayed_dropped_);
    }
    runs_ = ids_ = marks_ = delayed_dropped_ = 0;
    return false;
  }
  waiting_ = true;
  core_.OnDurable([this](const Status&) { waiting_ = false; });
  return true;
}

uint64_t TopicSweeper::SweepRuns(uint32_t budget) {
  storage::BrokerStore& store = core_.store();
  std::vector<uint32_t> orphans;
  Status s = store.ForEachQueueTopicId([&](uint32_t id) {
    if (topics_.FindById(id) == nullptr) orphans.push_back(id);
    return true;
  });
  if (!s.ok()) {
    Logger("broker")->error("sweeping deleted topics: {}", s.ToString());
    return 0;
  }
  uint64_t done = 0;
  for (uint32_t id : orphans) {
    if (done >= budget) break;
    bool whole = true;
    s = store.ForEachRunOf(id, [&](uint32_t queue, const storage::store::QueueRun& run) {
      if (done >= budget) {
        whole = false;
        return false;
      }
      // The ids these messages were indexed under, while the run still
      // says where the messages are.
      for (uint64_t offset = run.first_offset; offset < run.end_offset(); ++offset) {
        auto m = store.ReadMessage(id, queue, offset);
        if (!m.ok() || (m->body.flags & storage::store::kFlagIndexed) == 0) continue;
        const storage::MessageView& v = m->body.message;
        const uint64_t bucket = static_cast<uint64_t>(v.stored_ms) / storage::store::kIdBucketMs;
        auto entry = store.GetId(bucket, v.id);
        if (entry && entry->has_offset && entry->topic_id == id && entry->queue == queue &&
            entry->offset == offset) {
          store.DeleteId(bucket, v.id);
          ++ids_;
          ++done;
        }
      }
      store.DeleteRun(id, queue, run);
      ++runs_;
      ++done;
      return true;
    });
    if (!s.ok()) {
      Logger("broker")->error("sweeping deleted topic id {}: {}", id, s.ToString());
      return done;
    }
    if (!whole) break;
    auto marks = store.DeleteQueueMarks(id);
    if (!marks.ok()) {
      Logger("broker")->error("sweeping deleted topic id {}: {}", id, marks.status().ToString());
      return done;
    }
    marks_ += *marks;
    done += *marks;
  }
  return done;
}

uint64_t TopicSweeper::SweepDelayed(uint32_t budget) {
  storage::BrokerStore& store = core_.store();
  uint64_t done = 0;
  Status s = store.ForEachDelayed([&](int64_t due, uint64_t seq) {
    auto d = store.ReadDelayed(due, seq);
    if (d.ok() && topics_.FindById(d->body.topic_id) == nullptr) {
      delayed_.Drop(due, seq, d->body);
      ++delayed_dropped_;
      ++done;
    }
    return done < budget;
  });
  if (!s.ok()) Logger("broker")->error("sweeping deleted topics: {}", s.ToString());
  return done;
}

}  // namespace txmq::broker
