#include "broker/src/server.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "broker/src/cluster_status_reply.h"
#include "broker/src/replica_applied_mark.h"
#include "broker/src/replicated_round.h"
#include "broker/src/store_handover.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "txmq/version.h"

namespace txmq::broker {

storage::StoreOptions StoreOptionsFor(const BrokerOptions& o) {
  storage::StoreOptions s;
  s.dir = o.data_dir;
  // A cluster node's durable record is the replicated log (its fsync gates
  // every ack); the store is rebuilt from it, so a second fsync buys nothing.
  s.sync = o.flush == FlushMode::kSync && o.replicator == nullptr;
  s.segment_bytes = o.segment_bytes;
  s.cached_log_bytes = o.cached_log_bytes;
  s.max_round_bytes = std::min<size_t>(16u << 20, o.segment_bytes / 4);
  s.write_buffer_bytes = o.write_buffer_bytes;
  s.index_overlay_bytes = o.index_overlay_bytes;
  s.table_file_bytes = o.table_file_bytes;
  s.verify_all = o.verify_storage_at_start;
  s.repair = o.repair;
  if (o.storage_layers) {
    s.fs = o.storage_layers->fs;
    s.env = o.storage_layers->env;
  }
  return s;
}

namespace {

constexpr int kHighWaterMark = 100'000;
constexpr int kReadBudget = 512;  // requests per loop pass before committing
constexpr auto kMaxPollWait = std::chrono::milliseconds(100);
constexpr auto kFailStopGrace = std::chrono::seconds(1);  // Drain
constexpr size_t kInlineRoundMax = 4;                     // completions; a send has two
}  // namespace

Server::Server(const BrokerOptions& options, const TimeSource& time, SnapshotMailbox* metrics,
               OperatorMailbox* operators)
    : options_(options),
      context_(1),
      router_(std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router)),
      guard_(context_, options.max_connections, options.max_connections_per_principal),
      link_(*router_),
      split_link_(link_, operators),
      core_(options, split_link_, time),
      disk_(options),
      placement_(options.replicator),
      topics_(core_),
      dedup_(core_, topics_),
      delayed_(core_, topics_),
      groups_(core_, topics_),
      sends_(core_, topics_, dedup_, delayed_),
      delivery_(core_, topics_, groups_),
      transactions_(core_, topics_, delayed_, dedup_, clients_),
      retention_(core_, topics_, groups_, transactions_, delayed_),
      admin_(core_, topics_, clients_, transactions_, groups_, info_,
             [this] { return metrics_.Collect(); }),
      inspect_(core_, topics_, groups_, clients_),
      dlq_(core_, topics_, groups_, delivery_),
      sweeper_(core_, topics_, delayed_),
      lifecycle_({core_, topics_, groups_, clients_, delivery_, transactions_, inspect_, sweeper_,
                  placement_, options.replicator}),
      metrics_(core_, topics_, groups_, clients_, transactions_, info_),
      mailbox_(metrics),
      operators_(operators),
      acl_guard_([this](const std::string& tx_id) { return transactions_.GroupOf(tx_id); }) {
  HandToReplicationWhenSealed();
}

Server::~Server() = default;

