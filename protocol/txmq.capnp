# txmq wire protocol.
#
# Every ZeroMQ message between a client (DEALER) and the broker (ROUTER) is
# exactly one Envelope, serialized unpacked (bodies are usually
# incompressible, so packing would only cost CPU). The client chooses
# requestId; the broker's reply carries the same requestId. Broker-initiated
# calls use the broker's own requestId space and are answered the same way.
#
# Evolution: new requests and responses are added at the end of the union
# with the next ordinal; fields are only ever added, never renumbered.

@0xcf79ceef3ba97531;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("txmq::wire");

const protocolVersion :UInt32 = 1;

enum ErrorCode {
  ok @0;
  invalidArgument @1;
  notFound @2;
  conflict @3;
  timeout @4;
  unavailable @5;
  overloaded @6;
  tooLarge @7;
  corruption @8;
  aborted @9;
  failedPrecondition @10;
  internal @11;
  resourceExhausted @12;  # a broker limit: disk space low, or a configured count (topics,
                          # groups, open transactions); the message names it and its flag
  permissionDenied @13;   # the caller's key or principal may not do this
  notLeader @14;          # a node of a replicated group that does not lead it; Error.leaderUrl
                          # says where the leader is (empty while an election runs)
  wrongGroup @15;         # the message's queue is placed on another broker group of the
                          # cluster; Error.leaderUrl names that group's leader (empty: unknown).
                          # Nothing of the request was stored: ask the route again, send there
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
  leaderUrl @2 :Text;  # with notLeader, wrongGroup: the group leader's client URL, when known
}

struct Property {
  key @0 :Text;
  value @1 :Text;
}

struct Message {
  id @0 :Text;
  topic @1 :Text;
  key @2 :Text;
  properties @3 :List(Property);
  body @4 :Data;
  bornMs @5 :Int64;     # producer wall clock, ms since the Unix epoch
  delayMs @6 :Int64;    # deliver no earlier than this long after storing
}

enum Role {
  producer @0;
  consumer @1;
  admin @2;
}

struct Hello {
  clientId @0 :Text;    # the public name of the client (not its routing id, which stays secret)
  role @1 :Role;
  group @2 :Text;       # producer or consumer group; empty for admin
  version @3 :UInt32;   # protocolVersion of the client
  software @4 :Text;    # "txmq-producer 0.1.0", shown to operators
  checker @5 :Bool;     # a producer that answers transaction checks
  # The client instance this connection belongs to: a consumer connected
  # to several broker groups names the same one on each, so that the groups
  # share a topic's queues among instances, not connections. Empty: the
  # client id. At most 255 bytes.
  instance @6 :Text;
}

struct HelloOk {
  brokerName @0 :Text;
  brokerVersion @1 :Text;
  maxMessageBytes @2 :UInt32;   # counted bytes of one request's messages together
  clientTimeoutMs @3 :UInt32;   # the broker forgets a client silent this long
  maxFrameBytes @4 :UInt32;     # a bigger request frame drops the connection (0: unknown)
}

struct HeartbeatOk {
  registered @0 :Bool;  # false: the broker does not know this client; say hello again
}

struct SendRequest {
  message @0 :Message;
}

struct SendOk {
  messageId @0 :Text;
  topic @1 :Text;
  queue @2 :UInt32;
  offset @3 :UInt64;
  hasOffset @4 :Bool;   # false for a delayed message (offset assigned when due)
  duplicate @5 :Bool;   # the id was already stored; nothing new was written
}

struct PullRequest {
  group @0 :Text;
  topics @1 :List(Text);
  maxMessages @2 :UInt32;
  waitMs @3 :UInt32;              # long poll: park up to this long when empty
  visibilityTimeoutMs @4 :UInt32; # lease length; 0 = broker default
  startFromLatest @5 :Bool;       # where a group starts on a topic it never read
}

struct Delivered {
  message @0 :Message;
  queue @1 :UInt32;
  offset @2 :UInt64;
  deliveryCount @3 :UInt32;
  storedMs @4 :Int64;
  receipt @5 :Receipt;
}

struct PullOk {
  messages @0 :List(Delivered);
}

