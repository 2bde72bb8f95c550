// The index overlay alone: which operations reach LevelDB once sealed, and
// what reads see before and while they do.
#include "storage/src/index_overlay.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/src/store_format.h"

namespace txmq::storage {
namespace {

// "put K=V" / "del K" for each operation of the sealed batches, in order.
std::vector<std::string> SealedOps(IndexOverlay& overlay) {
  struct Collect : leveldb::WriteBatch::Handler {
    std::vector<std::string> ops;
    void Put(const leveldb::Slice& k, const leveldb::Slice& v) override {
      ops.push_back("put " + k.ToString() + "=" + v.ToString());
    }
    void Delete(const leveldb::Slice& k) override { ops.push_back("del " + k.ToString()); }
  } collect;
  for (leveldb::WriteBatch& batch : overlay.Seal(16)) EXPECT_TRUE(batch.Iterate(&collect).ok());
  return collect.ops;
}

// Keys of a keyspace the overlay holds (half references).
std::string H(const std::string& name) { return std::string(1, store::kHalfRef) + name; }

TEST(IndexOverlay, HoldsOnlyTheTransactionKeyspaces) {
  EXPECT_TRUE(IndexOverlay::Holds(H("a")));
  EXPECT_TRUE(IndexOverlay::Holds(std::string(1, store::kCheck) + "a"));
  EXPECT_TRUE(IndexOverlay::Holds(std::string(1, store::kTx) + "a"));
  EXPECT_FALSE(IndexOverlay::Holds(std::string(1, store::kCursor) + "a"));
  EXPECT_FALSE(IndexOverlay::Holds(std::string(1, store::kQueueRun) + "a"));
  EXPECT_FALSE(IndexOverlay::Holds(""));
}

TEST(IndexOverlay, ANewKeyDeletedBeforeTheSealNeverReachesTheIndex) {
  IndexOverlay overlay;
  overlay.Put(H("a"), "1", /*is_new=*/true);
  std::string v;
  ASSERT_EQ(overlay.Get(H("a"), &v), IndexOverlay::Found::kValue);
  EXPECT_EQ(v, "1");
  overlay.Delete(H("a"));
  EXPECT_EQ(overlay.Get(H("a"), &v), IndexOverlay::Found::kNotHere)
      << "nothing to hide: the index never had it";
  EXPECT_TRUE(SealedOps(overlay).empty());
  EXPECT_EQ(overlay.stats().dropped, 1u);
}

TEST(IndexOverlay, ADeleteOfAKeyTheIndexMayHoldIsATombstone) {
  IndexOverlay overlay;
  overlay.Put(H("moved"), "2", /*is_new=*/false);  // the index holds an older value
  overlay.Delete(H("moved"));
  overlay.Delete(H("flushed"));  // put before an earlier seal
  std::string v;
  EXPECT_EQ(overlay.Get(H("moved"), &v), IndexOverlay::Found::kDeleted);
  EXPECT_EQ(overlay.Get(H("flushed"), &v), IndexOverlay::Found::kDeleted);
  EXPECT_EQ(SealedOps(overlay),
            (std::vector<std::string>{"del " + H("flushed"), "del " + H("moved")}));
  EXPECT_EQ(overlay.stats().dropped, 0u);
}

TEST(IndexOverlay, ARewrittenValueReachesTheIndexOnce) {
  IndexOverlay overlay;
  overlay.Put(H("tx"), "prepared", false);
  overlay.Put(H("tx"), "committed", false);
  EXPECT_EQ(SealedOps(overlay), (std::vector<std::string>{"put " + H("tx") + "=committed"}));
}

// A schedule slot deleted and put again at the same time: the tombstone's
// knowledge (the index may hold the old slot) outlives the new put.
TEST(IndexOverlay, APutOverATombstoneKeepsItsDeleteWhenDeletedAgain) {
  IndexOverlay overlay;
  overlay.Delete(H("slot"));
  overlay.Put(H("slot"), "", /*is_new=*/true);
  overlay.Delete(H("slot"));
  EXPECT_EQ(SealedOps(overlay), (std::vector<std::string>{"del " + H("slot")}));
}

TEST(IndexOverlay, SealedOperationsStayReadableAndAPutOverThemIsNotNew) {
  IndexOverlay overlay;
  overlay.Put(H("a"), "1", true);
  overlay.Put(H("b"), "1", true);
  overlay.Delete(H("c"));
  ASSERT_EQ(SealedOps(overlay).size(), 3u);  // being written to LevelDB now
  std::string v;
  ASSERT_EQ(overlay.Get(H("a"), &v), IndexOverlay::Found::kValue);
  EXPECT_EQ(overlay.Get(H("c"), &v), IndexOverlay::Found::kDeleted);
  // The sealed put of b lands in LevelDB: a later delete must hide it even
  // though the writer calls the new put new.
  overlay.Put(H("b"), "2", /*is_new=*/true);
  overlay.Delete(H("b"));
  // The sealed batch deletes c already; deleting it again adds nothing.
  overlay.Delete(H("c"));
  overlay.Put(H("d"), "1", true);
  const auto range = overlay.Range(H(""), H("z"));
  ASSERT_EQ(range.size(), 4u);
  EXPECT_EQ(range[0], IndexOverlay::Entry(H("a"), "1"));
  EXPECT_EQ(range[1], IndexOverlay::Entry(H("b"), std::nullopt)) << "the newer tombstone wins";
  EXPECT_EQ(range[2], IndexOverlay::Entry(H("c"), std::nullopt));
  EXPECT_EQ(range[3], IndexOverlay::Entry(H("d"), "1"));
  overlay.DropSealed();
  EXPECT_EQ(overlay.Get(H("a"), &v), IndexOverlay::Found::kNotHere);
  EXPECT_EQ(SealedOps(overlay),
            (std::vector<std::string>{"del " + H("b"), "put " + H("d") + "=1"}));
}

TEST(IndexOverlay, ARangeEndsBeforeItsEnd) {
  IndexOverlay overlay;
  for (const char* k : {"a", "b", "c"}) overlay.Put(H(k), k, true);
  const auto range = overlay.Range(H("b"), H("c"));
  ASSERT_EQ(range.size(), 1u);
  EXPECT_EQ(range[0].first, H("b"));
}

}  // namespace
}  // namespace txmq::storage
