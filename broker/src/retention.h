// Deletes messages older than the retention period, from the head of each
// queue, a bounded number per call so the core thread never stalls.
#pragma once

#include <cstdint>

#include "broker/src/core.h"
#include "broker/src/topics.h"
#include "storage/src/records.h"

namespace txmq::broker {

class Retention {
 public:
  Retention(Core& core, TopicManager& topics) : core_(core), topics_(topics) {}

  // Deletes up to `budget` expired messages; true when more are waiting.
  bool Tick(int64_t now_ms, uint32_t budget);
  uint64_t deleted() const { return deleted_; }

 private:
  void ForgetIndex(std::string_view message_id, const storage::Location& where);

  Core& core_;
  TopicManager& topics_;
  uint64_t deleted_ = 0;
};

}  // namespace txmq::broker
