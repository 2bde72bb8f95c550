// Transactions in a cluster of two broker groups: a TransactionProducer
// given one node sends each transaction to the group serving its
// messages' queues, refuses one that no single group can take, and answers
// the check-backs of every group, also for halves an earlier producer of
// its group left there.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <set>

#include "tests/cluster/two_groups_fixture.h"
#include "txmq/transaction_producer.h"

namespace txmq::testing {
namespace {

using namespace std::chrono_literals;

// Checks every second, so a half left undecided is asked about at once.
const std::vector<std::string> kQuickChecks = {
    "--transaction-timeout", "1s", "--check-interval", "1s", "--check-interval-max", "1s"};

class TxmqdGroupTransactions : public TwoGroupsFixture {
 protected:
  // The topic "orders" placed (through a plain send), and a key of each group.
  void PlaceOrders() {
    Producer producer({.broker = nodes_[0].url(), .send_timeout = 10s});
    ASSERT_TRUE(producer.Start().ok());
    ASSERT_TRUE(producer.Send({.topic = "orders", .key = "first", .body = "x", .id = "x"}).ok());
    placement_ = StoredPlacement("orders");
    g1_key_ = KeyServedBy(placement_, "g1");
    g2_key_ = KeyServedBy(placement_, "g2");
  }

  cluster::TopicPlacement placement_;
  std::string g1_key_, g2_key_;
};

TEST_F(TxmqdGroupTransactions, EachTransactionGoesToTheGroupOfItsQueue) {
  StartTwoGroups();
  PlaceOrders();
  TransactionProducer producer({.broker = nodes_[0].url(), .group = "shop", .send_timeout = 10s},
                               [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(producer.Start().ok());
  std::set<std::string> committed;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "order-" + std::to_string(i);
    auto r = producer.SendInTransaction({.topic = "orders", .key = key, .body = key},
                                        [](const Message&) { return TxState::kCommit; });
    ASSERT_TRUE(r.ok()) << key << ": " << r.status.ToString();
    EXPECT_EQ(r.outcome, TxState::kCommit);
    committed.insert(key);
  }
  // Keyless messages go where the keyed one goes.
  auto mixed = producer.SendInTransaction(
      std::vector<Message>{{.topic = "orders", .key = g2_key_, .body = "keyed"},
                           {.topic = "orders", .body = "keyless"}},
      [](const std::vector<Message>&) { return TxState::kCommit; });
  ASSERT_TRUE(mixed.ok()) << mixed.status.ToString();

  // A plain send of the transaction producer is routed like a Producer's.
  auto plain = producer.Send({.topic = "orders", .key = g2_key_, .body = "plain"});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();

  // One group cannot take both: refused before anything is sent.
  auto split = producer.SendInTransaction(
      std::vector<Message>{{.topic = "orders", .key = g1_key_, .body = "split"},
                           {.topic = "orders", .key = g2_key_, .body = "split"}},
      [](const std::vector<Message>&) {
        ADD_FAILURE() << "the local transaction ran for a transaction no group can take";
        return TxState::kCommit;
      });
  EXPECT_EQ(split.status.code(), StatusCode::kInvalidArgument) << split.status.ToString();
  EXPECT_NE(split.status.message().find("key '" + g2_key_ + "'"), std::string::npos)
      << split.status.message();

  auto got = Consume(nodes_[0].url(), {"orders"}, committed.size() + 4);
  std::set<std::string> keys;
  std::set<std::string> groups;
  for (const Received& m : got) {
    EXPECT_NE(m.body, "split");
    if (m.body == "plain") {
      EXPECT_EQ(placement_.groups[m.queue], "g2") << "the plain send was not routed by its key";
    }
    if (m.body == "keyless") {
      EXPECT_EQ(placement_.groups[m.queue], "g2") << "the keyless message left its transaction";
    }
    if (m.key.rfind("order-", 0) == 0) {
      EXPECT_TRUE(keys.insert(m.key).second) << m.key << " twice";
      EXPECT_EQ(m.queue, StableHash(m.key) % placement_.queue_count) << m.key;
      groups.insert(placement_.groups[m.queue]);
    }
  }
  EXPECT_EQ(keys, committed);
  EXPECT_EQ(groups, (std::set<std::string>{"g1", "g2"}));
}

// The first producer leaves a half undecided on g2 and goes; the next one,
// started on g1's node, never sends there, and still answers g2's check.
TEST_F(TxmqdGroupTransactions, AHalfLeftOnAnotherGroupIsCheckedWithTheNextProducer) {
  StartTwoGroups(kQuickChecks);
  PlaceOrders();
  std::string tx_id;
  {
    TransactionProducer first({.broker = nodes_[0].url(), .group = "shop", .send_timeout = 10s},
                              [](const CheckRequest&) { return TxState::kUnknown; });
    ASSERT_TRUE(first.Start().ok());
    auto r = first.SendInTransaction({.topic = "orders", .key = g2_key_, .body = "undecided"},
                                     [](const Message&) { return TxState::kUnknown; });
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    tx_id = r.transaction_id;
  }
  std::atomic<int> asked{0};
  TransactionProducer next({.broker = nodes_[0].url(), .group = "shop", .send_timeout = 10s},
                           [&](const CheckRequest& check) {
                             if (check.transaction_id != tx_id) return TxState::kUnknown;
                             ++asked;
                             return TxState::kCommit;
                           });
  ASSERT_TRUE(next.Start().ok());
  auto got = Consume(nodes_[0].url(), {"orders"}, 2);
  EXPECT_GE(asked.load(), 1) << "g2 never asked the producer about " << tx_id;
  bool delivered = false;
  for (const Received& m : got) delivered = delivered || m.body == "undecided";
  EXPECT_TRUE(delivered) << "the transaction its checker committed was not delivered";
}

// An operator given one node reaches another group's open transactions by
// naming the group (--broker-group), and a group that does not exist is
// refused naming the ones that do.
TEST_F(TxmqdGroupTransactions, TxmqctlReachesAnotherGroupByName) {
  StartTwoGroups();
  PlaceOrders();
  TransactionProducer producer({.broker = nodes_[0].url(), .group = "shop", .send_timeout = 10s},
                               [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(producer.Start().ok());
  auto r = producer.SendInTransaction({.topic = "orders", .key = g2_key_, .body = "open"},
                                      [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();

  auto open_ids = [&](const std::vector<std::string>& group_flag) {
    std::vector<std::string> argv = {BinPath("txmqctl"), "--broker", nodes_[0].url(), "--json"};
    argv.insert(argv.end(), group_flag.begin(), group_flag.end());
    argv.insert(argv.end(), {"tx", "list"});
    auto run = RunCommand(argv, "", 20s);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::set<std::string> ids;
    auto j = nlohmann::json::parse(run.out, nullptr, false);
    if (j.is_object()) {
      for (const auto& tx : j["transactions"]) ids.insert(tx["id"].get<std::string>());
    }
    return ids;
  };
  EXPECT_EQ(open_ids({}).count(r.transaction_id), 0u) << "g1 holds no half of it";
  EXPECT_EQ(open_ids({"--broker-group", "g2"}).count(r.transaction_id), 1u);

  auto wrong = RunCommand(
      {BinPath("txmqctl"), "--broker", nodes_[0].url(), "--broker-group", "g7", "tx", "list"}, "",
      20s);
  EXPECT_EQ(wrong.exit_code, 4) << wrong.err;
  EXPECT_TRUE(Has(wrong.err, "no broker group 'g7' (its groups: g1, g2)")) << wrong.err;
}

}  // namespace
}  // namespace txmq::testing