# Names one lease. leaseId is unique per delivery, so an ack that arrives
# after its lease expired (and the message went elsewhere) ends nothing.
struct Receipt {
  topic @0 :Text;
  queue @1 :UInt32;
  offset @2 :UInt64;
  retryId @3 :UInt64;   # 0: a first delivery from the queue; else the retry entry
  leaseId @4 :UInt64;
}

struct AckRequest {
  group @0 :Text;
  receipts @1 :List(Receipt);
}

struct AckOk {
  acked @0 :UInt32;
  expired @1 :UInt32;   # leases that had already ended; nothing changed for those
}

struct NackRequest {
  group @0 :Text;
  receipts @1 :List(Receipt);
  delayMs @2 :UInt32;             # 0: the broker's backoff for the delivery count
  maxReconsumeTimes @3 :UInt32;   # 0: broker default; past it -> dead-letter queue
  release @4 :Bool;               # give back undelivered: visible now, not counted
}

struct NackOk {
  requeued @0 :UInt32;
  deadLettered @1 :UInt32;
  expired @2 :UInt32;
}

struct CreateTopicRequest {
  topic @0 :Text;
  queues @1 :UInt32;    # 0 = broker default
  operator @2 :Text;    # who asked, for the audit log
}

struct CreateTopicOk {
  topic @0 :Text;
  queues @1 :UInt32;
  created @2 :Bool;     # false: it existed already (with `queues` queues)
}

struct BrokerStatus {
  brokerName @0 :Text;
  version @1 :Text;
  uptimeMs @2 :Int64;
  dataDir @3 :Text;
  flushMode @4 :Text;
  listen @5 :Text;
  topics @6 :UInt32;
  messagesStored @7 :UInt64;
  producers @8 :UInt32;
  consumers @9 :UInt32;
  badFrames @10 :UInt64;
  storageHealthy @11 :Bool;
  transactions @12 :TxCounters;
  consumerGroups @13 :UInt32;
  deadLettered @14 :UInt64;
  commitRounds @15 :UInt64;      # group-commit rounds written since start
  commitRequests @16 :UInt64;    # requests those rounds answered
  commitWriteMicros @17 :UInt64; # time spent writing them (incl. fsync)
  settings @18 :List(Setting);   # every effective option, in txmqd --help order
  diskFreeBytes @19 :UInt64;     # free space for the data directory (estimate)
  minFreeDiskBytes @20 :UInt64;  # --min-free-disk (0: not checked)
  diskLow @21 :Bool;             # below it: new messages are refused (RESOURCE_EXHAUSTED)
  damagedRecords @22 :UInt64;    # stored records found failing their checksum since start
  limits @23 :List(LimitUse);    # every limit: its flag, value, use now, refusals
  expiredUnconsumed @24 :UInt64; # messages retention deleted before a group reading their
                                 # topic received them, counted per group (since start)
  metrics @25 :MetricsStatus;    # what txmqd --http /metrics shows that the fields above do not
}

# The broker's metrics snapshot (broker/src/metrics_snapshot.h) beyond the
# fields of BrokerStatus; counters since start.
struct MetricsStatus {
  delivered @0 :UInt64;
  acked @1 :UInt64;
  duplicates @2 :UInt64;
  redeliveriesScheduled @3 :UInt64;
  droppedReplies @4 :UInt64;
  messagesStoredSinceStart @5 :UInt64;
  admins @6 :UInt32;                    # registered admin clients (producers, consumers above)
  storageBytesWritten @7 :UInt64;
  storageCheckpoints @8 :UInt64;
  latencyBoundsMicros @9 :List(UInt64); # bucket upper bounds; one more bucket counts the rest
  roundWriteCounts @10 :List(UInt64);   # rounds by write + fsync time, per bucket (not cumulative)
  fsyncCounts @11 :List(UInt64);        # fdatasyncs by time, per bucket
  queues @12 :List(QueueMetricsStatus);
  groups @13 :List(GroupMetricsStatus);
  producerGroups @14 :List(ProducerGroupMetricsStatus);
}

struct QueueMetricsStatus {
  topic @0 :Text;
  queue @1 :UInt32;
  messagesIn @2 :UInt64;     # durable offsets ever assigned
  bytesIn @3 :UInt64;        # body bytes since start
  backlog @4 :UInt64;        # stored messages
  oldestAgeMs @5 :Int64;     # -1: none stored
}

