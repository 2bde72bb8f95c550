#include "broker/src/standby_store.h"

#include <sys/resource.h>
#include <unistd.h>

#include <leveldb/env.h>

#include <charconv>
#include <deque>
#include <filesystem>

#include "broker/src/replica_applied_mark.h"
#include "protocol/src/byte_size.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker {

namespace {

constexpr int kStandbyNice = 10;

// What a store kept by a run before holds of the replica log.
struct Continued {
  std::unique_ptr<storage::BrokerStore> store;
  uint64_t applied = 0;      // replica entries 1..applied
  uint32_t applied_crc = 0;  // entry applied's chain value
  uint64_t checked = 0;      // rounds compared with the log after the mark
  uint64_t checked_bytes = 0;
  std::deque<StandbyStore::RoundAhead> ahead;  // rounds it holds after entry `applied`
  uint64_t ahead_bytes = 0;
};

bool SameRound(const ReplicatedRound& round, int64_t time_ms, std::string_view payload) {
  return round.time_ms == time_ms &&
         payload.size() == round.records.size() + round.ops_record.size() &&
         payload.starts_with(round.records) && payload.ends_with(round.ops_record);
}

// The rounds the store holds after its mark must be, in order, the rounds
// of the replica entries after the mark's: one of an entry a later leader
// replaced differs, and the store is not continued. A leader's store may
// also hold rounds its log never got (see kMaxAheadBytes): those past
// the log's end are kept aside as
// rounds ahead, to be compared with the entries the log gets next (the
// new leader's: they are the same when a follower had them).
Result<Continued> ContinueKept(const storage::StoreOptions& options, const std::string& log_dir,
                               EventFd* round_done, uint64_t max_check_bytes) {
  auto mark = ReadReplicaAppliedMark(options.fs, options.dir);
  if (!mark.ok()) return mark.status();
  auto opened = storage::BrokerStore::Open(options, round_done);
  if (!opened.ok()) return opened.status();
  Continued c;
  c.store = std::move(opened.value());
  c.applied = mark->replica_index;
  c.applied_crc = mark->replica_crc;
  cluster::ReplicaLogReader reader(
      log_dir, options.fs, mark->replica_index, 0,
      mark->replica_index > 0 ? std::optional<uint32_t>(mark->replica_crc) : std::nullopt);
  if (Status s =
          reader.Read(mark->replica_index, [](const cluster::EntryView&) { return Status::OK(); });
      !s.ok()) {
    return s;
  }
  bool log_ended = false;
  Status checked =
      c.store->ForEachRound(mark->store, [&](int64_t time_ms, std::string_view payload) {
        if (log_ended) {
          c.ahead_bytes += payload.size();
          if (c.ahead_bytes > StandbyStore::kMaxAheadBytes) {
            return Status::NotFound("more than " + FormatBytes(StandbyStore::kMaxAheadBytes) +
                                    " of rounds past the replica log's end");
          }
          c.ahead.push_back({time_ms, std::string(payload)});
          return Status::OK();
        }
        ++c.checked;
        c.checked_bytes += payload.size();
        if (c.checked_bytes > max_check_bytes) {
          // A leader's store: marked at the hand-over, not since. Checked
          // here, before the node joins, it would keep the node out for
          // as long; built again, it is done in the background.
          return Status::NotFound("more than " + FormatBytes(max_check_bytes) +
                                  " of rounds after its mark (written while it led)");
        }
        // The next entry that wrote a round (an epoch start or a round of
        // nothing did not) must be this one.
        for (bool matched = false; !matched;) {
          Status s = reader.Read(reader.last() + 1, [&](const cluster::EntryView& e) {
            c.applied = e.index;
            c.applied_crc = e.crc;
            if (e.payload.empty()) return Status::OK();
            auto round = DecodeReplicatedRound(e.payload);
            if (!round.ok()) return round.status();
            if (round->records.empty() && round->ops_record.empty()) return Status::OK();
            matched = true;
            if (SameRound(*round, time_ms, payload)) return Status::OK();
            return Status::Corruption("the store's round " + std::to_string(c.checked) +
                                      " after its mark differs from replica entry " +
                                      std::to_string(e.index));
          });
          if (!s.ok() && reader.ended()) {
            log_ended = true;
            c.ahead_bytes = payload.size();
            c.ahead.push_back({time_ms, std::string(payload)});
            return Status::OK();
          }
          if (!s.ok()) {
            return Status(s.code(),
                          "the store holds rounds the replica log does not (" + s.message() + ")");
          }
        }
        return Status::OK();
      });
  if (!checked.ok()) return checked;
  return c;
}

}  // namespace

