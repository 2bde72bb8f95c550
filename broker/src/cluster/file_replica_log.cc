// Layout of a replica log directory:
//
//   <dir>/epoch                   the highest epoch seen, decimal; replaced
//                                 atomically (write, sync, rename, sync dir)
//   <dir>/<first:20 digits>.rlog  a preallocated segment of segment_bytes
//                                 whose first entry is number `first`; an
//                                 entry that does not fit starts a new one,
//                                 and a zero header (when it fits) ends the
//                                 segment it did not fit in
//
//   Entry  := Header Payload
//   Header := magic:u32 crc:u32 length:u32 reserved:u32 epoch:i64 index:u64
//             (32 bytes, little-endian)
//     magic   "TXRL"
//     crc     the chain crc (replica_log.h): covers the previous entry's
//             crc, epoch, index and payload, so it is the same on every
//             replica, and stale bytes never continue a chain
//     length  payload bytes
//
// Recovery walks the segments from the one named 1, entry by entry, while
// each entry is whole, has the next index, an epoch no lower than the one
// before, and chains. Where that fails the log continues in the segment
// named by the next index if there is one (the entry rolled), else it ends
// there; every other segment is removed. (A segment named by an entry an
// earlier one holds is the leftover of entries a failed sync forgot, which
// the sync's own removal did not get to: skipped, and removed too. Stale
// bytes continue a chain only after the same entry, the case of an entry
// forgotten by a failed sync and written again larger, in a new segment:
// the zero header at a roll ends the old one before such bytes.) A torn or unsynced tail therefore
// just ends the log: only synced entries were ever reported durable, and
// they come before it. (Unlike the commit log, a damaged synced entry is
// not told apart from a torn tail: the leader's copy makes it whole again.)
//
// Truncation after `keep` zeroes the header of entry keep + 1 and syncs it
// before removing the segments that start after keep, so a crash in
// between leaves the truncated log or the whole one, and the whole one only
// causes another divergence round (its entries do not chain to the
// leader's).
#include "broker/src/cluster/file_replica_log.h"

#include <algorithm>
#include <cstring>

#include "protocol/src/log.h"

