#include "storage/src/commit_log.h"

#include <algorithm>

#include "protocol/src/log.h"
#include "storage/src/crc32c.h"

namespace txmq::storage {

namespace {

constexpr std::string_view kSegmentSuffix = ".seg";
constexpr size_t kSegmentNameDigits = 20;

bool ParseSegmentName(const std::string& name, uint64_t* base) {
  if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() ||
      !std::string_view(name).ends_with(kSegmentSuffix)) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < kSegmentNameDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *base = v;
  return true;
}

uint32_t EntryCrc(const char* header, std::string_view payload) {
  uint32_t crc = crc32c::Value(log::CoveredHeader(header));
  return crc32c::Mask(crc32c::Extend(crc, payload.data(), payload.size()));
}

}  // namespace

bool ParseEntry(std::string_view bytes, uint64_t position, LogEntry* out) {
  if (bytes.size() < log::kHeaderBytes) return false;
  log::Header h;
  if (!log::DecodeHeader(bytes.data(), &h) || h.type != log::kRoundEntry) return false;
  if (h.length > bytes.size() - log::kHeaderBytes) return false;
  std::string_view payload = bytes.substr(log::kHeaderBytes, h.length);
  if (EntryCrc(bytes.data(), payload) != h.crc) return false;
  out->position = position;
  out->header = h;
  out->payload = payload;
  return true;
}

Result<std::unique_ptr<CommitLog>> CommitLog::Open(const LogOptions& options, LogCursor from,
                                                   const ReplayFn& replay) {
  if (options.segment_bytes < (1u << 16) || options.segment_bytes % 1024 != 0 ||
      options.segment_bytes / 1024 > UINT32_MAX) {
    return Status::InvalidArgument(
        "segment_bytes = " + std::to_string(options.segment_bytes) +
        ": must be a multiple of 1 KiB, at least 64 KiB and below 4 TiB");
  }
  auto log = std::unique_ptr<CommitLog>(new CommitLog(options));
  if (Status s = log->LoadSegments(); !s.ok()) return s;
  if (Status s = log->Scan(from, replay); !s.ok()) return s;
  // The scan read the log through the cache, dropping it behind itself;
  // at the end it read the first entry of the last segment again (the
  // segment's size) and what follows the end. From the start, then: only
  // the tail stays.
  log->cache_dropped_before_.store(0, std::memory_order_relaxed);
  log->DropCacheBehind(log->written_.position);
  return log;
}

CommitLog::~CommitLog() = default;

std::string CommitLog::SegmentPath(uint64_t base) const {
  return options_.dir + "/" + SegmentFileName(base);
}

Status CommitLog::LoadSegments() {
  if (Status s = options_.fs->CreateDirs(options_.dir); !s.ok()) return s;
  auto names = options_.fs->List(options_.dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    uint64_t base;
    if (!ParseSegmentName(name, &base)) continue;
    auto file = options_.fs->Open(options_.dir + "/" + name, 0);
    if (!file.ok()) return file.status();
    segments_.emplace(base, std::move(file.value()));
  }
  // A last segment too short for one entry header is one whose creation
  // never finished: it holds nothing. (A short segment before others is
  // damage; the scan reports it.)
  if (!segments_.empty() && segments_.rbegin()->second->size() < log::kHeaderBytes) {
    const std::string path = segments_.rbegin()->second->path();
    segments_.erase(std::prev(segments_.end()));
    if (Status s = options_.fs->Remove(path); !s.ok()) return s;
  }
  // Segments must follow each other without overlap.
  uint64_t end = 0;
  for (const auto& [base, file] : segments_) {
    if (base < end) {
      return Status::Corruption("log segment " + file->path() + " overlaps the one before it");
    }
    end = base + file->size();
  }
  return Status::OK();
}

File* CommitLog::Find(uint64_t position) const {
  auto it = segments_.upper_bound(position);
  if (it == segments_.begin()) return nullptr;
  --it;
  if (position >= it->first + it->second->size()) return nullptr;
  return it->second.get();
}