Status Server::Init() {
  auto log = Logger("broker");
  const auto start = core_.SteadyNow();
  uint64_t kept_entries = 0;
  if (options_.replicator != nullptr && options_.kept_store != nullptr) {
    StoreHandover::Kept kept = options_.kept_store->Take(&commit_done_);
    store_ = std::move(kept.store);
    kept_entries = kept.applied;
  }
  if (options_.replicator != nullptr && !store_) {
    // Derived from the replicated log, and rebuilt from empty, so records
    // land where the leader's did.
    if (Status s = DiscardStoreDir(options_.data_dir); !s.ok()) return s;
  }
  if (!store_) {
    auto store = storage::BrokerStore::Open(StoreOptionsFor(options_), &commit_done_);
    if (!store.ok()) return store.status();
    store_ = std::move(store.value());
  }
  if (options_.replicator != nullptr) {
    StoreRebuild rebuild(*store_);
    Status replayed = options_.replicator->ReplayCommittedRounds(
        kept_entries, [&](std::string_view payload) { return rebuild.Apply(payload); });
    if (replayed.ok()) replayed = rebuild.Finish();
    if (!replayed.ok()) return replayed;
    log->info(
        "store: {} committed entries were applied while following, {} now, in {} ms", kept_entries,
        rebuild.entries(),
        std::chrono::duration_cast<std::chrono::milliseconds>(core_.SteadyNow() - start).count());
  }
  core_.set_store(store_.get());
  disk_.Start(core_.SteadyNow(), store_->log_allocated_bytes());
  core_.set_disk(&disk_);
  if (Status s = ResumeBrokerTime(); !s.ok()) return s;
  if (placement_.active()) topics_.set_placement(&placement_);
  if (Status s = topics_.Recover(); !s.ok()) return s;
  if (Status s = dedup_.Recover(); !s.ok()) return s;
  if (Status s = delayed_.Recover(); !s.ok()) return s;
  if (Status s = groups_.Recover(); !s.ok()) return s;
  if (Status s = transactions_.Recover(); !s.ok()) return s;
  if (Status s = sweeper_.Recover(); !s.ok()) return s;
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(core_.SteadyNow() - start);
  log->info("recovered {} topics, {} messages from {} in {} ms", topics_.all().size(),
            topics_.MessagesStored(), options_.data_dir, took.count());

  // With CURVE the ZAP handler is bound before the socket exists, let
  // alone listens: there is no moment at which a key goes unchecked.
  auto security = auth::Security::Open(options_, context_);
  if (!security.ok()) return security.status();
  security_ = std::move(security.value());
  if (security_) {
    if (Status s = security_->ConfigureRouter(*router_); !s.ok()) return s;
  }
  try {
    router_->set(zmq::sockopt::router_mandatory, 1);
    router_->set(zmq::sockopt::router_handover, 1);
    // Room for any request that obeys the size rule; a bigger frame drops
    // only the connection that sent it.
    router_->set(zmq::sockopt::maxmsgsize,
                 static_cast<int64_t>(wire::MaxFrameBytes(options_.max_message_bytes)));
    router_->set(zmq::sockopt::sndhwm, kHighWaterMark);
    router_->set(zmq::sockopt::rcvhwm, kHighWaterMark);
    router_->set(zmq::sockopt::heartbeat_ivl, 1000);
    router_->set(zmq::sockopt::heartbeat_timeout, 3000);
    router_->set(zmq::sockopt::linger, 200);
    // A connection that never completes its ZeroMQ handshake holds a
    // descriptor for nothing: drop it after 5 s (libzmq's default is 30).
    router_->set(zmq::sockopt::handshake_ivl, 5000);
    if (Status s = guard_.Attach(*router_); !s.ok()) return s;
    router_->bind(options_.listen);
    info_.endpoint = router_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot listen on '" + options_.listen + "': " + e.what());
  }
  if (security_) {
    if (Status s = security_->Prove(context_, info_.endpoint); !s.ok()) {
      router_->close();
      return s;
    }
    acl_guard_.Enable(&security_->acl());
    clients_.set_check_filter([this](const ClientInfo& c, const std::string& group) {
      return acl_guard_.MayActFor(c.key, group);
    });
  } else if (!auth::IsLoopbackEndpoint(options_.listen)) {
    Logger("broker")->warn(
        "listening on {} in PLAINTEXT with no authentication (--insecure): whoever reaches it "
        "can send, consume, end any transaction and act as an operator. Use "
        "--curve-secret-key and --acl",
        info_.endpoint);
  }
  info_.started_ms = core_.NowMs();
  info_.store_stats = [this] { return store_->stats(); };
  info_.disk = &disk_;
  info_.largest_principal_connections = [this] { return guard_.principals().Largest(); };
  next_cleanup_ = core_.SteadyNow();
  transactions_.StartServing(next_cleanup_);
  return Status::OK();
}

