// txmqd --repair (BrokerStore::Open with StoreOptions::repair): salvages
// the records of damaged rounds, checks every place the index names
// against the log, takes out of their queues the messages that cannot be
// read (and says which), records the stretches of log given up on
// (REPAIRS), and writes the report. Runs on the thread that opens the
// store, before the store's own threads start.
#include "storage/src/store_repair.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>
#include <tuple>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/broker_store.h"
#include "storage/src/coding.h"
#include "storage/src/log_format.h"
#include "storage/src/store_check.h"

namespace txmq::storage {

namespace {

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Printable(std::string_view s) {
  std::string out(s.substr(0, 200));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::string UtcStamp(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y%m%dT%H%M%SZ", &tm);
  return out;
}

// What a message record says of itself when its checksum fails, if its
// bytes still decode.
bool PeekMessage(std::string_view bytes, store::MessageBody* out) {
  std::string_view in = bytes;
  uint8_t type;
  uint32_t length;
  if (!GetByte(&in, &type) || type != store::kMessage || !GetVarint32(&in, &length) ||
      in.size() < 4 || length > in.size() - 4) {
    return false;
  }
  if (!store::DecodeMessageBody(in.substr(4, length), out) || out->message.id.empty()) {
    return false;
  }
  for (char c : out->message.id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The id of a message record that fails its checksum, if its bytes still
// decode: said as unverified.
std::string PeekId(std::string_view bytes) {
  store::MessageBody m;
  if (!PeekMessage(bytes, &m)) return "";
  return std::string(m.message.id.substr(0, 200));
}

// Records found by their checksums in a stretch of damaged log. Where an
// intact record ends and none follows (and where the payload of an entry
// starting the stretch begins), a damaged record starts: a message one
// that still decodes goes to `peeks`.
std::vector<PlacedRecord> FindRecords(uint64_t position, std::string_view bytes,
                                      std::vector<LostMessage>* peeks) {
  std::vector<PlacedRecord> out;
  auto peek = [&](size_t at) {
    store::MessageBody m;
    if (at >= bytes.size() || !PeekMessage(bytes.substr(at), &m)) return;
    peeks->push_back({std::string(m.message.id.substr(0, 200)), false, "", m.topic_id, m.queue,
                      m.offset, position + at,
                      "its record in the damaged log round fails its checksum"});
  };
  size_t at = 0;
  if (bytes.size() >= log::kHeaderBytes && log::HeaderFormat(bytes.data()) == log::kFormat) {
    at = log::kHeaderBytes;
  }
  bool after_record = true;  // `at` is where a record should start
  while (at + store::kRecordHeaderBytes <= bytes.size()) {
    store::RecordView r;
    if (store::ParseRecordAt(bytes.substr(at), &r)) {
      out.push_back({position + at, r});
      at += r.size();
      after_record = true;
    } else {
      if (after_record) peek(at);
      after_record = false;
      ++at;
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> RepairReport::Lines() const {
  std::vector<std::string> out;
  char line[256];
  std::snprintf(line, sizeof line,
                "repair of %s: %zu damaged stretch(es) of log, index %s, %zu message(s), %zu "
                "half message(s) and %zu delayed message(s) lost, %" PRIu64
                " record(s) of damaged rounds salvaged",
                data_dir.c_str(), log_damage.size(), index_rebuilt ? "rebuilt from the log" : "ok",
                messages.size(), halves.size(), delayed.size(), salvaged_records);
  out.emplace_back(line);
  for (const LogDamage& d : log_damage) out.push_back("log: " + d.Describe());
  if (index_rebuilt) {
    out.push_back("index: " + index_problem + "; rebuilt: LevelDB salvaged what it could read " +
                  "and every log entry was applied again (" + std::to_string(replayed_entries) +
                  " entries)");
    for (const std::string& note : index_notes) out.push_back("index: " + note);
  }
  for (const LostMessage& m : messages) {
    out.push_back("lost message id=" + (m.id.empty() ? "(unknown)" : Printable(m.id)) +
                  (m.id_verified ? "" : " (read from the damaged record, unverified)") +
                  " topic=" + (m.topic.empty() ? "#" + std::to_string(m.topic_id) : m.topic) +
                  " queue=" + std::to_string(m.queue) + " offset=" + std::to_string(m.offset) +
                  (m.position ? " log position=" + std::to_string(m.position) : "") + ": " + m.why);
  }
  for (const LostHalf& h : halves) {
    out.push_back("lost half message " + std::to_string(h.index) + " of transaction " +
                  Printable(h.tx_id) + " (log position " + std::to_string(h.position) +
                  "): " + h.why);
  }
  for (const LostDelayed& d : delayed) {
    out.push_back("lost delayed message " + std::to_string(d.seq) +
                  (d.id.empty() ? "" : " id=" + Printable(d.id)) + " due at " +
                  std::to_string(d.due_ms) + " (log position " + std::to_string(d.position) +
                  "): " + d.why);
  }
  for (uint64_t p : lost_operations) {
    out.push_back("lost index operations of the damaged round at log position " +
                  std::to_string(p) +
                  ": consumer positions, retries, transaction states and topics it changed "
                  "(if any) are as they were before it");
  }
  for (const std::string& c : cursor_resets) out.push_back("consumer position: " + c);
  return out;
}

std::string RepairReport::ToJson() const {
  std::string j = "{\"data_dir\":" + JsonString(data_dir) +
                  ",\"repaired_ms\":" + std::to_string(repaired_ms) + ",\"log_damage\":[";
  for (size_t i = 0; i < log_damage.size(); ++i) {
    const LogDamage& d = log_damage[i];
    j += (i ? "," : "") + std::string("{\"from\":") + std::to_string(d.from) +
         ",\"to\":" + std::to_string(d.to) + ",\"segment\":" + JsonString(d.segment) +
         ",\"segment_offset\":" + std::to_string(d.segment_offset) +
         ",\"expected_entry\":" + std::to_string(d.expected_index) +
         ",\"what\":" + JsonString(d.what) + "}";
  }
  j += "],\"index_rebuilt\":" + std::string(index_rebuilt ? "true" : "false") +
       ",\"index_problem\":" + JsonString(index_problem) + ",\"lost_messages\":[";
  for (size_t i = 0; i < messages.size(); ++i) {
    const LostMessage& m = messages[i];
    j += (i ? "," : "") + std::string("{\"id\":") + JsonString(m.id) +
         ",\"id_verified\":" + (m.id_verified ? "true" : "false") +
         ",\"topic\":" + JsonString(m.topic) + ",\"queue\":" + std::to_string(m.queue) +
         ",\"offset\":" + std::to_string(m.offset) + ",\"position\":" + std::to_string(m.position) +
         ",\"why\":" + JsonString(m.why) + "}";
  }
  j += "],\"lost_halves\":[";
  for (size_t i = 0; i < halves.size(); ++i) {
    const LostHalf& h = halves[i];
    j += (i ? "," : "") + std::string("{\"transaction\":") + JsonString(h.tx_id) +
         ",\"index\":" + std::to_string(h.index) + ",\"position\":" + std::to_string(h.position) +
         ",\"why\":" + JsonString(h.why) + "}";
  }
  j += "],\"lost_delayed\":[";
  for (size_t i = 0; i < delayed.size(); ++i) {
    const LostDelayed& d = delayed[i];
    j += (i ? "," : "") + std::string("{\"seq\":") + std::to_string(d.seq) +
         ",\"due_ms\":" + std::to_string(d.due_ms) + ",\"id\":" + JsonString(d.id) +
         ",\"position\":" + std::to_string(d.position) + ",\"why\":" + JsonString(d.why) + "}";
  }
  j += "],\"lost_operations\":[";
  for (size_t i = 0; i < lost_operations.size(); ++i) {
    j += (i ? "," : "") + std::to_string(lost_operations[i]);
  }
  j += "],\"cursor_resets\":[";
  for (size_t i = 0; i < cursor_resets.size(); ++i) {
    j += (i ? "," : "") + JsonString(cursor_resets[i]);
  }
  j += "],\"salvaged_records\":" + std::to_string(salvaged_records) + "}\n";
  return j;
}

// ---------------- BrokerStore: the repair steps ----------------

void BrokerStore::SalvageDamaged(const LogDamage& damage, uint64_t replay_from) {
  repair_.log_damage.push_back(damage);
  if (damage.to <= replay_from) return;  // its records are in the index already
  std::vector<PlacedRecord> found;
  for (const auto& [position, bytes] : damage.bytes) {
    for (PlacedRecord& r : FindRecords(position, bytes, &damaged_peeks_)) {
      if (r.position >= replay_from) found.push_back(r);
    }
  }
  const bool has_ops = std::any_of(found.begin(), found.end(), [](const PlacedRecord& r) {
    return r.record.type == store::kIndexOps;
  });
  if (!has_ops) repair_.lost_operations.push_back(damage.from);
  if (found.empty()) return;
  // Indexed under the damaged stretch's start: retention ages it with the
  // entry after it (EntryTime), and the segment holding it stays while
  // anything in it is indexed.
  if (Status s = ApplyRecords(damage.from, found); !s.ok()) {
    Logger("repair")->error("salvaged records at log position {} could not be indexed: {}",
                            damage.from, s.ToString());
    return;
  }
  repair_.salvaged_records += found.size();
}

Status BrokerStore::CheckQueues() {
  std::map<uint32_t, std::pair<std::string, uint32_t>> topics;
  Status s = ForEachTopic([&](std::string_view name, const store::TopicEntry& e) {
    topics[e.id] = {std::string(name), e.queues};
    return true;
  });
  if (!s.ok()) return s;
  std::map<std::tuple<std::string, std::string, uint32_t>, uint64_t> cursors;
  s = ForEachCursor([&](std::string_view group, std::string_view topic, uint32_t q, uint64_t f) {
    cursors[{std::string(group), std::string(topic), q}] = f;
    return true;
  });
  if (!s.ok()) return s;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, size_t> lost_at;  // -> index in messages
  for (const auto& [topic_id, topic] : topics) {
    const auto& [name, queues] = topic;
    for (uint32_t q = 0; q < queues; ++q) {
      const uint64_t start = GetQueueStart(topic_id, q).value_or(0);
      uint64_t expected = start;
      bool any_run = false;
      auto lose = [&](uint64_t offset, uint64_t position, std::string why, bool mark) {
        lost_at[{topic_id, q, offset}] = repair_.messages.size();
        repair_.messages.push_back({"", true, name, topic_id, q, offset, position, std::move(why)});
        if (mark) RemoveMessage(topic_id, q, offset);
      };
      Status bad;
      s = Scan(store::QueueRunPrefix(topic_id, q), {},
               [&](std::string_view key, std::string_view value) {
                 uint32_t t, qq;
                 uint64_t first;
                 store::QueueRun run;
                 if (!store::ParseQueueRunKey(key, &t, &qq, &first) ||
                     !store::DecodeQueueRun(first, value, &run)) {
                   bad = Status::Corruption("damaged queue index entry of topic " + name);
                   return false;
                 }
                 for (uint64_t o = std::max(expected, start); o < run.first_offset; ++o) {
                   // Before the first run the queue simply starts later; after it,
                   // a hole: the round that held these is gone.
                   lose(o, 0, "the log round that held it is gone (no index entry left)", any_run);
                 }
                 any_run = true;
                 for (size_t k = 0; k < run.positions.size(); ++k) {
                   const uint64_t offset = run.first_offset + k;
                   if (offset < start || IsRemoved(topic_id, q, offset)) continue;
                   auto m = ReadMessage(topic_id, q, offset);
                   if (!m.ok()) lose(offset, run.positions[k], m.status().message(), true);
                 }
                 expected = std::max(expected, run.end_offset());
                 return true;
               });
      if (!bad.ok()) return bad;
      if (!s.ok()) return s;
      // A consumer position beyond the queue's end would skip what is sent
      // next under the offsets of what was lost.
      for (auto& [key, floor] : cursors) {
        const auto& [group, topic_name, queue] = key;
        if (topic_name != name || queue != q || floor <= expected) continue;
        repair_.cursor_resets.push_back(
            "group '" + group + "' had read " + name + "/" + std::to_string(q) + " up to offset " +
            std::to_string(floor) + ", beyond its end " + std::to_string(expected) +
            " now; moved back to " + std::to_string(expected));
        PutCursor(group, name, q, expected);
      }
    }
  }
  // Damaged records of salvaged rounds: they name a hole found above, or a
  // message at the end of its queue that no index entry is left for.
  for (const LostMessage& p : damaged_peeks_) {
    auto topic = topics.find(p.topic_id);
    if (topic == topics.end() || p.queue >= topic->second.second) continue;
    if (auto it = lost_at.find({p.topic_id, p.queue, p.offset}); it != lost_at.end()) {
      LostMessage& m = repair_.messages[it->second];
      if (m.position == 0) m.position = p.position;
      continue;
    }
    if (ReadMessage(p.topic_id, p.queue, p.offset).ok()) continue;  // an older copy
    lost_at[{p.topic_id, p.queue, p.offset}] = repair_.messages.size();
    LostMessage m = p;
    m.id.clear();  // from the id index if it has it, else peeked below
    m.topic = topic->second.first;
    repair_.messages.push_back(std::move(m));
  }
  if (repair_.messages.empty()) return Status::OK();
  // Their ids, from the message-id index (inside the dedup window).
  s = Scan(std::string(1, store::kId), {}, [&](std::string_view key, std::string_view value) {
    uint64_t bucket;
    std::string_view id;
    store::IdEntry e;
    if (!store::ParseIdKey(key, &bucket, &id) || !store::DecodeIdEntry(value, &e) ||
        !e.has_offset) {
      return true;
    }
    if (auto it = lost_at.find({e.topic_id, e.queue, e.offset}); it != lost_at.end()) {
      repair_.messages[it->second].id = std::string(id);
    }
    return true;
  });
  if (!s.ok()) return s;
  for (LostMessage& m : repair_.messages) {
    if (!m.id.empty() || m.position == 0) continue;
    if (auto bytes = log_->ReadFrom(m.position); bytes.ok()) {
      m.id = PeekId(*bytes);
      m.id_verified = m.id.empty();
    }
  }
  return Status::OK();
}

Status BrokerStore::CheckHalvesAndDelayed() {
  std::vector<LostHalf> halves;
  Status s = ForEachHalf([&](std::string_view tx_id, uint32_t index, uint64_t position) {
    if (auto h = ReadHalf(tx_id, index); !h.ok()) {
      halves.push_back({std::string(tx_id), index, position, h.status().message()});
    }
    return true;
  });
  if (!s.ok()) return s;
  for (const LostHalf& h : halves) DeleteHalf(h.tx_id, h.index);
  std::vector<LostDelayed> delayed;
  s = ForEachDelayedPosition([&](int64_t due, uint64_t seq, uint64_t position) {
    if (auto d = ReadDelayed(due, seq); !d.ok()) {
      delayed.push_back({due, seq, "", position, d.status().message()});
    }
    return true;
  });
  if (!s.ok()) return s;
  for (const LostDelayed& d : delayed) DeleteDelayed(d.due_ms, d.seq);
  repair_.halves.insert(repair_.halves.end(), halves.begin(), halves.end());
  repair_.delayed.insert(repair_.delayed.end(), delayed.begin(), delayed.end());
  return Status::OK();
}

Status BrokerStore::FinishRepair(const std::vector<LogSkip>& old_skips) {
  const int64_t now_ms = NowMs();
  repair_.data_dir = options_.dir;
  repair_.repaired_ms = now_ms;
  if (Status s = CheckQueues(); !s.ok()) return s;
  if (Status s = CheckHalvesAndDelayed(); !s.ok()) return s;
  std::vector<LogSkip> skips;
  const uint64_t start = log_->start();
  for (const LogSkip& k : old_skips) {
    if (k.to() > start) skips.push_back(k);
  }
  for (const LogDamage& d : repair_.log_damage) skips.push_back({d.from, d.resume, now_ms});
  // Nothing new is ever written where the index still names a lost record.
  const uint64_t end = log_->placed_end().position;
  const uint64_t named = MaxIndexedPosition();
  if (named >= end) {
    const uint64_t to = (named / 4096 + 1) * 4096;
    LogCursor resume{to, log_->placed_end().index, 0};
    skips.push_back({end, resume, now_ms});
    log_->ContinueAt(resume);
    applied_ = synced_ = resume;
    LogDamage d;
    d.from = end;
    d.to = to;
    d.what = "the index names log positions up to " + std::to_string(named) +
             ", beyond the end of the log: the log continues at " + std::to_string(to);
    d.resume = resume;
    repair_.log_damage.push_back(d);
  }
  // What the checks found is taken out now, not damage found while serving.
  damaged_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    damaged_positions_.clear();
  }
  if (!round_writes_nothing()) {
    std::unique_ptr<Round> round = WriteInline(now_ms);
    if (!round->status().ok()) return round->status();
    round->Complete();
  }
  if (skips.size() != old_skips.size() || !repair_.log_damage.empty()) {
    if (Status s = SaveSkips(options_.fs, options_.dir + "/REPAIRS", skips); !s.ok()) return s;
  }
  // The report: in the log, and as a file for scripts.
  auto log = Logger("repair");
  const std::vector<std::string> lines = repair_.Lines();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!repair_.found_damage()) {
      log->info("{}: nothing to repair", options_.dir);
      break;
    }
    log->warn("{}", lines[i]);
  }
  if (repair_.found_damage()) {
    const std::string path = options_.dir + "/repair-" + UtcStamp(now_ms) + ".json";
    if (Status s = options_.fs->WriteFileAtomically(path, repair_.ToJson()); !s.ok()) return s;
    log->warn("repair report written to {}", path);
  }
  return Status::OK();
}

}  // namespace txmq::storage
