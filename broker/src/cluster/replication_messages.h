// The replication protocol's messages as C++ values, and their wire form
// (protocol/replication.capnp says what each field means).
//
// Thread safety: values; the codec functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/src/cluster/replica_log.h"
#include "txmq/status.h"

namespace txmq::cluster {

struct AppendRequest {
  int64_t epoch = 0;
  std::string leader;
  EntryRef prev;
  std::vector<ReplicaEntry> entries;
  uint64_t leader_commit = 0;
};

struct TruncateRequest {
  int64_t epoch = 0;
  std::string leader;
  EntryRef keep;
  uint64_t leader_commit = 0;
};

enum class Outcome { kOk, kStaleEpoch, kGap, kDivergent, kFailed };

std::string_view OutcomeName(Outcome o);

struct AppendAnswer {
  int64_t epoch = 0;
  std::string node;
  Outcome outcome = Outcome::kOk;
  EntryRef last_durable;
  int64_t divergent_epoch = 0;
  uint64_t epoch_start = 0;
  EntryRef epoch_end;
  std::string reason;
};

struct ReplicationMessage {
  uint64_t request_id = 0;
  std::variant<AppendRequest, TruncateRequest, AppendAnswer> body;
};

// A frame larger than this is refused undecoded (a replication link
// carries one batch of rounds; the leader bounds a batch well below it).
inline constexpr size_t kMaxReplicationFrameBytes = 64u << 20;

// An encoded frame. A leader encodes one append once and sends the same
// bytes to every follower that needs exactly that append.
using SharedFrame = std::shared_ptr<const std::string>;

std::string EncodeReplicationMessage(const ReplicationMessage& m);
// An append whose entries are `entries` (head.entries is not read): the
// payloads are copied once, into the frame.
std::string EncodeAppend(uint64_t request_id, const AppendRequest& head,
                         const std::vector<EntryView>& entries);
// kCorruption when `bytes` is not a well-formed message within the limits
// (untrusted input: traversal and nesting are bounded, exceptions caught).
Result<ReplicationMessage> DecodeReplicationMessage(std::string_view bytes,
                                                    size_t max_bytes = kMaxReplicationFrameBytes);

}  // namespace txmq::cluster
