// The operator mailbox on its own, with this test as the core thread: a
// request reaches the core once, its answer reaches the thread that asked
// it and no other, an asker that gave up is not served (nor answered)
// later, and a stopped core fails every call at once with the reason.
#include "broker/src/operator_mailbox.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <future>
#include <thread>

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until the mailbox's descriptor says a request waits.
bool Readable(const OperatorMailbox& box) {
  pollfd p{box.fd(), POLLIN, 0};
  return poll(&p, 1, 5000) == 1;
}

TEST(OperatorMailbox, AnswersGoToTheirAskers) {
  OperatorMailbox box;
  auto first = std::async(std::launch::async, [&] { return box.Call({1, "a", "one"}, 10s); });
  auto second = std::async(std::launch::async, [&] { return box.Call({2, "b", "two"}, 10s); });
  std::vector<OperatorMailbox::Request> taken;
  while (taken.size() < 2) {
    ASSERT_TRUE(Readable(box));
    for (auto& r : box.Take()) taken.push_back(std::move(r));
  }
  for (const auto& r : taken) EXPECT_EQ(r.frame, r.request_id == 1 ? "one" : "two");
  box.Answer(2, "reply-two");
  box.Answer(1, "reply-one");
  EXPECT_EQ(first.get().value(), "reply-one");
  EXPECT_EQ(second.get().value(), "reply-two");
  EXPECT_TRUE(box.Take().empty());
}

TEST(OperatorMailbox, AnAskerThatGaveUpIsNeitherServedNorAnswered) {
  OperatorMailbox box;
  auto late = box.Call({7, "a", "x"}, 20ms);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(late.status().message().find("did not answer within 20 ms"), std::string::npos);
  EXPECT_TRUE(box.Take().empty()) << "nobody waits for it any more";
  box.Answer(7, "too late");  // dropped, and the id is free again
  auto again = std::async(std::launch::async, [&] { return box.Call({7, "a", "y"}, 10s); });
  ASSERT_TRUE(Readable(box));
  auto taken = box.Take();
  ASSERT_EQ(taken.size(), 1u);
  box.Answer(7, "in time");
  EXPECT_EQ(again.get().value(), "in time");
}

TEST(OperatorMailbox, AnIdInUseIsRefused) {
  OperatorMailbox box;
  auto waiting = std::async(std::launch::async, [&] { return box.Call({3, "a", "x"}, 10s); });
  ASSERT_TRUE(Readable(box));
  auto clash = box.Call({3, "b", "y"}, 1s);
  EXPECT_EQ(clash.status().code(), StatusCode::kInvalidArgument);
  box.Take();
  box.Answer(3, "ok");
  EXPECT_EQ(waiting.get().value(), "ok");
}

TEST(OperatorMailbox, AStoppedCoreFailsEveryCallWithItsReason) {
  OperatorMailbox box;
  auto waiting = std::async(std::launch::async, [&] { return box.Call({1, "a", "x"}, 10s); });
  ASSERT_TRUE(Readable(box));
  box.Close(Status::Unavailable("disk on fire"));
  auto r = waiting.get();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("disk on fire"), std::string::npos);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(box.Call({2, "a", "x"}, 10s).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

}  // namespace
}  // namespace txmq::broker
