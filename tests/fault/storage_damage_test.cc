// Storage that never lies: the damage of issue 10 done to a real txmqd's
// data directory (2,000 acknowledged messages, then the broker stopped by
// SIGTERM or killed with SIGKILL): 64 bytes flipped in a log segment, 64
// bytes flipped in an index table file, a truncated log segment. Each is a
// loud refusal at start (exit 4, naming the file and the position);
// `txmqd --repair` reports exactly which messages were lost and every
// other message is delivered once, intact; a torn tail after kill -9
// still starts without a word of refusal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "storage/src/commit_log.h"
#include "storage/src/log_format.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BinPath;
using testing::BrokerProcess;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

constexpr int kMessages = 2000;
constexpr int kExitDamaged = 4;
const std::string kTopic = "damage";

std::string IdOf(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "d-%05d", i);
  return id;
}
std::string BodyOf(int i) { return "body-" + IdOf(i) + "-" + std::string(60, 'x'); }

// Small segments and index files, so the damage lands in a file that
// matters; the rest as txmqd defaults.
std::vector<std::string> BrokerArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--segment-mb",      "2", "--max-message-bytes", "65536",
                                   "--write-buffer-mb", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Sends messages [from, to), each acknowledged (durable) before this
// returns.
void SendAll(const std::string& endpoint, int from = 0, int to = kMessages) {
  Producer p({.broker = endpoint});
  ASSERT_TRUE(p.Start().ok());
  std::vector<std::future<Result<SendResult>>> sends;
  for (int i = from; i < to; ++i) {
    sends.push_back(p.SendAsync({.topic = kTopic, .body = BodyOf(i), .id = IdOf(i)}));
  }
  for (auto& f : sends) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  p.Shutdown();
}

struct Delivered {
  std::map<std::string, int> count;  // deliveries per id
  std::set<std::string> bad_bodies;  // ids whose body is not what was sent
};

// Consumes as a fresh group until `expect` distinct ids came and nothing
// new for a while.
Delivered ConsumeAll(const std::string& endpoint, size_t expect) {
  std::mutex mu;
  Delivered d;
  auto last_new = std::chrono::steady_clock::now();
  Consumer c({.broker = endpoint, .group = "check", .long_poll = 300ms});
  EXPECT_TRUE(c.Subscribe(kTopic, [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 if (d.count[m.id]++ == 0) last_new = std::chrono::steady_clock::now();
                 const std::string expected =
                     m.id.size() == 7 ? BodyOf(std::stoi(m.id.substr(2))) : "";
                 if (m.body != expected) d.bad_bodies.insert(m.id);
                 return ConsumeResult::Success();
               }).ok());
  EXPECT_TRUE(c.Start().ok());
  WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return d.count.size() >= expect && std::chrono::steady_clock::now() - last_new > 1500ms;
      },
      60s);
  c.Shutdown();
  std::lock_guard<std::mutex> lock(mu);
  return d;
}

// How the broker that wrote the data directory ended.
enum class Ending { kStop, kKill9 };

std::string EndingName(const ::testing::TestParamInfo<Ending>& info) {
  return info.param == Ending::kStop ? "AfterAStop" : "AfterKill9";
}

// A data directory holding the messages. kStop: sent, then SIGTERM (the
// index is in table files). kKill9: the first half sent and SIGTERM (so
// there are table files to damage), then a second broker on the same
// directory takes the second half and is killed with SIGKILL (those rounds
// are after the last checkpoint: a restart replays them from the log).
void Prepare(const std::string& data, Ending ending = Ending::kStop) {
  const int first = ending == Ending::kStop ? kMessages : kMessages / 2;
  {
    BrokerProcess broker(data, BrokerArgs());
    ASSERT_TRUE(broker.Start());
    SendAll(broker.endpoint(), 0, first);
    ASSERT_EQ(broker.Stop(), 0);
  }
  if (first == kMessages) return;
  BrokerProcess broker(data, BrokerArgs());
  ASSERT_TRUE(broker.Start());
  SendAll(broker.endpoint(), first, kMessages);
  broker.Kill9();
}

std::string Segment(const std::string& data) { return data + "/log/00000000000000000000.seg"; }

std::string ReadBytes(const std::string& path) { return testing::ReadFile(path); }

