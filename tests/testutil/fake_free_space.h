// A free-space source the test sets: the disk watermark's tests move the
// free bytes across the threshold, count reads and make the source fail.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "broker/src/disk_watermark.h"

namespace txmq::testing {

class FakeFreeSpace final : public FreeSpaceSource {
 public:
  Result<uint64_t> FreeBytes(const std::string&) override {
    ++reads;
    if (fail) return Status::Internal("statvfs: no such device");
    return free.load();
  }
  std::atomic<uint64_t> free{100'000ull << 20};
  std::atomic<bool> fail{false};
  std::atomic<int> reads{0};
};

}  // namespace txmq::testing