struct GroupMetricsStatus {
  group @0 :Text;
  topics @1 :List(GroupTopicMetricsStatus);
  inFlight @2 :UInt64;
  redeliveriesScheduled @3 :UInt64;
  deadLettered @4 :UInt64;
  expired @5 :UInt64;
}

struct GroupTopicMetricsStatus {
  topic @0 :Text;
  lag @1 :UInt64;
  inFlight @2 :UInt64;
}

struct ProducerGroupMetricsStatus {
  group @0 :Text;
  open @1 :UInt64;
  stuck @2 :UInt64;
  committed @3 :UInt64;
  rolledBack @4 :UInt64;
  checksSent @5 :UInt64;
  answers @6 :List(UInt64);  # by CheckAnswer ordinal (none, commit, rollback, unknown, error,
                             # noAnswer, noProducer)
}

# One of the broker's limits as an operator sees it (txmqctl status).
struct LimitUse {
  name @0 :Text;        # the txmqd flag that sets it, without "--"
  limit @1 :UInt64;
  used @2 :UInt64;      # now, for a broker-wide limit; the largest client's, for a per-client one
  refused @3 :UInt64;   # requests refused (or replies dropped) by it since start
}

# One broker option as an operator sets it: the txmqd flag name (without
# "--") and its value in flag syntax ("30s", "sync").
struct Setting {
  name @0 :Text;
  value @1 :Text;
}

# ---- transactional messages ----

enum TxState {
  prepared @0;
  committed @1;
  rolledBack @2;
}

enum TxOutcome {
  commit @0;
  rollback @1;
  unknown @2;     # only in a check answer: "ask me again later"
}

# What the last check of a transaction learned.
enum CheckAnswer {
  none @0;          # never checked
  commit @1;
  rollback @2;
  unknown @3;
  error @4;         # the checker failed; see lastError
  noAnswer @5;      # no reply in time
  noProducer @6;    # no live producer of the group to ask
}

struct SendHalfRequest {
  transactionId @0 :Text;   # chosen by the producer; a resend with it changes nothing
  producerGroup @1 :Text;
  messages @2 :List(Message);
  # Ends of this producer's earlier transactions, riding along so that they
  # cost no round trip of their own (at most 64). The broker applies them
  # before the half, in the same round, exactly as endTransaction requests,
  # and answers each in SendHalfOk.ends. An error reply to the half says
  # nothing about them: the producer sends them again (ends are idempotent).
  ends @3 :List(EndTransactionRequest);
}

struct SendHalfOk {
  transactionId @0 :Text;
  state @1 :TxState;        # prepared, unless a resend arrives after the end
  ends @2 :List(EndResult); # one per SendHalfRequest.ends, in its order
}

# What became of one end carried by another request: error.code ok and the
# state recorded (durably), or the error an endTransaction would have got.
struct EndResult {
  transactionId @0 :Text;
  state @1 :TxState;
  alreadyFinal @2 :Bool;
  error @3 :Error;
}

struct EndTransactionRequest {
  transactionId @0 :Text;
  outcome @1 :TxOutcome;    # commit or rollback
  fromCheckDeprecated @2 :Bool;  # unused, ignored by the broker: no client ever set it; a
                                 # check is answered with a CheckReply. Kept so the
                                 # ordinal is never reused.
  operator @3 :Text;        # set by txmqctl: a forced outcome, audit-logged
  reason @4 :Text;
}

struct EndTransactionOk {
  transactionId @0 :Text;
  state @1 :TxState;        # the final state now recorded
  alreadyFinal @2 :Bool;    # it was final before this request; nothing changed
}

# Broker -> producer: what became of this transaction?
struct CheckTransaction {
  transactionId @0 :Text;
  producerGroup @1 :Text;
  messages @2 :List(Message);
  checkCount @3 :UInt32;    # this is check number checkCount
  bornMs @4 :Int64;
}

# Producer -> broker, with the check's requestId.
struct CheckReply {
  transactionId @0 :Text;
  outcome @1 :TxOutcome;
  error @2 :Text;           # why the checker could not say (outcome unknown)
}

