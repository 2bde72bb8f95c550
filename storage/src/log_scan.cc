// The walk over the commit log at Open: checks every entry, replays those
// from the recovery cursor on, and tells a torn tail from damage (the
// rules are in commit_log.h; why they hold is in DESIGN.md, "Recovery
// invariant").
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "protocol/src/log.h"
#include "storage/src/commit_log.h"
#include "storage/src/crc32c.h"

namespace txmq::storage {

namespace {

// A whole entry of another log format at the start of `bytes`: the CRC
// (computed the same way in every format) matches.
bool WholeInAnotherFormat(std::string_view bytes) {
  if (bytes.size() < log::kHeaderBytes) return false;
  const uint8_t format = log::HeaderFormat(bytes.data());
  if (format == 0 || format == log::kFormat) return false;
  uint32_t crc, length;
  std::memcpy(&crc, bytes.data() + 4, 4);
  std::memcpy(&length, bytes.data() + 8, 4);
  if (length > bytes.size() - log::kHeaderBytes) return false;
  uint32_t actual = crc32c::Value(log::CoveredHeader(bytes.data()));
  actual = crc32c::Extend(actual, bytes.data() + log::kHeaderBytes, length);
  return crc32c::Mask(actual) == crc;
}

bool AllZero(std::string_view bytes) {
  for (char c : bytes) {
    if (c != 0) return false;
  }
  return true;
}

// Whether `file` reads as zeros from `offset` to its end. Only what the
// file system says may hold data is read: the never written rest of a
// preallocated segment (most of the last one) is not brought into memory.
bool ZerosFrom(const File& file, uint64_t offset) {
  const std::string_view all = file.mapped();
  while (offset < all.size()) {
    const auto [from, to] = file.DataAfter(offset);
    if (from >= all.size()) return true;
    if (!AllZero(all.substr(from, std::min<uint64_t>(to, all.size()) - from))) return false;
    offset = std::max(to, from + 1);
  }
  return true;
}

// Sectors a torn write may leave unwritten (the smallest a disk persists
// on its own).
constexpr size_t kSectorBytes = 512;

// Whether the entry whose header starts `rest` (at `offset` in its segment)
// reached the disk whole, only its checksum failing. Segment files are
// created zero-filled and never reused, so a sector a crash kept from the
// disk reads as zeros: a torn entry has a sector whose bytes from the
// entry's start on are all zero (the header's too, or it runs past the
// file). An entry that chains on and has none was written whole, and
// under flush sync it was then acknowledged: its checksum failing is
// damage, not a torn write. (A body with 512 aligned zero bytes makes a
// damaged last entry look torn: then the old rule, a warning, applies.)
bool WrittenWhole(std::string_view rest, uint64_t offset, const LogCursor& at, bool chain_known,
                  uint64_t* end) {
  log::Header h;
  if (rest.size() < log::kHeaderBytes || !log::DecodeHeader(rest.data(), &h) ||
      h.type != log::kRoundEntry || h.length > rest.size() - log::kHeaderBytes) {
    return false;
  }
  if (chain_known && (h.index != at.index || h.prev_crc != at.prev_crc)) return false;
  const uint64_t size = log::kHeaderBytes + h.length;
  for (uint64_t sector = offset / kSectorBytes * kSectorBytes; sector < offset + size;
       sector += kSectorBytes) {
    const uint64_t from = std::max(sector, offset) - offset;
    const uint64_t to = std::min<uint64_t>(sector + kSectorBytes - offset, rest.size());
    if (AllZero(rest.substr(from, to - from))) return false;
  }
  *end = size;
  return true;
}

}  // namespace

std::string SegmentFileName(uint64_t base) {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64 ".seg", base);
  return name;
}

LogCursor FirstEntryCursor(FileSystem* fs, const std::string& dir) {
  auto names = fs->List(dir);
  if (!names.ok()) return {};
  std::string first;
  for (const std::string& name : *names) {
    if (name.ends_with(".seg") && (first.empty() || name < first)) first = name;
  }
  if (first.empty()) return {};
  const uint64_t base = std::strtoull(first.c_str(), nullptr, 10);
  auto file = fs->Open(dir + "/" + first, 0);
  LogEntry e;
  if (!file.ok() || !ParseEntry((*file)->mapped(), base, &e)) return {base, 1, 0};
  return {base, e.header.index, e.header.prev_crc};
}

