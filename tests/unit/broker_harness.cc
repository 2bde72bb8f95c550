#include "tests/unit/broker_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "protocol/src/message_codec.h"

namespace txmq::broker {

namespace {

storage::StoreOptions StoreOptionsFor(const BrokerOptions& o) {
  storage::StoreOptions s;
  s.dir = o.data_dir;
  // What is under test is when things happen, not whether they survive a
  // power loss: skip the fdatasync per round (the store tests cover it),
  // unless the test brought file layers whose syncs it makes fail.
  s.sync = o.storage_layers != nullptr;
  if (o.storage_layers) {
    s.fs = o.storage_layers->fs;
    s.env = o.storage_layers->env;
  }
  s.segment_bytes = 8u << 20;
  s.max_round_bytes = 2u << 20;
  return s;
}

TestReceipt FromWire(wire::Receipt::Reader r) {
  return TestReceipt{wire::ToString(r.getTopic()), r.getQueue(), r.getOffset(), r.getRetryId(),
                     r.getLeaseId()};
}

void ToWire(const TestReceipt& r, wire::Receipt::Builder out) {
  out.setTopic(r.topic);
  out.setQueue(r.queue);
  out.setOffset(r.offset);
  out.setRetryId(r.retry_id);
  out.setLeaseId(r.lease_id);
}

std::vector<Pulled> PulledFrom(wire::PullOk::Reader ok) {
  std::vector<Pulled> out;
  for (auto d : ok.getMessages()) {
    Pulled& p = out.emplace_back();
    p.id = wire::ToString(d.getMessage().getId());
    p.topic = wire::ToString(d.getMessage().getTopic());
    p.delivery_count = d.getDeliveryCount();
    p.stored_ms = d.getStoredMs();
    for (auto prop : d.getMessage().getProperties()) {
      p.properties[wire::ToString(prop.getKey())] = wire::ToString(prop.getValue());
    }
    p.receipt = FromWire(d.getReceipt());
  }
  return out;
}

}  // namespace

bool RecordingLink::Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) {
  if (gone_.count(routing_id)) return false;
  auto decoded = wire::DecodeFrame(frame.Encode(), wire::DecodeLimits{});
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  if (decoded.ok()) {
    sent_[routing_id].push_back(Sent{std::move(decoded.value()), std::move(ticket)});
  }
  return true;
}

std::vector<wire::Frame> RecordingLink::Take(const std::string& client) {
  auto it = sent_.find(client);
  if (it == sent_.end()) return {};
  std::vector<wire::Frame> out;
  for (Sent& s : it->second) out.push_back(std::move(s.frame));
  sent_.erase(it);
  return out;
}

std::optional<wire::Frame> RecordingLink::TakeReply(const std::string& client,
                                                    uint64_t request_id) {
  auto it = sent_.find(client);
  if (it == sent_.end()) return std::nullopt;
  auto& frames = it->second;
  for (auto f = frames.begin(); f != frames.end(); ++f) {
    if (f->frame.envelope().getRequestId() != request_id) continue;
    wire::Frame out = std::move(f->frame);
    frames.erase(f);
    return out;
  }
  return std::nullopt;
}

BrokerHarness::BrokerHarness(const BrokerOptions& options)
    : options_(options),
      core_(options_, link_, time_),
      topics_(core_),
      dedup_(core_, topics_),
      delayed_(core_, topics_),
      groups_(core_, topics_),
      sends_(core_, topics_, dedup_, delayed_),
      delivery_(core_, topics_, groups_),
      transactions_(core_, topics_, delayed_, dedup_, clients_),
      retention_(core_, topics_, groups_, transactions_, delayed_),
      inspect_(core_, topics_, groups_, clients_),
      sweeper_(core_, topics_, delayed_),
      lifecycle_({core_, topics_, groups_, clients_, delivery_, transactions_, inspect_, sweeper_,
                  placement_, nullptr}) {
  options_.data_dir = dir_.Sub("data");
  auto store = storage::BrokerStore::Open(StoreOptionsFor(options_), &round_done_);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) std::abort();  // nothing below can run without it
  store_ = std::move(store.value());
  core_.set_store(store_.get());
  // As Server::Init.
  for (Status s : {topics_.Recover(), dedup_.Recover(), delayed_.Recover(), groups_.Recover(),
                   transactions_.Recover(), sweeper_.Recover()}) {
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  next_cleanup_ = core_.SteadyNow();
  transactions_.StartServing(next_cleanup_);
}

