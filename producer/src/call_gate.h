// CallGate: how a client object shuts down while other threads are inside
// its calls. Each call passes the gate while it uses the object's
// connection; Shutdown closes the gate (later calls are refused) and waits
// until every call that got in has left, so nothing is freed under a call.
//
//   CallGate::Pass pass(gate_);
//   if (!pass) return Status::FailedPrecondition("producer is shut down");
//   ... use the connection ...
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace txmq::producer {

class CallGate {
 public:
  // Starts closed; Open() once the object is ready.
  CallGate() = default;
  CallGate(const CallGate&) = delete;
  CallGate& operator=(const CallGate&) = delete;

  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
  }
  // Refuses calls from now on; returns at once.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  // Waits until no call is inside; false if some still are after `timeout`.
  bool WaitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return idle_.wait_for(lock, timeout, [this] { return inside_ == 0; });
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return inside_ == 0; });
  }

  // One call inside the gate, from construction to destruction; false when
  // the gate was closed (the call must not touch what the gate guards).
  class Pass {
   public:
    explicit Pass(CallGate& gate) : gate_(gate) {
      std::lock_guard<std::mutex> lock(gate_.mu_);
      entered_ = gate_.open_;
      if (entered_) ++gate_.inside_;
    }
    ~Pass() {
      if (!entered_) return;
      std::lock_guard<std::mutex> lock(gate_.mu_);
      if (--gate_.inside_ == 0) gate_.idle_.notify_all();
    }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    explicit operator bool() const { return entered_; }

   private:
    CallGate& gate_;
    bool entered_ = false;
  };

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  bool open_ = false;  // guarded by mu_
  int inside_ = 0;     // guarded by mu_: calls between Pass and ~Pass
};

}  // namespace txmq::producer
