// txmq::Broker: the whole broker (what txmqd runs), embeddable in a process
// for tests, examples and users' own integration tests.
//
//   txmq::BrokerOptions options;
//   options.listen = "tcp://127.0.0.1:*";        // any free port
//   options.data_dir = "/tmp/my-test-broker";
//   auto broker = txmq::Broker::Start(options);  // Result<unique_ptr<Broker>>
//   std::string url = (*broker)->endpoint();     // "tcp://127.0.0.1:41234"
//
// Thread safety: Start, endpoint and Stop may be called from any thread;
// Stop is idempotent and also runs from the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "txmq/status.h"

namespace txmq {

// File layers under the store, for tests that simulate a power loss
// (tests/testutil/fault_fs.h); defined in storage/src/broker_store.h.
struct StorageLayers;
// Where a broker reads its data directory's free space (tests inject a
// fake); defined in broker/src/disk_watermark.h.
class FreeSpaceSource;
namespace broker {
// What the broker's metrics are at one moment (Broker::Metrics); defined
// in broker/src/metrics_snapshot.h, for txmqd's HTTP endpoint and tests.
struct MetricsSnapshot;
// Where a cluster node's rounds are replicated (broker/src/
// round_replicator.h); txmqd's --etcd sets one.
class RoundReplicator;
// A store kept from the replicated log before the broker opened (broker/
// src/store_handover.h); txmqd's --etcd sets one.
class StoreHandover;
}  // namespace broker

enum class FlushMode {
  kSync,   // fsync before every acknowledgement (grouped): survives power loss
  kAsync,  // write to the OS before acknowledging: survives a process crash only
};

// What happens to a transaction still undecided after check_max checks.
enum class StuckPolicy {
  kPark,      // keep it (and keep checking at the capped interval); operators decide
  kRollback,  // roll it back
  kCommit,    // commit it
};

// 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h, as RocketMQ.
std::vector<std::chrono::milliseconds> DefaultRetryBackoff();

// Durations below that schedule something or age stored data (retention,
// dedup window, transaction checks, redelivery backoff, delays) count
// broker time: the wall clock read at start-up, advanced by the monotonic
// clock, never backward across restarts (README, "Time"). Stepping the wall
// clock of a running broker does not shorten or stretch them.
struct BrokerOptions {
  // Name of this broker in logs and status; ids never assume one broker.
  std::string name = "txmq-1";
  // ZeroMQ endpoint to bind. "tcp://127.0.0.1:*" picks a free port
  // (see Broker::endpoint()).
  std::string listen = "tcp://127.0.0.1:7800";
  // Most TCP connections open at once; one more is closed as it arrives
  // (logged). Whatever this says, connections never take the file
  // descriptors the storage needs: the limit in force is at most the
  // descriptor limit (ulimit -n) less the descriptors in use less a reserve
  // for storage (broker/src/connection_guard.h). 0: that bound alone.
  size_t max_connections = 0;
  // With CURVE: most connections of one principal (key) at once, so one
  // key cannot take every connection. Requests on one more are refused
  // RESOURCE_EXHAUSTED until one of its others closes. 0: no limit.
  size_t max_connections_per_principal = 1000;
  // LevelDB directory; created if missing. One broker per directory.
  std::string data_dir = "./txmq-data";
  FlushMode flush = FlushMode::kSync;
  // Queues of a topic created on first send.
  uint32_t default_queues = 4;
  // Create an unknown topic on first send; when false, sending to it fails
  // NOT_FOUND until an operator creates it.
  bool auto_create_topics = true;
  // The size rule, the same for a send and a transaction: the messages of
  // one request together take at most this many bytes, counting body, key
  // and the names and values of properties not starting with "txmq." (see
  // txmq/properties.h; reserved ones are bounded on their own, 8 KiB per
  // message). Refusals are TOO_LARGE and name the size. The socket takes
  // frames up to this plus 1 MiB + 64 KiB of framing (announced to clients,
  // which refuse bigger requests without sending them); a bigger frame
  // drops only the connection that sent it. 1 KiB to 64 MiB.
  uint32_t max_message_bytes = 4 * 1024 * 1024;
  // A resend of a message id seen within this window is answered with the
  // first result and not stored again. Survives restarts.
  std::chrono::milliseconds dedup_window = std::chrono::minutes(10);
  // Messages older than this are deleted in the background.
  std::chrono::milliseconds retention = std::chrono::hours(72);
  // Lease length when a consumer does not ask for one.
  std::chrono::milliseconds default_visibility_timeout = std::chrono::seconds(30);
  // Redeliveries before a message goes to the group's dead-letter queue
  // (%DLQ%<group>) when the consumer does not say.
  uint32_t max_reconsume_times = 16;
  // Wait before the n-th redelivery; the last entry repeats.
  std::vector<std::chrono::milliseconds> retry_backoff = DefaultRetryBackoff();
  // A client silent this long is considered gone: its leases end (counted as
  // failed deliveries) and producers drop out of transaction checks.
  std::chrono::milliseconds client_timeout = std::chrono::seconds(10);
  // Longest a pull may wait for messages (long polling).
  std::chrono::milliseconds max_long_poll = std::chrono::seconds(30);
  // Longest delay a message may ask for.
  std::chrono::milliseconds max_delay = std::chrono::hours(24 * 30);
  // Most messages returned by one pull.
  uint32_t max_pull_messages = 1024;
  // How often retention and dedup cleanup run, and their batch size.
  std::chrono::milliseconds cleanup_interval = std::chrono::seconds(1);
  uint32_t cleanup_batch = 2000;
  // Size of a commit-log segment file (preallocated; retention frees whole
  // segments). A write round never spans two, so it bounds the largest
  // round: at least 4 x max_message_bytes.
  uint64_t segment_bytes = 128ull * 1024 * 1024;
  // How much of the end of each log (the commit log; a cluster node's
  // replicated log too) the page cache keeps: consumers at the tail and
  // followers catching up read it from memory. Older pages are dropped
  // once durable, so the cache does not grow with the data (and writes
  // reuse pages instead of taking new ones). 0: left to the kernel.
  uint64_t cached_log_bytes = 256ull * 1024 * 1024;
  // The index (LevelDB: where messages are, cursors, schedules; message
  // bodies live in the log): memtable and table file sizes. A checkpoint
  // flushes the memtable, so larger means longer checkpoints. 32 MiB: each
  // flush under a busy transaction load makes LevelDB rewrite much of the
  // level below, so halving the flushes took 7-8% of the broker's CPU per
  // transaction (BENCHMARKS.md, "the index memtable").
  size_t write_buffer_bytes = 32 * 1024 * 1024;
  size_t table_file_bytes = 8 * 1024 * 1024;
  // Index keys of transactions (half references, check schedule, records)
  // are kept in memory until a checkpoint or until this much was written,
  // so those that end by then never reach LevelDB. 0: written at once.
  size_t index_overlay_bytes = 16 * 1024 * 1024;
  // --- security ---
  // CURVE (txmqd --curve-secret-key FILE --acl FILE): the broker's secret
  // key file (`txmqctl keygen NAME` writes NAME.key; clients pin its
  // NAME.pub) and the ACL file (JSON; README "Security" shows it). Set both:
  // connections are encrypted, only keys the ACL names get in, and every
  // request is checked against its connection's principal. Both empty:
  // plaintext, no authentication, everything allowed, and `listen` must be
  // a loopback address unless `insecure` says otherwise. The ACL is re-read
  // by Broker::ReloadAcl (txmqd: SIGHUP).
  std::string curve_secret_key_file{};
  std::string acl_file{};
  // Accept plaintext on an address other machines can reach (a warning is
  // logged at start).
  bool insecure = false;