struct TxCounters {
  halvesStored @0 :UInt64;
  committed @1 :UInt64;
  rolledBack @2 :UInt64;
  checksSent @3 :UInt64;
  answersCommit @4 :UInt64;
  answersRollback @5 :UInt64;
  answersUnknown @6 :UInt64;
  answersError @7 :UInt64;
  noAnswer @8 :UInt64;
  noProducer @9 :UInt64;
  open @10 :UInt64;
  stuck @11 :UInt64;
  oldestOpenAgeMs @12 :Int64;
  endsCarried @13 :UInt64;   # ends that arrived riding on a half (SendHalfRequest.ends)
}

struct TxSummary {
  transactionId @0 :Text;
  state @1 :TxState;
  stuck @2 :Bool;
  producerGroup @3 :Text;
  producerInstance @4 :Text;
  topics @5 :List(Text);
  keys @6 :List(Text);
  messageIds @7 :List(Text);
  bornMs @8 :Int64;
  checkCount @9 :UInt32;
  lastCheckMs @10 :Int64;
  nextCheckMs @11 :Int64;
  lastAnswer @12 :CheckAnswer;
  lastError @13 :Text;
  resolvedMs @14 :Int64;
  resolvedBy @15 :Text;
  noProducerChecks @16 :UInt32;  # attempts in a row with no live producer; not in checkCount
}

struct ListTransactionsRequest {
  stuckOnly @0 :Bool;
  pendingOnly @1 :Bool;     # open and not stuck
  group @2 :Text;
  topic @3 :Text;
  olderThanMs @4 :Int64;
  limit @5 :UInt32;
  after @6 :Text;           # paging: ids after this one (ids sort by age)
}

struct ListTransactionsOk {
  transactions @0 :List(TxSummary);
  more @1 :Bool;
}

struct ShowTransactionOk {
  summary @0 :TxSummary;
  messages @1 :List(Message);
}

struct CheckNowRequest {
  transactionId @0 :Text;   # empty with stuckOnly: every stuck one (of `group`)
  stuckOnly @1 :Bool;
  group @2 :Text;
  operator @3 :Text;
  reason @4 :Text;          # why the operator asks (audit-logged)
}

struct CheckNowOk {
  scheduled @0 :UInt32;
}

# ---- operator views: topics, messages, groups, dead letters ----

struct QueueInfo {
  queue @0 :UInt32;
  minOffset @1 :UInt64;   # first offset still stored
  endOffset @2 :UInt64;   # one past the last visible offset
  group @3 :Text;         # the replicated broker group holding it; empty: a single broker
  leader @4 :Text;        # the node (or single broker) that serves it
  # The queue moved to `group` and its older messages are still read from
  # this group (empty: none); the consumer groups that have not finished
  # them as that group last reported, unless it has not reported yet.
  drainingFrom @5 :Text;
  drainReported @6 :Bool;
  drainPending @7 :List(Text);
  # Asked of the group the queue moved away from: the group it went to
  # (then `group` and `leader` name this group, whose part the offsets
  # are, and drainingFrom is this group). Empty otherwise.
  movedTo @8 :Text;
}

struct GroupLag {
  group @0 :Text;
  lag @1 :UInt64;         # visible messages the group has not finished
  inFlight @2 :UInt32;    # leased to a consumer now
  retrying @3 :UInt32;    # waiting for a redelivery
}

struct TopicInfo {
  name @0 :Text;
  createdMs @1 :Int64;
  queues @2 :List(QueueInfo);
  messages @3 :UInt64;
  groups @4 :List(GroupLag);
}

struct TopicListOk {
  topics @0 :List(TopicInfo);   # without groups
}

struct Location {
  topic @0 :Text;
  queue @1 :UInt32;
  offset @2 :UInt64;
  storedMs @3 :Int64;
}

struct DeliveryState {
  group @0 :Text;
  state @1 :Text;          # consumed, pending, in-flight, retrying, dead-lettered
  deliveryCount @2 :UInt32;
  detail @3 :Text;         # lease holder and expiry, next retry time, ...
}

struct MessageDetail {
  message @0 :Message;
  location @1 :Location;
  deliveries @2 :List(DeliveryState);
}

