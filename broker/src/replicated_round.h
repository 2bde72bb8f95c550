// A write round as the replicated log carries it, and the store rebuilt
// from such rounds (DESIGN.md "Wiring into txmqd: the decisions").
//
// Payload := time_ms:fixed64 records_length:fixed64 records ops_record
//   records, ops_record: exactly what the leader's store wrote as the
//   commit-log entry's payload (storage/src/store_format.h), so a replica
//   that writes the same rounds in the same order from an empty store
//   places every record at the same log position.
// The epoch-start entry is an empty payload: not a round.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/src/broker_store.h"
#include "txmq/status.h"

namespace txmq::broker {

struct ReplicatedRound {
  int64_t time_ms = 0;
  std::string records;
  std::string ops_record;
};

std::string EncodeReplicatedRound(int64_t time_ms, std::string_view records,
                                  std::string_view ops_record);
// kCorruption when `payload` is not one.
Result<ReplicatedRound> DecodeReplicatedRound(std::string_view payload);

// Writes every round in `payloads` (empty ones skipped) into `store`, as
// its own rounds would be written. For a store opened empty: a store that
// is closed and opened again continues its log at the next segment, so
// only one session from empty places records as the leader's did.
Status ApplyReplicatedRounds(storage::BrokerStore& store, std::vector<std::string> payloads);

}  // namespace txmq::broker
