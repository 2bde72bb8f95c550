#include "broker/src/cluster/member_thread.h"

#include <pthread.h>

#include <optional>

#include "protocol/src/log.h"

namespace txmq::cluster {

MemberThread::MemberThread(std::unique_ptr<GroupMember> member,
                           std::chrono::milliseconds tick_every,
                           std::function<void(const MemberView&)> on_view)
    : member_(std::move(member)), tick_every_(tick_every), on_view_(std::move(on_view)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "txmq-member");
    Loop();
  });
}

MemberThread::~MemberThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  // The liveness key goes at once, so another member need not wait out
  // the lease (blocks for the coordinator's timeout when etcd is away).
  (void)member_->Leave();
}

std::vector<MemberEvent> MemberThread::TakeEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MemberEvent> events;
  events.swap(events_);
  return events;
}

MemberView MemberThread::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

void MemberThread::RequestShrink(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pending_.insert(node).second) return;
  requests_.push_back({Request::Kind::kShrink, node});
  wake_.notify_all();
}

void MemberThread::RequestExpand(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pending_.insert(node).second) return;
  requests_.push_back({Request::Kind::kExpand, node});
  wake_.notify_all();
}

void MemberThread::RequestLeave() {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back({Request::Kind::kLeave, ""});
  wake_.notify_all();
}

void MemberThread::Loop() {
  auto next_tick = Clock::now();
  while (true) {
    std::optional<Request> request;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_until(lock, next_tick, [&] { return stop_ || !requests_.empty(); });
      if (stop_) return;
      if (!requests_.empty()) {
        request = std::move(requests_.front());
        requests_.pop_front();
      }
    }
    if (request) {
      Run(*request);
      continue;
    }
    const auto now = Clock::now();
    if (now < next_tick) continue;
    const int64_t epoch_before = member_->leader_epoch();
    TickReport report = member_->Tick(now);
    if (!report.coordinator.ok()) {
      Logger("cluster")->debug("etcd: {}", report.coordinator.ToString());
    }
    std::lock_guard<std::mutex> lock(mu_);
    Publish(report, epoch_before);
    next_tick = Clock::now() + tick_every_;
  }
}

void MemberThread::Run(const Request& request) {
  auto log = Logger("cluster");
  const int64_t epoch_before = member_->leader_epoch();
  const std::vector<std::string> isr_before = member_->view().isr;
  Status done;
  switch (request.kind) {
    case Request::Kind::kShrink:
      done = member_->ShrinkIsr(request.node, Clock::now());
      log->warn("{} lags; taking it out of the ISR: {}", request.node,
                done.ok() ? "done" : done.ToString());
      break;
    case Request::Kind::kExpand:
      done = member_->ExpandIsr(request.node, Clock::now());
      if (!done.ok() || member_->view().isr != isr_before) {
        log->info("{} caught up; into the ISR: {}", request.node,
                  done.ok() ? "done" : done.ToString());
      }
      break;
    case Request::Kind::kLeave:
      done = member_->Leave();
      break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  pending_.erase(request.node);
  if (epoch_before != 0 && member_->leader_epoch() == 0) {
    // The write's outcome is unknown or the record moved on: an ISR this
    // node cannot name must not be acknowledged against.
    events_.push_back({.kind = MemberEvent::Kind::kSteppedDown,
                       .epoch = epoch_before,
                       .note = done.ok() ? "left the group" : done.ToString()});
  } else if (done.ok() && request.kind != Request::Kind::kLeave && epoch_before != 0 &&
             member_->view().isr != isr_before) {
    // A node asked for twice (the second ask arriving after the first was
    // done) is already in: nothing changed, so nothing to announce.
    events_.push_back({.kind = MemberEvent::Kind::kIsrChanged,
                       .epoch = epoch_before,
                       .isr = member_->view().isr});
  }
  PublishView(done.code() == StatusCode::kUnavailable ? done : Status::OK());
}

void MemberThread::Publish(const TickReport& report, int64_t epoch_before) {
  // A step-down comes first: both may happen in one tick.
  if (report.stepped_down) {
    events_.push_back({.kind = MemberEvent::Kind::kSteppedDown,
                       .epoch = epoch_before,
                       .note = report.note.empty() ? "the group record moved on" : report.note});
  }
  if (report.became_leader) {
    events_.push_back({.kind = MemberEvent::Kind::kBecameLeader,
                       .epoch = member_->leader_epoch(),
                       .isr = member_->view().isr});
  }
  PublishView(report.coordinator);
}

void MemberThread::PublishView(const Status& coordinator) {
  view_.state = member_->view();
  view_.leader_url = member_->leader_url();
  view_.coordinator = coordinator;
  if (on_view_) on_view_(view_);
}

}  // namespace txmq::cluster
