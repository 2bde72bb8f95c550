#include "producer/src/group_router.h"

#include <algorithm>
#include <system_error>
#include <thread>

#include "producer/src/send_path.h"
#include "protocol/src/codec.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/route_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::producer {

GroupRouter::GroupRouter(net::Connection& home, net::ConnectionOptions group_options,
                         std::chrono::milliseconds timeout)
    : home_(home), group_options_(std::move(group_options)), timeout_(timeout) {}

GroupRouter::~GroupRouter() { Close(); }

void GroupRouter::Shut() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
}

void GroupRouter::Close() {
  // Their pending calls fail now, on this thread.
  std::map<std::string, std::unique_ptr<net::Connection>> groups;
  std::map<std::string, std::vector<Waiting>> asking;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    groups.swap(groups_);
    asking.swap(asking_);
  }
  for (auto& [name, connection] : groups) {
    // The last reference can go in a completion on one of these
    // connections (a send's callback ran while the producer shut down):
    // destroying it here would wait for this very thread. Another thread
    // does it once this completion has returned.
    if (connection && connection->OnIoThread()) {
      try {
        std::thread([gone = std::move(connection)]() mutable { gone.reset(); }).detach();
      } catch (const std::system_error& e) {
        // No thread to be had: left open rather than waiting for ourselves.
        Logger("producer")
            ->error("cannot close the connection to broker group {}: {}", name, e.what());
        (void)connection.release();
      }
    }
  }
  groups.clear();
  // Sends waiting for a route that will now never be read.
  for (auto& [topic, waiting] : asking) {
    for (auto& w : waiting) {
      w.done(Status::Unavailable("the producer shut down before the route of topic " + topic +
                                 " was known"));
    }
  }
}

void GroupRouter::Forget(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_.erase(topic);
}

void GroupRouter::NoteUnsure(const std::string& message_id, const std::string& group) {
  if (message_id.empty() || group.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = unsure_.try_emplace(message_id);
  it->second.group = group;
  if (!fresh) return;
  it->second.noted = ++unsure_noted_;
  unsure_order_.emplace_back(message_id, it->second.noted);
  while (unsure_order_.size() > kMaxUnsure) {
    // Only the note it was queued for: the id may have settled and been
    // noted again since.
    auto oldest = unsure_.find(unsure_order_.front().first);
    if (oldest != unsure_.end() && oldest->second.noted == unsure_order_.front().second) {
      unsure_.erase(oldest);
    }
    unsure_order_.pop_front();
  }
}

void GroupRouter::NoteSettled(const std::string& message_id) {
  std::lock_guard<std::mutex> lock(mu_);
  // Its place in unsure_order_ goes when it comes round.
  unsure_.erase(message_id);
}

std::string GroupRouter::UnsureGroupOf(const std::string& message_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = unsure_.find(message_id);
  return it == unsure_.end() ? "" : it->second.group;
}

void GroupRouter::Resolve(const std::string& topic, const std::string& key, ResolveFn done,
                          const std::string& unsure_group) {
  // The broker's own topics (a compensation topic) are not placed: each
  // group keeps its own.
  if (IsSystemName(topic)) return done(Target{&home_, false, ""});
  Result<Target> target = Status::Unavailable("no route");
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) {
      lock.unlock();  // the caller's callback runs without the router's lock
      return done(Status::Unavailable("the producer shut down"));
    }
    auto route = routes_.find(topic);
    if (route == routes_.end()) {
      auto& waiting = asking_[topic];
      waiting.push_back({key, unsure_group, std::move(done)});
      if (waiting.size() > 1) return;  // asked already
    } else {
      target = Pick(topic, route->second, key, unsure_group);
      // No leader there when the route was asked: ask again next time.
      if (!target.ok()) routes_.erase(route);
    }
  }
  if (done) return done(std::move(target));

  auto request = home_.NewRequest();
  auto route = request.envelope().initRoute();
  route.setTopic(topic);
  route.setCreate(true);
  std::weak_ptr<GroupRouter> weak = weak_from_this();
  home_.Call(std::move(request), timeout_, [weak, topic](Result<wire::Frame> reply) {
    if (auto self = weak.lock()) self->OnRoute(topic, std::move(reply));
  });
}

void GroupRouter::OnRoute(const std::string& topic, Result<wire::Frame> reply) {
  std::vector<Waiting> waiting;
  std::vector<Result<Target>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting.swap(asking_[topic]);
    asking_.erase(topic);
    Route route;
    bool known = false;
    if (reply.ok()) {
      wire::TopicRouteView answer = wire::ReadTopicRoute(reply->envelope().getRouteOk());
      const std::string first_group = answer.groups.empty() ? "" : answer.groups.front();
      const bool one_group = std::all_of(answer.groups.begin(), answer.groups.end(),
                                         [&](const std::string& g) { return g == first_group; });
      const bool draining = std::any_of(answer.draining_from.begin(), answer.draining_from.end(),
                                        [](const std::string& g) { return !g.empty(); });
      route.groups = std::move(answer.groups);
      route.urls = std::move(answer.leader_urls);
      route.draining_from = std::move(answer.draining_from);
      route.draining_urls = std::move(answer.draining_urls);
      // One broker, or the one group the home connection's broker is in,
      // serves it all: the home connection, which follows that group's
      // leader (a queue draining from elsewhere is kept for resends of
      // messages unsure there). A topic wholly on another group goes there
      // like any other.
      if (one_group && (first_group.empty() || first_group == answer.answered_by)) {
        route.groups.clear();
        route.urls.clear();
        if (!draining) {
          route.draining_from.clear();
          route.draining_urls.clear();
        }
        route.home_group = first_group;
      }
      known = true;
    } else if (wire::FromBeforeRoutes(reply.status())) {
      known = true;  // a broker from before placement: it serves it all
    }
    // Any other failure (unreachable, not placed in time) is not kept: the
    // send goes to the home connection, which reports the state of things.
    if (known) {
      auto& stored = routes_[topic] = std::move(route);
      bool failed = false;
      for (auto& w : waiting) {
        targets.push_back(Pick(topic, stored, w.key, w.unsure_group));
        failed |= !targets.back().ok();
      }
      if (failed) routes_.erase(topic);  // a group without a leader: ask again next time
    } else {
      for (size_t i = 0; i < waiting.size(); ++i) targets.push_back(Target{&home_, false, ""});
    }
  }
  for (size_t i = 0; i < waiting.size(); ++i) waiting[i].done(std::move(targets[i]));
}

