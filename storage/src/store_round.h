// One write round of the broker store: every change that arrived while the
// disk was busy with the previous round. A round becomes one commit-log
// entry, is made durable with one fdatasync, and is applied to the index;
// only then do its completions run (that is where replies are sent).
//
// Records that carry message bytes (messages, halves, delayed messages) and
// the round's index operations are collected separately; at seal time the
// operations become the entry's last record.
//
// Thread safety: a Round is built by the core thread, handed to the
// storage thread whole, and handed back; never shared.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/src/commit_log.h"
#include "storage/src/store_format.h"
#include "txmq/status.h"

namespace txmq::storage {

class Round {
 public:
  using Completion = std::function<void(const Status&)>;

  void AppendMessage(const store::MessageBody& m) {
    store::AppendMessageRecord(m, &records_);
    ++messages_;
  }
  void AppendHalf(const store::HalfBody& h) { store::AppendHalfRecord(h, &records_); }
  void AppendDelayed(const store::DelayedBody& d) { store::AppendDelayedRecord(d, &records_); }
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  // The key (of a put or a record in this round) has no live value in the
  // index: its delete may cancel its put in memory (index_overlay.h). Not
  // logged: a replica or a replay applies the round without it.
  void MarkNew(std::string key) { new_keys_.push_back(std::move(key)); }
  // Sorted by Seal.
  const std::vector<std::string>& new_keys() const { return new_keys_; }

  // Runs once the round is durable and applied (or failed): last added,
  // last run; OnDurableFirst puts `fn` before every completion so far.
  void OnDurable(Completion fn) { completions_.push_back(std::move(fn)); }
  void OnDurableFirst(Completion fn) { completions_.insert(completions_.begin(), std::move(fn)); }

  // Nothing to write (completions alone need no log entry). A replicated
  // round has its operations sealed already (ops_record_, ops_ empty).
  bool writes_nothing() const { return records_.empty() && ops_.empty() && ops_record_.empty(); }
  bool empty() const { return writes_nothing() && completions_.empty(); }
  size_t bytes() const { return records_.size() + ops_.size(); }
  size_t messages() const { return messages_; }
  size_t completions() const { return completions_.size(); }

  // Store side.
  // Builds the entry: records, then one kIndexOps record of the operations.
  void Seal(int64_t time_ms, uint64_t epoch);
  // Builds the entry from another store's sealed round (replication): its
  // records and its operations record, as that store wrote them.
  void SealReplicated(int64_t time_ms, uint64_t epoch, std::string records, std::string ops_record);
  PendingEntry& entry() { return entry_; }
  const PendingEntry& entry() const { return entry_; }
  // The whole payload as written (records and the operations record).
  std::string_view records() const { return records_; }
  std::string_view ops_record() const { return ops_record_; }
  const Status& status() const { return status_; }
  void set_status(Status s) { status_ = std::move(s); }
  // Run by the writer just before the round's write (a cluster leader
  // waits there for its replica log to hold the round first); an error
  // fails the round unwritten, and every round after it.
  void set_before_write(std::function<Status()> fn) { before_write_ = std::move(fn); }
  Status RunBeforeWrite() { return before_write_ ? before_write_() : Status::OK(); }
  // Runs the completions with the round's status, in order.
  void Complete();

 private:
  std::string records_;
  std::string ops_;
  std::string ops_record_;  // built by Seal
  std::vector<std::string> new_keys_;
  size_t messages_ = 0;
  std::vector<Completion> completions_;
  PendingEntry entry_;
  Status status_;
  std::function<Status()> before_write_;
};

}  // namespace txmq::storage
