#include "broker/src/cluster/replication_messages.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/io.h>

#include <algorithm>
#include <cstring>

#include "protocol/replication.capnp.h"

namespace txmq::cluster {
namespace {

namespace repl = wire::repl;

void Put(repl::EntryRef::Builder b, const EntryRef& r) {
  b.setIndex(r.index);
  b.setCrc(r.crc);
}

EntryRef Get(repl::EntryRef::Reader r) { return {r.getIndex(), r.getCrc()}; }

std::string TextOf(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// One mapping between the two enums, both ways.
constexpr std::pair<Outcome, repl::Outcome> kOutcomes[] = {
    {Outcome::kOk, repl::Outcome::OK},         {Outcome::kStaleEpoch, repl::Outcome::STALE_EPOCH},
    {Outcome::kGap, repl::Outcome::GAP},       {Outcome::kDivergent, repl::Outcome::DIVERGENT},
    {Outcome::kFailed, repl::Outcome::FAILED},
};

repl::Outcome ToWire(Outcome o) {
  for (auto [mine, wire] : kOutcomes) {
    if (mine == o) return wire;
  }
  return repl::Outcome::FAILED;
}

Outcome FromWire(repl::Outcome o) {
  for (auto [mine, wire] : kOutcomes) {
    if (wire == o) return mine;
  }
  return Outcome::kFailed;  // an outcome this version does not know
}

void Build(const AppendRequest& head, const std::vector<EntryView>& entries,
           repl::Append::Builder b) {
  b.setEpoch(head.epoch);
  b.setLeader(head.leader);
  Put(b.initPrev(), head.prev);
  auto list = b.initEntries(static_cast<unsigned>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    const EntryView& e = entries[i];
    auto eb = list[static_cast<unsigned>(i)];
    eb.setIndex(e.index);
    eb.setEpoch(e.epoch);
    eb.setCrc(e.crc);
    eb.setPayload(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(e.payload.data()), e.payload.size()));
  }
  b.setLeaderCommit(head.leader_commit);
}

std::vector<EntryView> Views(const std::vector<ReplicaEntry>& entries) {
  std::vector<EntryView> views;
  views.reserve(entries.size());
  for (const ReplicaEntry& e : entries) views.push_back({e.index, e.epoch, e.crc, e.payload});
  return views;
}

void Build(const TruncateRequest& t, repl::Truncate::Builder b) {
  b.setEpoch(t.epoch);
  b.setLeader(t.leader);
  Put(b.initKeep(), t.keep);
  b.setLeaderCommit(t.leader_commit);
}

void Build(const AppendAnswer& a, repl::Answer::Builder b) {
  b.setEpoch(a.epoch);
  b.setNode(a.node);
  b.setOutcome(ToWire(a.outcome));
  Put(b.initLastDurable(), a.last_durable);
  b.setDivergentEpoch(a.divergent_epoch);
  b.setEpochStart(a.epoch_start);
  Put(b.initEpochEnd(), a.epoch_end);
  b.setReason(a.reason);
}

// Room for the whole message in the builder's first segment, so a batch
// of rounds is one allocation and one segment, not a chain of doubling
// ones: the payloads' words plus each entry's struct and list pointer,
// the rest small.
unsigned FirstSegmentWords(const std::vector<EntryView>& entries) {
  size_t words = 64;
  for (const EntryView& e : entries) words += 8 + (e.payload.size() + 7) / 8;
  return static_cast<unsigned>(std::min<size_t>(words, kMaxReplicationFrameBytes / 8));
}

std::string Serialize(capnp::MessageBuilder& builder) {
  const size_t words = capnp::computeSerializedSizeInWords(builder);
  std::string out(words * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, builder);
  return out;
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kStaleEpoch:
      return "stale epoch";
    case Outcome::kGap:
      return "gap";
    case Outcome::kDivergent:
      return "divergent";
    case Outcome::kFailed:
      return "failed";
  }
  return "?";
}

std::string EncodeAppend(uint64_t request_id, const AppendRequest& head,
                         const std::vector<EntryView>& entries) {
  capnp::MallocMessageBuilder builder(FirstSegmentWords(entries));
  auto root = builder.initRoot<repl::ReplicationMessage>();
  root.setRequestId(request_id);
  Build(head, entries, root.initAppend());
  return Serialize(builder);
}

std::string EncodeReplicationMessage(const ReplicationMessage& m) {
  if (const auto* append = std::get_if<AppendRequest>(&m.body)) {
    return EncodeAppend(m.request_id, *append, Views(append->entries));
  }
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<repl::ReplicationMessage>();
  root.setRequestId(m.request_id);
  if (const auto* truncate = std::get_if<TruncateRequest>(&m.body)) {
    Build(*truncate, root.initTruncate());
  } else {
    Build(std::get<AppendAnswer>(m.body), root.initAnswer());
  }
  return Serialize(builder);
}

Result<ReplicationMessage> DecodeReplicationMessage(std::string_view bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return Status::TooLarge("replication frame of " + std::to_string(bytes.size()) +
                            " bytes is above the limit of " + std::to_string(max_bytes));
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("replication frame of " + std::to_string(bytes.size()) +
                              " bytes is not a whole number of 8-byte words");
  }
  // Cap'n Proto reads words in place and needs them aligned. A large
  // frame's buffer comes from malloc and is; anything else is copied.
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(bytes.data()),
                                        bytes.size() / sizeof(capnp::word));
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    copy = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(copy.begin(), bytes.data(), bytes.size());
    words = copy.asPtr();
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 4 + 1024;
  options.nestingLimit = 16;
  ReplicationMessage m;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    auto root = reader.getRoot<repl::ReplicationMessage>();
    m.request_id = root.getRequestId();
    switch (root.which()) {
      case repl::ReplicationMessage::APPEND: {
        auto a = root.getAppend();
        AppendRequest out;
        out.epoch = a.getEpoch();
        out.leader = TextOf(a.getLeader());
        out.prev = Get(a.getPrev());
        out.leader_commit = a.getLeaderCommit();
        for (auto e : a.getEntries()) {
          auto p = e.getPayload();
          out.entries.push_back({e.getIndex(), e.getEpoch(), e.getCrc(),
                                 std::string(reinterpret_cast<const char*>(p.begin()), p.size())});
        }
        m.body = std::move(out);
        break;
      }
      case repl::ReplicationMessage::TRUNCATE: {
        auto t = root.getTruncate();
        m.body = TruncateRequest{t.getEpoch(), TextOf(t.getLeader()), Get(t.getKeep()),
                                 t.getLeaderCommit()};
        break;
      }
      case repl::ReplicationMessage::ANSWER: {
        auto a = root.getAnswer();
        m.body = AppendAnswer{a.getEpoch(),
                              TextOf(a.getNode()),
                              FromWire(a.getOutcome()),
                              Get(a.getLastDurable()),
                              a.getDivergentEpoch(),
                              a.getEpochStart(),
                              Get(a.getEpochEnd()),
                              TextOf(a.getReason())};
        break;
      }
      default:
        return Status::Corruption("replication message of an unknown kind " +
                                  std::to_string(static_cast<int>(root.which())));
    }
  } catch (const kj::Exception& e) {
    return Status::Corruption("malformed replication frame: " +
                              std::string(e.getDescription().cStr()));
  }
  return m;
}

}  // namespace txmq::cluster