# Reads a topic's stored messages without a consumer group: no lease, no
# cursor, no redelivery; nothing in the broker changes.
struct PeekRequest {
  topic @0 :Text;
  oneQueue @1 :Bool;       # read only `queue`; else every queue, merged by stored time
  queue @2 :UInt32;
  fromOffset @3 :UInt64;   # the first offset read (of each queue); below what is stored: its start
  fromTimeMs @4 :Int64;    # > 0: instead, the first message stored at or after it (broker time)
  maxMessages @5 :UInt32;  # 0 = 20; at most 1024, and at most 4 MiB of bodies (one always)
}

struct PeekOk {
  messages @0 :List(MessageDetail);  # oldest first; deliveries are not filled in
  next @1 :List(QueueOffset);        # each queue read: where a next peek goes on (fromOffset)
  more @2 :Bool;                     # messages remain past what was returned
}

struct ShowMessageRequest {
  messageId @0 :Text;
}

struct FindMessagesRequest {
  topic @0 :Text;
  key @1 :Text;
  limit @2 :UInt32;        # newest first
}

struct MessageSummary {
  id @0 :Text;
  key @1 :Text;
  location @2 :Location;
  bodyBytes @3 :UInt32;
  properties @4 :List(Property);
}

struct FindMessagesOk {
  messages @0 :List(MessageSummary);
  scanned @1 :UInt64;
  truncated @2 :Bool;      # stopped at the scan limit
}

struct ClientSummary {
  clientId @0 :Text;
  role @1 :Role;
  group @2 :Text;
  software @3 :Text;
  connectedMs @4 :Int64;
  lastSeenAgoMs @5 :Int64;
  checker @6 :Bool;
  # The client instance it is a connection of (hello's instance; the
  # client id when it named none): a consumer's connections to several
  # broker groups name one instance.
  instance @7 :Text;
}

struct CursorInfo {
  topic @0 :Text;
  queue @1 :UInt32;
  floor @2 :UInt64;        # offsets below are finished
  next @3 :UInt64;         # next offset to hand out
  end @4 :UInt64;          # visible end of the queue
  inFlight @5 :UInt32;
  lag @6 :UInt64;          # stored messages not yet finished: end - max(floor, first stored)
  expired @7 :UInt64;      # deleted by retention before the group received them (since start)
  owner @8 :Text;          # the consumer given the queue ("" none: nobody pulls it here)
  handingOver @9 :Bool;    # another consumer still holds messages of it: the owner waits
}

struct RetryInfo {
  retryId @0 :UInt64;
  messageId @1 :Text;
  topic @2 :Text;
  queue @3 :UInt32;
  offset @4 :UInt64;
  deliveryCount @5 :UInt32;
  dueMs @6 :Int64;
  leased @7 :Bool;
}

struct GroupInfo {
  name @0 :Text;
  topics @1 :List(Text);
  members @2 :List(ClientSummary);
  lag @3 :UInt64;
  inFlight @4 :UInt32;
  retrying @5 :UInt32;
  deadLetters @6 :UInt64;
  cursors @7 :List(CursorInfo);   # group show only
  retries @8 :List(RetryInfo);    # group show only (the first 100)
  expired @9 :UInt64;             # messages retention deleted before the group received them
                                  # (since the broker started; the sum of its cursors')
}

struct GroupListOk {
  groups @0 :List(GroupInfo);
}

struct DeadLetter {
  id @0 :Text;
  offset @1 :UInt64;       # in %DLQ%<group>
  originTopic @2 :Text;
  originQueue @3 :UInt32;
  originOffset @4 :UInt64;
  deliveries @5 :UInt32;
  storedMs @6 :Int64;
  key @7 :Text;
  bodyBytes @8 :UInt32;
}

struct DlqListRequest {
  group @0 :Text;
  limit @1 :UInt32;
  afterOffset @2 :UInt64;  # paging; 0 = from the start
  hasAfter @3 :Bool;
}

struct DlqListOk {
  messages @0 :List(DeadLetter);
  more @1 :Bool;
  total @2 :UInt64;
}

struct DlqShowRequest {
  group @0 :Text;
  messageId @1 :Text;
}

struct DlqShowOk {
  letter @0 :DeadLetter;
  message @1 :Message;
}

struct DlqResendRequest {
  group @0 :Text;
  messageIds @1 :List(Text);
  all @2 :Bool;
  dryRun @3 :Bool;
  operator @4 :Text;
  reason @5 :Text;          # why the operator resends (audit-logged)
}

