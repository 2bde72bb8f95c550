// txmqctl dlq: a message a group's handler kept failing, found in the
// group's dead-letter queue and delivered again once the handler is fixed.
#include <gtest/gtest.h>

#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using testing::SplitLines;

class Dlq : public CtlTest {
 protected:
  // A handler that always fails, allowed one redelivery: the message ends
  // in %DLQ%billing. Returns its id.
  std::string DeadLetter(const std::string& body) {
    const std::string id = Send("orders", "k-" + body, body);
    Consumer failing({.broker = broker_->endpoint(),
                      .group = "billing",
                      .long_poll = std::chrono::milliseconds(200),
                      .max_reconsume_times = 1});
    EXPECT_TRUE(failing
                    .Subscribe("orders",
                               [](const Received&) {
                                 return ConsumeResult::RetryLater(std::chrono::milliseconds(10));
                               })
                    .ok());
    EXPECT_TRUE(failing.Start().ok());
    EXPECT_TRUE(testing::WaitFor([&] {
      // NOT_FOUND until the consumer registered its group.
      const nlohmann::json j = JsonIfOk({"dlq", "list", "billing"});
      if (j.is_null()) return false;
      for (const auto& m : j["messages"]) {
        if (m["id"] == id) return true;
      }
      return false;
    }));
    failing.Shutdown();
    return id;
  }

  bool Has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }
};

// A group nobody consumes with (a typo) is not an empty dead-letter
// queue: every dlq command says so, and a resend or purge changes nothing.
TEST_F(Dlq, AnUnknownGroupIsNotFoundNotAnEmptyQueue) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"dlq", "list", "billng"},
           {"dlq", "show", "billng", "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"},
           {"dlq", "resend", "billng", "--all"},
           {"dlq", "purge", "billng", "--all"}}) {
    ExpectFails(args, kExitNotFound,
                "consumer group 'billng' is not known and has no dead-letter queue here");
  }
  EXPECT_EQ(Json({"status"})["consumer_groups"], 0) << "nothing was created";
}

TEST_F(Dlq, ListShowAndResendDeliversAgain) {
  const std::string id = DeadLetter("charge 10 EUR");
  auto r = Ctl({"dlq", "list", "billing"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_TRUE(Has(lines[0], "ID") && Has(lines[0], "ORIGIN") && Has(lines[0], "DELIVERIES"));
  EXPECT_TRUE(Has(lines[1], id) && Has(lines[1], "orders queue ") &&
              Has(lines[1], "k-charge 10 EUR"))
      << r.out;
  auto j = Json({"dlq", "list", "billing"});
  EXPECT_EQ(j["total"], 1);
  ASSERT_EQ(j["messages"].size(), 1u);
  EXPECT_EQ(j["messages"][0]["origin_topic"], "orders");
  EXPECT_GE(j["messages"][0]["deliveries"].get<int>(), 2);

  r = Ctl({"dlq", "show", "billing", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "charge 10 EUR")) << r.out;
  EXPECT_TRUE(Has(r.out, "failed from")) << r.out;
  j = Json({"dlq", "show", "billing", id});
  EXPECT_EQ(j["message"]["body"], "charge 10 EUR");
  EXPECT_EQ(j["letter"]["id"], id);
  EXPECT_EQ(Json({"group", "show", "billing"})["dead_letters"], 1);

  // --dry-run names it and changes nothing.
  r = Ctl({"dlq", "resend", "billing", "--all", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, id + "\ndry run: would resend 1 message to group 'billing'; nothing changed\n");
  EXPECT_EQ(Json({"dlq", "list", "billing"})["total"], 1);
  EXPECT_TRUE(Consume("orders", "billing", "0.3").empty());

  // Resent: the group gets it again, and it leaves the dead-letter queue.
  j = Json({"dlq", "resend", "billing", id});
  EXPECT_EQ(j["resent"], nlohmann::json::array({id}));
  EXPECT_EQ(j["dry_run"], false);
  auto again = Consume("orders", "billing");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], "charge 10 EUR");
  EXPECT_EQ(Json({"dlq", "list", "billing"})["total"], 0);

  ExpectFails({"dlq", "show", "billing", id}, kExitNotFound, "NOT_FOUND");
  ExpectFails({"dlq", "resend", "billing", id}, kExitNotFound, "NOT_FOUND");
}

TEST_F(Dlq, ResendAllAndPartlyMissing) {
  const std::string a = DeadLetter("a");
  const std::string b = DeadLetter("b");
  EXPECT_EQ(Json({"dlq", "list", "billing"})["total"], 2);
  // One of two names is not there: the other is resent, and it says which.
  auto r = Ctl({"dlq", "resend", "billing", a, "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"});
  EXPECT_EQ(r.exit_code, kExitNotFound);
  EXPECT_TRUE(Has(r.out, "resent 1 message")) << r.out;
  EXPECT_TRUE(Has(r.err, "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")) << r.err;
  r = Ctl({"dlq", "resend", "billing", "--all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, b + "\nresent 1 message to group 'billing'\n");
  auto bodies = Consume("orders", "billing");
  std::sort(bodies.begin(), bodies.end());
  EXPECT_EQ(bodies, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace txmq