Result<std::unique_ptr<StandbyStore>> StandbyStore::Open(const storage::StoreOptions& store,
                                                         const std::string& log_dir,
                                                         uint64_t keep_cached_log_bytes,
                                                         uint64_t max_check_bytes) {
  auto log = Logger("standby");
  auto standby = std::unique_ptr<StandbyStore>(new StandbyStore());
  standby->options_ = store;
  standby->log_dir_ = log_dir;
  standby->keep_cached_ = keep_cached_log_bytes;
  const auto start = std::chrono::steady_clock::now();
  auto kept = ContinueKept(store, log_dir, &standby->unused_round_done_, max_check_bytes);
  if (kept.ok()) {
    standby->store_ = std::move(kept->store);
    standby->applied_ = kept->applied;
    standby->applied_crc_ = kept->applied_crc;
    standby->ahead_ = std::move(kept->ahead);
    log->info(
        "continuing the store kept in {}: it holds {} ({} rounds after its mark checked against "
        "the log in {} ms){}",
        store.dir,
        kept->applied == 0 ? std::string("no replica entry yet")
                           : "replica entries 1.." + std::to_string(kept->applied),
        kept->checked,
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                              start)
            .count(),
        standby->ahead_.empty()
            ? std::string()
            : ", and " + std::to_string(standby->ahead_.size()) +
                  " rounds past the log's end (written while it led): each must be the next "
                  "round the log gets, or the store is built again");
    standby->StartReading();
  } else {
    const StatusCode code = kept.status().code();
    if (code != StatusCode::kNotFound && code != StatusCode::kCorruption) {
      // Not a verdict on the store (a disk error, its lock held by another
      // process): nothing is deleted.
      return Status(code,
                    "cannot open the store kept in " + store.dir + ": " + kept.status().message());
    }
    if (code != StatusCode::kNotFound || std::filesystem::exists(store.dir)) {
      log->warn("not continuing the store in {} ({}); building it again from the replica log",
                store.dir, kept.status().ToString());
    }
    if (Status s = standby->OpenEmpty(); !s.ok()) return s;
  }
  // LevelDB starts its one background (compaction) thread at its first
  // Schedule, and a thread inherits its creator's nice value: start it
  // here, at normal priority, or the first memtable the niced standby
  // thread fills would leave every compaction of the process, the
  // broker's after a takeover included, at nice 10.
  leveldb::Env::Default()->Schedule([](void*) {}, nullptr);
  return standby;
}

Status StandbyStore::OpenEmpty() {
  rebuild_.reset();
  store_.reset();
  // From empty: rounds written into a store of before would be placed
  // elsewhere than the leader's (replicated_round.h).
  if (Status s = DiscardStoreDir(options_.dir); !s.ok()) return s;
  auto opened = storage::BrokerStore::Open(options_, &unused_round_done_);
  if (!opened.ok()) return opened.status();
  store_ = std::move(opened.value());
  ahead_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    applied_ = 0;
    applied_crc_ = 0;
    failure_ = Status::OK();
    fresh_ = true;
  }
  StartReading();
  // Marked empty: killed before its first sync, the next start checks
  // every round against the log rather than building them all again.
  Mark();
  return Status::OK();
}

void StandbyStore::StartReading() {
  rebuild_.emplace(*store_);
  reader_.emplace(log_dir_, options_.fs, applied_, keep_cached_,
                  applied_ > 0 ? std::optional<uint32_t>(applied_crc_) : std::nullopt);
}

bool StandbyStore::WantsStartOver() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !fresh_ && !failure_.ok();
}

Status StandbyStore::StartOver() {
  StopThread();
  Logger("standby")->warn("building the store again from the replica log, from empty");
  if (Status s = OpenEmpty(); !s.ok()) return s;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

Result<std::unique_ptr<StandbyStore>> StandbyStore::Start(const storage::StoreOptions& store,
                                                          const std::string& log_dir,
                                                          std::function<uint64_t()> committed,
                                                          std::function<void(uint64_t)> applied,
                                                          std::chrono::milliseconds poll,
                                                          uint64_t keep_cached_log_bytes) {
  auto standby = Open(store, log_dir, keep_cached_log_bytes);
  if (standby.ok()) (*standby)->Follow(std::move(committed), std::move(applied), poll);
  return standby;
}

void StandbyStore::Follow(std::function<uint64_t()> committed,
                          std::function<void(uint64_t)> applied, std::chrono::milliseconds poll) {
  committed_ = std::move(committed);
  on_applied_ = std::move(applied);
  poll_ = poll;
  thread_ = std::thread([this] { Loop(); });
}

StandbyStore::~StandbyStore() {
  StopThread();
  // Stopped while following: synced and marked, the next start continues
  // with nothing to check.
  if (store_ && rebuild_ && failure_.ok() && rebuild_->Finish().ok()) Mark();
}

void StandbyStore::StopThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);  // so the wait cannot miss it
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StandbyStore::Mark() {
  // The store's end is past entry applied_ until its rounds ahead are
  // matched: a mark now would name rounds as that entry's.
  if (!ahead_.empty()) return;
  ReplicaAppliedMark mark;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mark = {store_->log_cursor(), applied_, applied_crc_};
  }
  // Without it the next start builds the store from empty: slower, not
  // wrong.
  if (Status s = WriteReplicaAppliedMark(store_->options().fs, store_->options().dir, mark);
      !s.ok()) {
    Logger("standby")->warn(
        "cannot record what the store holds ({}); the next start builds it "
        "again from the replica log",
        s.ToString());
  }
}