BrokerHarness::~BrokerHarness() = default;

void BrokerHarness::Housekeeping() {
  // Server::Housekeeping, line for line.
  const SteadyTime now = core_.SteadyNow();
  delivery_.Tick(now);
  transactions_.Tick(now);
  if (!core_.storage_failed()) delayed_.Tick(core_.NowMs(), options_.cleanup_batch);
  if (now < next_cleanup_) return;
  for (const ClientInfo& gone : clients_.ExpireSilent(now - options_.client_timeout)) {
    delivery_.ReleaseClient(gone.routing_id, gone.id, true);
    core_.limits().ForgetClient(gone.routing_id);
  }
  bool more = core_.limits().Sweep();
  if (!core_.storage_failed()) {
    more |= retention_.Tick(core_.NowMs(), options_.cleanup_batch);
    dedup_.Cleanup(core_.NowMs());
    more |= transactions_.Cleanup(core_.NowMs(), options_.cleanup_batch);
    more |= sweeper_.Tick(options_.cleanup_batch);
  }
  next_cleanup_ = now + (more ? std::chrono::milliseconds(50) : options_.cleanup_interval);
}

void BrokerHarness::Commit() {
  // Completions may write again (a cursor moved by a served long poll);
  // the server's loop writes that in its next pass.
  for (int pass = 0; pass < 8; ++pass) {
    groups_.FlushDirty();
    if (store_->round_empty()) return;
    topics_.SealRound();
    core_.StampBrokerTime();
    std::unique_ptr<storage::Round> round = store_->WriteInline(core_.NowMs());
    if (!round->status().ok()) core_.SetStorageFailed(round->status());
    round->Complete();
    delivery_.OnTopicsAdvanced(topics_.TakeAdvanced());
  }
  ADD_FAILURE() << "rounds keep coming after 8 commits";
}

void BrokerHarness::Advance(std::chrono::milliseconds d) {
  time_.Advance(d);
  Housekeeping();
  Commit();
}

std::optional<wire::Frame> BrokerHarness::Call(
    const std::string& client, const std::function<void(wire::Envelope::Builder)>& build,
    uint64_t request_id) {
  if (request_id == 0) request_id = next_request_++;
  wire::OutFrame request(request_id);
  build(request.envelope());
  auto frame = wire::DecodeFrame(request.Encode(), wire::DecodeLimits{});
  EXPECT_TRUE(frame.ok()) << frame.status().ToString();
  if (!frame.ok()) return std::nullopt;
  clients_.Touch(client, core_.SteadyNow());
  Dispatch(client, frame.value());
  Commit();
  return link_.TakeReply(client, request_id);
}

uint64_t BrokerHarness::Submit(const std::string& client,
                               const std::function<void(wire::Envelope::Builder)>& build) {
  const uint64_t request_id = next_request_++;
  wire::OutFrame request(request_id);
  build(request.envelope());
  auto frame = wire::DecodeFrame(request.Encode(), wire::DecodeLimits{});
  EXPECT_TRUE(frame.ok()) << frame.status().ToString();
  if (!frame.ok()) return request_id;
  clients_.Touch(client, core_.SteadyNow());
  Dispatch(client, frame.value());
  return request_id;
}