  // At start, read the whole commit log and index (every checksum) and
  // refuse to start on damage anywhere, naming the file and the position
  // (Start fails CORRUPTION). False: check only what recovery replays;
  // damage elsewhere is found when it is read. Start-up reads the log once
  // either way for a crash recovery; this reads all of it every time.
  bool verify_storage_at_start = true;
  // Start on a damaged data directory: keep what can be read, take the
  // messages that cannot out of their queues, rebuild a damaged index from
  // the log, and report every loss (log lines and data_dir/repair-*.json;
  // README, "A damaged data directory").
  bool repair = false;
  // Tests only: file layers that can lose power. Null: the real ones.
  std::shared_ptr<const StorageLayers> storage_layers{};
  // A cluster node (txmqd --etcd): each round's replies wait until the
  // group committed it (must outlive the broker). Null: a single node.
  broker::RoundReplicator* replicator = nullptr;
  // With a replicator: the store to continue, holding the log's first
  // entries already (must outlive Broker::Start). Null: rebuilt from empty.
  broker::StoreHandover* kept_store = nullptr;

  // --- disk space ---
  // The disk watermark: below this much free space on the data directory's
  // file system the broker refuses new messages (sends, transactional
  // halves, dead-letter resends, topic creation) with RESOURCE_EXHAUSTED,
  // while consumers still pull, ack and nack and transactions still end
  // (commit, rollback, check answers); it accepts them again by itself once
  // an eighth more is free. Unset: MinFreeDiskRoom(*this). A value below
  // that room is refused; 0 turns the check off (a full disk then stops the
  // broker, as any failed write does).
  std::optional<uint64_t> min_free_disk_bytes{};
  // Tests only: where free space is read. Null: statvfs(2) of data_dir.
  std::shared_ptr<FreeSpaceSource> free_space{};

