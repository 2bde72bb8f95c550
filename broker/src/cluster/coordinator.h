// Coordinator: what the cluster code needs from etcd, and no more.
//
// A broker group's liveness, leader and in-sync replica set live in a
// coordination store (etcd 3.4, see DESIGN.md "Cluster coordination").
// Replication and election code talk to it only through this interface, so
// their unit tests run on the in-memory fake (tests/testutil/
// fake_coordinator.h) and production runs on etcd
// (broker/src/cluster/etcd_coordinator.h).
//
// The store is a map of byte-string keys to values with a revision: a
// counter that grows by one with every write (a transaction's writes share
// one). Each key remembers the revision that created it (create_revision)
// and the one that last changed it (mod_revision). Safety comes from those
// revisions, never from timing: becoming leader and changing the ISR are
// transactions that compare a key's revision (or its absence) and write
// only if nothing changed since it was read. A lease only says "this
// broker seems alive"; etcd restarts every lease's TTL when its own leader
// changes (etcd #9395), so an expired lease is never proof that its holder
// stopped acting.
//
// No watch: a caller that waits for a change polls Get/GetPrefix and
// compares revisions (the cluster's keys change a few times a minute).
// Watches can be added behind this interface when polling costs too much.
//
// Errors: every call returns within the implementation's timeouts. kUnavailable
// when the store cannot be reached (retry), kTimeout when it was reached but
// did not answer in time (the write may or may not have happened: read
// before retrying a conditional write), kNotFound for an unknown or expired
// lease, kInvalidArgument for a bad request. Messages name the endpoint and
// the call.
//
// Thread safety: implementations are safe to call from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "txmq/status.h"

namespace txmq::cluster {

// A point in the store's history; 0 means "never" (a missing key's
// create_revision and mod_revision).
using Revision = int64_t;

// A lease's id as the store assigns it; 0 means "no lease".
using LeaseId = int64_t;

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  int64_t version = 0;  // writes since the key was created (1 after the first)
  LeaseId lease = 0;
};

// What a read saw and at which revision of the whole store.
struct ReadResult {
  std::vector<KeyValue> kvs;  // sorted by key
  Revision revision = 0;      // the store's revision when it was read
};

struct Lease {
  LeaseId id = 0;
  // The TTL the store granted: it may raise a short request to its minimum
  // (etcd: 1.5 election timeouts, rounded up to whole seconds).
  std::chrono::seconds ttl{0};
};

// One condition of a transaction; all of a transaction's must hold.
struct Compare {
  enum class Target { kModRevision, kCreateRevision, kValue };

  std::string key;
  Target target = Target::kModRevision;
  Revision revision = 0;  // kModRevision, kCreateRevision
  std::string value;      // kValue; a missing key's value never equals anything

  // The key does not exist (its create_revision is 0).
  static Compare Absent(std::string key) {
    return {std::move(key), Target::kCreateRevision, 0, {}};
  }
  // Nobody wrote the key since it was read at `rev` (0: it is absent).
  static Compare ModRevisionIs(std::string key, Revision rev) {
    return {std::move(key), Target::kModRevision, rev, {}};
  }
  // The key is the same incarnation (not deleted and created again).
  static Compare CreateRevisionIs(std::string key, Revision rev) {
    return {std::move(key), Target::kCreateRevision, rev, {}};
  }
  static Compare ValueIs(std::string key, std::string value) {
    return {std::move(key), Target::kValue, 0, std::move(value)};
  }
};

// One write of a transaction: a put (bound to `lease` unless 0) or the
// delete of one key.
struct WriteOp {
  enum class Kind { kPut, kDelete };

  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  LeaseId lease = 0;

  static WriteOp Put(std::string key, std::string value, LeaseId lease = 0) {
    return {Kind::kPut, std::move(key), std::move(value), lease};
  }
  static WriteOp Delete(std::string key) { return {Kind::kDelete, std::move(key), {}, 0}; }
};

struct Txn {
  std::vector<Compare> compares;
  std::vector<WriteOp> on_success;  // applied atomically when every compare holds
  std::vector<WriteOp> on_failure;  // applied atomically otherwise
};

struct TxnResult {
  bool succeeded = false;  // every compare held
  Revision revision = 0;   // the store's revision after the transaction
};

class Coordinator {
 public:
  virtual ~Coordinator() = default;

  // A new lease that expires `ttl` after it is granted or last kept alive.
  // kInvalidArgument when ttl < 1 s.
  virtual Result<Lease> GrantLease(std::chrono::seconds ttl) = 0;
  // One refresh; the caller's thread or timer calls it well within the TTL
  // (a third of it is usual). Returns the TTL restarted; kNotFound when the
  // lease has expired or was revoked (its keys are gone: grant a new one).
  virtual Result<std::chrono::seconds> KeepAlive(LeaseId lease) = 0;
  // Ends the lease now and deletes every key put with it. kNotFound when
  // it had already ended.
  virtual Status RevokeLease(LeaseId lease) = 0;

  // The key (kvs has 0 or 1 entries).
  virtual Result<ReadResult> Get(const std::string& key) = 0;
  // Every key that starts with `prefix` (not empty), sorted.
  virtual Result<ReadResult> GetPrefix(const std::string& prefix) = 0;

  // Unconditional writes; each returns the store's revision after it.
  // A delete of a missing key writes nothing (and leaves the revision).
  virtual Result<Revision> Put(const std::string& key, const std::string& value,
                               LeaseId lease = 0) = 0;
  virtual Result<Revision> Delete(const std::string& key) = 0;

  // All of txn.compares checked and one branch written, atomically.
  // kNotFound (and nothing written) when a put names a lease that ended.
  virtual Result<TxnResult> Commit(const Txn& txn) = 0;
};

}  // namespace txmq::cluster
