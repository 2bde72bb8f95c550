// txmqd: the broker daemon. Flags (or a config file) -> BrokerOptions ->
// Broker::Start; runs until SIGINT/SIGTERM, then shuts down cleanly.
// SIGHUP re-reads what an operator may change under a running broker (the
// --acl file; the --audit-log file is reopened after rotation) and never
// stops it.
//
// Exit codes: 0 stopped on a signal, 1 cannot start, 2 bad usage, 3 the
// storage failed while serving, 4 the data directory is damaged (start
// with --repair; README, "A damaged data directory"), 5 (--etcd) this node
// stopped leading its group (restart it: it rejoins as a follower).
//
// Threads: main waits for signals; the broker runs its own core and
// storage threads; one helper thread waits for the broker to stop by
// itself (storage failure) and wakes main. With --http, the HTTP endpoint
// runs its own threads (broker/src/http/http_server.h) and reaches the
// broker only through its core thread: snapshots it hands over, and the
// console's operator requests it serves (Broker::Operate).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "broker/src/auth/security.h"
#include "broker/src/config_file.h"
#include "broker/src/http/http_server.h"
#include "broker/src/listen_precheck.h"
#include "broker/src/sd_notify.h"
#include "broker/src/settings.h"
#include "broker/src/txmqd_cluster.h"
#include "protocol/src/broker_list.h"
#include "protocol/src/byte_size.h"
#include "protocol/src/log.h"
#include "protocol/src/unknown_option.h"
#include "protocol/src/util.h"
#include "txmq/broker.h"
#include "txmq/logging.h"
#include "txmq/version.h"

namespace {

// Parses a duration flag; the error names the flag and the value.
bool ParseDuration(const std::string& flag, const std::string& text, std::chrono::milliseconds* out,
                   std::string* error) {
  int64_t ms = txmq::ParseDurationMs(text);
  if (ms < 0) {
    *error = flag + " = '" + text + "' is not a duration (examples: 500ms, 10s, 5m, 72h)";
    return false;
  }
  *out = std::chrono::milliseconds(ms);
  return true;
}

// Files txmqd re-reads or reopens on SIGHUP.
struct HangupFiles {
  std::string audit_log;  // --audit-log, "" if none
  std::string acl;        // --acl, "" if none
};

// SIGHUP: each file in turn; a step that fails logs why and keeps what it
// had, and none stops the broker.
void OnHangup(const HangupFiles& files, txmq::Broker& broker, spdlog::logger& log) {
  bool did_something = false;
  if (!files.acl.empty()) {
    did_something = true;
    if (txmq::Status s = broker.ReloadAcl(); s.ok()) {
      log.info("SIGHUP: reloaded ACL {}", files.acl);
    } else {
      log.error("SIGHUP: ACL {} NOT reloaded, the previous one stays in force: {}", files.acl,
                s.message());
    }
  }
  if (!files.audit_log.empty()) {
    did_something = true;
    if (txmq::Status s = txmq::SetAuditFile(files.audit_log); s.ok()) {
      log.info("SIGHUP: reopened audit log {}", files.audit_log);
    } else {
      log.error("SIGHUP: {}; audit lines still go to the file opened before", s.message());
    }
  }
  if (!did_something) {
    log.info("SIGHUP: ignored (nothing to reopen: no --audit-log); no --acl to re-read either");
  }
}

}  // namespace