Status CommitLog::Scan(LogCursor from, const ReplayFn& replay) {
  LogCursor at;
  if (Status s = Walk(from, replay, &at); !s.ok()) return s;
  // What the walk read whole may be in the page cache only (a process
  // killed between a round's write and its fdatasync): it is replayed,
  // and a checkpoint will name it, so it must be as durable as the rest
  // before anything builds on it. (A segment with nothing unsynced costs
  // a system call.)
  for (const auto& [base, file] : segments_) {
    if (base + file->size() <= from.position || base >= at.position) continue;
    if (Status s = file->Sync(); !s.ok()) return s;
  }
  SetEnd(at);
  // A segment that starts after the end holds nothing that belongs to the
  // log.
  std::vector<std::string> stale;
  for (auto it = segments_.upper_bound(placed_segment_base_); it != segments_.end();) {
    stale.push_back(it->second->path());
    it = segments_.erase(it);
  }
  for (const std::string& path : stale) {
    if (Status s = options_.fs->Remove(path); !s.ok()) return s;
  }
  return Status::OK();
}

Status CommitLog::ZeroAfterEnd() {
  const uint64_t position = written_.position;
  File* seg = Find(position);
  if (seg == nullptr) return Status::OK();
  const uint64_t from = position - BaseOf(position);
  // Only what may hold data is read: nothing, in the usual case.
  const auto [first, end] = seg->DataAfter(from);
  const std::string_view bytes = seg->mapped().substr(0, end);
  const size_t last = first < end ? bytes.find_last_not_of('\0') : std::string_view::npos;
  if (last == std::string_view::npos || last < from) return Status::OK();
  static const std::string kZeros(1u << 20, '\0');
  for (uint64_t at = from; at <= last; at += kZeros.size()) {
    const size_t n = std::min<uint64_t>(kZeros.size(), last + 1 - at);
    const iovec part{const_cast<char*>(kZeros.data()), n};
    if (Status s = seg->WriteAt(at, {&part, 1}); !s.ok()) return s;
  }
  Logger("storage")->info(
      "zeroed {} bytes after the log's end at position {} (an entry a crash cut short, or never "
      "synced)",
      last + 1 - from, position);
  return seg->Sync();
}

void CommitLog::SetEnd(const LogCursor& at) {
  placed_ = written_ = at;
  synced_index_ = at.index - 1;  // what is on disk now is as durable as it gets
  synced_position_.store(at.position);
  if (File* seg = Find(at.position); seg != nullptr) {
    placed_segment_base_ = BaseOf(at.position);
    placed_segment_end_ = placed_segment_base_ + seg->size();
  } else {
    placed_segment_base_ = placed_segment_end_ = at.position;  // the next Place creates one
  }
}

void CommitLog::ContinueAt(const LogCursor& at) {
  std::lock_guard<std::mutex> lock(mu_);
  SetEnd(at);
}

Status CommitLog::Place(PendingEntry& entry) {
  const uint64_t n = entry.bytes();
  if (n > options_.segment_bytes) {
    return Status::TooLarge("a write round of " + std::to_string(n) +
                            " bytes does not fit in a log segment of " +
                            std::to_string(options_.segment_bytes) + " bytes");
  }
  entry.starts_segment = false;
  if (placed_.position + n > placed_segment_end_) {
    // Roll: the rest of the current segment stays unused.
    placed_segment_base_ = placed_segment_end_;
    placed_segment_end_ = placed_segment_base_ + options_.segment_bytes;
    placed_.position = placed_segment_base_;
    entry.starts_segment = true;
  } else if (placed_.position == placed_segment_base_) {
    entry.starts_segment = true;
  }
  entry.position = placed_.position;
  entry.index = placed_.index;
  placed_.position += n;
  placed_.index++;
  return Status::OK();
}

Result<File*> CommitLog::OpenSegment(uint64_t base) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = segments_.find(base); it != segments_.end()) return it->second.get();
  }
  auto file = options_.fs->Open(SegmentPath(base), options_.segment_bytes);
  if (!file.ok()) return file.status();
  File* raw = file->get();
  allocated_bytes_ += raw->size();
  std::lock_guard<std::mutex> lock(mu_);
  segments_.emplace(base, std::move(file.value()));
  return raw;
}

