// What a cluster node's store holds of the replica log, written beside
// the store (store/REPLICA_APPLIED) each time the store is synced, so that
// a restarted node continues its store instead of building it again from
// the whole log (broker/src/standby_store.h).
//
// The mark says: the store's rounds before `store` (a log cursor) are the
// rounds of replica entries 1..replica_index, and entry replica_index has
// chain value replica_crc. It names only synced rounds, so a store found
// after a crash holds at least that much; rounds after it are checked
// against the replica log before they are trusted.
//
// REPLICA_APPLIED := "txmq-replica-applied 1 <store position> <store index>
//                     <store prev crc> <replica index> <replica crc> <crc32c>\n"
// (the last field: CRC32C of the line before it, in hex).
#pragma once

#include <cstdint>
#include <string>

#include "storage/src/commit_log.h"
#include "storage/src/file_system.h"
#include "txmq/status.h"

namespace txmq::broker {

inline constexpr const char* kReplicaAppliedFile = "REPLICA_APPLIED";

struct ReplicaAppliedMark {
  storage::LogCursor store;
  uint64_t replica_index = 0;
  uint32_t replica_crc = 0;
  bool operator==(const ReplicaAppliedMark&) const = default;
};

std::string EncodeReplicaAppliedMark(const ReplicaAppliedMark& mark);
// kCorruption naming the text when it is not one.
Result<ReplicaAppliedMark> DecodeReplicaAppliedMark(const std::string& text);

// In `store_dir`: written atomically (a crash leaves the old mark or the
// new one); kNotFound when there is none.
Status WriteReplicaAppliedMark(storage::FileSystem* fs, const std::string& store_dir,
                               const ReplicaAppliedMark& mark);
Result<ReplicaAppliedMark> ReadReplicaAppliedMark(storage::FileSystem* fs,
                                                  const std::string& store_dir);

// Deletes a cluster node's store directory so that a crash at any point
// leaves either all of it or none of it: a store half deleted (its index
// gone, its mark and log still there) must never be continued. Renamed
// away first (durably), then deleted; a leftover of a deletion cut short
// goes too.
Status DiscardStoreDir(const std::string& dir);

}  // namespace txmq::broker