int main(int argc, char** argv) {
  txmq::BrokerOptions o;
  std::string flush = "sync", log_level = "info", ready_file, http_address, http_token_file;
  HangupFiles hangup_files;
  std::string dedup_window = "10m", retention = "72h", visibility = "30s", client_timeout = "10s";
  std::string retry_backoff;
  bool no_auto_create = false;
  std::string verify_on_start = "all";
  size_t write_buffer_mb = o.write_buffer_bytes >> 20, table_file_mb = o.table_file_bytes >> 20;
  size_t index_overlay_mb = o.index_overlay_bytes >> 20;
  uint64_t segment_mb = o.segment_bytes >> 20, cached_log_mb = o.cached_log_bytes >> 20;
  std::string min_free_disk;  // "": MinFreeDiskRoom
  std::string tx_timeout = "6s", check_interval = "10s", check_interval_max = "60s",
              check_timeout = "3s", resolved_retention = "24h", stuck_policy = "park";

  CLI::App app{
      "txmqd: the txmq broker. Durable topics with per-key ordering, consumer groups with\n"
      "leases and retries, dead-letter queues and transactional (half) messages.\n\n"
      "Example:\n"
      "  txmqd --listen tcp://127.0.0.1:7800 --data-dir /var/lib/txmq --flush sync\n"};
  app.set_config("--config", "",
                 "Read options from a TOML/INI file: one 'key = value' a line, keys are the long "
                 "flag names (flush = \"async\"); an unknown key or line is an error");
  txmq::broker::ConfigLines config_lines;
  app.config_formatter(txmq::broker::StrictConfig(app, &config_lines));
  // Bad usage: one line naming txmqd, and the config file's line when the
  // value came from there; exit 2.
  const auto usage = [&](const std::string& message) {
    std::cerr << "txmqd: " << txmq::broker::ConfigOrigin(config_lines, app, message, argc, argv)
              << message << "\n";
    return 2;
  };
  app.add_option("--listen", o.listen,
                 "ZeroMQ endpoint to bind: tcp://HOST:PORT (HOST:PORT alone means the same), "
                 "ipc://PATH; tcp://127.0.0.1:* picks a free port")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections,
                 "Most TCP connections open at once; one more is closed as it arrives (logged, "
                 "the client retries). Whatever it says, connections never take the file "
                 "descriptors the storage needs: at most ulimit -n less the descriptors in use "
                 "less 64 kept for storage (txmqd raises its soft descriptor limit to the hard "
                 "one at start). 0: that bound alone")
      ->capture_default_str();
  app.add_option("--max-connections-per-principal", o.max_connections_per_principal,
                 "With CURVE: most connections of one principal at once. Requests on one more "
                 "are refused (RESOURCE_EXHAUSTED) until another of its connections closes. 0: "
                 "no limit")
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir,
                 "Data directory: the commit log (log/) and its index (index/); created if "
                 "missing; one broker each")
      ->capture_default_str();
  app.add_option("--flush", flush,
                 "sync: fsync before acknowledging (survives power loss); async: acknowledge once "
                 "the OS has the write (survives a process crash only)")
      ->check(CLI::IsMember({"sync", "async"}))
      ->capture_default_str();
  app.add_option("--queues", o.default_queues, "Queues of a topic created on first send")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_flag("--no-auto-create-topics", no_auto_create,
               "Refuse sends to unknown topics (create them with txmqctl topic create)");
  app.add_option("--max-message-bytes", o.max_message_bytes,
                 "Largest request: body + key + properties not starting with 'txmq.', "
                 "summed over a transaction's messages")
      ->check(CLI::Range(1024, 64 * 1024 * 1024))
      ->capture_default_str();
  app.add_option("--name", o.name, "Broker name shown in logs and status")->capture_default_str();
  app.add_option("--dedup-window", dedup_window,
                 "Resends of a message id within this are stored once")
      ->capture_default_str();
  app.add_option("--retention", retention, "Delete messages older than this")
      ->capture_default_str();
  app.add_option("--visibility-timeout", visibility, "Default lease of a delivered message")
      ->capture_default_str();
  app.add_option("--max-reconsume-times", o.max_reconsume_times,
                 "Redeliveries before a message goes to %DLQ%<group> (consumers may override)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--retry-backoff", retry_backoff,
                 "Comma-separated waits before the 1st, 2nd, ... redelivery; the last repeats "
                 "(default 1s,5s,10s,30s,1m,2m,...,2h)");
  app.add_option("--client-timeout", client_timeout,
                 "A client silent this long is gone: its leases end, it gets no checks")
      ->capture_default_str();
  app.add_option("--transaction-timeout", tx_timeout,
                 "Check a half message with no outcome after this long")
      ->capture_default_str();
  app.add_option("--check-interval", check_interval,
                 "Wait between checks of one transaction; grows by half each time")
      ->capture_default_str();
  app.add_option("--check-interval-max", check_interval_max, "Cap of the growing check interval")
      ->capture_default_str();
  app.add_option("--check-max", o.check_max,
                 "Checks before an undecided transaction is stuck (then --stuck-policy)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--check-timeout", check_timeout, "How long to wait for a producer's answer")
      ->capture_default_str();
  app.add_option("--stuck-policy", stuck_policy,
                 "park: keep a stuck transaction for operators (and keep checking); rollback or "
                 "commit: decide it")
      ->check(CLI::IsMember({"park", "rollback", "commit"}))
      ->capture_default_str();
  app.add_option("--checks-per-second", o.checks_per_second,
                 "Most transaction checks sent per second")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--resolved-retention", resolved_retention,
                 "How long a finished transaction's outcome is remembered")
      ->capture_default_str();
  app.add_option("--segment-mb", segment_mb,
                 "Size of a commit-log segment file in MiB (preallocated; retention frees whole "
                 "segments; at least 4 x --max-message-bytes + 1 MiB)")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  app.add_option("--cached-log-mb", cached_log_mb,
                 "MiB at the end of each log (commit log, replicated log) kept in the page "
                 "cache for consumers and followers at the tail; older pages are dropped once "
                 "durable, so memory does not grow with the data. 0: left to the kernel")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--write-buffer-mb", write_buffer_mb,
                 "Index (LevelDB) memtable size in MiB; a checkpoint flushes it, so larger means "
                 "longer checkpoints")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--index-overlay-mb", index_overlay_mb,
                 "Transactions' short-lived index keys (half references, check schedule, "
                 "records) kept in memory up to this many MiB or the next checkpoint, so a "
                 "transaction that ends by then costs LevelDB no write for them; rebuilt from "
                 "the log after a crash. 0: written to the index at once")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--table-file-mb", table_file_mb, "Index (LevelDB) table file size in MiB")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--min-free-disk", min_free_disk,
                 "Disk watermark: below this much free space on the data directory's file "
                 "system, refuse new messages (sends, transactional halves, DLQ resends, topic "
                 "creation: RESOURCE_EXHAUSTED) while consumers drain and transactions end; "
                 "accept them again once an eighth more is free. A size: 1GiB, 600MiB, 2GB. "
                 "Default and least: the room the broker may still need while it refuses, "
                 "2 x segment + 4 x write buffer (LevelDB level-0 compaction) + 25 x table file "
                 "(its largest compaction): 584MiB with the defaults. 0: off (a full disk then "
                 "stops the broker)");
  app.add_option("--verify-on-start", verify_on_start,
                 "all: read the whole commit log and index (every checksum) at start and refuse "
                 "to start on damage (start-up time grows with the log); recent: only what a "
                 "crash recovery replays (damage elsewhere is found when it is read)")
      ->check(CLI::IsMember({"all", "recent"}))
      ->capture_default_str();
  app.add_flag("--repair,--salvage", o.repair,
               "Start on a damaged data directory: keep what can be read, take the messages that "
               "cannot out of their queues, rebuild a damaged index from the log, log every lost "
               "message (id, topic, queue, offset) and write DATA-DIR/repair-<time>.json; then "
               "serve. Without damage it just starts");
  // Limits (BrokerOptions, "limits": why each default). A refusal names
  // the flag that would raise it.
  app.add_option("--max-reply-bytes-per-client", o.max_reply_bytes_per_client,
                 "Reply bytes the broker holds for one client that does not read them; a "
                 "reply beyond it is dropped and the client gets OVERLOADED instead (a reply "
                 "always fits when none waits). Default: several maximal pulls")
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-reply-bytes", o.max_reply_bytes,
                 "Reply bytes held for slow clients in all: bounds the broker's memory for them")
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-parked-pulls-per-client", o.max_parked_pulls_per_client,
                 "Long polls one client may have waiting; the next is refused OVERLOADED "
                 "(a consumer parks one at a time)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-parked-pulls", o.max_parked_pulls, "Long polls waiting, over all clients")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--max-in-flight-per-client", o.max_in_flight_per_client,
                 "Requests of one client waiting for their answer (sends and acks being "
                 "written, parked pulls); more are refused OVERLOADED. Default: 16 x the client "
                 "libraries' largest window")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--max-open-transactions-per-group", o.max_open_transactions_per_group,
                 "Undecided transactions of one producer group; a new half beyond it is "
                 "refused RESOURCE_EXHAUSTED (ends are always accepted)")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--max-open-transactions", o.max_open_transactions,
                 "Undecided transactions over all producer groups")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--max-topics", o.max_topics,
                 "Topics; a send, half or create naming a new one beyond it is refused "
                 "RESOURCE_EXHAUSTED (dead-letter and retry topics are always created)")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--topic-creates-per-second", o.topic_creates_per_second,
                 "New topics per second (bursts of 10 s' worth); beyond it OVERLOADED")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-groups", o.max_groups,
                 "Consumer groups; a pull naming a new one beyond it is refused "
                 "RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--group-creates-per-second", o.group_creates_per_second,
                 "New consumer groups per second (bursts of 10 s' worth); beyond it OVERLOADED")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-topics-per-principal", o.max_topics_per_principal,
                 "With CURVE: topics one principal that is not an admin may have created "
                 "(still existing, also across restarts); beyond it RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--topic-creates-per-second-per-principal",
                 o.topic_creates_per_second_per_principal,
                 "With CURVE: new topics per second of one principal that is not an admin "
                 "(bursts of 10 s' worth); beyond it OVERLOADED")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max-groups-per-principal", o.max_groups_per_principal,
                 "With CURVE: consumer groups one principal that is not an admin may have "
                 "created; beyond it RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--group-creates-per-second-per-principal",
                 o.group_creates_per_second_per_principal,
                 "With CURVE: new consumer groups per second of one principal that is not an "
                 "admin (bursts of 10 s' worth); beyond it OVERLOADED")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--audit-log", hangup_files.audit_log,
                 "Also append the audit trail (operator actions; always on stderr, whatever "
                 "--log-level) to this file; reopened on SIGHUP for log rotation");
  app.add_option("--curve-secret-key", o.curve_secret_key_file,
                 "CURVE: the broker's secret key file (txmqctl keygen NAME writes NAME.key; give "
                 "clients NAME.pub as --server-key). Needs --acl. Encrypts every connection and "
                 "admits only keys the ACL names");
  app.add_option("--acl", hangup_files.acl,
                 "CURVE: the ACL file (JSON: principals, their public keys and rights; README "
                 "'Security'). Needs --curve-secret-key. Re-read on SIGHUP");
  app.add_flag("--insecure", o.insecure,
               "Allow plaintext (no --curve-secret-key) on an address other machines can reach; "
               "logged as a warning. Without it txmqd refuses to listen there");
  app.add_option("--ready-file", ready_file,
                 "Write the bound endpoint to this file once the broker serves (with --http, "
                 "the HTTP address as a second line: http://HOST:PORT)");
  app.add_option("--http", http_address,
                 "Serve GET /metrics (Prometheus), /healthz and /readyz, and the operators' web "
                 "console at /, on HOST:PORT, e.g. 127.0.0.1:9464 (port 0 picks a free one; it "
                 "is logged and written to --ready-file). Off by default. The metrics are "
                 "unauthenticated, the console's API needs the token (--http-token-file), and "
                 "all of it is plaintext: an address other machines can reach needs --insecure");
  app.add_option("--http-token-file", http_token_file,
                 "With --http: the file holding the token the web console's API asks for "
                 "(one word of 16 bytes or more). Without it txmqd writes a new random token to "
                 "DATA-DIR/http-token (mode 0600) at each start and logs where");
  txmq::broker::ClusterFlags cluster_flags;
  txmq::broker::AddClusterFlags(app, cluster_flags);
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "Print a config file naming every option, commented out at its default, and exit "
               "(the sample tools/packaging/txmqd.conf is its output)");
  app.set_version_flag("--version", std::string("txmqd ") + txmq::kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    std::cerr << "txmqd: " << e.what() << "\n";
    return 2;
  } catch (const CLI::FileError& e) {
    // CLI11's "X was not readable (missing?)": name the flag and the cause.
    std::string path = e.what();
    path = path.substr(0, path.find(" was not readable"));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // the cause: CLI11 gives none
    const int error = fd < 0 ? errno : 0;
    if (fd >= 0) ::close(fd);
    std::cerr << "txmqd: --config " << path << ": cannot read it"
              << (error != 0 ? std::string(" (") + std::strerror(error) + ")" : std::string())
              << "\n";
    return 2;
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0; bad usage is one line that
    // names the program (it may be one of several in a service's log) and
    // exits 2, as txmqctl does.
    if (e.get_exit_code() == 0) return app.exit(e);
    const std::string unknown = txmq::UnknownOption(app);
    return usage((unknown.empty() ? std::string(e.what()) : unknown) + " (see --help)");
  }

  if (print_config) {
    std::cout << txmq::broker::SampleConfig(app);
    return 0;
  }
  txmq::SetLogLevel(txmq::ParseLogLevel(log_level).value());
  auto log = txmq::Logger("txmqd");
  if (!hangup_files.audit_log.empty()) {
    if (txmq::Status s = txmq::SetAuditFile(hangup_files.audit_log); !s.ok()) {
      return usage("--audit-log: " + s.message());
    }
  }
  o.acl_file = hangup_files.acl;
  o.flush = flush == "async" ? txmq::FlushMode::kAsync : txmq::FlushMode::kSync;
  o.auto_create_topics = !no_auto_create;
  o.write_buffer_bytes = write_buffer_mb << 20;
  o.index_overlay_bytes = index_overlay_mb << 20;
  o.table_file_bytes = table_file_mb << 20;
  o.segment_bytes = segment_mb << 20;
  o.cached_log_bytes = cached_log_mb << 20;
  o.verify_storage_at_start = verify_on_start == "all";
  o.stuck_policy = stuck_policy == "commit"     ? txmq::StuckPolicy::kCommit
                   : stuck_policy == "rollback" ? txmq::StuckPolicy::kRollback
                                                : txmq::StuckPolicy::kPark;
  std::string error;
  if (!ParseDuration("--dedup-window", dedup_window, &o.dedup_window, &error) ||
      !ParseDuration("--retention", retention, &o.retention, &error) ||
      !ParseDuration("--visibility-timeout", visibility, &o.default_visibility_timeout, &error) ||
      !ParseDuration("--client-timeout", client_timeout, &o.client_timeout, &error) ||
      !ParseDuration("--transaction-timeout", tx_timeout, &o.transaction_timeout, &error) ||
      !ParseDuration("--check-interval", check_interval, &o.check_interval, &error) ||
      !ParseDuration("--check-interval-max", check_interval_max, &o.check_interval_max, &error) ||
      !ParseDuration("--check-timeout", check_timeout, &o.check_timeout, &error) ||
      !ParseDuration("--resolved-retention", resolved_retention, &o.resolved_retention, &error)) {
    return usage(error);
  }
  if (!min_free_disk.empty()) {
    auto bytes = txmq::ParseByteSize(min_free_disk);
    if (!bytes) {
      return usage("--min-free-disk = '" + min_free_disk +
                   "' is not a size (examples: 1GiB, 600MiB, 2GB; 0 turns the check off)");
    }
    o.min_free_disk_bytes = *bytes;
  }
  if (!retry_backoff.empty()) {
    o.retry_backoff.clear();
    std::stringstream in(retry_backoff);
    for (std::string part; std::getline(in, part, ',');) {
      std::chrono::milliseconds d;
      if (!ParseDuration("--retry-backoff", part, &d, &error)) return usage(error);
      o.retry_backoff.push_back(d);
    }
  }

  // What cannot be bound is told before the store is opened and checked.
  o.listen = txmq::net::WithTcpScheme(o.listen);
  if (const std::string why = txmq::net::EndpointProblem(o.listen, /*bind=*/true); !why.empty()) {
    return usage("--listen '" + o.listen + "' " + why +
                 " (e.g. tcp://127.0.0.1:7800, or tcp://127.0.0.1:* for a free port)");
  }

  // Security flags that do not fit are bad usage, told before anything starts.
  if (o.curve_secret_key_file.empty() != o.acl_file.empty()) {
    return usage(
        "--curve-secret-key and --acl go together: with no ACL nobody could connect, with no key "
        "nobody is known");
  }
  if (o.curve_secret_key_file.empty() && !o.insecure &&
      !txmq::broker::auth::IsLoopbackEndpoint(o.listen)) {
    return usage("--listen " + o.listen +
                 " is reachable from other machines, and without CURVE anyone who reaches it "
                 "could send, consume and act as an operator. Use --curve-secret-key FILE --acl "
                 "FILE, listen on 127.0.0.1, or accept plaintext with --insecure");
  }

  if (http_address.empty() && !http_token_file.empty()) {
    return usage("--http-token-file is the web console's token, and needs --http");
  }
  if (!http_address.empty()) {
    std::string host;
    int port = 0;
    if (txmq::Status s = txmq::broker::http::ParseHttpAddress(http_address, &host, &port);
        !s.ok()) {
      return usage(s.message());
    }
    if (!http_token_file.empty()) {
      if (auto token = txmq::broker::http::ReadConsoleToken(http_token_file); !token.ok()) {
        return usage(token.status().message());
      }
    }
    if (!o.insecure && !txmq::broker::http::IsLoopbackHttpAddress(http_address)) {
      return usage("--http " + http_address +
                   " is reachable from other machines, and the HTTP endpoint has no "
                   "authentication for /metrics (anyone who reaches it reads every topic and "
                   "group name and the broker's counters) and no TLS (the console's token "
                   "travels in plaintext). Serve it on 127.0.0.1 (and let a local agent or a "
                   "proxy expose it), or accept that with --insecure");
    }
  }

  auto cluster_options = txmq::broker::ClusterOptions(cluster_flags, o);
  if (!cluster_options.ok()) return usage(cluster_options.status().message());

  // Rules between options (a segment must hold 4 messages, the disk
  // watermark must leave the broker its room, ...): bad usage, like a bad flag.
  if (txmq::Status s = txmq::ValidateBrokerOptions(o); !s.ok()) return usage(s.message());

  // Each connection holds a descriptor, as does each log segment: take
  // every descriptor the hard limit allows (the soft one is often 1024).
  if (rlimit nofile{};
      getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    const rlim_t was = nofile.rlim_cur;
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
      log->warn("cannot raise the descriptor limit from {} to {}: {}", was, nofile.rlim_max,
                std::strerror(errno));
    }
  }

  // Signals go to main alone, which waits for them; the broker's threads
  // inherit the blocked mask. SIGHUP's default action would end txmqd.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // What this broker runs with, in one block: the first thing to read in a
  // log at 3 a.m.
  auto settings = txmq::broker::EffectiveSettings(o);
  const auto* config = app.get_config_ptr();
  settings.emplace_back("config", config->count() > 0 ? config->as<std::string>() : "-");
  settings.emplace_back("log-level", log_level);
  settings.emplace_back("audit-log", hangup_files.audit_log.empty() ? "-" : hangup_files.audit_log);
  settings.emplace_back("http", http_address.empty() ? "-" : http_address);
  settings.emplace_back("http-token-file", http_token_file.empty() ? "-" : http_token_file);
  settings.emplace_back("etcd", cluster_flags.etcd.empty() ? "-" : cluster_flags.etcd);
  if (!cluster_flags.etcd.empty()) {
    settings.emplace_back("cluster", cluster_flags.cluster);
    settings.emplace_back("group", cluster_flags.group);
    settings.emplace_back("node", cluster_options->node);
    settings.emplace_back("replication-listen", cluster_flags.replication_listen);
    settings.emplace_back("peers", cluster_flags.peers.empty() ? "-" : cluster_flags.peers);
    settings.emplace_back("min-isr", std::to_string(cluster_flags.min_isr));
    settings.emplace_back("lease-ttl", std::to_string(cluster_flags.lease_ttl_seconds) + "s");
  }
  log->info("txmqd {} starting (pid {}) with these settings:{}", txmq::kVersion, getpid(),
            txmq::broker::SettingsBlock(settings));

  // The HTTP endpoint starts before recovery, so /healthz answers during a
  // long one while /readyz says "starting".
  std::unique_ptr<txmq::broker::http::HttpServer> http;
  if (!http_address.empty()) {
    // A client that closes its connection before reading the answer must
    // not end txmqd (cpp-httplib writes without MSG_NOSIGNAL).
    signal(SIGPIPE, SIG_IGN);
    auto started = txmq::broker::http::HttpServer::Start(http_address);
    if (!started.ok()) {
      std::cerr << "txmqd: " << started.status().message() << "\n";
      return 1;
    }
    http = std::move(started.value());
    log->info("HTTP endpoint on http://{} (/metrics, /healthz, /readyz; web console at /)",
              http->address());
    if (!txmq::broker::http::IsLoopbackHttpAddress(http_address)) {
      log->warn(
          "the HTTP endpoint on {} is reachable from other machines, with no authentication "
          "for /metrics and no TLS for the console's token (--insecure)",
          http->address());
    }
  }

  // Before the store is opened and checked, which can take long (and
  // before a cluster node's stand-by answers on the port itself).
  if (const int error = txmq::broker::ListenPortProblem(o.listen); error != 0) {
    std::cerr << "txmqd: cannot listen on " << o.listen << ": " << std::strerror(error)
              << (error == EADDRINUSE
                      ? " (another txmqd, or another program, holds it: pick another --listen "
                        "port)"
                      : "")
              << "\n";
    return 1;
  }

  // A cluster node follows until it leads; only then is there a store.
  txmq::broker::ClusterStart node;
  if (!cluster_flags.etcd.empty()) {
    int exit_code = 0;
    node = txmq::broker::StartClusterNode(
        *cluster_options, o, signals, &exit_code,
        [&](std::shared_ptr<const txmq::cluster::HealthBoard> board) {
          if (http) http->AttachCluster([board] { return board->Read(); });
        });
    if (!node.node) return exit_code;
  }
  auto broker = txmq::Broker::Start(o);
  if (!broker.ok() && broker.status().code() == txmq::StatusCode::kCorruption) {
    // Damage is its own exit code: a supervisor must not restart into it.
    std::cerr << "txmqd: the data directory " << o.data_dir
              << " is damaged; refusing to start: " << broker.status().message() << "\n";
    if (cluster_flags.etcd.empty()) {
      std::cerr << "txmqd: copy the directory aside, then start txmqd once with the same options "
                   "and --repair (README: \"A damaged data directory\")\n";
    } else {
      // --repair is for a single broker, whose store is the record. A
      // cluster node's record is its replica log, and its group's other
      // members hold every committed entry.
      std::cerr << "txmqd: a cluster node is not repaired: when its group has other members, "
                   "move this node's data directory aside and start it again; it rejoins "
                   "empty and copies the group's log from the leader (README: \"A replicated "
                   "broker group\")\n";
    }
    return 4;
  }
  if (!broker.ok()) {
    std::cerr << "txmqd: cannot start: " << broker.status().ToString() << "\n";
    return 1;
  }
  if (http) {
    http->Attach(
        [b = broker->get()](std::chrono::milliseconds timeout) { return b->Metrics(timeout); });
    // The data directory exists now (and is ours: the store holds its lock).
    auto token = http_token_file.empty() ? txmq::broker::http::WriteNewConsoleToken(o.data_dir)
                                         : txmq::broker::http::ReadConsoleToken(http_token_file);
    if (!token.ok()) {
      log->error("the web console stays closed: {}", token.status().message());
    } else {
      log->info("web console on http://{}/ ; the token it asks for is in {}", http->address(),
                token->path);
      http->AttachConsole(
          [b = broker->get()](std::string request, std::string peer,
                              std::chrono::milliseconds timeout) {
            return b->Operate(std::move(request), std::move(peer), timeout);
          },
          std::move(token.value()));
    }
  }
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << (*broker)->endpoint() << "\n"
                       << (http ? "http://" + http->address() + "\n" : "");
    std::rename(tmp.c_str(), ready_file.c_str());
  }
  // Type=notify: systemd counts txmqd as started from here.
  if (txmq::Status s =
          txmq::broker::NotifyServiceManager("READY=1\nSTATUS=serving on " + (*broker)->endpoint() +
                                             "\nMAINPID=" + std::to_string(getpid()));
      !s.ok()) {
    log->warn("could not tell the service manager txmqd is ready: {}", s.message());
  }

  txmq::Status stopped_by_itself;
  std::atomic<bool> broker_ended{false};
  std::thread watcher([&] {
    stopped_by_itself = (*broker)->Wait();
    broker_ended = true;
    kill(getpid(), SIGTERM);  // wake main, also when Stop() below ended it
  });
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP && !broker_ended) {
    OnHangup(hangup_files, **broker, *log);
  }
  if (broker_ended) {
    log->critical("the broker stopped by itself; shutting down");
  } else {
    log->info("received {}; shutting down (finishing accepted writes)",
              sig == SIGINT ? "SIGINT" : "SIGTERM");
  }
  (void)txmq::broker::NotifyServiceManager("STOPPING=1");
  // The HTTP threads go first: they ask the broker for snapshots.
  if (http) http->Stop();
  (*broker)->Stop();
  watcher.join();
  if (node.node && !node.node->failure().ok()) {
    std::cerr << "txmqd: stopped: " << node.node->failure().message() << "\n";
    return 5;
  }
  if (!stopped_by_itself.ok()) {
    std::cerr << "txmqd: stopped: " << stopped_by_itself.ToString() << "\n";
    return 3;
  }
  return 0;
}
