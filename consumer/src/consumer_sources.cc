// Which brokers a consumer pulls from (DESIGN.md "Consumers across broker
// groups"). The connection it was given (home) serves the queues of the
// broker group it reaches: all of them on a single broker or a cluster of
// one group. In a cluster of several, a topic's queues are spread over
// groups; thread "txmq-route" asks home for each subscribed topic's route
// every few seconds (and soon after another group's pull failed) and gives
// every other group serving some of its queues a source of its own (every
// group of the cluster, from cluster status, when it reads one of the
// broker's own topics, which each group keeps for itself): a
// connection at that group's leader and a puller. A source whose group's
// leader moved gets a connection to the new one. Sources are never removed
// while the consumer runs (a group that serves nothing now costs one idle
// long poll).
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "consumer/src/consumer_impl.h"
#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/route_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq {

namespace {
constexpr auto kRouteRefresh = std::chrono::seconds(2);
// After a refresh, however soon the next is asked for.
constexpr auto kRouteRefreshMin = std::chrono::milliseconds(500);
constexpr auto kRouteTimeout = std::chrono::seconds(5);
}  // namespace

void Consumer::Impl::RouteLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    refresh_soon_ = false;
    lock.unlock();
    RefreshSources();
    lock.lock();
    router_cv_.wait_for(lock, kRouteRefreshMin, [this] { return stopping_; });
    router_cv_.wait_for(lock, kRouteRefresh - kRouteRefreshMin,
                        [this] { return stopping_ || refresh_soon_; });
  }
}

std::optional<Result<wire::Frame>> Consumer::Impl::AskHome(net::Connection& home,
                                                           wire::OutFrame request) {
  // Not CallSync: Shutdown waits for this thread, and must not wait out a
  // call to a broker that does not answer.
  auto answer = std::make_shared<std::optional<Result<wire::Frame>>>();
  home.Call(std::move(request), kRouteTimeout, [this, answer](Result<wire::Frame> reply) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      *answer = std::move(reply);
    }
    router_cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  router_cv_.wait(lock, [&] { return stopping_ || answer->has_value(); });
  if (stopping_) return std::nullopt;
  return std::move(answer->value());
}

void Consumer::Impl::RefreshSources() {
  std::shared_ptr<net::Connection> home = ConnectionOf(0);
  // Every group other than home's serving a queue, and its leader's URL
  // ("" while it has none).
  std::map<std::string, std::string> leaders;
  bool every_group = false;
  for (const auto& [topic, handler] : handlers_) {
    // The broker's own topics (dead letters, compensations) are not
    // placed: each group keeps its own, so they are read from every group.
    if (IsSystemName(topic)) {
      every_group = true;
      continue;
    }
    auto request = home->NewRequest();
    request.envelope().initRoute().setTopic(topic);
    auto reply = AskHome(*home, std::move(request));
    if (!reply) return;  // stopping
    // Not placed yet, a single broker from before routes, or away: there
    // is nothing to add now; asked again at the next refresh.
    if (!reply->ok()) continue;
    const wire::TopicRouteView route = wire::ReadTopicRoute((*reply)->envelope().getRouteOk());
    const std::string& home_group = route.answered_by;
    // A broker that does not say its group (from before answeredBy): its
    // connection is all this consumer reads, as it was then.
    if (home_group.empty()) continue;
    for (size_t q = 0; q < route.groups.size(); ++q) {
      // A queue that moved is read from both groups: the one it left
      // until that has delivered what it holds of it.
      for (const auto& [group, leader] :
           {std::pair(route.groups[q], route.leader_urls[q]),
            std::pair(route.draining_from[q], route.draining_urls[q])}) {
        if (group.empty() || group == home_group) continue;
        std::string& url = leaders[group];
        if (url.empty()) url = leader;
      }
    }
  }

  if (every_group) {
    auto request = home->NewRequest();
    request.envelope().setClusterStatus();
    auto reply = AskHome(*home, std::move(request));
    if (!reply) return;  // stopping
    if (reply->ok() && (*reply)->envelope().which() == wire::Envelope::CLUSTER_STATUS_OK) {
      const wire::ClusterStatusView view =
          wire::ReadClusterStatus((*reply)->envelope().getClusterStatusOk());
      for (const wire::GroupLeaderView& g : view.groups) {
        if (view.member && g.group != view.group) leaders.emplace(g.group, g.leader_url);
      }
    }
  }

  std::vector<std::shared_ptr<net::Connection>> to_close;
  for (const auto& [group, url] : leaders) {
    if (url.empty()) continue;  // no leader now: keep what there is, ask again
    ConsumerSource* known = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      for (auto& source : sources_) {
        if (source->group == group) known = source.get();
      }
      if (known != nullptr && known->url == url) continue;
    }
    auto opened = net::Connection::Open(SourceOptions(group, url));
    if (!opened.ok()) {
      log_->warn("consumer group '{}': cannot connect to broker group {} at {}: {}", options_.group,
                 group, url, opened.status().ToString());
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      to_close.push_back(std::move(opened.value()));
      break;
    }
    if (known == nullptr) {
      log_->info("consumer group '{}': queues of broker group {} are pulled from {}",
                 options_.group, group, url);
      AddSource(group, url, std::move(opened.value()));
    } else {
      log_->info("consumer group '{}': broker group {}'s leader moved from {} to {}",
                 options_.group, group, known->url, url);
      known->url = url;
      to_close.push_back(std::exchange(known->connection, std::move(opened.value())));
      retired_.push_back(to_close.back());
    }
  }
  // Outside mu_: closing completes the calls still pending on them, whose
  // completions take it.
  for (auto& connection : to_close) connection->Close();
  std::lock_guard<std::mutex> lock(mu_);
  // Destroyed here, on this thread, once no call in flight holds them.
  std::erase_if(retired_, [](const auto& c) { return c.use_count() == 1; });
}

void Consumer::Impl::AddSource(std::string group, std::string url,
                               std::shared_ptr<net::Connection> connection) {
  auto source = std::make_unique<ConsumerSource>();
  source->group = std::move(group);
  source->url = std::move(url);
  source->connection = std::move(connection);
  const auto index = static_cast<uint32_t>(sources_.size());
  source->puller = std::thread([this, index] {
    SetThreadName("txmq-pull");
    PullLoop(index);
  });
  sources_.push_back(std::move(source));
}

net::ConnectionOptions Consumer::Impl::SourceOptions(const std::string& group,
                                                     const std::string& url) {
  net::ConnectionOptions o = home_options_;
  o.broker = url;
  // Its own name at each group's broker, so that no registration there
  // replaces the home connection's (when home moves into that group).
  o.client_id = GroupClientId(ConnectionOf(0)->client_id(), group);
  // One instance everywhere (home's id, as home's broker sees it): each
  // group shares a topic's queues among instances as a whole.
  o.instance = ConnectionOf(0)->client_id();
  return o;
}

}  // namespace txmq