Status CommitLog::Write(PendingEntry& entry) {
  if (entry.index != written_.index) {
    return Status::Internal("log entries written out of order: " + std::to_string(entry.index) +
                            " after " + std::to_string(written_.index - 1));
  }
  File* seg;
  uint64_t base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seg = Find(entry.position);
    base = seg ? std::prev(segments_.upper_bound(entry.position))->first : entry.position;
  }
  if (seg == nullptr) {
    auto created = OpenSegment(entry.position);
    if (!created.ok()) return created.status();
    seg = *created;
  }
  log::Header h;
  h.length = static_cast<uint32_t>(entry.payload_bytes);
  h.epoch = entry.epoch;
  h.index = entry.index;
  h.prev_crc = written_.prev_crc;
  h.time_ms = entry.time_ms;
  h.segment_kib = static_cast<uint32_t>(seg->size() / 1024);
  if (synced_index_ + 1 == entry.index) h.flags |= log::kPreviousSynced;
  char header[log::kHeaderBytes];
  log::EncodeHeader(h, header);
  uint32_t crc = crc32c::Value(log::CoveredHeader(header));
  for (const iovec& piece : entry.payload) {
    crc = crc32c::Extend(crc, static_cast<const char*>(piece.iov_base), piece.iov_len);
  }
  h.crc = entry.crc = crc32c::Mask(crc);
  log::EncodeHeader(h, header);
  std::vector<iovec> pieces;
  pieces.reserve(entry.payload.size() + 1);
  pieces.push_back({header, log::kHeaderBytes});
  pieces.insert(pieces.end(), entry.payload.begin(), entry.payload.end());
  if (Status s = seg->WriteAt(entry.position - base, pieces); !s.ok()) return s;
  written_ = {entry.position + entry.bytes(), entry.index + 1, h.crc};
  if (unsynced_.empty() || unsynced_.back() != seg) unsynced_.push_back(seg);
  return Status::OK();
}

Status CommitLog::SyncWrittenFromAnyThread() {
  // The files are synced outside the lock, which every read takes. None
  // of them goes meanwhile: segments are deleted only wholly before a
  // checkpoint, which is never past what the last Sync made durable.
  std::vector<File*> files;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t durable = synced_position_.load();
    for (const auto& [base, file] : segments_) {
      if (base + file->size() > durable) files.push_back(file.get());
    }
  }
  for (File* file : files) {
    if (Status s = file->Sync(); !s.ok()) {
      // The kernel may have dropped the pages and tells it once: the
      // writer's next Sync must fail too, not report them durable.
      std::lock_guard<std::mutex> lock(mu_);
      if (foreign_sync_error_.ok()) foreign_sync_error_ = s;
      return s;
    }
  }
  return Status::OK();
}

Status CommitLog::Sync() {
  for (File* seg : unsynced_) {
    if (Status s = seg->Sync(); !s.ok()) return s;
  }
  {
    // After ours: the other thread's sync may have taken the error (the
    // kernel tells it once per file), before or while ours ran.
    std::lock_guard<std::mutex> lock(mu_);
    if (!foreign_sync_error_.ok()) return foreign_sync_error_;
  }
  unsynced_.clear();
  synced_index_ = written_.index - 1;
  synced_position_.store(written_.position);
  DropCacheBehind(written_.position);
  return Status::OK();
}

void CommitLog::DropCacheBehind(uint64_t durable_end) {
  // A few system calls per MiB written rather than per round.
  constexpr uint64_t kStep = 1u << 20;
  const uint64_t keep = options_.cached_tail_bytes;
  if (keep == 0) return;
  const uint64_t dropped = cache_dropped_before_.load(std::memory_order_relaxed);
  if (cold_read_bytes_.load(std::memory_order_relaxed) >= keep) {
    cold_read_bytes_.store(0, std::memory_order_relaxed);
    const uint64_t from = cold_read_from_.exchange(UINT64_MAX, std::memory_order_relaxed);
    const uint64_t to = std::min(cold_read_to_.exchange(0, std::memory_order_relaxed), dropped);
    std::lock_guard<std::mutex> lock(mu_);
    DropCacheOf(from, to);
  }
  if (durable_end < keep + kStep) return;
  const uint64_t until = durable_end - keep;
  if (until < dropped + kStep) return;
  std::lock_guard<std::mutex> lock(mu_);
  DropCacheOf(dropped, until);
  cache_dropped_before_.store(until, std::memory_order_relaxed);
}

