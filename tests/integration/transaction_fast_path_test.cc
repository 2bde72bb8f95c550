// The transactional fast path: ends riding on a half message.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/local_store.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::WaitFor;

class FastPath : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(FastPath, AHalfAnswersEachEndItCarries) {
  AdminClient admin(broker_->endpoint());
  auto half = [&](const std::string& tx_id, const std::string& body,
                  std::vector<std::pair<std::string, bool>> ends) {
    return admin.Call([&](wire::Envelope::Builder e) {
      auto h = e.initSendHalf();
      h.setTransactionId(tx_id);
      h.setProducerGroup("orders");
      wire::MessageToWire({.topic = "t", .body = body, .id = NewUuidV7()}, NowMs(),
                          h.initMessages(1)[0]);
      auto list = h.initEnds(static_cast<unsigned>(ends.size()));
      for (unsigned i = 0; i < ends.size(); ++i) {
        list[i].setTransactionId(ends[i].first);
        list[i].setOutcome(ends[i].second ? wire::TxOutcome::COMMIT : wire::TxOutcome::ROLLBACK);
      }
    });
  };
  const std::string a = NewUuidV7(), b = NewUuidV7(), c = NewUuidV7();
  ASSERT_TRUE(half(a, "a", {}).ok());
  ASSERT_TRUE(half(b, "b", {{a, true}}).ok());
  // c carries: b's commit, a's rollback (a is committed: CONFLICT), an
  // unknown transaction (NOT_FOUND), and a's commit again (already final).
  const std::string nobody = NewUuidV7();
  auto r = half(c, "c", {{b, true}, {a, false}, {nobody, true}, {a, true}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto ok = r->envelope().getSendHalfOk();
  EXPECT_EQ(ok.getState(), wire::TxState::PREPARED);
  auto ends = ok.getEnds();
  ASSERT_EQ(ends.size(), 4u);
  EXPECT_EQ(wire::ToString(ends[0].getTransactionId()), b);
  EXPECT_EQ(ends[0].getError().getCode(), wire::ErrorCode::OK);
  EXPECT_EQ(ends[0].getState(), wire::TxState::COMMITTED);
  EXPECT_EQ(ends[1].getError().getCode(), wire::ErrorCode::CONFLICT);
  EXPECT_EQ(ends[2].getError().getCode(), wire::ErrorCode::NOT_FOUND);
  EXPECT_EQ(ends[3].getError().getCode(), wire::ErrorCode::OK);
  EXPECT_TRUE(ends[3].getAlreadyFinal());
  EXPECT_EQ(admin.Show(c)->state, wire::TxState::PREPARED);

  // Too many ends: refused, naming the rule.
  std::vector<std::pair<std::string, bool>> many(wire::kMaxEndsPerHalf + 1, {c, true});
  auto refused = half(NewUuidV7(), "d", many);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("at most 64 ends"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(admin.Show(c)->state, wire::TxState::PREPARED) << "nothing of a refused half applies";
}

}  // namespace
}  // namespace txmq