void WriteAt(const std::string& path, uint64_t offset, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fseek(f, static_cast<long>(offset), SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

// Where the log's written bytes end in the (preallocated) first segment.
uint64_t UsedBytes(const std::string& data) {
  const std::string seg = ReadBytes(Segment(data));
  const size_t last = seg.find_last_not_of('\0');
  return last == std::string::npos ? 0 : last + 1;
}

// txmqd on a damaged directory: it must refuse at once.
testing::CommandResult StartExpectingRefusal(const std::string& data,
                                             std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {BinPath("txmqd"), "--data-dir", data, "--listen",
                                   "tcp://127.0.0.1:*"};
  for (const std::string& a : BrokerArgs(extra)) argv.push_back(a);
  return RunCommand(argv, "", 30s);
}

void ExpectRefusal(const testing::CommandResult& r, const std::vector<std::string>& names) {
  EXPECT_EQ(r.exit_code, kExitDamaged) << r.err;
  for (const std::string& n : names) {
    EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' not in:\n" << r.err;
  }
  EXPECT_NE(r.err.find("--repair"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Nothing was changed"), std::string::npos) << r.err;
}

// The newest repair report in the data directory.
nlohmann::json RepairReport(const std::string& data) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(data)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("repair-") && name.ends_with(".json") && name > newest) newest = name;
  }
  EXPECT_FALSE(newest.empty()) << "no repair report in " << data;
  if (newest.empty()) return {};
  return nlohmann::json::parse(ReadBytes(data + "/" + newest));
}

// After --repair: the lost ids (reported) and the delivered ones split the
// sent ones; nothing twice, nothing altered. Then a plain restart.
// `must_lose`: ids that were in the damaged bytes and must be reported.
// `cut`: ids whose records were cut off with the log's tail; those the
// report cannot name (rounds after the last checkpoint, known only to the
// log) must lie in a reported stretch of lost log and are not served.
void RepairAndCheck(const std::string& data, size_t min_lost, size_t max_lost,
                    const std::vector<std::string>& must_lose = {},
                    const std::set<std::string>& cut = {}) {
  std::set<std::string> lost;
  size_t unnamed = 0;
  {
    BrokerProcess broker(data, BrokerArgs({"--repair"}));
    ASSERT_TRUE(broker.Start()) << testing::ReadFile(broker.log_path());
    const nlohmann::json report = RepairReport(data);
    for (const auto& m : report["lost_messages"]) {
      lost.insert(m["id"].get<std::string>());
      EXPECT_EQ(m["topic"], kTopic);
    }
    EXPECT_GE(lost.size(), min_lost) << report.dump(1);
    EXPECT_LE(lost.size(), max_lost) << report.dump(1);
    for (const std::string& id : must_lose) {
      EXPECT_EQ(lost.count(id), 1u) << id << " was damaged but is not reported lost";
    }
    const std::string log = testing::ReadFile(broker.log_path());
    for (const std::string& id : lost) {
      EXPECT_NE(log.find("lost message id=" + id), std::string::npos) << id << " not in the log";
    }
    for (const std::string& id : cut) unnamed += lost.count(id) == 0;
    if (unnamed > 0) {
      ASSERT_GE(report["log_damage"].size(), 1u) << report.dump(1);
      EXPECT_NE(log.find("[txmq.repair] log: log position"), std::string::npos) << log;
    }
    auto status =
        RunCommand({BinPath("txmqctl"), "--broker", broker.endpoint(), "--json", "status"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    EXPECT_EQ(nlohmann::json::parse(status.out)["messages_stored"].get<uint64_t>(),
              kMessages - lost.size() - unnamed)
        << "status counts only what it can read";
    ASSERT_EQ(broker.Stop(), 0);
  }
  // The repaired directory starts as any other, and serves everything else.
  BrokerProcess broker(data, BrokerArgs());
  ASSERT_TRUE(broker.Start()) << testing::ReadFile(broker.log_path());
  const Delivered d = ConsumeAll(broker.endpoint(), kMessages - lost.size() - unnamed);
  EXPECT_TRUE(d.bad_bodies.empty()) << d.bad_bodies.size() << " altered bodies delivered";
  size_t twice = 0, lost_delivered = 0;
  for (const auto& [id, n] : d.count) {
    twice += n > 1;
    lost_delivered += lost.count(id);
  }
  EXPECT_EQ(twice, 0u);
  EXPECT_EQ(lost_delivered, 0u) << "a message reported lost was delivered";
  for (int i = 0; i < kMessages; ++i) {
    if (!lost.count(IdOf(i)) && !cut.count(IdOf(i))) {
      EXPECT_EQ(d.count.count(IdOf(i)), 1u) << IdOf(i) << " undelivered";
    }
    if (cut.count(IdOf(i))) {
      EXPECT_EQ(d.count.count(IdOf(i)), 0u) << IdOf(i) << " was cut off";
    }
  }
}

// The damage of issue 10, after a clean stop and after kill -9: each one
// refused at start naming the file, each loss named by --repair, the rest
// served once and intact.
class StorageDamage : public ::testing::TestWithParam<Ending> {};

TEST_P(StorageDamage, FlippedBytesInTheLogAreRefusedAndRepairNamesTheLostMessages) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  Prepare(data, GetParam());
  // 64 bytes from the body of message 1500 on: inside acknowledged records
  // (after kill -9: of a round after the last checkpoint).
  const std::string seg = ReadBytes(Segment(data));
  const size_t at = seg.find(BodyOf(1500));
  ASSERT_NE(at, std::string::npos);
  testing::FlipBytes(Segment(data), at, 64);
  ExpectRefusal(StartExpectingRefusal(data), {Segment(data), ", byte ", "is damaged"});
  RepairAndCheck(data, 1, 2, {IdOf(1500)});
}

TEST_P(StorageDamage, FlippedBytesInAnIndexTableAreRefusedAndTheIndexIsRebuiltFromTheLog) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  Prepare(data, GetParam());
  std::string table;
  uint64_t size = 0;
  for (const auto& e : std::filesystem::directory_iterator(data + "/index")) {
    if (e.path().extension() == ".ldb" && e.file_size() > size) {
      table = e.path().string();
      size = e.file_size();
    }
  }
  ASSERT_FALSE(table.empty()) << "the clean stop leaves the index in table files";
  testing::FlipBytes(table, size / 2, 64);
  ExpectRefusal(StartExpectingRefusal(data), {table, "index"});
  RepairAndCheck(data, 0, 0);
  EXPECT_TRUE(RepairReport(data)["index_rebuilt"].get<bool>());
}

TEST_P(StorageDamage, ATruncatedLogSegmentIsRefusedAndRepairNamesWhatWasCut) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  Prepare(data, GetParam());
  const uint64_t used = UsedBytes(data);
  // Three quarters: after kill -9 the cut lies in rounds after the last
  // checkpoint, where a torn tail would be forgiven.
  const uint64_t keep = used * 3 / 4;
  const std::string seg = ReadBytes(Segment(data));
  std::set<std::string> cut;
  for (int i = 0; i < kMessages; ++i) {
    if (seg.find(BodyOf(i)) + BodyOf(i).size() > keep) cut.insert(IdOf(i));
  }
  ASSERT_GT(cut.size(), static_cast<size_t>(kMessages / 8));
  ASSERT_EQ(::truncate(Segment(data).c_str(), static_cast<off_t>(keep)), 0);
  ExpectRefusal(StartExpectingRefusal(data), {Segment(data), "truncated"});
  if (GetParam() == Ending::kStop) {
    // The index (checkpointed at the stop) names every message cut off.
    RepairAndCheck(data, cut.size(), cut.size(), {cut.begin(), cut.end()});
  } else {
    // Rounds after the checkpoint are known only to the log: what of them
    // is cut off is reported as a lost stretch of log, not by id.
    RepairAndCheck(data, 0, cut.size(), {}, cut);
  }
}

