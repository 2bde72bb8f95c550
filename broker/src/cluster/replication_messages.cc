#include "broker/src/cluster/replication_messages.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/io.h>

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

void Build(const AppendRequest& a, repl::Append::Builder b) {
  b.setEpoch(a.epoch);
  b.setLeader(a.leader);
  Put(b.initPrev(), a.prev);
  auto list = b.initEntries(static_cast<unsigned>(a.entries.size()));
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const ReplicaEntry& e = a.entries[i];
    auto eb = list[static_cast<unsigned>(i)];
    eb.setIndex(e.index);
    eb.setEpoch(e.epoch);
    eb.setCrc(e.crc);
    eb.setPayload(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(e.payload.data()), e.payload.size()));
  }
  b.setLeaderCommit(a.leader_commit);
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

std::string EncodeReplicationMessage(const ReplicationMessage& m) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<repl::ReplicationMessage>();
  root.setRequestId(m.request_id);
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, AppendRequest>) {
          Build(body, root.initAppend());
        } else if constexpr (std::is_same_v<T, TruncateRequest>) {
          Build(body, root.initTruncate());
        } else {
          Build(body, root.initAnswer());
        }
      },
      m.body);
  const size_t words = capnp::computeSerializedSizeInWords(builder);
  std::string out(words * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, builder);
  return out;
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
  // Cap'n Proto reads words in place and needs them aligned: copy.
  // TODO(perf): read in place when the transport's buffer is aligned.
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 4 + 1024;
  options.nestingLimit = 16;
  ReplicationMessage m;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
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
