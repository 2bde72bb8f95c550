#include "tools/txmq-bench/cpu_meter.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace txmq::bench {

void CpuMeter::Start() { start_ = Take(); }

void CpuMeter::Stop() { stop_ = Take(); }

std::optional<double> CpuMeter::broker_cores() const {
  return Cores(start_.broker_ticks, stop_.broker_ticks);
}

std::optional<double> CpuMeter::client_cores() const {
  return Cores(start_.client_ticks, stop_.client_ticks);
}

CpuMeter::Sample CpuMeter::Take() const {
  Sample s;
  if (broker_pid_ > 0) s.broker_ticks = ReadTicks(std::to_string(broker_pid_));
  s.client_ticks = ReadTicks("self");
  s.time = std::chrono::steady_clock::now();
  return s;
}

std::optional<double> CpuMeter::Cores(int64_t start_ticks, int64_t stop_ticks) const {
  if (start_ticks < 0 || stop_ticks < start_ticks) return std::nullopt;
  const double wall = std::chrono::duration<double>(stop_.time - start_.time).count();
  if (wall <= 0) return std::nullopt;
  const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(stop_ticks - start_ticks) / ticks_per_s / wall;
}

int64_t CpuMeter::ReadTicks(const std::string& which) {
  std::ifstream in("/proc/" + which + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // The command name (field 2) is in parentheses and may contain spaces:
  // count fields from the last ')'. utime and stime are fields 14 and 15,
  // i.e. the 12th and 13th after the name.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 1));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;
  int64_t utime = -1, stime = -1;
  fields >> utime >> stime;
  if (!fields) return -1;
  return utime + stime;
}

}  // namespace txmq::bench
