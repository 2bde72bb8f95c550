// A wake-up signal another thread can raise and a poll loop can wait on,
// next to its ZeroMQ sockets (zmq_poll accepts plain file descriptors).
//
// Thread safety: Notify() from any thread; Drain() and fd() on the polling
// thread.
#pragma once

namespace txmq {

class EventFd {
 public:
  EventFd();
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  int fd() const { return fd_; }
  void Notify();
  void Drain();

 private:
  int fd_;
};

}  // namespace txmq
