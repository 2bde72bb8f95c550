#include "tests/testutil/fake_coordinator.h"

#include <utility>

namespace txmq::testing {

using cluster::Compare;
using cluster::KeyValue;
using cluster::LeaseId;
using cluster::ReadResult;
using cluster::Revision;
using cluster::WriteOp;

void FakeCoordinator::Advance(std::chrono::milliseconds by) {
  std::lock_guard lock(mu_);
  now_ += by;
  for (auto it = leases_.begin(); it != leases_.end();) {
    auto next = std::next(it);
    if (it->second.deadline <= now_) EndLease(it);
    it = next;
  }
}

void FakeCoordinator::SetReachable(bool reachable) {
  std::lock_guard lock(mu_);
  reachable_ = reachable;
}

Revision FakeCoordinator::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

Status FakeCoordinator::CheckReachable(const char* call) const {
  if (reachable_) return Status::OK();
  return Status::Unavailable(std::string("etcd at fake://coordinator: ") + call +
                             ": cannot connect (unreachable in this test)");
}

Result<cluster::Lease> FakeCoordinator::GrantLease(std::chrono::seconds ttl) {
  std::lock_guard lock(mu_);
  if (Status s = CheckReachable("lease grant"); !s.ok()) return s;
  if (ttl < std::chrono::seconds(1)) {
    return Status::InvalidArgument("lease TTL " + std::to_string(ttl.count()) +
                                   " s: must be at least 1 s");
  }
  LeaseId id = next_lease_++;
  leases_[id] = LeaseState{ttl, now_ + ttl, {}};
  return cluster::Lease{id, ttl};
}

Result<std::chrono::seconds> FakeCoordinator::KeepAlive(LeaseId lease) {
  std::lock_guard lock(mu_);
  if (Status s = CheckReachable("lease keep-alive"); !s.ok()) return s;
  auto it = leases_.find(lease);
  if (it == leases_.end()) {
    return Status::NotFound("lease " + std::to_string(lease) + " expired or was revoked");
  }
  it->second.deadline = now_ + it->second.ttl;
  return it->second.ttl;
}

Status FakeCoordinator::RevokeLease(LeaseId lease) {
  std::lock_guard lock(mu_);
  if (Status s = CheckReachable("lease revoke"); !s.ok()) return s;
  auto it = leases_.find(lease);
  if (it == leases_.end()) {
    return Status::NotFound("lease " + std::to_string(lease) + " expired or was revoked");
  }
  EndLease(it);
  return Status::OK();
}

Result<ReadResult> FakeCoordinator::Get(const std::string& key) {
  std::lock_guard lock(mu_);
  if (Status s = CheckReachable("range"); !s.ok()) return s;
  ReadResult r;
  r.revision = revision_;
  if (auto it = kvs_.find(key); it != kvs_.end()) r.kvs.push_back(it->second);
  return r;
}

Result<ReadResult> FakeCoordinator::GetPrefix(const std::string& prefix) {
  std::lock_guard lock(mu_);
  if (Status s = CheckReachable("range"); !s.ok()) return s;
  if (prefix.empty()) return Status::InvalidArgument("GetPrefix: the prefix is empty");
  ReadResult r;
  r.revision = revision_;
  for (auto it = kvs_.lower_bound(prefix); it != kvs_.end() && it->first.starts_with(prefix);
       ++it) {
    r.kvs.push_back(it->second);
  }
  return r;
}

Result<Revision> FakeCoordinator::Put(const std::string& key, const std::string& value,
                                      LeaseId lease) {
  auto r = Commit(cluster::Txn{{}, {WriteOp::Put(key, value, lease)}, {}});
  if (!r.ok()) return r.status();
  return r->revision;
}

Result<Revision> FakeCoordinator::Delete(const std::string& key) {
  auto r = Commit(cluster::Txn{{}, {WriteOp::Delete(key)}, {}});
  if (!r.ok()) return r.status();
  return r->revision;
}

Result<cluster::TxnResult> FakeCoordinator::Commit(const cluster::Txn& txn) {
  std::lock_guard lock(mu_);
  if (Status s = CheckReachable("txn"); !s.ok()) return s;
  bool all_hold = true;
  for (const Compare& c : txn.compares) all_hold = all_hold && Holds(c);
  const auto& ops = all_hold ? txn.on_success : txn.on_failure;
  // etcd checks the leases of the branch it takes only, before writing.
  if (Status s = CheckLeases(ops); !s.ok()) return s;
  Apply(ops);
  return cluster::TxnResult{all_hold, revision_};
}

bool FakeCoordinator::Holds(const Compare& c) const {
  auto it = kvs_.find(c.key);
  if (c.target == Compare::Target::kValue) return it != kvs_.end() && it->second.value == c.value;
  // A missing key compares as all zeros, as in etcd.
  KeyValue none;
  const KeyValue& kv = it == kvs_.end() ? none : it->second;
  Revision have = c.target == Compare::Target::kModRevision ? kv.mod_revision : kv.create_revision;
  return have == c.revision;
}

Status FakeCoordinator::CheckLeases(const std::vector<WriteOp>& ops) const {
  for (const WriteOp& op : ops) {
    if (op.kind == WriteOp::Kind::kPut && op.lease != 0 && !leases_.contains(op.lease)) {
      return Status::NotFound("put '" + op.key + "': lease " + std::to_string(op.lease) +
                              " expired or was revoked");
    }
  }
  return Status::OK();
}

bool FakeCoordinator::Apply(const std::vector<WriteOp>& ops) {
  const Revision rev = revision_ + 1;
  bool wrote = false;
  for (const WriteOp& op : ops) {
    if (op.kind == WriteOp::Kind::kDelete) {
      wrote = Erase(op.key) || wrote;
      continue;
    }
    KeyValue& kv = kvs_[op.key];
    if (kv.create_revision == 0) {
      kv.key = op.key;
      kv.create_revision = rev;
    }
    if (kv.lease != 0 && kv.lease != op.lease) {
      if (auto l = leases_.find(kv.lease); l != leases_.end()) l->second.keys.erase(op.key);
    }
    kv.value = op.value;
    kv.mod_revision = rev;
    kv.version++;
    kv.lease = op.lease;
    if (op.lease != 0) leases_[op.lease].keys.insert(op.key);
    wrote = true;
  }
  if (wrote) revision_ = rev;
  return wrote;
}

bool FakeCoordinator::Erase(const std::string& key) {
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return false;
  if (it->second.lease != 0) {
    if (auto l = leases_.find(it->second.lease); l != leases_.end()) l->second.keys.erase(key);
  }
  kvs_.erase(it);
  return true;
}

void FakeCoordinator::EndLease(std::map<LeaseId, LeaseState>::iterator it) {
  std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  bool wrote = false;
  for (const std::string& key : keys) wrote = kvs_.erase(key) > 0 || wrote;
  if (wrote) ++revision_;
}

}  // namespace txmq::testing