Status Server::ResumeBrokerTime() {
  auto value = store_->GetMeta(Core::kBrokerTimeMeta);
  if (!value) return Status::OK();  // a new data directory
  int64_t persisted = 0;
  if (!DecodeBrokerTime(*value, &persisted)) {
    return Status::Corruption("cannot read the broker time stored in " + options_.data_dir +
                              ": bad record");
  }
  if (const int64_t behind = core_.clock().Resume(persisted); behind > 0) {
    Logger("broker")->warn(
        "the wall clock is {} behind the broker time this data directory last recorded (was it "
        "set back?); broker time continues from that instead, so nothing scheduled runs late "
        "and nothing stored looks younger than it is",
        FormatDurationMs(behind));
  }
  return Status::OK();
}

Status Server::ReloadAcl() {
  if (!security_) {
    return Status::FailedPrecondition(
        "the broker runs without an ACL (no --acl); nothing to reload");
  }
  if (Status s = security_->ReloadAcl(); !s.ok()) return s;
  // Return once the core judges by the new list: whatever a client sends
  // after this is refused if the list says so. The core looks at least
  // every kMaxPollWait.
  const uint64_t wanted = security_->acl().generation();
  const SteadyTime deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (running_ && acl_applied_.load() < wanted && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Status::OK();
}

void Server::ForgetUnauthorized() {
  std::vector<std::string> gone;
  for (const auto& [routing_id, c] : clients_.all()) {
    if (!acl_guard_.MayKeepRegistration(c.key, c.role, c.checker, c.group))
      gone.push_back(routing_id);
  }
  for (const std::string& routing_id : gone) {
    const ClientInfo* c = clients_.Find(routing_id);
    Logger("auth")->info(
        "client {} (group '{}') lost its rights with the reloaded ACL; forgetting it", c->id,
        c->group);
    delivery_.ReleaseClient(routing_id, c->id, false);
    clients_.Remove(routing_id);
  }
}

void Server::RequestStop() {
  stop_requested_ = true;
  stop_signal_.Notify();
}

void Server::Run() {
  running_ = true;
  while (!stop_requested_ && !core_.storage_failed()) {
    ApplyAclChanges();
    SteadyTime now = core_.SteadyNow();
    SteadyTime wake = std::min(
        {now + kMaxPollWait, delivery_.NextWake(), transactions_.NextWake(), next_cleanup_});
    if (delayed_.NextDueMs() <= core_.NowMs()) wake = now;
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now);
    zmq::pollitem_t items[6] = {{router_->handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, commit_done_.fd(), ZMQ_POLLIN, 0},
                                {nullptr, stop_signal_.fd(), ZMQ_POLLIN, 0}};
    size_t polled = 3;
    // The mailboxes a server has, after the fixed three (0: none).
    const size_t metrics_item = mailbox_ ? polled++ : 0;
    if (metrics_item) items[metrics_item] = {nullptr, mailbox_->fd(), ZMQ_POLLIN, 0};
    const size_t operators_item = operators_ ? polled++ : 0;
    if (operators_item) items[operators_item] = {nullptr, operators_->fd(), ZMQ_POLLIN, 0};
    if (options_.replicator != nullptr) {
      items[polled] = {nullptr, options_.replicator->event().fd(), ZMQ_POLLIN, 0};
      ++polled;
    }
    try {
      zmq::poll(items, polled, std::max(wait, std::chrono::milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) Logger("broker")->error("poll failed: {}", e.what());
    }
    if (options_.replicator != nullptr && (items[polled - 1].revents & ZMQ_POLLIN)) {
      options_.replicator->event().Drain();
      CompleteReplicated();
      placement_.ResumeParked(core_.SteadyNow());
    }
    if (items[1].revents & ZMQ_POLLIN) {
      commit_done_.Drain();
      if (auto round = store_->TakeFinished()) {
        // Hand the disk its next batch before answering this one: the
        // replies then overlap the next write instead of delaying it (so
        // never write that batch inline here, which would make them wait).
        SubmitIfIdle(/*allow_inline=*/false);
        FinishRound(std::move(round));
      }
    }
    // A full round takes no more until the disk has it (backpressure).
    if ((items[0].revents & ZMQ_POLLIN) && !store_->round_full()) ReadRequests(kReadBudget);
    if (operators_item && (items[operators_item].revents & ZMQ_POLLIN)) ServeOperatorRequests();
    Housekeeping(core_.SteadyNow());
    SubmitIfIdle(/*allow_inline=*/true);
    if (metrics_item && (items[metrics_item].revents & ZMQ_POLLIN)) PublishMetrics();
  }
  running_ = false;
  // Before Drain: a scrape waiting now learns at once why nobody answers.
  if (mailbox_) mailbox_->Close(core_.storage_error());
  if (operators_) operators_->Close(core_.storage_error());
  Drain();
}

void Server::PublishMetrics() {
  if (const uint64_t ticket = mailbox_->TakeRequest(); ticket != 0) {
    mailbox_->Publish(std::make_shared<const MetricsSnapshot>(metrics_.Collect()), ticket);
  }
}

void Server::ApplyAclChanges() {
  if (acl_guard_.Refresh()) ForgetUnauthorized();
  acl_applied_.store(acl_guard_.generation());
}

void Server::ReadRequests(int budget) {
  // A batch is judged by one ACL, the newest when it starts.
  ApplyAclChanges();
  const SteadyTime now = core_.SteadyNow();
  for (int i = 0; i < budget; ++i) {
    zmq::message_t id, payload;
    try {
      if (!router_->recv(id, zmq::recv_flags::dontwait)) return;
      if (!id.more()) continue;  // ROUTER always prefixes the routing id; nothing to answer
      (void)router_->recv(payload, zmq::recv_flags::dontwait);
      bool extra_parts = false;
      for (bool more = payload.more(); more; extra_parts = true) {
        zmq::message_t junk;
        (void)router_->recv(junk, zmq::recv_flags::dontwait);
        more = junk.more();
      }
      std::string routing_id = id.to_string();
      // The console's id, claimed by a peer: its replies would go to the
      // console's askers. Nothing to answer it on, either.
      if (routing_id == kConsoleRoutingId) continue;
      // The principal comes from the connection: libzmq stamps the ZAP
      // user id (the client's key) on each of its messages.
      std::string key;
      int fd = -1;
      if (acl_guard_.enabled()) {
        if (const char* user = zmq_msg_gets(payload.handle(), "User-Id"); user != nullptr) {
          key = user;
        }
        // Which connection, to count it for its principal (deprecated in
        // libzmq, kept through 4.x; -1 when unknown).
        fd = zmq_msg_get(payload.handle(), ZMQ_SRCFD);
      }
      if (extra_parts) {
        CountBadFrame(routing_id, 0, Status::Corruption("a request must be exactly one frame"));
        continue;
      }
      clients_.Touch(routing_id, now);
      auto frame = wire::DecodeFrame(
          std::move(payload),
          wire::DecodeLimits{.max_frame_bytes = wire::MaxFrameBytes(options_.max_message_bytes)});
      if (!frame.ok()) {
        CountBadFrame(routing_id, 0, frame.status());
        continue;
      }
      Dispatch(routing_id, std::move(key), fd, frame.value());
    } catch (const zmq::error_t& e) {
      Logger("broker")->error("receive failed: {}", e.what());
      return;
    }
  }
}

void Server::CountBadFrame(const std::string& routing_id, uint64_t request_id, const Status& why) {
  core_.counters().bad_frames++;
  // Request id 0 when the frame could not be read at all: a confused client
  // can log the error; a hostile one learns nothing new.
  core_.ReplyError({routing_id, request_id, nullptr}, why);
  const SteadyTime now = core_.SteadyNow();
  if (now - last_bad_frame_log_ > std::chrono::seconds(5)) {
    Logger("broker")->warn("bad request from {}: {} ({} bad requests so far)",
                           clients_.NameOf(routing_id), why.ToString(),
                           core_.counters().bad_frames);
    last_bad_frame_log_ = now;
  }
}

void Server::ServeOperatorRequests() {
  for (OperatorMailbox::Request& r : operators_->Take()) {
    const std::string routing_id(kConsoleRoutingId);
    // The same bounded decoding as a frame from the network.
    zmq::message_t bytes(r.frame.data(), r.frame.size());
    auto frame = wire::DecodeFrame(
        std::move(bytes),
        wire::DecodeLimits{.max_frame_bytes = wire::MaxFrameBytes(options_.max_message_bytes)});
    if (!frame.ok()) {
      core_.ReplyError({routing_id, r.request_id, nullptr}, frame.status());
      continue;
    }
    if (frame->envelope().getRequestId() != r.request_id) {
      core_.ReplyError({routing_id, r.request_id, nullptr},
                       Status::InvalidArgument("a console request must carry the request id "
                                               "the operator mailbox gave it"));
      continue;
    }
    Dispatch(routing_id, "", -1, frame.value(), r.peer.empty() ? "?" : r.peer);
  }
}

namespace {

// What the HTTP console may ask: txmqctl's reads and its transaction and
// dead-letter actions; never a client's requests (hello, send, pull...),
// and never the lifecycle's deletions.
bool ConsoleMayAsk(wire::Envelope::Which which) {
  using E = wire::Envelope;
  switch (which) {
    case E::STATUS:
    case E::LIST_TRANSACTIONS:
    case E::SHOW_TRANSACTION:
    case E::END_TRANSACTION:
    case E::CHECK_NOW:
    case E::TOPIC_LIST:
    case E::TOPIC_SHOW:
    case E::SHOW_MESSAGE:
    case E::GROUP_LIST:
    case E::GROUP_SHOW:
    case E::DLQ_LIST:
    case E::DLQ_SHOW:
    case E::DLQ_RESEND:
      return true;
    default:
      return false;
  }
}

}  // namespace

void Server::Dispatch(const std::string& routing_id, std::string key, int fd, wire::Frame& frame,
                      const std::string& console_peer) {
  using E = wire::Envelope;
  uint64_t request_id = 0;
  try {
    E::Reader env = frame.envelope();
    RequestContext ctx{routing_id, env.getRequestId(), clients_.Find(routing_id), std::move(key)};
    request_id = ctx.request_id;
    if (!console_peer.empty()) {
      ctx.console_peer = console_peer;
      if (!ConsoleMayAsk(env.which())) {
        return core_.ReplyError(
            ctx, Status::PermissionDenied("the HTTP console may not make request kind " +
                                          std::to_string(static_cast<int>(env.which()))));
      }
      // Without an ACL the guard names nobody; the console is still who
      // the audit trail should name.
      if (!acl_guard_.enabled()) ctx.principal = &acl_guard_.console_principal();
    }
    // Every right is checked here, before any handler: a refused request
    // changes nothing (auth/guard.h lists what each request needs).
    if (Status s = acl_guard_.Check(ctx, env); !s.ok()) return core_.ReplyError(ctx, s);
    // Per-client limits are the principal's: all its connections share them.
    core_.limits().Seen(routing_id, ctx.principal != nullptr ? ctx.principal->name : "");
    // A principal's connections are counted on their first request; one
    // over its limit gets every request refused until another one closes.
    if (ctx.principal != nullptr && !ctx.console()) {
      const uint64_t releases = guard_.principals().releases();
      if (!core_.limits().Claimed(routing_id, fd, releases)) {
        if (Status s = guard_.principals().Claim(fd, ctx.principal->name); !s.ok()) {
          return core_.ReplyError(ctx, core_.limits().Refused(Limits::kConnectionsPerPrincipal, s));
        }
        core_.limits().SetClaimed(routing_id, fd, releases);
      }
    }
    std::optional<RequestScope> in_flight;  // limits.h: counts it until answered
    if (Limits::Counted(env.which())) {
      in_flight.emplace(core_.limits(), routing_id, ctx.request_id);
      if (!in_flight->admitted().ok()) return core_.ReplyError(ctx, in_flight->admitted());
    }
    if (HoldForPlacement(ctx, env, frame, fd)) return;
    switch (env.which()) {
      case E::HELLO:
        return HandleHello(ctx, env.getHello());
      case E::HEARTBEAT: {
        auto reply = Core::NewReply(ctx);
        reply.envelope().initHeartbeatOk().setRegistered(ctx.client != nullptr);
        return core_.Reply(ctx, reply);
      }
      case E::GOODBYE: {
        delivery_.ReleaseClient(routing_id, clients_.NameOf(routing_id), false);
        clients_.Remove(routing_id);
        auto reply = Core::NewReply(ctx);
        reply.envelope().setGoodbyeOk();
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
      case E::CREATE_TOPIC:
        return admin_.HandleCreateTopic(ctx, env.getCreateTopic());
      case E::STATUS:
        return admin_.HandleStatus(ctx);
      case E::SEND_HALF:
        return transactions_.HandleSendHalf(ctx, env.getSendHalf());
      case E::END_TRANSACTION:
        return transactions_.HandleEndTransaction(ctx, env.getEndTransaction());
      case E::CHECK_REPLY:
        return transactions_.HandleCheckReply(ctx, env.getCheckReply());
      case E::LIST_TRANSACTIONS:
        return transactions_.HandleList(ctx, env.getListTransactions());
      case E::SHOW_TRANSACTION:
        return transactions_.HandleShow(ctx, env.getShowTransaction());
      case E::CHECK_NOW:
        return transactions_.HandleCheckNow(ctx, env.getCheckNow());
      case E::TOPIC_LIST:
        return inspect_.HandleTopicList(ctx);
      case E::TOPIC_SHOW:
        return inspect_.HandleTopicShow(ctx, env.getTopicShow());
      case E::SHOW_MESSAGE:
        return inspect_.HandleShowMessage(ctx, env.getShowMessage());
      case E::FIND_MESSAGES:
        return inspect_.HandleFindMessages(ctx, env.getFindMessages());
      case E::PEEK:
        return inspect_.HandlePeek(ctx, env.getPeek());
      case E::GROUP_LIST:
        return inspect_.HandleGroupList(ctx);
      case E::GROUP_SHOW:
        return inspect_.HandleGroupShow(ctx, env.getGroupShow());
      case E::DLQ_LIST:
        return dlq_.HandleList(ctx, env.getDlqList());
      case E::DLQ_SHOW:
        return dlq_.HandleShow(ctx, env.getDlqShow());
      case E::DLQ_RESEND:
        return dlq_.HandleResend(ctx, env.getDlqResend());
      case E::LIFECYCLE:
        return lifecycle_.Handle(ctx, env.getLifecycle());
      case E::ROUTE:
        return HandleRoute(ctx, env.getRoute(), frame, fd);
      case E::CLUSTER_STATUS: {
        auto reply = Core::NewReply(ctx);
        wire::FillClusterStatus(ClusterStatusFor(options_), reply.envelope().initClusterStatusOk());
        return core_.Reply(ctx, reply);
      }
      default:
        return CountBadFrame(routing_id, ctx.request_id,
                             Status::InvalidArgument("request kind " +
                                                     std::to_string(static_cast<int>(env.which())) +
                                                     " is not one the broker serves"));
    }
  } catch (const kj::Exception& e) {
    core_.limits().Abandon(routing_id, request_id);  // answered below, without its id
    CountBadFrame(
        routing_id, 0,
        Status::Corruption(std::string("malformed request: ") + e.getDescription().cStr()));
  }
}

void Server::HandleHello(const RequestContext& ctx, wire::Hello::Reader hello) {
  if (hello.getVersion() != wire::PROTOCOL_VERSION) {
    return core_.ReplyError(
        ctx, Status::FailedPrecondition("client speaks protocol version " +
                                        std::to_string(hello.getVersion()) + ", broker speaks " +
                                        std::to_string(wire::PROTOCOL_VERSION)));
  }
  auto registered =
      clients_.Hello(ctx.routing_id, ctx.key, hello, core_.NowMs(), core_.SteadyNow());
  if (!registered.ok()) {
    Logger("broker")->warn("hello refused: {}", registered.status().message());
    return core_.ReplyError(ctx, registered.status());
  }
  const ClientInfo& c = **registered;
  Logger("broker")->debug("client {} ({}, group '{}', {}) said hello", c.id,
                          static_cast<int>(c.role), c.group, c.software);
  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initHelloOk();
  ok.setBrokerName(options_.name);
  ok.setBrokerVersion(kVersion);
  ok.setMaxMessageBytes(options_.max_message_bytes);
  ok.setMaxFrameBytes(static_cast<uint32_t>(wire::MaxFrameBytes(options_.max_message_bytes)));
  ok.setClientTimeoutMs(static_cast<uint32_t>(options_.client_timeout.count()));
  core_.Reply(ctx, reply);
}

void Server::SubmitIfIdle(bool allow_inline) {
  if (store_->busy()) return;
  groups_.FlushDirty();
  if (store_->round_empty()) return;
  topics_.SealRound();
  // A small round with nobody queued behind it (one send at a time, say) is
  // written right here: that saves two thread hand-offs on its latency.
  // Under load rounds are large and go to the storage thread, which writes
  // while this thread reads the next batch of requests.
  // Not on a cluster node: its store write waits for the replica log's
  // append, which this thread must not.
  if (allow_inline && options_.replicator == nullptr &&
      store_->round_completions() <= kInlineRoundMax &&
      !(router_->get(zmq::sockopt::events) & ZMQ_POLLIN)) {
    core_.StampBrokerTime();
    FinishRound(store_->WriteInline(core_.NowMs(), sealed_));
    return;
  }
  core_.StampBrokerTime();
  store_->Submit(core_.NowMs(), sealed_);
}

void Server::Housekeeping(SteadyTime now) {
  placement_.ResumeParked(now);
  TickMoves(now);
  disk_.Tick(now, store_->log_allocated_bytes());
  delivery_.Tick(now);
  transactions_.Tick(now);
  if (!core_.storage_failed()) delayed_.Tick(core_.NowMs(), options_.cleanup_batch);
  if (now < next_cleanup_) return;
  for (const ClientInfo& gone : clients_.ExpireSilent(now - options_.client_timeout)) {
    Logger("broker")->info("client {} ({} of group '{}') silent for {} ms; forgetting it", gone.id,
                           gone.role == wire::Role::PRODUCER ? "producer" : "consumer", gone.group,
                           options_.client_timeout.count());
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
  // With a backlog, come back soon instead of after a full interval.
  next_cleanup_ = now + (more ? std::chrono::milliseconds(50) : options_.cleanup_interval);
}

void Server::Drain() {
  // Phase two of shutdown: no new requests are read; everything already
  // accepted is written and answered before the socket closes.
  delivery_.AnswerParked(Status::Unavailable("broker is shutting down"));
  if (auto round = store_->WaitFinished()) FinishRound(std::move(round));
  groups_.FlushDirty();
  if (!store_->round_empty()) {
    topics_.SealRound();
    core_.StampBrokerTime();
    store_->Submit(core_.NowMs(), sealed_);
    if (auto round = store_->WaitFinished()) FinishRound(std::move(round));
  }
  DrainReplicated();
  if (options_.replicator != nullptr && store_->SyncReplicated().ok()) {
    leader_mark_.MaybeWrite(*store_, *options_.replicator, /*stopping=*/true);
  }
  store_.reset();  // a last checkpoint: a clean stop leaves nothing to replay
  if (core_.storage_failed()) {
    // The clients of the failed rounds were just told why (an I/O error,
    // or on a cluster leader that it stopped leading). A client socket
    // drops what it has not read yet when its connection closes
    // (ZMQ_IMMEDIATE ends the pipe at once), and a loaded client may take
    // a while to read: it would hear only "outcome unknown". Keep the
    // connections open a moment first; this stop is rare, so the wait
    // costs nothing that matters. Requests arriving meanwhile are not
    // read: their clients hear "outcome unknown" and retry.
    std::this_thread::sleep_for(kFailStopGrace);
  }
  router_->close();
}

}  // namespace txmq::broker
