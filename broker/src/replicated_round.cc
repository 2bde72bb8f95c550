#include "broker/src/replicated_round.h"

#include "storage/src/coding.h"

namespace txmq::broker {

std::string EncodeReplicatedRound(int64_t time_ms, std::string_view records,
                                  std::string_view ops_record) {
  std::string out;
  out.reserve(16 + records.size() + ops_record.size());
  storage::PutFixed64(&out, static_cast<uint64_t>(time_ms));
  storage::PutFixed64(&out, records.size());
  out.append(records);
  out.append(ops_record);
  return out;
}

Result<ReplicatedRound> DecodeReplicatedRound(std::string_view payload) {
  uint64_t time_ms = 0, records_length = 0;
  if (!storage::GetFixed64(&payload, &time_ms) || !storage::GetFixed64(&payload, &records_length) ||
      records_length > payload.size()) {
    return Status::Corruption("a replicated round too short for its header");
  }
  ReplicatedRound round;
  round.time_ms = static_cast<int64_t>(time_ms);
  round.records.assign(payload.substr(0, records_length));
  round.ops_record.assign(payload.substr(records_length));
  return round;
}

Status ApplyReplicatedRounds(storage::BrokerStore& store, std::vector<std::string> payloads) {
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (payloads[i].empty()) continue;  // an epoch-start entry
    auto round = DecodeReplicatedRound(payloads[i]);
    if (!round.ok()) return round.status();
    payloads[i].clear();
    if (Status s = store.WriteReplicated(round->time_ms, std::move(round->records),
                                         std::move(round->ops_record));
        !s.ok()) {
      return Status(s.code(), "writing replicated round " + std::to_string(i + 1) +
                                  " into the store: " + s.message());
    }
  }
  return Status::OK();
}

}  // namespace txmq::broker