void CommitLog::DropCacheOf(uint64_t from, uint64_t to) {
  if (from >= to) return;
  auto it = segments_.upper_bound(from);
  if (it != segments_.begin()) --it;
  for (; it != segments_.end() && it->first < to; ++it) {
    const uint64_t base = it->first;
    const uint64_t first = std::max(from, base);
    const uint64_t last = std::min(to, base + it->second->size());
    if (first < last) it->second->DropCache(first - base, last - first);
  }
}

void CommitLog::NoteRead(uint64_t position, uint64_t n) const {
  if (position >= cache_dropped_before_.load(std::memory_order_relaxed)) return;
  cold_read_bytes_.fetch_add(n, std::memory_order_relaxed);
  uint64_t from = cold_read_from_.load(std::memory_order_relaxed);
  while (position < from &&
         !cold_read_from_.compare_exchange_weak(from, position, std::memory_order_relaxed)) {
  }
  uint64_t to = cold_read_to_.load(std::memory_order_relaxed);
  while (position + n > to &&
         !cold_read_to_.compare_exchange_weak(to, position + n, std::memory_order_relaxed)) {
  }
}

Status CommitLog::PrepareNextSegment() {
  uint64_t next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (segments_.empty()) return Status::OK();
    const auto& [base, last] = *segments_.rbegin();
    const uint64_t used = written_.position > base ? written_.position - base : 0;
    if (used * 2 < last->size()) return Status::OK();
    next = base + last->size();
  }
  auto created = OpenSegment(next);
  return created.ok() ? Status::OK() : created.status();
}

Result<std::string_view> CommitLog::Read(uint64_t position, size_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  File* seg = Find(position);
  if (seg == nullptr) {
    return Status::NotFound("log position " + std::to_string(position) + " is not in the log");
  }
  const uint64_t base = std::prev(segments_.upper_bound(position))->first;
  std::string_view all = seg->mapped();
  if (position - base + n > all.size()) {
    return Status::Corruption("log read of " + std::to_string(n) + " bytes at " +
                              std::to_string(position) + " runs past the end of " + seg->path());
  }
  return all.substr(position - base, n);
}

Result<std::string_view> CommitLog::ReadFrom(uint64_t position) const {
  std::lock_guard<std::mutex> lock(mu_);
  File* seg = Find(position);
  if (seg == nullptr) {
    return Status::NotFound("log position " + std::to_string(position) + " is not in the log");
  }
  const uint64_t base = std::prev(segments_.upper_bound(position))->first;
  return seg->mapped().substr(position - base);
}

Result<LogEntry> CommitLog::ReadEntry(uint64_t position) const {
  std::lock_guard<std::mutex> lock(mu_);
  File* seg = Find(position);
  if (seg == nullptr) {
    return Status::NotFound("log position " + std::to_string(position) + " is not in the log");
  }
  const uint64_t base = std::prev(segments_.upper_bound(position))->first;
  LogEntry e;
  if (!ParseEntry(seg->mapped().substr(position - base), position, &e)) {
    return Status::Corruption("no intact log entry at position " + std::to_string(position) +
                              " in " + seg->path());
  }
  return e;
}

Result<uint64_t> CommitLog::DeleteBefore(uint64_t position) {
  std::vector<std::unique_ptr<File>> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = segments_.begin(); it != segments_.end();) {
      if (it->first + it->second->size() > position) break;
      doomed.push_back(std::move(it->second));
      it = segments_.erase(it);
    }
  }
  uint64_t freed = 0;
  for (auto& file : doomed) {
    freed += file->size();
    const std::string path = file->path();
    file.reset();  // unmapped before the name goes
    if (Status s = options_.fs->Remove(path); !s.ok()) return s;
  }
  return freed;
}

std::vector<SegmentInfo> CommitLog::Segments() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SegmentInfo> out;
  out.reserve(segments_.size());
  for (const auto& [base, file] : segments_) out.push_back({base, file->size()});
  return out;
}

uint64_t CommitLog::start() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.empty() ? placed_.position : segments_.begin()->first;
}

}  // namespace txmq::storage