bool StandbyStore::ReleaseAsTheLeaderDid() {
  const auto released = store_->GetMeta(storage::BrokerStore::kLogReleasedMeta);
  uint64_t before = 0;
  if (!released ||
      std::from_chars(released->data(), released->data() + released->size(), before).ec !=
          std::errc() ||
      before <= store_->log_start()) {
    return false;
  }
  auto freed = store_->DeleteLogBefore(before);
  if (!freed.ok()) {
    Logger("standby")->error("deleting old log segments as the leader did: {}",
                             freed.status().ToString());
    return false;
  }
  if (*freed == 0) {
    store_->RequestCheckpoint();  // they go once a checkpoint covers them: a later pass
    return true;
  }
  Logger("standby")->info("deleted {} of old log segments, as the leader did", FormatBytes(*freed));
  // The mark may name a position that is gone now.
  if (rebuild_->Finish().ok()) Mark();
  return false;
}

void StandbyStore::Loop() {
  SetThreadName("txmq-standby");
  // Behind the replication thread when the CPU is short: acks wait for
  // this node's answers, never for its store, which catches up later (a
  // takeover then replays a little more).
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kStandbyNice);
  auto log = Logger("standby");
  while (!stop_) {
    const uint64_t upto = committed_();
    // Not before the entries up to the kept store's last one are committed
    // (the first Read walks them): until then they may be truncated.
    // Stops between two entries when asked: Take wants the store now, and
    // the broker replays the rest.
    Status s;
    const uint64_t before_pass = reader_->last();
    if (upto > reader_->last())
      s = reader_->Read(upto, [&](const cluster::EntryView& e) {
        if (stop_) return Status::Aborted("stopping");
        const uint64_t syncs = rebuild_->syncs();
        Status applied = ahead_.empty() ? rebuild_->Apply(e.payload) : MatchAhead(e);
        if (!applied.ok()) return applied;
        {
          std::lock_guard<std::mutex> lock(mu_);
          applied_ = e.index;
          applied_crc_ = e.crc;
        }
        if (rebuild_->syncs() != syncs) Mark();
        return Status::OK();
      });
    // The leader's word comes in an applied round: looked up only after
    // one, or while a deletion waits for a checkpoint.
    if (s.ok() && (reader_->last() != before_pass || release_pending_)) {
      release_pending_ = ReleaseAsTheLeaderDid();
    }
    if (on_applied_) on_applied_(reader_->last());
    std::unique_lock<std::mutex> lock(mu_);
    if (!s.ok() && s.code() != StatusCode::kAborted) {
      if (fresh_) {
        log->error(
            "the store kept beside the replica log stopped at entry {}: {}. If this node leads, "
            "it rebuilds its store from the whole log instead",
            applied_, s.ToString());
      } else {
        // A continued store's last entries were an old leader's tail that
        // the log no longer holds, or it does not take the next entry:
        // txmqd builds it again (WantsStartOver).
        log->warn("the store continued from the last run cannot go on at entry {}: {}", applied_,
                  s.ToString());
      }
      failure_ = s;
      return;
    }
    wake_.wait_for(lock, poll_, [this] { return stop_.load(); });
  }
}

Status StandbyStore::MatchAhead(const cluster::EntryView& e) {
  if (e.payload.empty()) return Status::OK();  // an epoch start: no round
  auto round = DecodeReplicatedRound(e.payload);
  if (!round.ok()) return round.status();
  if (round->records.empty() && round->ops_record.empty()) return Status::OK();
  const RoundAhead& next = ahead_.front();
  if (!SameRound(*round, next.time_ms, next.payload)) {
    return Status::Corruption("replica entry " + std::to_string(e.index) +
                              " is not the round the store holds past the log's end (the old "
                              "leader's round never reached the new leader)");
  }
  ahead_.pop_front();
  if (ahead_.empty()) {
    Logger("standby")->info(
        "the store's rounds past the log's end were the log's next rounds, up to entry {}: it is "
        "continued",
        e.index);
  }
  return Status::OK();
}

uint64_t StandbyStore::applied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_;
}

StoreHandover::Kept StandbyStore::Take(EventFd* round_done) {
  StopThread();
  if (!store_) return {};  // taken before
  Status s = failure_;
  if (s.ok() && !ahead_.empty()) {
    s = Status::FailedPrecondition(
        "the store holds " + std::to_string(ahead_.size()) + " rounds past entry " +
        std::to_string(applied_) +
        " that the log has not brought (yet): it is not the log's, and is built again");
  }
  // A continued store's last entry may not have been committed when it
  // was applied; this node leads now, so its log holds every committed
  // entry and changes only by appending: it must still be that entry.
  if (s.ok()) s = reader_->Read(applied_, [](const cluster::EntryView&) { return Status::OK(); });
  if (s.ok()) s = rebuild_->Finish();
  if (s.ok()) Mark();
  rebuild_.reset();
  if (!s.ok()) {
    if (failure_.ok()) Logger("standby")->error("handing over the kept store: {}", s.ToString());
    store_.reset();  // closed, so that the broker can open the directory anew
    return {};
  }
  store_->set_round_done(round_done);
  return {std::move(store_), applied_};
}

}  // namespace txmq::broker