  // --- transactional messages ---
  // A half message with no outcome this long after it was stored is
  // checked with its producer group.
  std::chrono::milliseconds transaction_timeout = std::chrono::seconds(6);
  // Wait between checks; grows by half with each unanswered check, up to
  // check_interval_max.
  std::chrono::milliseconds check_interval = std::chrono::seconds(10);
  std::chrono::milliseconds check_interval_max = std::chrono::seconds(60);
  // Checks before a transaction is stuck (then stuck_policy applies). Only
  // a check a producer received counts. An attempt that finds no live
  // producer of the group is counted apart (reset by the next check that
  // reaches one); check_max such attempts in a row make the transaction
  // stuck too, with last answer "no producer". For client_timeout + 3 s
  // after the broker starts (producers reconnecting), a due check of a group
  // with no live producer waits and is no attempt at all.
  uint32_t check_max = 15;
  // How long the broker waits for a producer to answer one check.
  std::chrono::milliseconds check_timeout = std::chrono::seconds(3);
  StuckPolicy stuck_policy = StuckPolicy::kPark;
  // Most checks sent per second, so a backlog after a restart does not
  // flood the producers.
  uint32_t checks_per_second = 1000;
  // How long the outcome of a finished transaction is remembered (a late
  // or repeated commit/rollback is answered from it).
  std::chrono::milliseconds resolved_retention = std::chrono::hours(24);

