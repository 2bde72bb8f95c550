// Power loss: the broker runs on file layers that forget every write not
// yet synced (tests/testutil/fault_fs.h) when the "power" goes. What a
// kill -9 cannot show (the page cache survives it), this does: a send is
// acknowledged only once it is on disk.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "storage/src/broker_store.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/send_load.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::FaultFileSystem;
using testing::FaultLevelDbEnv;
using testing::TempDir;
using testing::WaitFor;

struct PoweredBroker {
  PoweredBroker(const std::string& data_dir, FlushMode flush, bool torn, uint64_t seed) {
    if (torn) fs.Torn(seed);
    auto layers = std::make_shared<StorageLayers>();
    layers->fs = &fs;
    layers->env = &env;
    options = testing::TestBrokerOptions(data_dir);
    options.flush = flush;
    options.storage_layers = layers;
  }
  // Cuts the power, lets the broker notice (it stops taking writes), stops
  // it, and forgets what was not synced.
  void PowerLoss() {
    fs.PowerOff();
    env.PowerOff();
    broker->Stop();
    broker.reset();
    fs.DropUnsynced();
    env.DropUnsynced();
  }
  FaultFileSystem fs;
  FaultLevelDbEnv env;
  BrokerOptions options;
  std::unique_ptr<Broker> broker;
};

// Restarts on the same directory with the real file layers.
std::unique_ptr<Broker> Restart(const std::string& data_dir, const std::string& listen) {
  BrokerOptions o = testing::TestBrokerOptions(data_dir);
  o.listen = listen;
  return testing::StartBroker(o);
}

void PowerLossWhileSending(FlushMode flush, bool torn) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  PoweredBroker powered(data, flush, torn, 42);
  powered.broker = testing::StartBroker(powered.options);
  ASSERT_NE(powered.broker, nullptr);
  const std::string endpoint = powered.broker->endpoint();
  std::set<std::string> acked;
  {
    testing::SendLoad load(endpoint, 4, "power");
    ASSERT_TRUE(WaitFor([&] { return load.acked_count() > 3000; }, 60s));
    powered.PowerLoss();
    load.Stop();
    acked = load.acked();
  }
  auto broker = Restart(data, endpoint);
  ASSERT_NE(broker, nullptr);
  // Flush async syncs the log only at checkpoints, so the power may take
  // every acknowledged message: wait for none (waiting for one made this
  // test sit out the drain's whole minute when none survived).
  auto seen = testing::DrainTopic(broker->endpoint(), "power",
                                  flush == FlushMode::kSync ? acked.size() : 0);
  if (flush == FlushMode::kSync) {
    testing::ExpectEveryAckedOnceAndNoneTwice(acked, seen);
  } else {
    // Acknowledged before its fdatasync: the power may take the last ones.
    // What survives is intact and stored once.
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
    std::cout << "flush async: " << acked.size() << " acknowledged, " << seen.size()
              << " survived the power loss\n";
  }
}

TEST(PowerLoss, SyncFlushKeepsEveryAcknowledgedSend) {
  PowerLossWhileSending(FlushMode::kSync, false);
}

TEST(PowerLoss, SyncFlushKeepsEveryAcknowledgedSendWhenPagesAreTorn) {
  PowerLossWhileSending(FlushMode::kSync, true);
}

TEST(PowerLoss, AsyncFlushRestartsCleanWithWhatSurvived) {
  PowerLossWhileSending(FlushMode::kAsync, true);
}

TEST(PowerLoss, CommittedTransactionsAndOpenHalvesSurviveAndRolledBackOnesStayAway) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  PoweredBroker powered(data, FlushMode::kSync, false, 7);
  powered.options.transaction_timeout = 1h;  // nothing is checked during the test
  powered.broker = testing::StartBroker(powered.options);
  ASSERT_NE(powered.broker, nullptr);
  const std::string endpoint = powered.broker->endpoint();
  std::set<std::string> committed, rolled_back, open;
  {
    TransactionProducer producer({.broker = endpoint, .group = "tx-power"},
                                 [](const CheckRequest&) { return TxState::kUnknown; });
    ASSERT_TRUE(producer.Start().ok());
    for (int i = 0; i < 300; ++i) {
      const TxState decision = i % 3 == 0   ? TxState::kCommit
                               : i % 3 == 1 ? TxState::kRollback
                                            : TxState::kUnknown;
      auto r = producer.SendInTransaction({.topic = "tx-power", .body = std::to_string(i)},
                                          [&](const Message&) { return decision; });
      ASSERT_TRUE(r.ok()) << r.status.ToString();
      const std::string id = r.message_ids[0];
      if (decision == TxState::kCommit) committed.insert(id);
      if (decision == TxState::kRollback) rolled_back.insert(id);
      if (decision == TxState::kUnknown) open.insert(r.transaction_id);
    }
    powered.PowerLoss();
  }
  auto broker = Restart(data, endpoint);
  ASSERT_NE(broker, nullptr);
  auto seen = testing::DrainTopic(broker->endpoint(), "tx-power", committed.size());
  testing::ExpectEveryAckedOnceAndNoneTwice(committed, seen);
  for (const std::string& id : rolled_back) EXPECT_FALSE(seen.count(id)) << id << " rolled back";
  EXPECT_EQ(seen.size(), committed.size());
  // The undecided ones are still open, their halves intact: committing one
  // now delivers it.
  auto admin = testing::RunCommand({testing::BinPath("txmqctl"), "--broker", broker->endpoint(),
                                    "--json", "tx", "list", "--limit", "1000"});
  ASSERT_EQ(admin.exit_code, 0) << admin.err;
  for (const std::string& tx : open) {
    EXPECT_NE(admin.out.find(tx), std::string::npos) << "open transaction " << tx << " lost";
  }
}

}  // namespace
}  // namespace txmq
