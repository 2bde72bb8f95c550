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
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
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
  clientId @0 :Text;    # also the socket's routing id
  role @1 :Role;
  group @2 :Text;       # producer or consumer group; empty for admin
  version @3 :UInt32;   # protocolVersion of the client
  software @4 :Text;    # "txmq-producer 0.1.0", shown to operators
}

struct HelloOk {
  brokerName @0 :Text;
  brokerVersion @1 :Text;
  maxMessageBytes @2 :UInt32;
  clientTimeoutMs @3 :UInt32;   # the broker forgets a client silent this long
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
  }
}
