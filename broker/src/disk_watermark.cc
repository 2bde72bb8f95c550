#include "broker/src/disk_watermark.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "protocol/src/byte_size.h"
#include "protocol/src/log.h"

namespace txmq {

namespace {

class Statvfs final : public FreeSpaceSource {
 public:
  Result<uint64_t> FreeBytes(const std::string& dir) override {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) {
      return Status::Internal("statvfs('" + dir + "'): " + std::strerror(errno));
    }
    return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
  }
};

}  // namespace

std::shared_ptr<FreeSpaceSource> StatvfsFreeSpace() { return std::make_shared<Statvfs>(); }

}  // namespace txmq

namespace txmq::broker {

DiskWatermark::DiskWatermark(const BrokerOptions& options)
    : source_(options.free_space ? options.free_space : StatvfsFreeSpace()),
      dir_(options.data_dir),
      min_free_(EffectiveMinFreeDisk(options)) {}

void DiskWatermark::Start(SteadyTime now, uint64_t log_allocated) {
  Read(now, log_allocated);
  if (!enabled()) {
    Logger("broker")->warn(
        "--min-free-disk is 0: free disk space is not checked; a full disk will stop the broker "
        "(fail-stop) instead of refusing new messages");
  }
}

void DiskWatermark::Tick(SteadyTime now, uint64_t log_allocated) {
  if (now >= next_read_) return Read(now, log_allocated);
  const uint64_t since = log_allocated - allocated_at_read_;
  const uint64_t estimate = read_free_ > since ? read_free_ - since : 0;
  if (estimate == estimate_) return;
  estimate_ = estimate;
  Update(false);
}

void DiskWatermark::Read(SteadyTime now, uint64_t log_allocated) {
  next_read_ = now + kReadInterval;
  auto free = source_->FreeBytes(dir_);
  if (!free.ok()) {
    // Keep what was known: neither refuse nor accept on a guess. Logged
    // once per spell of failures.
    if (!read_failed_) {
      Logger("broker")->warn("cannot read the free disk space of {}: {}; keeping the last value",
                             dir_, free.status().ToString());
    }
    read_failed_ = true;
    return;
  }
  if (read_failed_) Logger("broker")->info("free disk space of {} readable again", dir_);
  read_failed_ = false;
  read_free_ = estimate_ = *free;
  allocated_at_read_ = log_allocated;
  Update(true);
}

void DiskWatermark::Update(bool from_read) {
  if (!enabled()) return;
  if (!low_ && estimate_ < min_free_) {
    low_ = true;
    low_since_refused_ = refused_;
    Logger("broker")->warn(
        "disk space low: {} free on the file system of {}, below --min-free-disk {}: refusing new "
        "messages (sends, transactional halves, dead-letter resends, topic creation) with "
        "RESOURCE_EXHAUSTED until {} are free; consumers, acks and transaction ends go on",
        FormatBytes(estimate_), dir_, FormatBytes(min_free_), FormatBytes(resume_at()));
  } else if (low_ && from_read && estimate_ >= resume_at()) {
    // Only a read ends a low spell: the estimate only ever goes down.
    low_ = false;
    Logger("broker")->info(
        "disk space recovered: {} free on the file system of {} (at least {}): accepting new "
        "messages again; {} requests were refused while it was low",
        FormatBytes(estimate_), dir_, FormatBytes(resume_at()), refused_ - low_since_refused_);
  }
}

Status DiskWatermark::CheckAccepts() const {
  if (!low_) return Status::OK();
  ++refused_;
  return Status::ResourceExhausted(
      "disk space low: " + FormatBytes(estimate_) + " free for data directory '" + dir_ +
      "', below --min-free-disk " + FormatBytes(min_free_) + "; new messages are refused until " +
      FormatBytes(resume_at()) +
      " are free (consumers can still drain, transactions can still end)");
}

}  // namespace txmq::broker