std::string LogDamage::Describe() const {
  std::string out = "log position " + std::to_string(from);
  if (!segment.empty()) {
    out += " (" + segment + ", byte " + std::to_string(segment_offset) + ")";
  }
  if (expected_index != 0) out += ", where entry " + std::to_string(expected_index) + " starts,";
  out += " is damaged: " + what;
  if (whole_after) out += "; the log is whole again at position " + std::to_string(to);
  return out;
}

uint64_t CommitLog::BaseOf(uint64_t position) const {
  return std::prev(segments_.upper_bound(position))->first;
}

const LogSkip* CommitLog::SkipAt(uint64_t position) const {
  for (const LogSkip& skip : options_.skips) {
    if (skip.from == position && skip.to() > position) return &skip;
  }
  return nullptr;
}

bool CommitLog::InSkip(uint64_t from, uint64_t to) const {
  for (const LogSkip& skip : options_.skips) {
    if (skip.from <= from && to <= skip.to()) return true;
  }
  return false;
}

uint64_t CommitLog::CreatedSize(uint64_t base) const {
  // The first whole entry of the segment says; a damaged first entry says
  // nothing (the walk reports it anyway).
  std::string_view all = segments_.at(base)->mapped();
  LogEntry e;
  if (!ParseEntry(all, base, &e)) return 0;
  return static_cast<uint64_t>(e.header.segment_kib) * 1024;
}

