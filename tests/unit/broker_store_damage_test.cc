// The broker store with damaged files: a record that fails its checksum is
// never read back as valid, a damaged index block stops further writes,
// and a repair takes out exactly what cannot be read (the same damage on a
// real txmqd: tests/fault/storage_damage_test.cc).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "storage/src/broker_store.h"
#include "tests/testutil/testutil.h"
#include "tests/unit/broker_store_harness.h"

namespace txmq::storage {
namespace {

using testing::TempDir;

// A store opened with the start-up check (verify_all) and repair chosen.
struct CheckedStore : Harness {
  explicit CheckedStore(const std::string& dir, bool verify_all = true, bool repair = false)
      : Harness(dir) {
    options.verify_all = verify_all;
    options.repair = repair;
  }
};

std::string BodyOf(int i) { return "body-" + std::to_string(1000 + i) + std::string(40, '.'); }

// `rounds` rounds of `per_round` messages in topic 3, queue 0, offsets
// 0, 1, ...
void Fill(const std::string& dir, int rounds = 10, int per_round = 10) {
  CheckedStore s(dir);
  ASSERT_TRUE(s.Open().ok());
  s.store->PutTopic("orders", {3, 1, 1, ""});
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < per_round; ++i) {
      const int n = round * per_round + i;
      const std::string id = "id-" + std::to_string(n);
      const std::string body = BodyOf(n);
      MessageView m;
      m.id = id;
      m.topic = "orders";
      m.body = body;
      m.stored_ms = s.clock;
      s.store->AppendMessage(3, 0, static_cast<uint64_t>(n), m, true);
    }
    ASSERT_TRUE(s.Commit().ok());
  }
}

void FlipInFile(const std::string& path, const std::string& find, size_t skip, size_t n) {
  const std::string bytes = testing::ReadFile(path);
  const size_t at = find.empty() ? skip : bytes.find(find) + skip;
  ASSERT_LT(at + n, bytes.size());
  testing::FlipBytes(path, at, n);
}

std::string Segment(const TempDir& dir) { return dir.path() + "/log/00000000000000000000.seg"; }

TEST(BrokerStoreDamage, ADamagedRecordIsReadAsCorruptionNamingItsFileAndIsNotCounted) {
  TempDir dir;
  Fill(dir.path());
  CheckedStore s(dir.path(), /*verify_all=*/false);  // damage found when read, not at start
  ASSERT_TRUE(s.Open().ok());
  FlipInFile(Segment(dir), BodyOf(42), 5, 3);
  auto m = s.store->ReadMessage(3, 0, 42);
  ASSERT_EQ(m.status().code(), StatusCode::kCorruption);
  EXPECT_NE(m.status().message().find(Segment(dir) + ", byte "), std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("message 3/0/42"), std::string::npos);
  EXPECT_EQ(s.store->ReadMessage(3, 0, 42).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(s.store->stats().damaged_records, 1u) << "counted once";
  EXPECT_EQ(s.store->unreadable_messages(), 1u);
  for (int n : {0, 41, 43, 99}) {
    auto ok = s.store->ReadMessage(3, 0, static_cast<uint64_t>(n));
    ASSERT_TRUE(ok.ok()) << n << ": " << ok.status().ToString();
    EXPECT_EQ(ok->body.message.body, BodyOf(n));
  }
}

TEST(BrokerStoreDamage, RepairTakesOutExactlyTheUnreadableMessageAndNamesIt) {
  TempDir dir;
  Fill(dir.path());
  FlipInFile(Segment(dir), BodyOf(42), 5, 3);
  {
    CheckedStore plain(dir.path());
    EXPECT_EQ(plain.Open().code(), StatusCode::kCorruption);
  }
  {
    CheckedStore s(dir.path(), true, /*repair=*/true);
    ASSERT_TRUE(s.Open().ok());
    const RepairReport& r = s.store->repair_report();
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].id, "id-42");
    EXPECT_EQ(r.messages[0].topic, "orders");
    EXPECT_EQ(r.messages[0].offset, 42u);
    EXPECT_EQ(r.log_damage.size(), 1u);
    EXPECT_FALSE(r.index_rebuilt);
  }
  CheckedStore s(dir.path());
  ASSERT_TRUE(s.Open().ok()) << "the repaired directory starts";
  EXPECT_EQ(s.store->ReadMessage(3, 0, 42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.store->unreadable_messages(), 1u);
  for (int n = 0; n < 100; ++n) {
    if (n != 42) {
      EXPECT_TRUE(s.store->ReadMessage(3, 0, static_cast<uint64_t>(n)).ok()) << n;
    }
  }
  EXPECT_TRUE(s.store->repair_report().messages.empty());
}

std::string BiggestTable(const TempDir& dir) {
  std::string table;
  uint64_t size = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/index")) {
    if (e.path().extension() == ".ldb" && e.file_size() > size) {
      table = e.path().string();
      size = e.file_size();
    }
  }
  return table;
}

TEST(BrokerStoreDamage, ADamagedIndexBlockFoundWhileServingStopsAllWrites) {
  TempDir dir;
  // Enough message ids ('D' keys, first in the index) that the first data
  // block holds nothing else, so the start does not read it.
  Fill(dir.path(), 10, 100);
  const std::string table = BiggestTable(dir);
  ASSERT_FALSE(table.empty());
  FlipInFile(table, "", 100, 32);
  CheckedStore s(dir.path(), /*verify_all=*/false);  // found when read, not at start
  ASSERT_TRUE(s.Open().ok());
  EXPECT_FALSE(s.store->GetId(1'000'000 / store::kIdBucketMs, "id-0").has_value());
  s.store->PutMeta("after", "x");
  const Status next = s.Commit();
  EXPECT_EQ(next.code(), StatusCode::kCorruption);
  EXPECT_NE(next.message().find("the index is damaged"), std::string::npos) << next.message();
  EXPECT_NE(next.message().find("--repair"), std::string::npos) << next.message();
}

TEST(BrokerStoreDamage, ADamagedIndexIsRefusedAtStartAndRebuiltFromTheLog) {
  TempDir dir;
  Fill(dir.path());
  const std::string table = BiggestTable(dir);
  FlipInFile(table, "", 100, 32);
  {
    CheckedStore plain(dir.path());
    const Status s = plain.Open();
    EXPECT_EQ(s.code(), StatusCode::kCorruption);
    EXPECT_NE(s.message().find(table), std::string::npos) << s.message();
  }
  {
    CheckedStore s(dir.path(), true, /*repair=*/true);
    ASSERT_TRUE(s.Open().ok());
    EXPECT_TRUE(s.store->repair_report().index_rebuilt);
    EXPECT_TRUE(s.store->repair_report().messages.empty());
  }
  CheckedStore s(dir.path());
  ASSERT_TRUE(s.Open().ok());
  for (int n = 0; n < 100; ++n) {
    auto m = s.store->ReadMessage(3, 0, static_cast<uint64_t>(n));
    ASSERT_TRUE(m.ok()) << n << ": " << m.status().ToString();
    EXPECT_EQ(m->body.message.body, BodyOf(n));
  }
  // The message-id index is derived from the log too (Fill stored at 1'000'000 ms).
  auto id = s.store->GetId(1'000'000 / store::kIdBucketMs, "id-7");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->offset, 7u);
}

}  // namespace
}  // namespace txmq::storage