INSTANTIATE_TEST_SUITE_P(Ending, StorageDamage, ::testing::Values(Ending::kStop, Ending::kKill9),
                         EndingName);

TEST(StorageDamageOnce, ATornTailAfterKill9StillStartsAndLosesNothingAcknowledged) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  Prepare(data, Ending::kKill9);
  // The entry a crash cut short: the header of the next round, chained to
  // the last whole one, and part of its payload.
  const std::string seg = ReadBytes(Segment(data));
  uint64_t at = 0;
  storage::LogEntry last;
  for (storage::LogEntry e; storage::ParseEntry(std::string_view(seg).substr(at), at, &e);) {
    last = e;
    at = e.end();
  }
  ASSERT_GT(last.header.index, 0u);
  storage::log::Header torn = last.header;
  torn.index = last.header.index + 1;
  torn.prev_crc = last.header.crc;
  torn.crc = 0x12345678;
  torn.length = 8000;
  std::string bytes(storage::log::kHeaderBytes, '\0');
  storage::log::EncodeHeader(torn, bytes.data());
  bytes += std::string(3000, 'p');  // the rest never reached the disk
  WriteAt(Segment(data), at, bytes);

  BrokerProcess broker(data, BrokerArgs());
  ASSERT_TRUE(broker.Start()) << testing::ReadFile(broker.log_path());
  EXPECT_NE(testing::ReadFile(broker.log_path())
                .find("incomplete entry at position " + std::to_string(at)),
            std::string::npos);
  const Delivered d = ConsumeAll(broker.endpoint(), kMessages);
  EXPECT_EQ(d.count.size(), static_cast<size_t>(kMessages));
  EXPECT_TRUE(d.bad_bodies.empty());
  for (const auto& [id, n] : d.count) EXPECT_EQ(n, 1) << id;
}

