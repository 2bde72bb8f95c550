// An in-memory Coordinator with etcd's semantics, for unit tests of the
// cluster code: one revision per write (a transaction's writes share one;
// deleting a missing key writes nothing), create/mod revisions and versions
// as etcd keeps them, compares on a missing key as etcd does (its
// revisions are 0, its value equals nothing), a put with an ended lease
// fails with kNotFound, revoking or expiring a lease deletes its keys in
// one revision.
//
// Time is the test's: leases expire only when Advance() moves the fake's
// clock past their deadline. SetReachable(false) makes every call fail
// with kUnavailable, as an etcd that cannot be reached does.
//
// The contract tests in tests/cluster/ run the same cases against this
// fake and a real etcd, so the two do not drift apart.
//
// Thread safety: safe to call from any thread (one mutex).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "broker/src/cluster/coordinator.h"

namespace txmq::testing {

class FakeCoordinator final : public cluster::Coordinator {
 public:
  FakeCoordinator() = default;
  FakeCoordinator(const FakeCoordinator&) = delete;
  FakeCoordinator& operator=(const FakeCoordinator&) = delete;

  // Moves the fake's clock and expires every lease whose TTL ran out.
  void Advance(std::chrono::milliseconds by);
  // false: every call fails with kUnavailable until set back to true.
  void SetReachable(bool reachable);
  cluster::Revision revision() const;

  Result<cluster::Lease> GrantLease(std::chrono::seconds ttl) override;
  Result<std::chrono::seconds> KeepAlive(cluster::LeaseId lease) override;
  Status RevokeLease(cluster::LeaseId lease) override;
  Result<cluster::ReadResult> Get(const std::string& key) override;
  Result<cluster::ReadResult> GetPrefix(const std::string& prefix) override;
  Result<cluster::Revision> Put(const std::string& key, const std::string& value,
                                cluster::LeaseId lease = 0) override;
  Result<cluster::Revision> Delete(const std::string& key) override;
  Result<cluster::TxnResult> Commit(const cluster::Txn& txn) override;

 private:
  struct LeaseState {
    std::chrono::seconds ttl;
    std::chrono::milliseconds deadline;  // on the fake's clock
    std::set<std::string> keys;
  };

  Status CheckReachable(const char* call) const;
  bool Holds(const cluster::Compare& c) const;
  Status CheckLeases(const std::vector<cluster::WriteOp>& ops) const;
  // Applies `ops` at revision_ + 1 when any of them writes; returns whether
  // one did.
  bool Apply(const std::vector<cluster::WriteOp>& ops);
  bool Erase(const std::string& key);
  void EndLease(std::map<cluster::LeaseId, LeaseState>::iterator it);

  mutable std::mutex mu_;
  bool reachable_ = true;                          // guarded by mu_
  std::chrono::milliseconds now_{0};               // guarded by mu_
  cluster::Revision revision_ = 1;                 // etcd starts at 1; guarded by mu_
  cluster::LeaseId next_lease_ = 0x694d0001;       // guarded by mu_
  std::map<std::string, cluster::KeyValue> kvs_;   // guarded by mu_
  std::map<cluster::LeaseId, LeaseState> leases_;  // guarded by mu_
};

}  // namespace txmq::testing
