// ReplicaFollower alone: the epoch fence, prev checks, divergence reports
// and the truncation guard, on a FileReplicaLog in a temporary directory.
#include "broker/src/cluster/replica_follower.h"

#include <gtest/gtest.h>

#include "broker/src/cluster/file_replica_log.h"
#include "tests/testutil/testutil.h"

namespace txmq::cluster {
namespace {

using testing::TempDir;

// A leader's log kept in memory: what the follower is compared with.
struct Script {
  std::vector<ReplicaEntry> entries;
  EntryRef last() const { return entries.empty() ? EntryRef{} : entries.back().ref(); }
  EntryRef at(uint64_t index) const { return index == 0 ? EntryRef{} : entries[index - 1].ref(); }
  void Add(int64_t epoch, int n) {
    for (int i = 0; i < n; ++i) {
      EntryRef prev = last();
      std::string payload = "e" + std::to_string(epoch) + "-" + std::to_string(prev.index + 1);
      entries.push_back(
          {prev.index + 1, epoch, ChainCrc(prev.crc, epoch, prev.index + 1, payload), payload});
    }
  }
  // An append of entries (from, to] in `epoch` by `leader`.
  AppendRequest Append(int64_t epoch, uint64_t from, uint64_t to, uint64_t commit = 0,
                       const std::string& leader = "L") const {
    AppendRequest r{epoch, leader, at(from), {}, commit};
    for (uint64_t i = from + 1; i <= to; ++i) r.entries.push_back(entries[i - 1]);
    return r;
  }
};

class FollowerTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    follower_.reset();
    log_.reset();
    auto log = FileReplicaLog::Open({dir_.path(), 1 << 16});
    ASSERT_TRUE(log.ok()) << log.status().message();
    log_ = std::move(*log);
    follower_ = std::make_unique<ReplicaFollower>("F", *log_);
  }

  TempDir dir_;
  std::unique_ptr<FileReplicaLog> log_;
  std::unique_ptr<ReplicaFollower> follower_;
};

TEST_F(FollowerTest, AppendsInOrderSyncsAndLearnsTheCommitIndex) {
  Script leader;
  leader.Add(1, 10);
  AppendAnswer a = follower_->HandleAppend(leader.Append(1, 0, 6, 4));
  EXPECT_EQ(a.outcome, Outcome::kOk) << a.reason;
  EXPECT_EQ(a.last_durable, leader.at(6));
  EXPECT_EQ(log_->durable(), leader.at(6));
  EXPECT_EQ(follower_->commit_index(), 4u);
  // A resend of what it has, plus more: the known part is skipped.
  a = follower_->HandleAppend(leader.Append(1, 3, 10, 20));
  EXPECT_EQ(a.outcome, Outcome::kOk) << a.reason;
  EXPECT_EQ(a.last_durable, leader.at(10));
  EXPECT_EQ(follower_->commit_index(), 10u);  // capped at what it shares
}

TEST_F(FollowerTest, StaleEpochIsRefusedAndChangesNothing) {
  Script leader;
  leader.Add(1, 4);
  ASSERT_EQ(follower_->HandleAppend(leader.Append(1, 0, 4)).outcome, Outcome::kOk);
  ASSERT_EQ(follower_->HandleAppend(leader.Append(3, 4, 4, 0, "M")).outcome, Outcome::kOk);
  ASSERT_EQ(log_->highest_epoch(), 3);

  Script old = leader;
  old.Add(2, 3);
  const EntryRef before = log_->last();
  AppendAnswer a = follower_->HandleAppend(old.Append(2, 4, 7, 7));
  EXPECT_EQ(a.outcome, Outcome::kStaleEpoch);
  EXPECT_EQ(a.epoch, 3);
  a = follower_->HandleTruncate({2, "L", leader.at(1), 0});
  EXPECT_EQ(a.outcome, Outcome::kStaleEpoch);
  EXPECT_EQ(log_->last(), before);
  EXPECT_EQ(log_->highest_epoch(), 3);
  EXPECT_EQ(follower_->commit_index(), 0u);
}