TEST(StorageDamageOnce, ARecordDamagedWhileServingIsNeverServedAndItsQueueWaits) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  BrokerProcess broker(data, BrokerArgs());
  ASSERT_TRUE(broker.Start());
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("txmqctl"), "--broker", broker.endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  // One queue: what comes after the damaged message waits behind it.
  ASSERT_EQ(ctl({"topic", "create", kTopic, "--queues", "1"}).exit_code, 0);
  {
    Producer p({.broker = broker.endpoint()});
    ASSERT_TRUE(p.Start().ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(p.Send({.topic = kTopic, .body = BodyOf(i), .id = IdOf(i)}).ok());
    }
  }
  // The disk goes bad under the running broker: message 50's body.
  const std::string seg = ReadBytes(Segment(data));
  const size_t at = seg.find(BodyOf(50));
  ASSERT_NE(at, std::string::npos);
  testing::FlipBytes(Segment(data), at + 10, 4);

  std::mutex mu;
  std::map<std::string, int> seen;
  std::set<std::string> bad;
  {
    Consumer c({.broker = broker.endpoint(), .group = "live", .long_poll = 300ms});
    ASSERT_TRUE(c.Subscribe(kTopic, [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   ++seen[m.id];
                   if (m.body != BodyOf(std::stoi(m.id.substr(2)))) bad.insert(m.id);
                   return ConsumeResult::Success();
                 }).ok());
    ASSERT_TRUE(c.Start().ok());
    // Until the broker met the damaged record: nothing after it can be
    // handed out from then on.
    ASSERT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return seen.size() >= 50 &&
             testing::ReadFile(broker.log_path()).find("is damaged") != std::string::npos;
    }));
    c.Shutdown();
  }
  EXPECT_EQ(seen.size(), 50u) << "the queue waits at the damaged message";
  EXPECT_EQ(seen.count(IdOf(50)), 0u) << "a damaged message is never delivered";
  EXPECT_TRUE(bad.empty());
  const std::string log = testing::ReadFile(broker.log_path());
  EXPECT_NE(log.find("is damaged (its checksum does not match)"), std::string::npos) << log;
  EXPECT_NE(log.find(Segment(data)), std::string::npos);
  auto status = ctl({"--json", "status"});
  ASSERT_EQ(status.exit_code, 0);
  const auto j = nlohmann::json::parse(status.out);
  EXPECT_EQ(j["damaged_records"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["messages_stored"].get<uint64_t>(), 99u) << "status never counts what it cannot read";
  // A pull that finds nothing but the damaged message says so.
  auto pull = ctl({"consume", kTopic, "--group", "live", "--wait", "1s"});
  EXPECT_NE(pull.exit_code, 0);
  EXPECT_NE(pull.err.find("CORRUPTION"), std::string::npos) << pull.err;
  ASSERT_EQ(broker.Stop(), 0);

  // The operator's way out: the start refuses, --repair takes it out.
  ExpectRefusal(StartExpectingRefusal(data), {Segment(data)});
  BrokerProcess repaired(data, BrokerArgs({"--repair"}));
  ASSERT_TRUE(repaired.Start());
  const nlohmann::json report = RepairReport(data);
  ASSERT_EQ(report["lost_messages"].size(), 1u) << report.dump(1);
  EXPECT_EQ(report["lost_messages"][0]["id"], IdOf(50));
  EXPECT_EQ(report["lost_messages"][0]["offset"], 50);
  std::map<std::string, int> rest;
  Consumer c({.broker = repaired.endpoint(), .group = "live", .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe(kTopic, [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 ++rest[m.id];
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return rest.size() >= 49;
  }));
  c.Shutdown();
  EXPECT_EQ(rest.size(), 49u);
  EXPECT_EQ(rest.count(IdOf(99)), 1u);
  EXPECT_EQ(rest.count(IdOf(50)), 0u);
}

}  // namespace
}  // namespace txmq
