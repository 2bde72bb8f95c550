#include "broker/src/replicated_round.h"

#include "storage/src/coding.h"

namespace txmq::broker {

namespace {
constexpr uint64_t kHasPosition = 1ull << 63;  // in records_length
}  // namespace

std::string EncodeReplicatedRound(int64_t time_ms, std::string_view records,
                                  std::string_view ops_record, std::optional<uint64_t> position) {
  std::string out;
  out.reserve(24 + records.size() + ops_record.size());
  storage::PutFixed64(&out, static_cast<uint64_t>(time_ms));
  storage::PutFixed64(&out, records.size() | (position ? kHasPosition : 0));
  if (position) storage::PutFixed64(&out, *position);
  out.append(records);
  out.append(ops_record);
  return out;
}

Result<ReplicatedRound> DecodeReplicatedRound(std::string_view payload) {
  uint64_t time_ms = 0, records_length = 0, position = 0;
  if (!storage::GetFixed64(&payload, &time_ms) || !storage::GetFixed64(&payload, &records_length)) {
    return Status::Corruption("a replicated round too short for its header");
  }
  const bool has_position = (records_length & kHasPosition) != 0;
  records_length &= ~kHasPosition;
  if ((has_position && !storage::GetFixed64(&payload, &position)) ||
      records_length > payload.size()) {
    return Status::Corruption("a replicated round too short for its header");
  }
  ReplicatedRound round;
  if (has_position) round.position = position;
  round.time_ms = static_cast<int64_t>(time_ms);
  round.records.assign(payload.substr(0, records_length));
  round.ops_record.assign(payload.substr(records_length));
  return round;
}

Status StoreRebuild::Apply(std::string_view payload) {
  ++entries_;
  if (payload.empty()) return Status::OK();  // an epoch-start entry
  auto round = DecodeReplicatedRound(payload);
  Status s = round.ok() ? store_.WriteReplicated(round->time_ms, std::move(round->records),
                                                 std::move(round->ops_record), /*sync=*/false,
                                                 round->position)
                        : round.status();
  if (!s.ok()) {
    return Status(s.code(), "writing replicated round " + std::to_string(entries_) +
                                " into the store: " + s.message());
  }
  unsynced_bytes_ += payload.size();
  if (unsynced_bytes_ < kSyncBytes) return Status::OK();
  unsynced_bytes_ = 0;
  return Finish();
}

Status ApplyReplicatedRounds(storage::BrokerStore& store, std::vector<std::string> payloads) {
  StoreRebuild rebuild(store);
  for (std::string& payload : payloads) {
    if (Status s = rebuild.Apply(payload); !s.ok()) return s;
    std::string().swap(payload);  // its memory goes now, not with the vector
  }
  return rebuild.Finish();
}

}  // namespace txmq::broker
