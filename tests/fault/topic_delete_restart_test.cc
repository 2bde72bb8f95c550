// A topic deleted with txmqctl stays deleted when txmqd is killed -9 right
// after the answer and started again: not listed, not counted, nothing of
// it delivered, and the index entries its messages left (queue runs,
// message ids, delayed messages, cursors) are swept by the restarted
// broker. The same name afterwards is a new, empty topic.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "protocol/src/event_fd.h"
#include "storage/src/broker_store.h"
#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using testing::BrokerProcess;
using testing::CommandResult;
using testing::SplitLines;
using testing::TempDir;
using testing::WaitFor;

CommandResult Ctl(const BrokerProcess& broker, std::vector<std::string> args,
                  const std::string& input = "") {
  std::vector<std::string> argv = {testing::BinPath("txmqctl"), "--broker", broker.endpoint(),
                                   "--operator", "tester"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunCommand(argv, input);
}

nlohmann::json Json(const BrokerProcess& broker, std::vector<std::string> args) {
  args.insert(args.begin(), "--json");
  auto r = Ctl(broker, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

// What the index (read offline, the broker stopped) still holds that names
// a topic that does not exist, by kind.
std::map<std::string, size_t> Leftovers(const std::string& data_dir) {
  storage::StoreOptions so;
  so.dir = data_dir;
  EventFd done;
  auto opened = storage::BrokerStore::Open(so, &done);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  std::map<std::string, size_t> out;
  if (!opened.ok()) return out;
  storage::BrokerStore& store = **opened;
  std::set<uint32_t> ids;
  std::set<std::string> names;
  EXPECT_TRUE(store
                  .ForEachTopic([&](std::string_view name, const storage::store::TopicEntry& e) {
                    ids.insert(e.id);
                    names.insert(std::string(name));
                    return true;
                  })
                  .ok());
  EXPECT_TRUE(store
                  .ForEachQueueTopicId([&](uint32_t id) {
                    out["queue entries"] += !ids.count(id);
                    return true;
                  })
                  .ok());
  EXPECT_TRUE(store
                  .ForEachRunBefore(UINT64_MAX,
                                    [&](uint64_t, uint32_t id, uint32_t, uint64_t, uint64_t) {
                                      out["runs by position"] += !ids.count(id);
                                      return true;
                                    })
                  .ok());
  EXPECT_TRUE(store
                  .ForEachId(0,
                             [&](uint64_t bucket, std::string_view id) {
                               auto e = store.GetId(bucket, id);
                               out["message ids"] += e && !ids.count(e->topic_id);
                               return true;
                             })
                  .ok());
  EXPECT_TRUE(store
                  .ForEachDelayed([&](int64_t due, uint64_t seq) {
                    auto d = store.ReadDelayed(due, seq);
                    out["delayed"] += d.ok() && !ids.count(d->body.topic_id);
                    return true;
                  })
                  .ok());
  EXPECT_TRUE(store
                  .ForEachCursor([&](std::string_view, std::string_view topic, uint32_t, uint64_t) {
                    out["cursors"] += !names.count(std::string(topic));
                    return true;
                  })
                  .ok());
  EXPECT_TRUE(
      store
          .ForEachRetry([&](std::string_view, int64_t, uint64_t, const storage::RetryRecord& r) {
            out["retries"] += !names.count(r.topic);
            return true;
          })
          .ok());
  for (auto it = out.begin(); it != out.end();) it = it->second == 0 ? out.erase(it) : ++it;
  return out;
}

TEST(TopicDeleteRestart, StaysDeletedAfterKill9AndTheRestartSweepsItsIndexEntries) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  BrokerProcess broker(data);
  ASSERT_TRUE(broker.Start());
  std::string lines;
  for (int i = 0; i < 300; ++i) lines += "gone-" + std::to_string(i) + "\n";
  ASSERT_EQ(Ctl(broker, {"send", "gone", "--lines"}, lines).exit_code, 0);
  ASSERT_EQ(Ctl(broker, {"send", "gone", "--delay", "1h", "later"}).exit_code, 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Ctl(broker, {"send", "kept", "k"}).exit_code, 0);
  // A group with a place in it.
  auto r = Ctl(broker, {"consume", "gone", "-g", "billing", "--max", "10", "--wait", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Json(broker, {"status"})["messages_stored"], 303);

  r = Ctl(broker, {"topic", "delete", "gone"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("deleted topic 'gone' with 300 messages"), std::string::npos) << r.out;
  broker.Kill9();  // the deletion answered; its index entries not swept yet

  ASSERT_TRUE(broker.Start());
  auto topics = Json(broker, {"topic", "list"})["topics"];
  ASSERT_EQ(topics.size(), 1u) << topics.dump();
  EXPECT_EQ(topics[0]["name"], "kept");
  auto status = Json(broker, {"status"});
  EXPECT_EQ(status["topics"], 1);
  EXPECT_EQ(status["messages_stored"], 3);
  r = Ctl(broker, {"consume", "gone", "-g", "billing", "--wait", "0.5"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "a deleted topic's messages are never delivered";
  ASSERT_TRUE(WaitFor([&] {
    return testing::ReadFile(broker.log_path()).find("deleted topics: freed") != std::string::npos;
  })) << testing::ReadFile(broker.log_path());
  EXPECT_NE(testing::ReadFile(broker.log_path())
                .find("deleted topics left index entries behind; sweeping them"),
            std::string::npos);
  ASSERT_EQ(broker.Stop(), 0);
  EXPECT_EQ(Leftovers(data), (std::map<std::string, size_t>{}));

  // The name again: a new topic, from offset 0; the old group reads only it.
  ASSERT_TRUE(broker.Start());
  auto sent = Json(broker, {"send", "gone", "--key", "k", "new"});
  EXPECT_EQ(sent["offset"], 0);
  r = Ctl(broker, {"--json", "consume", "gone", "-g", "billing", "--wait", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(SplitLines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["body"], "new");
  ASSERT_EQ(broker.Stop(), 0);
}

}  // namespace
}  // namespace txmq