struct DlqResendOk {
  resent @0 :List(Text);   # ids (would be) delivered to the group again
  missing @1 :List(Text);  # ids not in the group's dead-letter queue
}

struct Envelope {
  requestId @0 :UInt64;
  union {
    error @1 :Error;
    hello @2 :Hello;
    helloOk @3 :HelloOk;
    heartbeat @4 :Void;
    heartbeatOk @5 :HeartbeatOk;
    goodbye @6 :Void;       # clean disconnect: release leases, forget the client
    goodbyeOk @7 :Void;
    send @8 :SendRequest;
    sendOk @9 :SendOk;
    pull @10 :PullRequest;
    pullOk @11 :PullOk;
    ack @12 :AckRequest;
    ackOk @13 :AckOk;
    nack @14 :NackRequest;
    nackOk @15 :NackOk;
    createTopic @16 :CreateTopicRequest;
    createTopicOk @17 :CreateTopicOk;
    status @18 :Void;
    statusOk @19 :BrokerStatus;
    sendHalf @20 :SendHalfRequest;
    sendHalfOk @21 :SendHalfOk;
    endTransaction @22 :EndTransactionRequest;
    endTransactionOk @23 :EndTransactionOk;
    checkTransaction @24 :CheckTransaction;   # broker -> producer
    checkReply @25 :CheckReply;               # producer -> broker
    listTransactions @26 :ListTransactionsRequest;
    listTransactionsOk @27 :ListTransactionsOk;
    showTransaction @28 :Text;                # transaction id
    showTransactionOk @29 :ShowTransactionOk;
    checkNow @30 :CheckNowRequest;
    checkNowOk @31 :CheckNowOk;
    topicList @32 :Void;
    topicListOk @33 :TopicListOk;
    topicShow @34 :Text;                      # topic name
    topicShowOk @35 :TopicInfo;
    showMessage @36 :ShowMessageRequest;
    showMessageOk @37 :MessageDetail;
    findMessages @38 :FindMessagesRequest;
    findMessagesOk @39 :FindMessagesOk;
    groupList @40 :Void;
    groupListOk @41 :GroupListOk;
    groupShow @42 :Text;                      # group name
    groupShowOk @43 :GroupInfo;
    dlqList @44 :DlqListRequest;
    dlqListOk @45 :DlqListOk;
    dlqShow @46 :DlqShowRequest;
    dlqShowOk @47 :DlqShowOk;
    dlqResend @48 :DlqResendRequest;
    dlqResendOk @49 :DlqResendOk;
    extendLease @50 :ExtendLeaseRequest;
    extendLeaseOk @51 :ExtendLeaseOk;
    # Operator lifecycle changes (see "lifecycle" below).
    lifecycle @52 :LifecycleRequest;
    lifecycleOk @53 :LifecycleOk;
    # Browsing a topic without a consumer group (txmqctl topic peek).
    peek @54 :PeekRequest;
    peekOk @55 :PeekOk;
    # A replicated group's state (txmqctl cluster status). Answered by
    # every node, also one that does not lead.
    clusterStatus @56 :Void;
    clusterStatusOk @57 :ClusterStatus;
    # Where a topic's queues are served (clients route sends by it).
    # Answered by every node of a cluster, also one that does not lead.
    route @58 :RouteRequest;
    routeOk @59 :TopicRoute;
  }
}

# ---- placement of queues on broker groups (clients' routing) ----

struct RouteRequest {
  topic @0 :Text;
  create @1 :Bool;      # place the topic now if it has no placement yet
  queues @2 :UInt32;    # with create: its queue count; 0 = the broker's default
}

struct QueueRoute {
  group @0 :Text;       # the broker group serving the queue
  leaderUrl @1 :Text;   # that group's leader's client URL; empty: none now (down)
  # The queue moved to `group`, and this group still delivers the messages
  # it holds of it: consumers read them there (empty: none).
  drainingFrom @2 :Text;
  drainingLeaderUrl @3 :Text;
}

# queues[q] is queue q's route. A single broker (no cluster) answers with
# every queue on group "" at its own URL, so a client routes the same way.
struct TopicRoute {
  topic @0 :Text;
  queues @1 :List(QueueRoute);
  answeredBy @2 :Text;  # the group of the broker that answered ("" for a single broker):
                        # a client knows which queues its own connection serves
}