TEST_F(FollowerTest, HigherEpochIsDurableBeforeTheAnswer) {
  AppendAnswer a = follower_->HandleAppend(Script{}.Append(5, 0, 0));
  EXPECT_EQ(a.outcome, Outcome::kOk);
  EXPECT_EQ(a.epoch, 5);
  Reopen();  // a restart: the fence holds
  Script old;
  old.Add(4, 1);
  EXPECT_EQ(follower_->HandleAppend(old.Append(4, 0, 1)).outcome, Outcome::kStaleEpoch);
  EXPECT_EQ(log_->last().index, 0u);
}

TEST_F(FollowerTest, TwoLeadersOfOneEpochAreRefused) {
  ASSERT_EQ(follower_->HandleAppend(Script{}.Append(2, 0, 0, 0, "A")).outcome, Outcome::kOk);
  EXPECT_EQ(follower_->HandleAppend(Script{}.Append(2, 0, 0, 0, "B")).outcome, Outcome::kFailed);
}

TEST_F(FollowerTest, GapNamesItsLastEntry) {
  Script leader;
  leader.Add(1, 8);
  ASSERT_EQ(follower_->HandleAppend(leader.Append(1, 0, 3)).outcome, Outcome::kOk);
  AppendAnswer a = follower_->HandleAppend(leader.Append(1, 5, 8));
  EXPECT_EQ(a.outcome, Outcome::kGap);
  EXPECT_EQ(a.last_durable, leader.at(3));
  EXPECT_EQ(log_->last(), leader.at(3));
}

TEST_F(FollowerTest, DivergenceReportsTheEpochOfTheDifferingEntry) {
  Script base;
  base.Add(1, 5);
  Script old = base;  // epoch 2's leader wrote 6..8 here, then died
  old.Add(2, 3);
  ASSERT_EQ(follower_->HandleAppend(old.Append(2, 0, 8, 5, "O")).outcome, Outcome::kOk);
  Script now = base;  // epoch 3's leader never had them
  now.Add(3, 4);
  AppendAnswer a = follower_->HandleAppend(now.Append(3, 7, 9, 5));
  ASSERT_EQ(a.outcome, Outcome::kDivergent);
  EXPECT_EQ(a.divergent_epoch, 2);
  EXPECT_EQ(a.epoch_start, 6u);
  EXPECT_EQ(a.epoch_end, old.at(8));
  // A prev that matches followed by entries that do not: same report.
  a = follower_->HandleAppend(now.Append(3, 5, 9, 5));
  ASSERT_EQ(a.outcome, Outcome::kDivergent);
  EXPECT_EQ(a.divergent_epoch, 2);
  EXPECT_EQ(log_->last(), old.at(8));  // nothing cut without a Truncate

  // Truncation at an entry the follower does not share is another
  // divergence; at the leader's entry it cuts, durably.
  EXPECT_EQ(follower_->HandleTruncate({3, "L", now.at(6), 5}).outcome, Outcome::kDivergent);
  a = follower_->HandleTruncate({3, "L", now.at(5), 5});
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.reason;
  EXPECT_EQ(a.last_durable, now.at(5));
  a = follower_->HandleAppend(now.Append(3, 5, 9, 9));
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.reason;
  Reopen();
  EXPECT_EQ(log_->last(), now.at(9));
}

TEST_F(FollowerTest, NeverTruncatesBelowTheCommitIndexItLearned) {
  Script leader;
  leader.Add(1, 6);
  ASSERT_EQ(follower_->HandleAppend(leader.Append(1, 0, 6, 4)).outcome, Outcome::kOk);
  AppendAnswer a = follower_->HandleTruncate({1, "L", leader.at(2), 4});
  EXPECT_EQ(a.outcome, Outcome::kFailed);
  EXPECT_EQ(log_->last(), leader.at(6));
}

}  // namespace
}  // namespace txmq::cluster