void BrokerHarness::Dispatch(const std::string& client, const wire::Frame& frame) {
  // The part of Server::Dispatch these tests use.
  using E = wire::Envelope;
  E::Reader env = frame.envelope();
  RequestContext ctx{client, env.getRequestId(), clients_.Find(client)};
  if (auto p = principal_of_.find(client); p != principal_of_.end()) ctx.principal = &p->second;
  core_.limits().Seen(client, ctx.principal != nullptr ? ctx.principal->name : "");
  std::optional<RequestScope> in_flight;
  if (Limits::Counted(env.which())) {
    in_flight.emplace(core_.limits(), client, ctx.request_id);
    if (!in_flight->admitted().ok()) return core_.ReplyError(ctx, in_flight->admitted());
  }
  switch (env.which()) {
    case E::HELLO: {
      // Plaintext: no key. The harness's client ids are their routing ids.
      auto registered =
          clients_.Hello(client, "", env.getHello(), core_.NowMs(), core_.SteadyNow());
      if (!registered.ok()) return core_.ReplyError(ctx, registered.status());
      auto reply = Core::NewReply(ctx);
      reply.envelope().initHelloOk();
      return core_.Reply(ctx, reply);
    }
    case E::SEND:
      return sends_.Handle(ctx, env.getSend());
    case E::PULL:
      return delivery_.HandlePull(ctx, env.getPull());
    case E::ACK:
      return delivery_.HandleAck(ctx, env.getAck());
    case E::NACK:
      return delivery_.HandleNack(ctx, env.getNack());
    case E::EXTEND_LEASE:
      return delivery_.HandleExtendLease(ctx, env.getExtendLease());
    case E::SEND_HALF:
      return transactions_.HandleSendHalf(ctx, env.getSendHalf());
    case E::END_TRANSACTION:
      return transactions_.HandleEndTransaction(ctx, env.getEndTransaction());
    case E::CHECK_REPLY:
      return transactions_.HandleCheckReply(ctx, env.getCheckReply());
    case E::LIFECYCLE:
      return lifecycle_.Handle(ctx, env.getLifecycle());
    default:
      ADD_FAILURE() << "the harness does not serve request kind " << static_cast<int>(env.which());
  }
}

void BrokerHarness::Hello(const std::string& client, wire::Role role, const std::string& group,
                          bool checker) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto h = e.initHello();
    h.setClientId(client);
    h.setRole(role);
    h.setGroup(group);
    h.setVersion(wire::PROTOCOL_VERSION);
    h.setChecker(checker);
  });
  ASSERT_TRUE(reply.has_value());
}

void BrokerHarness::Send(const std::string& topic, const std::string& id, int64_t delay_ms,
                         const std::string& key) {
  auto reply = Call("sender", [&](wire::Envelope::Builder e) {
    auto m = e.initSend().initMessage();
    m.setId(id);
    m.setTopic(topic);
    m.setKey(key);
    m.setBody(wire::AsData("body of " + id));
    m.setDelayMs(delay_ms);
  });
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(wire::StatusOf(reply->envelope()).ok())
      << wire::StatusOf(reply->envelope()).ToString();
  ASSERT_TRUE(reply->envelope().isSendOk());
}

std::optional<std::vector<Pulled>> BrokerHarness::Pull(const std::string& client,
                                                       const std::string& group,
                                                       const std::string& topic,
                                                       uint32_t visibility_ms, uint32_t wait_ms,
                                                       uint32_t max_messages) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto p = e.initPull();
    p.setGroup(group);
    p.initTopics(1).set(0, topic);
    p.setMaxMessages(max_messages);
    p.setWaitMs(wait_ms);
    p.setVisibilityTimeoutMs(visibility_ms);
  });
  if (!reply) return std::nullopt;
  EXPECT_TRUE(reply->envelope().isPullOk()) << wire::StatusOf(reply->envelope()).ToString();
  if (!reply->envelope().isPullOk()) return std::vector<Pulled>{};
  return PulledFrom(reply->envelope().getPullOk());
}

std::vector<std::vector<Pulled>> BrokerHarness::TakePulled(const std::string& client) {
  std::vector<std::vector<Pulled>> out;
  for (wire::Frame& f : link_.Take(client)) {
    if (f.envelope().isPullOk()) out.push_back(PulledFrom(f.envelope().getPullOk()));
  }
  return out;
}

std::pair<uint32_t, uint32_t> BrokerHarness::Ack(const std::string& client,
                                                 const std::string& group, const TestReceipt& r) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto a = e.initAck();
    a.setGroup(group);
    ToWire(r, a.initReceipts(1)[0]);
  });
  EXPECT_TRUE(reply && reply->envelope().isAckOk());
  if (!reply || !reply->envelope().isAckOk()) return {0, 0};
  auto ok = reply->envelope().getAckOk();
  return {ok.getAcked(), ok.getExpired()};
}

