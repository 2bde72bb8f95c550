#include "protocol/src/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace txmq {

EventFd::EventFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

EventFd::~EventFd() { close(fd_); }

void EventFd::Notify() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the poller wakes anyway.
  ssize_t unused = write(fd_, &one, sizeof one);
  (void)unused;
}

void EventFd::Drain() {
  uint64_t value;
  ssize_t unused = read(fd_, &value, sizeof value);
  (void)unused;
}

}  // namespace txmq
