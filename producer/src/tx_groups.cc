#include "producer/src/tx_groups.h"

#include <algorithm>
#include <optional>

#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/route_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::producer {

namespace {
constexpr auto kGroupsRefresh = std::chrono::seconds(3);
}  // namespace

TxGroups::TxGroups(std::unique_ptr<TxClient> home, OpenFn open, std::chrono::milliseconds timeout)
    : home_(std::move(home)), open_(std::move(open)), timeout_(timeout) {
  thread_ = std::thread([this] {
    SetThreadName("txmq-tx-groups");
    Loop();
  });
}

TxGroups::~TxGroups() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  home_->Close();  // a refresh waiting on the broker gives up now
  thread_.join();
  groups_.clear();
  home_.reset();
}

void TxGroups::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Refresh();
    lock.lock();
    stop_cv_.wait_for(lock, kGroupsRefresh, [this] { return stopping_; });
  }
}

void TxGroups::Refresh() {
  std::lock_guard<std::mutex> serial(refresh_mu_);
  net::Connection& home = home_->connection();
  auto request = home.NewRequest();
  request.envelope().setClusterStatus();
  auto reply = home.CallSync(std::move(request), timeout_);
  if (!reply.ok() || reply->envelope().which() != wire::Envelope::CLUSTER_STATUS_OK) return;
  const wire::ClusterStatusView view =
      wire::ReadClusterStatus(reply->envelope().getClusterStatusOk());
  if (!view.member) return;  // a single broker: home is everything
  for (const wire::GroupLeaderView& group : view.groups) {
    if (group.group == view.group || group.node_urls.empty()) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      if (groups_.count(group.group) != 0) continue;
    }
    std::string broker;
    for (const std::string& url : group.node_urls) broker += (broker.empty() ? "" : ",") + url;
    auto opened = open_(group.group, broker);
    if (!opened.ok()) {
      Logger("producer")
          ->warn("cannot connect to broker group {} at {}: {}", group.group, broker,
                 opened.status().ToString());
      continue;
    }
    Logger("producer")
        ->info("transactions of broker group {} go to {}, and its check-backs come from there",
               group.group, broker);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {  // CloseAll ran meanwhile: this one is not in its list
      lock.unlock();
      (*opened)->Close();
      return;
    }
    groups_.emplace(group.group, std::move(opened.value()));
  }
}

void TxGroups::CloseAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;  // no client is opened from now on
  }
  stop_cv_.notify_all();
  for (TxClient* client : All()) client->Close();
}

Result<TxGroups::Route> TxGroups::RouteOf(const std::string& topic) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = routes_.find(topic); it != routes_.end()) return it->second;
  }
  net::Connection& home = home_->connection();
  auto request = home.NewRequest();
  auto ask = request.envelope().initRoute();
  ask.setTopic(topic);
  ask.setCreate(true);  // places the topic, as its half would
  auto reply = home.CallSync(std::move(request), timeout_);
  Route route;
  if (!reply.ok()) {
    // A broker from before routes serves everything; any other failure
    // (away, not placed in time) is not kept: the half goes home, whose
    // answer says how things are.
    if (wire::FromBeforeRoutes(reply.status())) {
      std::lock_guard<std::mutex> lock(mu_);
      routes_[topic] = route;
    }
    return route;
  }
  wire::TopicRouteView answer = wire::ReadTopicRoute(reply->envelope().getRouteOk());
  route.home_group = answer.answered_by;
  route.groups = std::move(answer.groups);
  const bool anywhere_else =
      std::any_of(route.groups.begin(), route.groups.end(),
                  [&](const std::string& g) { return g != route.home_group; });
  // Home serves every queue; also when the broker did not say its own
  // group (from before answeredBy), as it did then.
  if (!anywhere_else || route.home_group.empty()) route.groups.clear();
  std::lock_guard<std::mutex> lock(mu_);
  routes_[topic] = route;
  return route;
}

Result<TxClient*> TxGroups::For(const std::vector<Message>& messages) {
  // The group every message can go to; "" is home's.
  std::optional<std::string> keyed;  // fixed by the first keyed message
  size_t keyed_by = 0;
  struct Loose {
    size_t index;
    std::vector<std::string> groups;  // serving a queue of its topic
  };
  std::vector<Loose> loose;
  auto describe = [&](size_t i) {
    const Message& m = messages[i];
    return "message " + std::to_string(i) + " (topic " + m.topic +
           (m.key.empty() ? ", no key" : ", key '" + m.key + "'") + ")";
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (IsSystemName(m.topic)) continue;  // never placed: every group has its own
    auto route = RouteOf(m.topic);
    if (!route.ok()) return route.status();
    if (route->groups.empty()) {
      loose.push_back({i, {""}});
      continue;
    }
    auto local = [&](const std::string& g) { return g == route->home_group ? std::string() : g; };
    if (!m.key.empty()) {
      const std::string group = local(route->groups[StableHash(m.key) % route->groups.size()]);
      if (!keyed) {
        keyed = group;
        keyed_by = i;
      } else if (*keyed != group) {
        return Status::InvalidArgument(
            "a transaction is one broker group's: " + describe(keyed_by) + " is served by " +
            (keyed->empty() ? "the group of " + home_->connection().current_broker() : *keyed) +
            ", " + describe(i) + " by " + (group.empty() ? "that broker's group" : group) +
            "; send them in separate transactions");
      }
    } else {
      Loose l{i, {}};
      for (const std::string& g : route->groups) {
        if (std::find(l.groups.begin(), l.groups.end(), local(g)) == l.groups.end()) {
          l.groups.push_back(local(g));
        }
      }
      loose.push_back(std::move(l));
    }
  }
  // Keyless messages go where the keyed ones do; alone, home when it can
  // take them all, else the first group that can.
  std::vector<std::string> candidates;
  if (keyed) {
    candidates = {*keyed};
  } else if (!loose.empty()) {
    candidates = loose.front().groups;
    std::stable_partition(candidates.begin(), candidates.end(),
                          [](const std::string& g) { return g.empty(); });
  } else {
    candidates = {""};
  }
  std::optional<std::string> chosen;
  for (const std::string& c : candidates) {
    if (std::all_of(loose.begin(), loose.end(), [&](const Loose& l) {
          return std::find(l.groups.begin(), l.groups.end(), c) != l.groups.end();
        })) {
      chosen = c;
      break;
    }
  }
  if (!chosen) {
    const Loose& odd = *std::find_if(loose.begin(), loose.end(), [&](const Loose& l) {
      return std::find(l.groups.begin(), l.groups.end(), candidates.front()) == l.groups.end();
    });
    return Status::InvalidArgument("a transaction is one broker group's: no group serves both " +
                                   describe(keyed ? keyed_by : loose.front().index) + " and " +
                                   describe(odd.index) + "; send them in separate transactions");
  }
  if (chosen->empty()) return home_.get();
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = groups_.find(*chosen); it != groups_.end()) return it->second.get();
    }
    if (attempt == 0) Refresh();  // a group placed since the last listing
  }
  return Status::Unavailable("broker group " + *chosen +
                             " serves the transaction's queues, but none of its nodes is "
                             "registered now (the group is down)");
}

void TxGroups::Forget(const std::vector<Message>& messages) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Message& m : messages) routes_.erase(m.topic);
}

std::vector<TxClient*> TxGroups::All() {
  std::vector<TxClient*> all{home_.get()};
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [group, client] : groups_) all.push_back(client.get());
  return all;
}

}  // namespace txmq::producer