BrokerHarness::NackCounts BrokerHarness::Nack(const std::string& client, const std::string& group,
                                              const TestReceipt& r, uint32_t delay_ms,
                                              uint32_t max_reconsume) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto n = e.initNack();
    n.setGroup(group);
    ToWire(r, n.initReceipts(1)[0]);
    n.setDelayMs(delay_ms);
    n.setMaxReconsumeTimes(max_reconsume);
  });
  EXPECT_TRUE(reply && reply->envelope().isNackOk());
  if (!reply || !reply->envelope().isNackOk()) return {};
  auto ok = reply->envelope().getNackOk();
  return {ok.getRequeued(), ok.getDeadLettered(), ok.getExpired()};
}

LeaseAnswer BrokerHarness::Extend(const std::string& client, const std::string& group,
                                  const TestReceipt& r, uint32_t visibility_ms, bool failed,
                                  uint32_t delay_ms, uint32_t max_reconsume) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto x = e.initExtendLease();
    x.setGroup(group);
    ToWire(r, x.initReceipts(1)[0]);
    x.setVisibilityTimeoutMs(visibility_ms);
    x.setFailed(failed);
    x.setDelayMs(delay_ms);
    x.setMaxReconsumeTimes(max_reconsume);
  });
  EXPECT_TRUE(reply && reply->envelope().isExtendLeaseOk());
  if (!reply || !reply->envelope().isExtendLeaseOk()) return {};
  auto result = reply->envelope().getExtendLeaseOk().getResults()[0];
  return {result.getState(), result.getDeliveryCount(), result.getRetryAfterMs(),
          result.getValidForMs()};
}

wire::TxState BrokerHarness::SendHalf(const std::string& client, const std::string& group,
                                      const std::string& tx_id,
                                      const std::vector<std::string>& message_ids,
                                      const std::string& topic, int64_t delay_ms) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId(tx_id);
    h.setProducerGroup(group);
    auto list = h.initMessages(static_cast<unsigned>(message_ids.size()));
    for (unsigned i = 0; i < message_ids.size(); ++i) {
      list[i].setId(message_ids[i]);
      list[i].setTopic(topic);
      list[i].setBody(wire::AsData("body of " + message_ids[i]));
      list[i].setDelayMs(delay_ms);
    }
  });
  EXPECT_TRUE(reply && reply->envelope().isSendHalfOk())
      << (reply ? wire::StatusOf(reply->envelope()).ToString() : "no reply");
  if (!reply || !reply->envelope().isSendHalfOk()) return wire::TxState::PREPARED;
  return reply->envelope().getSendHalfOk().getState();
}

std::pair<Status, wire::TxState> BrokerHarness::End(const std::string& client,
                                                    const std::string& tx_id,
                                                    wire::TxOutcome outcome) {
  auto reply = Call(client, [&](wire::Envelope::Builder e) {
    auto end = e.initEndTransaction();
    end.setTransactionId(tx_id);
    end.setOutcome(outcome);
  });
  if (!reply) return {Status::Internal("no reply"), wire::TxState::PREPARED};
  Status s = wire::StatusOf(reply->envelope());
  if (!s.ok()) return {s, wire::TxState::PREPARED};
  return {s, reply->envelope().getEndTransactionOk().getState()};
}

std::vector<Check> BrokerHarness::TakeChecks(const std::string& client) {
  std::vector<Check> out;
  for (wire::Frame& f : link_.Take(client)) {
    if (!f.envelope().isCheckTransaction()) continue;
    auto c = f.envelope().getCheckTransaction();
    out.push_back(Check{f.envelope().getRequestId(), wire::ToString(c.getTransactionId()),
                        c.getCheckCount()});
  }
  return out;
}

void BrokerHarness::Answer(const std::string& client, const Check& check, wire::TxOutcome outcome,
                           const std::string& error) {
  Call(
      client,
      [&](wire::Envelope::Builder e) {
        auto r = e.initCheckReply();
        r.setTransactionId(check.tx_id);
        r.setOutcome(outcome);
        r.setError(error);
      },
      check.request_id);
}

void BrokerHarness::DamageLog(const std::string& text) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(options_.data_dir)) {
    if (e.path().extension() != ".seg") continue;
    const size_t at = testing::ReadFile(e.path().string()).find(text);
    if (at == std::string::npos) continue;
    testing::FlipBytes(e.path().string(), at, text.size());
    return;
  }
  ADD_FAILURE() << "'" << text << "' is in no log segment";
}

}  // namespace txmq::broker
