# txmq replication protocol: between the leader of a broker group and its
# followers (DESIGN.md "Replication"). Separate from txmq.capnp: clients
# never see these messages, and the two evolve independently.
#
# Every ZeroMQ message on a replication link is exactly one
# ReplicationMessage, serialized unpacked. The leader sends append and
# truncate; the follower answers each with exactly one answer, echoing
# requestId. One request per follower is in flight at a time (the leader
# waits for the answer or gives up after a timeout and sends again), so
# answers need no reordering.
#
# Terms:
#   index   1, 2, 3, ... the position of an entry in the group's log
#   epoch   the leader epoch that wrote an entry (GroupState.epoch)
#   crc     a chain: masked CRC32C of (previous entry's crc, epoch, index,
#           payload); equal (index, crc) on two replicas means equal logs
#           up to that index
#
# Evolution: fields are only ever added, never renumbered.

@0x9cf70c895159e775;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("txmq::wire::repl");

# One entry named by its place and its chain crc. index 0 (crc 0) is the
# empty log.
struct EntryRef {
  index @0 :UInt64;
  crc @1 :UInt32;
}

struct Entry {
  index @0 :UInt64;
  epoch @1 :Int64;
  crc @2 :UInt32;
  payload @3 :Data;   # one write round of the broker store, opaque here
}

# Leader -> follower: append `entries` after `prev`, which the follower must
# hold. An empty `entries` is a heartbeat (it still carries leaderCommit).
struct Append {
  epoch @0 :Int64;          # the leader's epoch
  leader @1 :Text;          # the leader's node name
  prev @2 :EntryRef;
  entries @3 :List(Entry);  # consecutive indexes from prev.index + 1
  leaderCommit @4 :UInt64;  # the leader's commit index
}

# Leader -> follower, after a divergent answer: keep the log up to and
# including `keep` (the leader's entry at that index) and drop the rest.
# The leader computes keep.index from the follower's divergence report and
# its own epoch -> start-index table.
struct Truncate {
  epoch @0 :Int64;
  leader @1 :Text;
  keep @2 :EntryRef;
  leaderCommit @3 :UInt64;
}

enum Outcome {
  ok @0;           # done and fsynced; lastDurable is the new end in common
  staleEpoch @1;   # the request's epoch is below the follower's: nothing changed
  gap @2;          # the follower lacks prev; lastDurable is its last entry
  divergent @3;    # the follower's entry at prev (or at an appended index)
                   # differs; see divergentEpoch and following fields
  failed @4;       # the follower could not write or sync; reason says why
}

# Follower -> leader: the answer to one append or truncate.
struct Answer {
  epoch @0 :Int64;           # the highest epoch the follower has persisted
  node @1 :Text;             # the follower's node name
  outcome @2 :Outcome;
  lastDurable @3 :EntryRef;  # ok: the last entry both now hold, fsynced;
                             # otherwise the follower's last fsynced entry
  # divergent: the epoch of the follower's entry where the logs differ, the
  # first index the follower holds of that epoch, and its last entry of it.
  divergentEpoch @4 :Int64;
  epochStart @5 :UInt64;
  epochEnd @6 :EntryRef;
  reason @7 :Text;           # for people
}

struct ReplicationMessage {
  requestId @0 :UInt64;
  union {
    append @1 :Append;
    truncate @2 :Truncate;
    answer @3 :Answer;
  }
}
