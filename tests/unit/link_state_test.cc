// What a client concludes from its socket monitor's events: "nothing
// listens" only after an attempt failed, not when the broker closed a
// connection and ZeroMQ scheduled the reconnect.
#include "protocol/src/link_state.h"

#include <gtest/gtest.h>

namespace txmq::net {
namespace {

using Link = LinkState::Link;

TEST(LinkState, AFailedFirstAttemptMeansNothingListens) {
  LinkState link;
  EXPECT_EQ(link.state(), Link::kConnecting);
  link.OnEvent(ZMQ_EVENT_CONNECT_RETRIED);
  EXPECT_EQ(link.state(), Link::kRefused);
  link.OnEvent(ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  EXPECT_EQ(link.state(), Link::kConnected);
}

TEST(LinkState, AConnectionTheBrokerClosedIsNotARefusalUntilAnAttemptFails) {
  LinkState link;
  link.OnEvent(ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  link.OnEvent(ZMQ_EVENT_DISCONNECTED);
  link.OnEvent(ZMQ_EVENT_CONNECT_RETRIED);  // the reconnect, scheduled
  EXPECT_EQ(link.state(), Link::kConnecting);
  link.OnEvent(ZMQ_EVENT_CONNECTED);  // TCP up, closed before the handshake (over the limit)
  link.OnEvent(ZMQ_EVENT_DISCONNECTED);
  link.OnEvent(ZMQ_EVENT_CONNECT_RETRIED);
  EXPECT_EQ(link.state(), Link::kConnecting);
  link.OnEvent(ZMQ_EVENT_CONNECT_RETRIED);  // an attempt failed: the broker is gone
  EXPECT_EQ(link.state(), Link::kRefused);
}

}  // namespace
}  // namespace txmq::net