Result<GroupRouter::Target> GroupRouter::Pick(const std::string& topic, Route& route,
                                              const std::string& key,
                                              const std::string& unsure_group) {
  const Target home{&home_, false, route.home_group};
  if (route.groups.empty() && route.draining_from.empty()) return home;
  const auto n = static_cast<uint32_t>(std::max(route.groups.size(), route.draining_from.size()));
  uint32_t queue = key.empty() ? route.next++ % n : static_cast<uint32_t>(StableHash(key) % n);
  if (key.empty() && !unsure_group.empty()) {
    // Keyless, any queue will do: one of the group that may hold it, which
    // answers it as a duplicate if so, not one of another group, which
    // would store it again.
    for (uint32_t q = 0; q < n; ++q) {
      const bool serves = q < route.groups.size() ? route.groups[q] == unsure_group
                                                  : route.home_group == unsure_group;
      if (serves || (q < route.draining_from.size() && route.draining_from[q] == unsure_group)) {
        queue = q;
        break;
      }
    }
  }
  const std::string& group = route.groups.empty() ? route.home_group : route.groups[queue];
  if (!unsure_group.empty() && group != unsure_group && queue < route.draining_from.size() &&
      route.draining_from[queue] == unsure_group) {
    if (route.draining_urls[queue].empty()) {
      return Status::Unavailable(
          "an earlier send of this message to broker group " + unsure_group +
          " got no answer, and queue " + std::to_string(queue) + " of topic " + topic +
          " moved from it to group " + group + "; " + unsure_group +
          " has no leader now to say whether it stored the message (resend it later with the "
          "same id)");
    }
    return ConnectionTo(topic, unsure_group, route.draining_urls[queue]);
  }
  if (route.groups.empty()) return home;
  const std::string& url = route.urls[queue];
  if (url.empty()) {
    return Status::Unavailable("queue " + std::to_string(queue) + " of topic " + topic +
                               " is served by broker group " + group + ", which has no leader now");
  }
  return ConnectionTo(topic, group, url);
}

Result<GroupRouter::Target> GroupRouter::ConnectionTo(const std::string& topic,
                                                      const std::string& group,
                                                      const std::string& url) {
  if (closed_) return Status::Unavailable("the producer shut down");
  auto& connection = groups_[group + "|" + url];
  if (!connection) {
    net::ConnectionOptions o = group_options_;
    o.broker = url;
    // Its own name at each group's broker, so that no registration
    // replaces the home connection's (or another connection's of this
    // client: group_options_ may name a base of its own).
    o.client_id = GroupClientId(
        group_options_.client_id.empty() ? home_.client_id() : group_options_.client_id, group);
    auto opened = net::Connection::Open(std::move(o));
    if (!opened.ok()) return opened.status();
    connection = std::move(opened.value());
    Logger("producer")->info("topic {}: queues of broker group {} go to {}", topic, group, url);
  }
  return Target{connection.get(), true, group};
}

void SendRouted(std::shared_ptr<GroupRouter> router, const ProducerOptions& options,
                std::shared_ptr<const Message> message, SendCallback done, int reroutes) {
  std::weak_ptr<GroupRouter> weak = router;
  router->Resolve(
      message->topic, message->key,
      [weak, &options, message, done = std::move(done),
       reroutes](Result<GroupRouter::Target> target) mutable {
        if (!target.ok()) return done(target.status());
        const bool routed = target->routed;
        SendWithRetries(
            *target->connection, options, message,
            [weak, &options, message, done = std::move(done), reroutes, routed,
             group = target->group](Result<SendResult> r) mutable {
              const StatusCode code = r.ok() ? StatusCode::kOk : r.status().code();
              const bool unanswered =
                  code == StatusCode::kUnavailable || code == StatusCode::kTimeout;
              const bool stale = code == StatusCode::kWrongGroup || (routed && unanswered);
              auto router = weak.lock();
              if (router) {
                // Stored, or (WRONG_GROUP: a group answers a message it
                // holds as a duplicate) not stored there: settled. Any
                // other answer a retry could change (overloaded, not the
                // leader) may have come after an attempt that stored it.
                if (code == StatusCode::kOk || (code == StatusCode::kWrongGroup &&
                                                router->UnsureGroupOf(message->id) == group)) {
                  router->NoteSettled(message->id);
                } else if (code != StatusCode::kWrongGroup && r.status().IsRetryable()) {
                  router->NoteUnsure(message->id, group);
                }
              }
              if (!stale || reroutes == 0 || !router) return done(std::move(r));
              router->Forget(message->topic);
              SendRouted(std::move(router), options, message, std::move(done), reroutes - 1);
            });
      },
      router->UnsureGroupOf(message->id));
}

}  // namespace txmq::producer
