#include "broker/src/retention.h"

#include <memory>

#include "protocol/src/log.h"
#include "storage/src/coding.h"
#include "storage/src/keys.h"
#include "storage/src/records.h"

namespace txmq::broker {

namespace keys = storage::keys;

void Retention::ForgetIndex(std::string_view message_id, const storage::Location& where) {
  // The id may have been sent again later (after its dedup window) and now
  // point elsewhere; only this copy's entry goes.
  const std::string key = keys::MessageIndex(message_id);
  std::string value;
  storage::Location indexed;
  if (core_.db()->Get(leveldb::ReadOptions(), key, &value).ok() &&
      storage::DecodeLocation(value, &indexed) && indexed == where) {
    core_.batch().Delete(key);
  }
}

bool Retention::Tick(int64_t now_ms, uint32_t budget) {
  if (core_.storage_failed()) return false;
  const int64_t cutoff = now_ms - core_.options().retention.count();
  std::unique_ptr<leveldb::Iterator> it;
  uint32_t left = budget;
  for (auto& [name, topic] : topics_.all()) {
    for (uint32_t q = 0; q < topic.queues.size() && left > 0; ++q) {
      QueueState& qs = topic.queues[q];
      if (qs.min_offset >= qs.visible_end) continue;
      if (!it) it.reset(core_.db()->NewIterator(leveldb::ReadOptions()));
      const std::string prefix = keys::QueuePrefix(name, q);
      const uint64_t before = qs.min_offset;
      for (it->Seek(keys::Message(name, q, qs.min_offset));
           it->Valid() && it->key().starts_with(prefix) && left > 0; it->Next()) {
        std::string_view t;
        uint32_t queue;
        uint64_t offset;
        storage::MessageView m;
        if (!keys::ParseMessage(std::string_view(it->key().data(), it->key().size()), &t, &queue,
                                &offset) ||
            offset >= qs.visible_end ||
            !storage::DecodeMessage(std::string_view(it->value().data(), it->value().size()), &m) ||
            m.stored_ms >= cutoff) {
          break;
        }
        core_.batch().Delete(it->key());
        ForgetIndex(m.id, {name, q, offset});
        qs.min_offset = offset + 1;
        --left;
      }
      if (qs.min_offset != before) {
        // Remember where the queue continues, in case this emptied it.
        std::string value;
        storage::PutFixed64(&value, qs.min_offset);
        core_.batch().Put(keys::QueueStart(name, q), value);
        deleted_ += qs.min_offset - before;
        Logger("broker")->debug("retention: deleted {}/{} offsets {}..{}", name, q, before,
                                qs.min_offset - 1);
      }
    }
  }
  return left == 0;
}

}  // namespace txmq::broker