  // --- limits: what one client, or a flood of requests, may take ---
  // Each refusal names the limit, its value and the txmqd flag. "Per
  // client" means per client id today (per authenticated principal once
  // there are principals). OVERLOADED refusals pass by themselves (back off
  // and retry); RESOURCE_EXHAUSTED ones need something freed or the limit
  // raised.
  //
  // Reply bytes waiting in the broker for a client that does not read them
  // (ZeroMQ's queue counts messages, not bytes). A reply that does not fit
  // is dropped and the client gets a short OVERLOADED error in its place; a
  // reply always fits when nothing is waiting for its client, so one frame
  // of any allowed size gets through. 32 MiB: several maximal pulls (4 MiB
  // each) of a consumer that reads slowly.
  uint64_t max_reply_bytes_per_client = 32ull << 20;
  // The same, summed over every client: bounds the broker's memory for
  // unread replies. A client with nothing waiting may still get a reply
  // from a reserve of one client's budget beyond it, so slow clients do not
  // starve those that read: the broker holds at most this plus
  // max_reply_bytes_per_client. 256 MiB.
  uint64_t max_reply_bytes = 256ull << 20;
  // Long polls one client may have waiting; the next is refused OVERLOADED
  // at once. The client library parks one at a time per consumer; 16
  // leaves room for several consumers sharing a client id and for polls a
  // client gave up on that the broker still holds.
  uint32_t max_parked_pulls_per_client = 16;
  // Long polls waiting, over all clients (each costs memory and a look
  // when a topic gets messages). 10,000.
  uint32_t max_parked_pulls = 10'000;
  // Requests of one client accepted and not yet answered (sends and acks
  // waiting for their write to be durable, parked pulls); more are refused
  // OVERLOADED until some are answered. 4096: 16 times the largest window
  // of the client libraries (256), so only a runaway pipeline meets it.
  uint32_t max_in_flight_per_client = 4096;
  // Open (prepared, undecided) transactions of one producer group; a new
  // half beyond it is refused RESOURCE_EXHAUSTED, ends are always taken.
  // 10,000: far above what a live group keeps open (a transaction waits
  // for its local commit, milliseconds), below what would hide a producer
  // that never ends its transactions.
  uint32_t max_open_transactions_per_group = 10'000;
  // Open transactions over all producer groups. 100,000 (~120 MB).
  uint32_t max_open_transactions = 100'000;
  // Topics (every topic counts, also the broker's own; those, %DLQ% and
  // %RETRY% topics of consumer groups, are created even past the limit so
  // no failed message is ever lost). A send, half or create naming a new
  // topic beyond it is refused RESOURCE_EXHAUSTED. 10,000: each costs
  // memory, start-up time and status time.
  uint32_t max_topics = 10'000;
  // New topics per second (a token bucket holding 10 s' worth, so a
  // deployment creating its topics at once is not slowed); beyond it,
  // OVERLOADED. 100.
  uint32_t topic_creates_per_second = 100;
  // Consumer groups (a pull naming an unknown group creates it); beyond
  // it, RESOURCE_EXHAUSTED. 10,000.
  uint32_t max_groups = 10'000;
  // New consumer groups per second (bucket of 10 s' worth); OVERLOADED
  // beyond it. 100.
  uint32_t group_creates_per_second = 100;
  // With CURVE, each principal that is not an admin is also held to its
  // own share of the above, so one service cannot take every name from
  // the others. Counted from the creator stored with each topic and group,
  // so also across restarts; names it created that were deleted no longer
  // count. Admins (txmqctl) and plaintext mode have only the broker-wide
  // limits. Beyond a count: RESOURCE_EXHAUSTED; beyond a rate (a bucket
  // of 10 s' worth): OVERLOADED. 1,000 topics and groups each (a tenth of
  // the broker's), 20 new ones a second.
  uint32_t max_topics_per_principal = 1'000;
  uint32_t topic_creates_per_second_per_principal = 20;
  uint32_t max_groups_per_principal = 1'000;
  uint32_t group_creates_per_second_per_principal = 20;
};

// Checks every field; the error names the field and the bad value.
Status ValidateBrokerOptions(const BrokerOptions& options);

// The room the broker may still write into while it refuses new messages,
// and so the least (and the default) min_free_disk_bytes:
//   2 x segment_bytes        the next commit-log segment is preallocated
//                            once the current one is half full, and acks,
//                            cursors and transaction ends keep the log
//                            growing while sends are refused;
// + 4 x write_buffer_bytes   LevelDB compacts its level 0 once 4 memtable
//                            flushes piled up, and writes the result before
//                            deleting them;
// + 25 x table_file_bytes    the largest compaction LevelDB expands to (its
//                            output is written before its inputs go).
// 584 MiB with the defaults (128 MiB segments, 32 MiB memtable, 8 MiB tables).
uint64_t MinFreeDiskRoom(const BrokerOptions& options);
// min_free_disk_bytes, or MinFreeDiskRoom when unset.
uint64_t EffectiveMinFreeDisk(const BrokerOptions& options);

class Broker {
 public:
  // Opens the data directory, rebuilds state from it, binds the socket and
  // starts serving. Fails UNAVAILABLE if another broker holds the directory.
  static Result<std::unique_ptr<Broker>> Start(const BrokerOptions& options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // The bound endpoint, with the real port when listen used "*".
  const std::string& endpoint() const;
  const BrokerOptions& options() const;

  // Two-phase shutdown: stop taking requests, finish and acknowledge the
  // writes already accepted, then close the socket and the database.
  void Stop();
  // Re-reads BrokerOptions::acl_file. On success the new list governs every
  // request from now on (keys it no longer names are refused, also on
  // connections already open); on error the list in force stays and the
  // error names the mistake. FAILED_PRECONDITION without an ACL.
  Status ReloadAcl();

  // Any thread: the broker's metrics now, copied by its core thread
  // between batches of requests. UNAVAILABLE when the core does not answer
  // within `timeout`, or has stopped (the status then says why: a storage
  // failure names it).
  Result<std::shared_ptr<const broker::MetricsSnapshot>> Metrics(
      std::chrono::milliseconds timeout) const;

  // Any thread: serves one operator request on the core thread, through
  // the same rights check, handlers and audit lines as a request from a
  // txmqctl connection, as the built-in principal "http-console" (this is
  // how txmqd's web console acts; README, "The web console").
  // `request` is an encoded Envelope (protocol/txmq.capnp) whose request
  // id no other waiting Operate call uses; only txmqctl's reads and its
  // transaction and dead-letter actions are served (PERMISSION_DENIED
  // answers the rest). `peer` names who asked in the audit line ("client=
  // http@PEER"). Returns the encoded reply; UNAVAILABLE when the core does
  // not answer within `timeout` (the request may still be served) or has
  // stopped, OVERLOADED when too many requests wait.
  Result<std::string> Operate(std::string request, std::string peer,
                              std::chrono::milliseconds timeout) const;

  // Blocks until the broker stopped (Stop() or a fatal storage error).
  // Returns why it stopped: OK after Stop().
  Status Wait();

  class Impl;

 private:
  explicit Broker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq
