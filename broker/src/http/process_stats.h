// The process's own figures for /metrics, read from /proc/self.
//
// Thread safety: ReadProcessStats may run on any thread.
#pragma once

#include <cstdint>

namespace txmq::broker::http {

struct ProcessStats {
  bool ok = false;  // false: /proc could not be read (the figures are 0)
  uint64_t resident_bytes = 0;
  double cpu_seconds = 0;  // user + system
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;           // the soft limit
  double start_time_seconds = 0;  // since the Unix epoch
};

ProcessStats ReadProcessStats();

}  // namespace txmq::broker::http
