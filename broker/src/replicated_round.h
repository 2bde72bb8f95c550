// A write round as the replicated log carries it, and the store rebuilt
// from such rounds (DESIGN.md "Wiring into txmqd: the decisions").
//
// Payload := time_ms:fixed64 records_length:fixed64 [position:fixed64]
//            records ops_record
//   records, ops_record: exactly what the leader's store wrote as the
//   commit-log entry's payload (storage/src/store_format.h), so a replica
//   that writes the same rounds in the same order from an empty store
//   places every record at the same log position.
//   position: where the leader's store placed the round; present when bit
//   63 of records_length is set (rounds written before 2026-12-05 lack
//   it). A replica's store checks that it places the round there too:
//   index operations name log positions (retention, topic sweeps), and a
//   store that places rounds elsewhere (another --segment-mb) would apply
//   them to the wrong records.
// The epoch-start entry is an empty payload: not a round.
#pragma once

#include <cstdint>
#include <optional>
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
  std::optional<uint64_t> position;
};

// Without `position`, the format of rounds before 2026-12-05 (tests).
std::string EncodeReplicatedRound(int64_t time_ms, std::string_view records,
                                  std::string_view ops_record,
                                  std::optional<uint64_t> position = std::nullopt);
// kCorruption when `payload` is not one.
Result<ReplicatedRound> DecodeReplicatedRound(std::string_view payload);

// Writes committed rounds, in order, into a store that holds exactly the
// rounds before them (opened empty, or continued: standby_store.h), as
// its own rounds would be written, so records land where the leader's
// did. The log is not synced after each round (the entries are durable
// in the replica log, and what a crash takes is applied again from it):
// every kSyncBytes, so that what the page cache holds stays bounded, and
// at Finish.
class StoreRebuild {
 public:
  explicit StoreRebuild(storage::BrokerStore& store) : store_(store) {}
  // One committed entry's payload; an empty one (an epoch start) is
  // skipped. Errors name the entry (its number in the replay).
  Status Apply(std::string_view payload);
  Status Finish() {
    Status s = store_.SyncReplicated();
    if (s.ok()) ++syncs_;
    return s;
  }
  uint64_t entries() const { return entries_; }
  // How often the store was synced (each time, every round applied so far
  // is durable in it).
  uint64_t syncs() const { return syncs_; }

  static constexpr uint64_t kSyncBytes = 64ull << 20;

 private:
  storage::BrokerStore& store_;
  uint64_t entries_ = 0;
  uint64_t unsynced_bytes_ = 0;
  uint64_t syncs_ = 0;
};

// Every round in `payloads` through a StoreRebuild, then Finish.
Status ApplyReplicatedRounds(storage::BrokerStore& store, std::vector<std::string> payloads);

}  // namespace txmq::broker
