// CPU use of the broker and of txmq-bench itself over the timed part, in
// cores: (utime + stime of all threads, from /proc/PID/stat) / wall time.
// The peers harness reports its servers' CPU the same way.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace txmq::bench {

class CpuMeter {
 public:
  // `broker_pid` < 0: a broker we did not start; only our own CPU is known.
  explicit CpuMeter(pid_t broker_pid) : broker_pid_(broker_pid) {}

  // Both may be called from any thread (one at a time).
  void Start();
  void Stop();

  // Cores used between Start and Stop; empty when unknown.
  std::optional<double> broker_cores() const;
  std::optional<double> client_cores() const;

 private:
  struct Sample {
    int64_t broker_ticks = -1;
    int64_t client_ticks = -1;
    std::chrono::steady_clock::time_point time{};
  };

  Sample Take() const;
  std::optional<double> Cores(int64_t start_ticks, int64_t stop_ticks) const;
  // utime + stime in clock ticks of /proc/<which>/stat; -1 when unknown.
  static int64_t ReadTicks(const std::string& which);

  pid_t broker_pid_;
  Sample start_;
  Sample stop_;
};

}  // namespace txmq::bench