# ---- replicated broker groups (txmqctl cluster status) ----

# One member of the group as the answering node knows it.
struct ReplicaStatus {
  node @0 :Text;
  leader @1 :Bool;          # the group record names it leader
  inIsr @2 :Bool;
  progressKnown @3 :Bool;   # false: the answering node does not know its log
  logIndex @4 :UInt64;      # its last entry (itself, the leader), else its match index
  lagEntries @5 :UInt64;    # entries the leader has and it has not confirmed
  lastContactMs @6 :Int64;  # since the leader last heard from it; -1 unknown
}

struct ClusterStatus {
  member @0 :Bool;          # false: a single broker, in no group (no --etcd)
  cluster @1 :Text;
  group @2 :Text;
  node @3 :Text;            # the answering node (a single broker: its name)
  leading @4 :Bool;         # it leads: replicas carry its view of each follower
  leader @5 :Text;          # the leader as etcd has it; empty: none
  leaderUrl @6 :Text;       # the leader's client URL; empty: unknown
  epoch @7 :Int64;
  isr @8 :List(Text);
  minIsr @9 :UInt32;
  lastIndex @10 :UInt64;    # the answering node's replica log
  commitIndex @11 :UInt64;  # leader only
  coordinatorError @12 :Text;  # why its last tick could not reach etcd; empty: it could
  replicas @13 :List(ReplicaStatus);
  groups @14 :List(GroupLeader);  # every group of the cluster, as the answering node's
                                  # map has them; empty on a single broker
}

# One broker group of the cluster: where a client reaches it.
struct GroupLeader {
  group @0 :Text;
  leader @1 :Text;          # the leader node; empty: none now
  leaderUrl @2 :Text;       # its client URL; empty: unknown (down)
  epoch @3 :Int64;
  nodeUrls @4 :List(Text);  # every live node's client URL, the leader's first
}

# ---- lease extension ----

# Keeps leases alive while a consumer holds their messages without running
# them: waiting behind an earlier message of the same key, or for a retry in
# place. The receipt (lease id) stays the same. Only the client holding a
# lease may extend it.
struct ExtendLeaseRequest {
  group @0 :Text;
  receipts @1 :List(Receipt);
  visibilityTimeoutMs @2 :UInt32; # the lease ends this long from now (after the
                                  # retry delay when failed); 0 = broker default
  failed @3 :Bool;                # the handler failed this delivery: count it and
                                  # keep the message leased for a retry in place,
                                  # or dead-letter it past maxReconsumeTimes
  delayMs @4 :UInt32;             # with failed: 0 = the broker's backoff for the count
  maxReconsumeTimes @5 :UInt32;   # with failed: 0 = broker default
}

enum LeaseState {
  extended @0;
  expired @1;        # ended or unknown: the broker delivers the message again
  notHolder @2;      # leased to another client; nothing changed
  deadLettered @3;   # failed past maxReconsumeTimes: moved to the dead-letter topic
}

struct LeaseExtension {
  state @0 :LeaseState;
  deliveryCount @1 :UInt32;   # of the next delivery (failed: one more than before)
  retryAfterMs @2 :UInt32;    # failed and extended: run it again after this long
  validForMs @3 :UInt32;      # extended: the lease ends this long after the broker answered
}

struct ExtendLeaseOk {
  results @0 :List(LeaseExtension);   # one per receipt, in the request's order
}

# ---- lifecycle: deleting topics and consumer groups, resetting a group's
# offsets, purging dead letters ----
#
# One request kind for the four operator verbs (txmqctl topic delete, group
# delete, group reset, dlq purge). Each is authorized as an admin change,
# audit-logged (one line: operator, action, object, result), refused with
# FAILED_PRECONDITION when it cannot be done safely, and with dryRun
# answers exactly what it would change without changing anything.

enum ResetTarget {
  earliest @0;    # the first offset still stored
  latest @1;      # the end: only messages stored from now on
  time @2;        # the first message stored at or after timeMs
  offsets @3;     # the offsets given, per queue; queues not named keep theirs
}

struct QueueOffset {
  queue @0 :UInt32;
  offset @1 :UInt64;
}

struct GroupResetRequest {
  group @0 :Text;
  topic @1 :Text;
  to @2 :ResetTarget;
  timeMs @3 :Int64;                # with to = time: broker time, ms since the epoch
  offsets @4 :List(QueueOffset);   # with to = offsets
}

