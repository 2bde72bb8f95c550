#include "broker/src/http/process_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace txmq::broker::http {

namespace {

// /proc/stat's "btime": when the machine booted, in seconds since the epoch.
uint64_t BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats p;
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Field 2 (the command) is in parentheses and may hold spaces: count the
  // fields from the last ')'. After it come fields 3 (state) onwards.
  const size_t close = text.rfind(')');
  if (close == std::string::npos || ticks <= 0 || page <= 0) return p;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0, start_ticks = 0, rss_pages = 0;
  for (int n = 3; fields >> field; ++n) {
    if (n == 14) utime = std::stoull(field);
    if (n == 15) stime = std::stoull(field);
    if (n == 22) start_ticks = std::stoull(field);
    if (n == 24) {
      rss_pages = std::stoull(field);
      break;
    }
  }
  p.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
  p.resident_bytes = rss_pages * static_cast<uint64_t>(page);
  p.start_time_seconds = static_cast<double>(BootTime()) +
                         static_cast<double>(start_ticks) / static_cast<double>(ticks);
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++p.open_fds;
  }
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0) p.max_fds = nofile.rlim_cur;
  p.ok = rss_pages > 0;
  return p;
}

}  // namespace txmq::broker::http
