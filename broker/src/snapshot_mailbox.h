// How a thread other than the core gets a MetricsSnapshot without touching
// core-thread state: it asks here, the core thread (which polls fd() next
// to its socket) copies its state into a snapshot and publishes it, and
// the asker wakes with it.
//
// Why on request and not on a timer: a snapshot costs a walk over every
// queue and group, which a broker nobody scrapes should not pay, and a
// scrape then sees the state of that moment. Requests that arrive while
// one is being built are answered together by the next snapshot
// (`asked_` counts requests, `answered_` says up to which one a published
// snapshot covers), so many scrapers cost one walk each round.
//
// If the core does not answer within the asker's timeout (it is stuck, or
// not started yet), the asker gets UNAVAILABLE; once the core stopped
// (Close), every request gets the reason at once.
//
// Thread safety: Request and Close from any thread; fd, TakeRequest and
// Publish on the core thread. mu_ guards the rest.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "broker/src/metrics_snapshot.h"
#include "protocol/src/event_fd.h"
#include "txmq/status.h"

namespace txmq::broker {

class SnapshotMailbox {
 public:
  SnapshotMailbox() = default;
  SnapshotMailbox(const SnapshotMailbox&) = delete;
  SnapshotMailbox& operator=(const SnapshotMailbox&) = delete;

  // Any thread: a snapshot taken after this call began, or UNAVAILABLE
  // (the core did not answer within `timeout`, or stopped: then the
  // status says why).
  Result<std::shared_ptr<const MetricsSnapshot>> Request(std::chrono::milliseconds timeout);

  // Core thread: the descriptor to poll for requests.
  int fd() const { return wake_.fd(); }
  // Core thread, when fd() is readable: 0 when nobody waits, else the
  // ticket to hand to Publish with the snapshot.
  uint64_t TakeRequest();
  void Publish(std::shared_ptr<const MetricsSnapshot> snapshot, uint64_t ticket);
  // The core stopped: requests fail with `why` (UNAVAILABLE) from now on.
  void Close(const Status& why);

 private:
  EventFd wake_;
  std::mutex mu_;
  std::condition_variable published_;
  uint64_t asked_ = 0;     // requests made (guarded by mu_)
  uint64_t answered_ = 0;  // requests the latest snapshot answers (guarded by mu_)
  std::shared_ptr<const MetricsSnapshot> latest_;  // guarded by mu_
  bool closed_ = false;                            // guarded by mu_
  Status close_reason_;                            // guarded by mu_
};

}  // namespace txmq::broker
