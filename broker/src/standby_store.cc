#include "broker/src/standby_store.h"

#include <sys/resource.h>
#include <unistd.h>

#include <leveldb/env.h>

#include <filesystem>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker {

namespace {
constexpr int kStandbyNice = 10;
}  // namespace

Result<std::unique_ptr<StandbyStore>> StandbyStore::Start(const storage::StoreOptions& store,
                                                          const std::string& log_dir,
                                                          std::function<uint64_t()> committed,
                                                          std::function<void(uint64_t)> applied,
                                                          std::chrono::milliseconds poll,
                                                          uint64_t keep_cached_log_bytes) {
  // One session from empty: a store closed and opened again would place
  // records elsewhere than the leader's did (replicated_round.h).
  std::error_code ec;
  std::filesystem::remove_all(store.dir, ec);
  if (ec) return Status::Internal("cannot clear " + store.dir + ": " + ec.message());
  auto standby = std::unique_ptr<StandbyStore>(new StandbyStore(
      log_dir, std::move(committed), std::move(applied), poll, keep_cached_log_bytes));
  auto opened = storage::BrokerStore::Open(store, &standby->unused_round_done_);
  if (!opened.ok()) return opened.status();
  standby->store_ = std::move(opened.value());
  standby->rebuild_.emplace(*standby->store_);
  // LevelDB starts its one background (compaction) thread at its first
  // Schedule, and a thread inherits its creator's nice value: start it
  // here, at normal priority, or the first memtable the niced standby
  // thread fills would leave every compaction of the process, the
  // broker's after a takeover included, at nice 10.
  leveldb::Env::Default()->Schedule([](void*) {}, nullptr);
  standby->thread_ = std::thread([s = standby.get()] { s->Loop(); });
  return standby;
}

StandbyStore::StandbyStore(const std::string& log_dir, std::function<uint64_t()> committed,
                           std::function<void(uint64_t)> applied, std::chrono::milliseconds poll,
                           uint64_t keep_cached_log_bytes)
    : reader_(log_dir, storage::FileSystem::Default(), 0, keep_cached_log_bytes),
      committed_(std::move(committed)),
      on_applied_(std::move(applied)),
      poll_(poll) {}

StandbyStore::~StandbyStore() { StopThread(); }

void StandbyStore::StopThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);  // so the wait cannot miss it
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
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
    // Stops between two entries when asked: Take wants the store now, and
    // the broker replays the rest.
    Status s = reader_.Read(upto, [&](const cluster::EntryView& e) {
      if (stop_) return Status::Aborted("stopping");
      return rebuild_->Apply(e.payload);
    });
    if (on_applied_) on_applied_(reader_.last());
    std::unique_lock<std::mutex> lock(mu_);
    applied_ = reader_.last();
    if (!s.ok() && s.code() != StatusCode::kAborted) {
      log->error(
          "the store kept beside the replica log stopped at entry {}: {}. If this node leads, "
          "it rebuilds its store from the whole log instead",
          applied_, s.ToString());
      failure_ = s;
      return;
    }
    wake_.wait_for(lock, poll_, [this] { return stop_.load(); });
  }
}

uint64_t StandbyStore::applied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_;
}

StoreHandover::Kept StandbyStore::Take(EventFd* round_done) {
  StopThread();
  if (!store_) return {};  // taken before
  Status s = failure_.ok() ? rebuild_->Finish() : failure_;
  rebuild_.reset();
  if (!s.ok()) {
    if (failure_.ok()) Logger("standby")->error("syncing the kept store: {}", s.ToString());
    store_.reset();  // closed, so that the broker can open the directory anew
    return {};
  }
  store_->set_round_done(round_done);
  return {std::move(store_), applied_};
}

}  // namespace txmq::broker