struct DlqPurgeRequest {
  group @0 :Text;
  messageIds @1 :List(Text);
  all @2 :Bool;
}

struct LifecycleRequest {
  operator @0 :Text;    # who asks, for the audit log
  dryRun @1 :Bool;      # answer what would change; change nothing
  force @2 :Bool;       # go ahead although consumers are live (topic/group delete, reset)
  union {
    deleteTopic @3 :Text;              # topic name
    deleteGroup @4 :Text;              # consumer group
    resetGroup @5 :GroupResetRequest;
    purgeDlq @6 :DlqPurgeRequest;
    moveQueue @7 :QueueMoveRequest;    # a cluster: a queue to another broker group
    # A cluster: deletes the topic's stored placement (txmqctl topic delete
    # asks it once every group's part is gone), so that the name can be
    # placed anew, with another queue count too. Refused while this group
    # holds the topic (again).
    forgetPlacement @8 :Text;
  }
}

struct QueueMoveRequest {
  topic @0 :Text;
  queue @1 :UInt32;
  toGroup @2 :Text;
  # Instead of one queue: every queue whose placement on the groups the
  # cluster has now differs from its stored one (after a group joined).
  rebalance @3 :Bool;
  # Instead of a move: stop waiting for the group `queue` last moved from
  # (gone for good); its consumer groups read the new group's messages of
  # the queue at once, and what the old group still holds of it is not
  # delivered. The reply's fromGroup names that group.
  release @4 :Bool;
}

# A queue's move: sends of it go to toGroup from now on; fromGroup still
# delivers the messages it holds of it, and each consumer group reads
# toGroup's only once it has read those (per-key order across the move).
struct QueueMove {
  topic @0 :Text;
  queue @1 :UInt32;
  fromGroup @2 :Text;
  toGroup @3 :Text;
  generation @4 :UInt32;   # moves of the queue so far, this one included
}

struct TopicDeletion {
  topic @0 :TopicInfo;                  # its queues, messages, and the groups reading it
  delayed @1 :UInt32;                   # delayed messages waiting to enter it
  liveConsumers @2 :List(ClientSummary); # connected consumers of those groups (force)
  # A cluster: the other broker groups serving queues of the topic. Only
  # the asked group's part is deleted; theirs stay, and so does the
  # topic's stored placement (txmqctl deletes each part, then asks
  # forgetPlacement).
  otherGroups @3 :List(Text);
}

struct GroupDeletion {
  group @0 :GroupInfo;           # cursors, retries, members (live consumers: force), dead letters
  retryCopies @1 :UInt64;        # messages in %RETRY%<group> (resent dead letters)
  parkedPulls @2 :UInt32;        # long polls of the group waiting now
}

struct CursorMove {
  queue @0 :UInt32;
  from @1 :UInt64;      # the group's floor before (offsets below were finished)
  to @2 :UInt64;        # its next offset after
  minOffset @3 :UInt64; # the queue's stored range then
  endOffset @4 :UInt64;
}

struct GroupResetResult {
  group @0 :Text;
  topic @1 :Text;
  moves @2 :List(CursorMove);
  retriesDropped @3 :UInt32;     # the group's scheduled redeliveries of the topic
  leasesDropped @4 :UInt32;      # messages of the topic in flight to its consumers (force)
  liveConsumers @5 :List(ClientSummary);
  newCursors @6 :Bool;           # the group had not read the topic before
}

struct DlqPurgeResult {
  group @0 :Text;
  purged @1 :List(Text);      # ids (would be) deleted
  missing @2 :List(Text);     # ids asked for that are not dead letters of the group
  remaining @3 :UInt64;       # dead letters left
}

struct LifecycleOk {
  dryRun @0 :Bool;      # true: nothing changed
  union {
    topicDeleted @1 :TopicDeletion;
    groupDeleted @2 :GroupDeletion;
    groupReset @3 :GroupResetResult;
    dlqPurged @4 :DlqPurgeResult;
    queueMoved @5 :QueueMove;
    queuesMoved @6 :List(QueueMove);   # a rebalance (none: nothing to move)
    placementForgotten @7 :UInt32;     # the deleted placement's queue count
  }
}