std::optional<LogEntry> CommitLog::FindSyncedEntryAfter(uint64_t position, uint64_t min_index,
                                                        bool synced) const {
  const char magic[4] = {'T', 'X', 'L', 'G'};
  auto it = segments_.upper_bound(position);
  if (it != segments_.begin()) --it;
  for (; it != segments_.end(); ++it) {
    const uint64_t base = it->first;
    std::string_view all = it->second->mapped();
    size_t at = position >= base ? static_cast<size_t>(position - base) + 1 : 0;
    uint64_t data_end = 0;  // the stretch the file system says may hold data
    while (at + log::kHeaderBytes <= all.size()) {
      if (at >= data_end) {
        // Zeros hold no entry: skip what was never written (not reading it
        // keeps the unwritten rest of the last segment out of memory).
        const auto [from, to] = it->second->DataAfter(at);
        if (from >= all.size()) break;
        at = std::max<size_t>(at, from);
        data_end = std::max<uint64_t>(to, at + 1);
      }
      // An entry's magic starts inside the stretch; its header may run on.
      const size_t span = std::min<uint64_t>(data_end + sizeof magic - 1, all.size()) - at;
      const void* hit = memmem(all.data() + at, span, magic, sizeof magic);
      if (hit == nullptr) {
        at = data_end;
        continue;
      }
      at = static_cast<size_t>(static_cast<const char*>(hit) - all.data());
      LogEntry e;
      if (ParseEntry(all.substr(at), base + at, &e) &&
          (!synced || (e.header.flags & log::kPreviousSynced)) && e.header.index >= min_index) {
        return e;
      }
      ++at;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> CommitLog::TimeAt(uint64_t position) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (File* seg = Find(position); seg != nullptr) {
    std::string_view rest = seg->mapped().substr(position - BaseOf(position));
    log::Header h;
    if (rest.size() >= log::kHeaderBytes && log::DecodeHeader(rest.data(), &h)) return h.time_ms;
  }
  if (auto next = FindSyncedEntryAfter(position, 0, /*synced=*/false)) return next->header.time_ms;
  return std::nullopt;
}

Status CommitLog::Damaged(LogDamage damage) {
  if (options_.on_damage) {
    // From here on the walk treats it as a stretch a repair gave up on.
    options_.skips.push_back({damage.from, damage.resume});
    auto it = segments_.upper_bound(damage.from);
    if (it != segments_.begin()) --it;
    for (; it != segments_.end() && it->first < damage.to; ++it) {
      const uint64_t base = it->first;
      const uint64_t from = std::max(base, damage.from);
      const uint64_t to = std::min(base + it->second->size(), damage.to);
      if (from < to) {
        damage.bytes.emplace_back(from, it->second->mapped().substr(from - base, to - from));
      }
    }
    options_.on_damage(damage);
    return Status::OK();
  }
  return Status::Corruption(damage.Describe());
}

Status CommitLog::Walk(LogCursor from, const ReplayFn& replay, LogCursor* end) {
  LogCursor at = from;
  bool chain_known = true;  // at.index and at.prev_crc are what must come next
  bool reached = true;      // at the recovery cursor or past it: replay
  if (options_.verify_all && !segments_.empty() && segments_.begin()->first < from.position) {
    at = {segments_.begin()->first, 0, 0};
    chain_known = false;  // retention removed what came before: take the first entry's word
    reached = false;
  }
  uint64_t last_index = 0;  // of the last whole entry
  // The walk reads the log through the page cache (all of it under
  // verify_all). Dropping what it has read, except the tail kept anyway,
  // bounds the memory it fills, and the pages it frees are the ones its
  // next reads reuse: a page the machine has not used lately costs more to
  // hand out than the read that fills it (DESIGN.md, "page cache").
  const uint64_t files_end =
      segments_.empty() ? 0 : segments_.rbegin()->first + segments_.rbegin()->second->size();
  auto drop_read = [&] {
    DropCacheBehind(std::min(at.position + options_.cached_tail_bytes, files_end));
  };
  auto damage = [&](uint64_t to, std::string what) {
    LogDamage d;
    d.from = at.position;
    d.to = to;
    if (File* seg = Find(at.position); seg != nullptr) {
      d.segment = seg->path();
      d.segment_offset = at.position - BaseOf(at.position);
    }
    d.expected_index = chain_known ? at.index : 0;
    d.before_cursor = at.position < from.position;
    d.what = std::move(what);
    return d;
  };
  // Where the walk continues after damage: at `next` (an entry), or where
  // the next entry is written.
  auto resume_at = [&](LogDamage& d, const std::optional<LogEntry>& next) {
    d.whole_after = next.has_value();
    if (next) return LogCursor{next->position, next->header.index, next->header.prev_crc};
    return LogCursor{d.to, std::max({at.index, from.index, last_index + 1}), 0};
  };
  while (true) {
    if (const LogSkip* skip = SkipAt(at.position)) {
      at = skip->resume;
      chain_known = true;
      continue;
    }
    if (!reached && at.position >= from.position) {
      reached = true;
      if (at.position == from.position && !chain_known) {
        at = from;
        chain_known = true;
      } else if (at.position == from.position &&
                 (at.index != from.index || at.prev_crc != from.prev_crc)) {
        if (!options_.on_damage) {
          return Status::Corruption("the checkpoint says entry " + std::to_string(from.index) +
                                    " starts at log " + "position " +
                                    std::to_string(from.position) + ", but the log has entry " +
                                    std::to_string(at.index) +
                                    " there: the log and the checkpoint do not belong "
                                    "together");
        }
      } else if (at.position > from.position && !InSkip(from.position, from.position)) {
        if (!options_.on_damage) {
          return Status::Corruption("the checkpoint position " + std::to_string(from.position) +
                                    " is not the start of an entry in the log");
        }
      }
    }
    File* seg = Find(at.position);
    if (seg == nullptr) {
      auto later = segments_.upper_bound(at.position);
      if (later == segments_.end()) {
        const uint64_t log_end =
            segments_.empty() ? 0 : segments_.rbegin()->first + segments_.rbegin()->second->size();
        // The segment files end at log_end <= at.position; the log must
        // reach at least the cursor, and a position beyond the files must
        // be one a repair moved on to.
        const uint64_t must_reach = std::max(at.position, from.position);
        if (must_reach > log_end && !InSkip(log_end, must_reach)) {
          LogDamage d = damage(must_reach, "the log's segment files end at position " +
                                               std::to_string(log_end) + ", but the log must " +
                                               "reach position " + std::to_string(must_reach) +
                                               ": a segment file is missing or was truncated");
          d.from = log_end;
          d.resume = must_reach == from.position ? from : resume_at(d, std::nullopt);
          if (Status s = Damaged(d); !s.ok()) return s;
          at = d.resume;
        }
        break;  // the end of the log
      }
      // Bytes between segments that no file holds.
      LogDamage d =
          damage(later->first, "no segment file holds log bytes " + std::to_string(at.position) +
                                   " to " + std::to_string(later->first) +
                                   " (a segment file is missing or was truncated)");
      std::optional<LogEntry> next = FindSyncedEntryAfter(later->first - 1, 0);
      if (next) d.to = next->position;
      d.resume = resume_at(d, next);
      if (Status s = Damaged(d); !s.ok()) return s;
      at = d.resume;
      chain_known = true;
      if (d.before_cursor && at.position >= from.position) reached = true;
      continue;
    }
    const uint64_t base = BaseOf(at.position);
    std::string_view rest = seg->mapped().substr(at.position - base);
    LogEntry e;
    if (ParseEntry(rest, at.position, &e) &&
        (!chain_known || (e.header.index == at.index && e.header.prev_crc == at.prev_crc))) {
      if (reached || options_.replay_before_cursor) {
        if (Status s = replay(e); !s.ok()) return s;
      }
      at = {e.end(), e.header.index + 1, e.header.crc};
      chain_known = true;
      last_index = e.header.index;
      drop_read();
      continue;
    }
    // The writer rolls to the next segment when an entry does not fit.
    const uint64_t next_base = base + seg->size();
    if (File* n = Find(next_base);
        n != nullptr && ParseEntry(n->mapped(), next_base, &e) &&
        (!chain_known || (e.header.index == at.index && e.header.prev_crc == at.prev_crc))) {
      at.position = next_base;
      continue;
    }
    // Nothing written after this point of the segment: what follows (if
    // anything) starts the next one. Unless the next segment was only
    // prepared (nothing written at its start): then the log ends here, and
    // continues here, where a log never closed would have placed the next
    // entry (a replica's store must place as its leader's did).
    // Damage after this point is still found: the torn-tail check below
    // looks for synced entries further on.
    const File* next_segment = Find(next_base);
    const bool next_prepared_only =
        next_segment != nullptr && AllZero(next_segment->mapped().substr(0, log::kHeaderBytes));
    if (next_base > at.position && segments_.upper_bound(at.position) != segments_.end() &&
        !next_prepared_only && ZerosFrom(*seg, at.position - base)) {
      at.position = next_base;
      continue;
    }
    // Not a whole entry: the end of the log, a torn tail, or damage.
    const uint64_t created = CreatedSize(base);
    const bool truncated = created > seg->size();
    std::optional<LogEntry> next = FindSyncedEntryAfter(at.position, chain_known ? at.index : 0);
    const bool before_cursor = at.position < from.position;
    if (WholeInAnotherFormat(rest)) {
      return Status::FailedPrecondition(
          "the log entry at position " + std::to_string(at.position) + " (" + seg->path() +
          ") is in log format " + std::to_string(log::HeaderFormat(rest.data())) +
          " of a development build; this txmqd reads format " + std::to_string(log::kFormat) +
          ". Start it on an empty data directory");
    }
    uint64_t whole_size = 0;
    const bool written_whole = !truncated && !next && !before_cursor &&
                               WrittenWhole(rest, at.position - base, at, chain_known, &whole_size);
    if (!truncated && !next && !before_cursor && !written_whole) {
      const std::string_view head = rest.substr(0, log::kHeaderBytes);
      if (!AllZero(head)) {
        Logger("storage")->warn(
            "the log ends with an incomplete entry at position {} ({}, byte {}): a write cut "
            "short by a crash, never acknowledged; the log continues from there",
            at.position, seg->path(), at.position - base);
      }
      break;
    }
    std::string what;
    uint64_t to = next ? next->position : (truncated ? base + created : next_base);
    if (truncated) {
      what = "the segment file is " + std::to_string(seg->size()) + " bytes, but it was created " +
             "with " + std::to_string(created) + ": it was truncated and the log bytes after " +
             std::to_string(base + seg->size()) + " are gone";
    } else if (written_whole) {
      to = at.position + whole_size;
      what = "the entry there (" + std::to_string(whole_size) + " bytes) is on disk whole, " +
             "every sector of it written, but its checksum does not match: it was damaged " +
             "after it was written (a write cut short by a crash leaves sectors unwritten)";
    } else if (next) {
      what = "the entry there is not whole (checksum mismatch or broken header), but entry " +
             std::to_string(next->header.index) + " at position " + std::to_string(next->position) +
             " was written after it was made durable";
    } else {
      what = "the entry there is not whole (checksum mismatch or broken header), and it was " +
             std::string("durable: the checkpoint at position ") + std::to_string(from.position) +
             " covers it";
    }
    LogDamage d = damage(to, std::move(what));
    d.resume = resume_at(d, next);
    if (written_whole) {
      // The log continues after it, chained to it as written.
      log::Header h;
      log::DecodeHeader(rest.data(), &h);
      d.resume = {to, h.index + 1, h.crc};
    }
    if (Status s = Damaged(d); !s.ok()) return s;
    at = d.resume;
    chain_known = true;
    if (d.before_cursor && at.position >= from.position) reached = true;
  }
  *end = at;
  return Status::OK();
}

}  // namespace txmq::storage