namespace txmq::cluster {
namespace {

constexpr uint32_t kMagic = 0x4c525854;  // "TXRL" little-endian
constexpr size_t kHeaderBytes = 32;
constexpr std::string_view kSuffix = ".rlog";
constexpr size_t kDigits = 20;

struct Header {
  uint32_t crc = 0;
  uint32_t length = 0;
  int64_t epoch = 0;
  uint64_t index = 0;
};

void EncodeHeader(const Header& h, char* out) {
  const uint32_t magic = kMagic, reserved = 0;
  std::memcpy(out, &magic, 4);
  std::memcpy(out + 4, &h.crc, 4);
  std::memcpy(out + 8, &h.length, 4);
  std::memcpy(out + 12, &reserved, 4);
  std::memcpy(out + 16, &h.epoch, 8);
  std::memcpy(out + 24, &h.index, 8);
}

bool DecodeHeader(std::string_view in, Header* h) {
  if (in.size() < kHeaderBytes) return false;
  uint32_t magic;
  std::memcpy(&magic, in.data(), 4);
  if (magic != kMagic) return false;
  std::memcpy(&h->crc, in.data() + 4, 4);
  std::memcpy(&h->length, in.data() + 8, 4);
  std::memcpy(&h->epoch, in.data() + 16, 8);
  std::memcpy(&h->index, in.data() + 24, 8);
  return true;
}

bool ParseSegmentName(const std::string& name, uint64_t* first) {
  if (name.size() != kDigits + kSuffix.size() || !std::string_view(name).ends_with(kSuffix)) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < kDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *first = v;
  return v > 0;
}

}  // namespace

FileReplicaLog::FileReplicaLog(FileReplicaLogOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<FileReplicaLog>> FileReplicaLog::Open(FileReplicaLogOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("FileReplicaLogOptions.dir is empty");
  if (options.segment_bytes < 4096) {
    return Status::InvalidArgument("FileReplicaLogOptions.segment_bytes " +
                                   std::to_string(options.segment_bytes) +
                                   ": must be at least 4096");
  }
  auto log = std::unique_ptr<FileReplicaLog>(new FileReplicaLog(std::move(options)));
  if (Status s = log->Recover(); !s.ok()) return s;
  return log;
}

std::string FileReplicaLog::SegmentPath(uint64_t first) const {
  std::string digits = std::to_string(first);
  return options_.dir + "/" + std::string(kDigits - digits.size(), '0') + digits +
         std::string(kSuffix);
}

Status FileReplicaLog::Recover() {
  storage::FileSystem* fs = options_.fs;
  if (Status s = fs->CreateDirs(options_.dir); !s.ok()) return s;
  if (fs->Exists(EpochPath())) {
    auto text = fs->ReadFile(EpochPath());
    if (!text.ok()) return text.status();
    try {
      highest_epoch_ = std::stoll(*text);
    } catch (const std::exception&) {
      return Status::Corruption("replica log epoch file '" + EpochPath() + "' holds '" + *text +
                                "', not a number");
    }
  }
  auto names = fs->List(options_.dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    uint64_t first;
    if (!ParseSegmentName(name, &first)) continue;
    auto file = fs->Open(options_.dir + "/" + name, 0);
    if (!file.ok()) return file.status();
    segments_.emplace(first, std::move(*file));
  }
  if (!segments_.empty() && segments_.begin()->first != 1) {
    return Status::Corruption("replica log '" + options_.dir + "' starts with segment " +
                              std::to_string(segments_.begin()->first) + ", not 1");
  }
  // The walk (see the top of the file). A segment read through with at
  // least the cached tail's worth of segments after it leaves the cache at
  // once: the memory the walk fills stays bounded, and its next reads reuse
  // the pages (commit_log.h, cached_tail_bytes).
  uint64_t bytes_after = 0;
  for (const auto& [first, file] : segments_) bytes_after += file->size();
  auto seg = segments_.begin();
  std::vector<uint64_t> stale;
  while (seg != segments_.end() && seg->first <= last_.index + 1) {
    if (seg->first <= last_.index) {
      // Named by an entry an earlier segment holds: the leftover of
      // entries a failed sync forgot (its removal failed), never the log.
      bytes_after -= seg->second->size();
      stale.push_back(seg->first);
      ++seg;
      continue;
    }
    const std::string_view bytes = seg->second->mapped();
    uint64_t offset = 0;
    tail_segment_ = seg->first;
    while (true) {
      Header h;
      if (!DecodeHeader(bytes.substr(offset), &h)) break;
      if (h.index != last_.index + 1 || h.length > bytes.size() - offset - kHeaderBytes) break;
      if (last_.index > 0 && h.epoch < tail_loc_.epoch) break;
      const std::string_view payload = bytes.substr(offset + kHeaderBytes, h.length);
      if (ChainCrc(last_.crc, h.epoch, h.index, payload) != h.crc) break;
      NoteLoc(h.index, {seg->first, offset, h.length, h.epoch, h.crc});
      epochs_.Append(h.epoch, h.index);
      last_ = {h.index, h.crc};
      offset += kHeaderBytes + h.length;
    }
    tail_offset_ = offset;
    bytes_after -= seg->second->size();
    const uint64_t keep = options_.cached_tail_bytes;
    if (keep != 0 && bytes_after >= keep) {  // then a later segment exists
      DropCacheOf(seg->first, 0, seg->first, seg->second->size());
      cache_dropped_segment_ = std::next(seg)->first;
      cache_dropped_offset_ = 0;
    }
    ++seg;
  }
  for (; seg != segments_.end(); ++seg) stale.push_back(seg->first);
  for (uint64_t first : stale) {
    if (Status s = RemoveSegment(first); !s.ok()) return s;
  }
  durable_ = last_;
  if (last_.index > 0) highest_epoch_ = std::max(highest_epoch_, tail_loc_.epoch);
  DropCacheBehind();  // the walk read every segment through the cache
  return Status::OK();
}

void FileReplicaLog::DropCacheBehind() {
  constexpr uint64_t kStep = 1u << 20;  // a few system calls per MiB, not per append
  uint64_t keep = options_.cached_tail_bytes;
  if (keep == 0 || tail_segment_ == 0) return;
  // The point `keep` bytes before the tail, counting older segments as
  // full (an entry that did not fit left at most its size unused).
  auto it = segments_.find(tail_segment_);
  uint64_t end = tail_offset_;
  while (end < keep) {
    if (it == segments_.begin()) return;  // the whole log fits
    keep -= end;
    --it;
    end = it->second->size();
  }
  const uint64_t until_segment = it->first, until = end - keep;
  if (until_segment == cache_dropped_segment_ && until < cache_dropped_offset_ + kStep) return;
  DropCacheOf(cache_dropped_segment_, cache_dropped_offset_, until_segment, until);
  cache_dropped_segment_ = until_segment;
  cache_dropped_offset_ = until;
}

Status FileReplicaLog::RemoveSegment(uint64_t first) {
  auto it = segments_.find(first);
  if (it == segments_.end()) return Status::OK();
  const std::string path = it->second->path();
  segments_.erase(it);
  unsynced_.erase(first);
  return options_.fs->Remove(path);
}

Status FileReplicaLog::RaiseEpoch(int64_t epoch) {
  if (epoch <= highest_epoch_) return Status::OK();
  if (Status s = options_.fs->WriteFileAtomically(EpochPath(), std::to_string(epoch)); !s.ok()) {
    return s;
  }
  highest_epoch_ = epoch;
  return Status::OK();
}

Status FileReplicaLog::Append(const ReplicaEntry& entry) {
  if (entry.index != last_.index + 1) {
    return Status::InvalidArgument("replica log append of entry " + std::to_string(entry.index) +
                                   " after " + std::to_string(last_.index));
  }
  if (last_.index > 0 && entry.epoch < tail_loc_.epoch) {
    return Status::InvalidArgument("replica log append of entry " + std::to_string(entry.index) +
                                   " of epoch " + std::to_string(entry.epoch) + " after epoch " +
                                   std::to_string(tail_loc_.epoch));
  }
  if (ChainCrc(last_.crc, entry.epoch, entry.index, entry.payload) != entry.crc) {
    return Status::Corruption("replica log entry " + std::to_string(entry.index) +
                              ": crc does not chain to the entry before it");
  }
  const uint64_t n = kHeaderBytes + entry.payload.size();
  if (n > options_.segment_bytes) {
    return Status::TooLarge("replica log entry " + std::to_string(entry.index) + " of " +
                            std::to_string(n) + " bytes does not fit in a segment of " +
                            std::to_string(options_.segment_bytes));
  }
  storage::File* file = nullptr;
  if (tail_segment_ != 0 && tail_offset_ + n <= segments_.at(tail_segment_)->size()) {
    file = segments_.at(tail_segment_).get();
  } else {
    if (tail_segment_ != 0 && tail_offset_ + kHeaderBytes <= segments_.at(tail_segment_)->size()) {
      // The segment ends here: say so, with a header that does not decode.
      // What lies after the last entry may be an entry a failed sync
      // forgot (this one, written there before, smaller); if it chains,
      // recovery would take it and what follows it for the log.
      const char zeros[kHeaderBytes] = {};
      const iovec end{const_cast<char*>(zeros), kHeaderBytes};
      if (Status s = segments_.at(tail_segment_)->WriteAt(tail_offset_, {&end, 1}); !s.ok()) {
        return s;
      }
      unsynced_.insert(tail_segment_);
    }
    auto created = options_.fs->Open(SegmentPath(entry.index), options_.segment_bytes);
    if (!created.ok()) return created.status();
    file = created->get();
    segments_[entry.index] = std::move(*created);
    tail_segment_ = entry.index;
    tail_offset_ = 0;
  }
  char header[kHeaderBytes];
  EncodeHeader({entry.crc, static_cast<uint32_t>(entry.payload.size()), entry.epoch, entry.index},
               header);
  const iovec parts[2] = {{header, kHeaderBytes},
                          {const_cast<char*>(entry.payload.data()), entry.payload.size()}};
  if (Status s = file->WriteAt(tail_offset_, parts); !s.ok()) return s;
  unsynced_.insert(tail_segment_);
  NoteLoc(entry.index, {tail_segment_, tail_offset_, static_cast<uint32_t>(entry.payload.size()),
                        entry.epoch, entry.crc});
  epochs_.Append(entry.epoch, entry.index);
  tail_offset_ += n;
  last_ = entry.ref();
  return Status::OK();
}

Status FileReplicaLog::Sync() {
  for (auto it = unsynced_.begin(); it != unsynced_.end();) {
    if (Status s = segments_.at(*it)->Sync(); !s.ok()) {
      // After a failed fdatasync the kernel may have dropped the dirty
      // pages and a later sync succeeds without them (fsyncgate): forget
      // every entry since the last good sync; they are appended again.
      // The segments begun for them go too: entries appended again (of
      // other sizes: a new leader's) roll at other indexes, and a segment
      // named by a forgotten index would be read in their place, and end
      // the log before them at the next start.
      if (Status removed = RemoveSegmentsAfter(durable_.index); !removed.ok()) {
        Logger("cluster")->error(
            "replica log '{}': removing the segments of entries a failed sync forgot: {} (the "
            "next start removes them)",
            options_.dir, removed.ToString());
      }
      ForgetAfter(durable_.index);
      return s;
    }
    it = unsynced_.erase(it);
  }
  durable_ = last_;
  DropCacheBehind();
  return Status::OK();
}

void FileReplicaLog::NoteLoc(uint64_t index, const Loc& loc) {
  if ((index - 1) % kStride == 0) marks_.push_back({loc.segment, loc.offset});
  tail_loc_ = loc;
}

FileReplicaLog::Loc FileReplicaLog::ReadLoc(uint64_t segment, uint64_t offset) const {
  Header h;
  // Every entry up to last_ was written whole and checked (appended or
  // walked at recovery): a header that does not decode is a bug.
  if (!DecodeHeader(segments_.at(segment)->mapped().substr(offset), &h)) {
    Logger("cluster")->critical("replica log '{}': no entry header at segment {} offset {}",
                                options_.dir, segment, offset);
    std::abort();
  }
  return {segment, offset, h.length, h.epoch, h.crc};
}

FileReplicaLog::Loc FileReplicaLog::Locate(uint64_t index) const {
  if (index == last_.index) return tail_loc_;
  // Start at a place located before that is nearer than the entry's mark
  // (reading only the headers walked past: a header read far behind the
  // tail brings its pages back into the cache), else at the mark.
  const uint64_t marked = (index - 1) / kStride * kStride + 1;
  uint64_t at = 0;
  Loc loc;
  for (const auto& [known, where] : located_) {
    if (known >= marked && known <= index && known > at) {
      at = known;
      loc = where;
    }
  }
  if (at == 0) {
    const Mark& mark = marks_[(index - 1) / kStride];
    at = marked;
    loc = ReadLoc(mark.segment, mark.offset);
  }
  while (at < index) {
    ++at;
    loc = segments_.contains(at) ? ReadLoc(at, 0)
                                 : ReadLoc(loc.segment, loc.offset + kHeaderBytes + loc.length);
  }
  located_[next_located_] = {index, loc};
  next_located_ = (next_located_ + 1) % kLocated;
  return loc;
}

void FileReplicaLog::ForgetAfter(uint64_t keep) {
  epochs_.TruncateAfter(keep);
  if (keep > 0) tail_loc_ = Locate(keep);
  marks_.resize(keep == 0 ? 0 : (keep - 1) / kStride + 1);
  for (auto& [known, where] : located_) {
    if (known > keep) known = 0;
  }
  last_ = {keep, keep == 0 ? 0 : tail_loc_.crc};
  if (durable_.index > keep) durable_ = last_;
  if (keep == 0) {
    tail_segment_ = tail_offset_ = 0;
  } else {
    tail_segment_ = tail_loc_.segment;
    tail_offset_ = tail_loc_.offset + kHeaderBytes + tail_loc_.length;
  }
}

Status FileReplicaLog::TruncateAfter(uint64_t keep) {
  if (keep > last_.index) {
    return Status::InvalidArgument("replica log truncation after " + std::to_string(keep) +
                                   ": the log ends at " + std::to_string(last_.index));
  }
  if (keep == last_.index) return Status::OK();
  // First the entry after `keep` stops being whole, durably; then the
  // segments that hold only later entries go.
  const Loc cut = Locate(keep + 1);
  storage::File* file = segments_.at(cut.segment).get();
  const char zeros[kHeaderBytes] = {};
  const iovec part{const_cast<char*>(zeros), kHeaderBytes};
  if (Status s = file->WriteAt(cut.offset, {&part, 1}); !s.ok()) return s;
  if (Status s = file->Sync(); !s.ok()) return s;
  if (Status s = RemoveSegmentsAfter(keep); !s.ok()) return s;
  ForgetAfter(keep);
  return Status::OK();
}

Status FileReplicaLog::RemoveSegmentsAfter(uint64_t keep) {
  std::vector<uint64_t> later;
  for (auto it = segments_.upper_bound(keep); it != segments_.end(); ++it) {
    later.push_back(it->first);
  }
  Status first_error;
  for (uint64_t first : later) {
    if (Status s = RemoveSegment(first); !s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

Result<ReplicaEntry> FileReplicaLog::Read(uint64_t index) const {
  auto view = View(index);
  if (!view.ok()) return view.status();
  return ReplicaEntry{index, view->epoch, view->crc, std::string(view->payload)};
}

Result<EntryView> FileReplicaLog::View(uint64_t index) const {
  if (index == 0 || index > last_.index) {
    return Status::NotFound("replica log entry " + std::to_string(index) + ": the log holds 1.." +
                            std::to_string(last_.index));
  }
  const Loc loc = Locate(index);
  NoteColdView(loc);
  return EntryView{
      index, loc.epoch, loc.crc,
      segments_.at(loc.segment)->mapped().substr(loc.offset + kHeaderBytes, loc.length)};
}

void FileReplicaLog::NoteColdView(const Loc& loc) const {
  const uint64_t keep = options_.cached_tail_bytes;
  if (keep == 0 || loc.segment > cache_dropped_segment_ ||
      (loc.segment == cache_dropped_segment_ && loc.offset >= cache_dropped_offset_)) {
    return;
  }
  if (cold_.bytes >= keep) {
    // Views handed out earlier may still be read: a dropped page comes
    // back from the file.
    DropCacheOf(cold_.from_segment, cold_.from_offset, cold_.to_segment, cold_.to_offset);
    cold_ = {};
  }
  const uint64_t end = loc.offset + kHeaderBytes + loc.length;
  if (cold_.bytes == 0 ||
      std::pair(loc.segment, loc.offset) < std::pair(cold_.from_segment, cold_.from_offset)) {
    cold_.from_segment = loc.segment;
    cold_.from_offset = loc.offset;
  }
  if (cold_.bytes == 0 ||
      std::pair(loc.segment, end) > std::pair(cold_.to_segment, cold_.to_offset)) {
    cold_.to_segment = loc.segment;
    cold_.to_offset = end;
  }
  cold_.bytes += kHeaderBytes + loc.length;
}

void FileReplicaLog::DropCacheOf(uint64_t from_segment, uint64_t from_offset, uint64_t to_segment,
                                 uint64_t to_offset) const {
  for (auto s = segments_.lower_bound(from_segment); s != segments_.end() && s->first <= to_segment;
       ++s) {
    const uint64_t from = s->first == from_segment ? from_offset : 0;
    const uint64_t to = s->first == to_segment ? to_offset : s->second->size();
    if (from < to) s->second->DropCache(from, to - from);
  }
}

ReplicaLogReader::ReplicaLogReader(std::string dir, storage::FileSystem* fs, uint64_t after,
                                   uint64_t keep_cached, std::optional<uint32_t> after_crc)
    : dir_(std::move(dir)),
      fs_(fs),
      keep_cached_(keep_cached),
      last_read_(after),
      skip_until_(after),
      skip_until_crc_(after_crc),
      walked_(after == 0) {}

ReplicaLogReader::~ReplicaLogReader() { DropReadPages(keep_cached_); }

void ReplicaLogReader::DropReadPages(uint64_t keep) {
  while (cached_ > keep && !behind_.empty()) {
    ReadThrough& oldest = behind_.front();
    const uint64_t n = std::min(oldest.to - oldest.from, cached_ - keep);
    oldest.file->DropCache(oldest.from, n);
    oldest.from += n;
    cached_ -= n;
    if (oldest.from < oldest.to) return;  // keep's worth left in it
    behind_.pop_front();
  }
  if (cached_ > keep && file_) {
    const uint64_t n = cached_ - keep;
    file_->DropCache(dropped_, n);
    dropped_ += n;
    cached_ -= n;
  }
}

Status ReplicaLogReader::Read(uint64_t upto, const std::function<Status(const EntryView&)>& fn) {
  ended_ = false;
  if (upto <= last_read_ && walked_) return Status::OK();
  // Listed again on each call: every segment holding an entry up to `upto`
  // exists by now (the entries are committed), and none of them goes away.
  auto names = fs_->List(dir_);
  if (!names.ok()) return names.status();
  std::map<uint64_t, std::string> segments;  // by first index
  for (const std::string& name : *names) {
    uint64_t first;
    if (ParseSegmentName(name, &first)) segments.emplace(first, dir_ + "/" + name);
  }
  uint64_t index = last_read_ + 1;  // the next entry to hand over
  if (!file_ && skip_until_ > 0) {
    // A reader that starts after entry `skip_until_`: walk from the start
    // of the segment holding it, to learn its chain value on the way.
    auto holding = segments.upper_bound(skip_until_);
    if (holding == segments.begin()) {
      return Status::Corruption("replica log '" + dir_ + "': no segment holds entry " +
                                std::to_string(skip_until_));
    }
    index = std::prev(holding)->first;
  }
  // Dropped a step at a time: a few system calls per 8 MiB, not per entry.
  constexpr uint64_t kDropStep = 8u << 20;
  while (last_read_ < upto || index <= skip_until_) {
    if (auto starts = segments.find(index); starts != segments.end()) {
      auto opened = fs_->Open(starts->second, 0);
      if (!opened.ok()) return opened.status();
      if (file_ && offset_ > dropped_) {
        behind_.push_back({std::move(file_), dropped_, offset_});
        // Each one held is an open, mapped file: small segments under a
        // large keep_cached would pile them up, so the oldest goes whole.
        if (behind_.size() > kMaxSegmentsBehind) {
          ReadThrough& oldest = behind_.front();
          oldest.file->DropCache(oldest.from, oldest.to - oldest.from);
          cached_ -= oldest.to - oldest.from;
          behind_.pop_front();
        }
      }
      file_ = std::move(*opened);
      offset_ = dropped_ = 0;
    }
    Header h;
    const std::string_view bytes = file_ ? file_->mapped() : std::string_view();
    auto where = [&] { return "replica log '" + dir_ + "' entry " + std::to_string(index); };
    if (!file_ || !DecodeHeader(bytes.substr(std::min<uint64_t>(offset_, bytes.size())), &h) ||
        h.index != index || h.length > bytes.size() - offset_ - kHeaderBytes) {
      ended_ = true;
      return Status::Corruption(where() + ": not found whole (the log ends before " +
                                std::to_string(std::max(upto, skip_until_)) + ")");
    }
    const EntryView view{index, h.epoch, h.crc, bytes.substr(offset_ + kHeaderBytes, h.length)};
    if (index == skip_until_ && skip_until_crc_ && h.crc != *skip_until_crc_) {
      return Status::Corruption(where() + " is not the entry read before (its chain value is " +
                                std::to_string(h.crc) + ", not " +
                                std::to_string(*skip_until_crc_) +
                                "): the log was truncated and written again after it");
    }
    if (index == skip_until_) walked_ = true;
    if (index > skip_until_) {
      if (ChainCrc(last_crc_, h.epoch, h.index, view.payload) != h.crc) {
        ended_ = true;  // where the log's own recovery would end it (a torn tail)
        return Status::Corruption(where() + ": does not chain to the entry before it");
      }
      if (Status s = fn(view); !s.ok()) return s;
    }
    last_read_ = index;
    last_crc_ = h.crc;
    offset_ += kHeaderBytes + h.length;
    if (index > skip_until_) {
      cached_ += kHeaderBytes + h.length;
    } else {
      dropped_ = offset_;  // walked past (its header read), not read: not counted
    }
    ++index;
    if (cached_ >= keep_cached_ + kDropStep) DropReadPages(keep_cached_);
  }
  return Status::OK();
}

Status ReadReplicaEntries(const std::string& dir, storage::FileSystem* fs, uint64_t upto,
                          const std::function<Status(const EntryView&)>& fn) {
  ReplicaLogReader reader(dir, fs);
  return reader.Read(upto, fn);
}

std::optional<uint32_t> FileReplicaLog::CrcAt(uint64_t index) const {
  if (index == 0) return 0u;
  if (index > last_.index) return std::nullopt;
  return Locate(index).crc;
}

uint64_t FileReplicaLog::disk_bytes() const {
  uint64_t total = 0;
  for (const auto& [first, file] : segments_) total += file->size();
  return total;
}

}  // namespace txmq::cluster
