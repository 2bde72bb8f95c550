#include "broker/src/http/metrics_text.h"

#include <charconv>
#include <cmath>

namespace txmq::broker::http {

namespace {

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];  // fixed notation of any double fits
  // Fixed notation: "0.0001", not "1e-04", for bucket bounds people read.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

// HELP text: backslash and line feed escaped.
std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Exposition::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += EscapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::Head(std::string_view name, const Labels& labels) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_ += ',';
      out_ += labels[i].first;
      out_ += "=\"";
      out_ += EscapeLabelValue(labels[i].second);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
}

void Exposition::Sample(std::string_view name, const Labels& labels, uint64_t value) {
  Head(name, labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void Exposition::Sample(std::string_view name, const Labels& labels, double value) {
  Head(name, labels);
  out_ += FormatDouble(value);
  out_ += '\n';
}

void Exposition::Histogram(std::string_view name, const Labels& labels,
                           const storage::LatencyHistogram& h) {
  const std::string base(name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    Labels with_le = labels;
    with_le.emplace_back("le", i < storage::kLatencyBucketsMicros.size()
                                   ? FormatDouble(storage::kLatencyBucketsMicros[i] / 1e6)
                                   : "+Inf");
    Sample(base + "_bucket", with_le, cumulative);
  }
  Sample(base + "_sum", labels, static_cast<double>(h.sum_micros) / 1e6);
  Sample(base + "_count", labels, cumulative);
}

namespace {

void RenderBroker(Exposition& e, const MetricsSnapshot& s) {
  using L = Exposition::Labels;

  e.Family("txmq_build_info", "gauge", "Always 1; the labels name the broker and its version.");
  e.Sample("txmq_build_info", L{{"broker", s.broker_name}, {"version", s.version}}, uint64_t{1});
  e.Family("txmq_uptime_seconds", "gauge", "Time since the broker started serving.");
  e.Sample("txmq_uptime_seconds", {}, Seconds(s.uptime_ms));

  // ---- per topic and queue ----
  auto queue_labels = [](const QueueMetrics& q) {
    return L{{"topic", q.topic}, {"queue", std::to_string(q.queue)}};
  };
  e.Family("txmq_queue_messages_in_total", "counter",
           "Messages stored in the queue and visible to consumers, ever (its end offset).");
  for (const auto& q : s.queues)
    e.Sample("txmq_queue_messages_in_total", queue_labels(q), q.messages_in);
  e.Family("txmq_queue_bytes_in_total", "counter",
           "Message body bytes appended to the queue since the broker started.");
  for (const auto& q : s.queues) e.Sample("txmq_queue_bytes_in_total", queue_labels(q), q.bytes_in);
  e.Family("txmq_queue_backlog_messages", "gauge",
           "Messages the queue stores (retention has not deleted them yet).");
  for (const auto& q : s.queues)
    e.Sample("txmq_queue_backlog_messages", queue_labels(q), q.backlog);
  e.Family("txmq_queue_oldest_message_age_seconds", "gauge",
           "Age of the oldest message the queue stores; absent when it stores none.");
  for (const auto& q : s.queues) {
    if (q.oldest_age_ms >= 0) {
      e.Sample("txmq_queue_oldest_message_age_seconds", queue_labels(q), Seconds(q.oldest_age_ms));
    }
  }
  e.Family("txmq_queue_oldest_unconsumed_age_seconds", "gauge",
           "Age of the oldest message of the queue that a consumer group reading the topic has "
           "not finished; absent when every such group is done with what is stored.");
  for (const auto& q : s.queues) {
    if (q.oldest_unconsumed_age_ms >= 0) {
      e.Sample("txmq_queue_oldest_unconsumed_age_seconds", queue_labels(q),
               Seconds(q.oldest_unconsumed_age_ms));
    }
  }

  // ---- per consumer group ----
  e.Family("txmq_group_lag_messages", "gauge",
           "Stored messages of the topic the consumer group has not finished (acked or "
           "dead-lettered).");
  for (const auto& g : s.groups) {
    for (const auto& t : g.topics) {
      e.Sample("txmq_group_lag_messages", L{{"group", g.name}, {"topic", t.topic}}, t.lag);
    }
  }
  e.Family("txmq_group_in_flight_leases", "gauge",
           "Messages delivered to the group's consumers and not yet acked, nacked or expired.");
  for (const auto& g : s.groups)
    e.Sample("txmq_group_in_flight_leases", L{{"group", g.name}}, g.in_flight);
  e.Family("txmq_group_redeliveries_scheduled", "gauge",
           "Messages of the group waiting for (or in) a redelivery.");
  for (const auto& g : s.groups) {
    e.Sample("txmq_group_redeliveries_scheduled", L{{"group", g.name}}, g.redeliveries_scheduled);
  }
  e.Family("txmq_group_dead_letters_total", "counter",
           "Messages moved to the group's dead-letter queue since the broker started.");
  for (const auto& g : s.groups)
    e.Sample("txmq_group_dead_letters_total", L{{"group", g.name}}, g.dead_lettered);
  e.Family("txmq_group_expired_unconsumed_total", "counter",
           "Messages retention deleted before the group received them, since the broker started.");
  for (const auto& g : s.groups) {
    e.Sample("txmq_group_expired_unconsumed_total", L{{"group", g.name}}, g.expired);
  }

  // ---- per producer group (transactions) ----
  e.Family("txmq_producer_group_open_transactions", "gauge",
           "Prepared transactions of the producer group with no outcome yet.");
  for (const auto& p : s.producer_groups) {
    e.Sample("txmq_producer_group_open_transactions", L{{"group", p.name}}, p.open);
  }
  e.Family("txmq_producer_group_stuck_transactions", "gauge",
           "Open transactions of the producer group that used up their checks (operators decide).");
  for (const auto& p : s.producer_groups) {
    e.Sample("txmq_producer_group_stuck_transactions", L{{"group", p.name}}, p.stuck);
  }
  e.Family("txmq_producer_group_transactions_committed_total", "counter",
           "Transactions of the producer group committed since the broker started.");
  for (const auto& p : s.producer_groups) {
    e.Sample("txmq_producer_group_transactions_committed_total", L{{"group", p.name}}, p.committed);
  }
  e.Family("txmq_producer_group_transactions_rolled_back_total", "counter",
           "Transactions of the producer group rolled back since the broker started.");
  for (const auto& p : s.producer_groups) {
    e.Sample("txmq_producer_group_transactions_rolled_back_total", L{{"group", p.name}},
             p.rolled_back);
  }
  e.Family("txmq_producer_group_checks_sent_total", "counter",
           "Transaction checks sent to the producer group's producers since the broker started.");
  for (const auto& p : s.producer_groups) {
    e.Sample("txmq_producer_group_checks_sent_total", L{{"group", p.name}}, p.checks_sent);
  }
  e.Family("txmq_producer_group_check_answers_total", "counter",
           "What transaction checks of the producer group came to, by answer, since the broker "
           "started.");
  for (const auto& p : s.producer_groups) {
    for (size_t a = 1; a < kCheckAnswerNames.size(); ++a) {
      e.Sample("txmq_producer_group_check_answers_total",
               L{{"group", p.name}, {"answer", kCheckAnswerNames[a]}}, p.answers[a]);
    }
  }
  e.Family("txmq_producer_group_check_seconds", "histogram",
           "From a transaction check sent to the producer's answer to it, since the broker "
           "started.");
  for (const auto& p : s.producer_groups) {
    e.Histogram("txmq_producer_group_check_seconds", L{{"group", p.name}}, p.check_latency);
  }

  // ---- broker-wide counters ----
  const BrokerCounters& c = s.counters;
  const std::pair<const char*, std::pair<uint64_t, const char*>> counters[] = {
      {"txmq_messages_stored_total", {c.messages_stored, "Messages stored."}},
      {"txmq_duplicate_sends_total",
       {c.duplicates, "Sends answered from the dedup window and not stored again."}},
      {"txmq_messages_delivered_total", {c.delivered, "Messages delivered to consumers."}},
      {"txmq_messages_acked_total", {c.acked, "Deliveries acknowledged."}},
      {"txmq_redeliveries_scheduled_total", {c.redeliveries_scheduled, "Redeliveries scheduled."}},
      {"txmq_dead_letters_total", {c.dead_lettered, "Messages moved to a dead-letter queue."}},
      {"txmq_expired_unconsumed_total",
       {c.expired_unconsumed,
        "Messages retention deleted before a group reading them received them, once per group."}},
      {"txmq_half_messages_stored_total", {c.halves_stored, "Transactional half messages stored."}},
      {"txmq_bad_frames_total", {c.bad_frames, "Requests that could not be decoded or served."}},
      {"txmq_dropped_replies_total",
       {c.dropped_replies, "Replies dropped: the client was gone or its queue full."}},
  };
  for (const auto& [name, value] : counters) {
    e.Family(name, "counter", std::string(value.second) + " Since the broker started.");
    e.Sample(name, {}, value.first);
  }

  // ---- clients ----
  e.Family("txmq_clients_connected", "gauge", "Clients registered (said hello), by role.");
  e.Sample("txmq_clients_connected", L{{"role", "producer"}}, s.producers);
  e.Sample("txmq_clients_connected", L{{"role", "consumer"}}, s.consumers);
  e.Sample("txmq_clients_connected", L{{"role", "admin"}}, s.admins);

  // ---- storage ----
  const StorageMetrics& st = s.storage;
  e.Family("txmq_storage_rounds_total", "counter",
           "Commit rounds written (one write and, with --flush sync, one fsync each).");
  e.Sample("txmq_storage_rounds_total", {}, st.rounds);
  e.Family("txmq_storage_round_requests_total", "counter",
           "Requests made durable by those rounds (divide by rounds: requests per round).");
  e.Sample("txmq_storage_round_requests_total", {}, st.completions);
  e.Family("txmq_storage_written_bytes_total", "counter", "Bytes written to the commit log.");
  e.Sample("txmq_storage_written_bytes_total", {}, st.bytes_written);
  e.Family("txmq_storage_checkpoints_total", "counter", "Index checkpoints taken.");
  e.Sample("txmq_storage_checkpoints_total", {}, st.checkpoints);
  e.Family("txmq_storage_damaged_records_total", "counter",
           "Stored records found failing their checksum.");
  e.Sample("txmq_storage_damaged_records_total", {}, st.damaged_records);
  e.Family("txmq_storage_round_write_seconds", "histogram",
           "Time to write a commit round: write, fsync and index update.");
  e.Histogram("txmq_storage_round_write_seconds", {}, st.round_write);
  e.Family("txmq_storage_fsync_seconds", "histogram",
           "Time of each fdatasync of the commit log (--flush sync).");
  e.Histogram("txmq_storage_fsync_seconds", {}, st.fsync);
  e.Family("txmq_storage_disk_free_bytes", "gauge",
           "Free space on the data directory's file system (estimate between reads).");
  e.Sample("txmq_storage_disk_free_bytes", {}, st.disk_free_bytes);
  e.Family("txmq_storage_min_free_disk_bytes", "gauge",
           "The disk watermark (--min-free-disk); 0: not checked.");
  e.Sample("txmq_storage_min_free_disk_bytes", {}, st.min_free_disk_bytes);
  e.Family("txmq_storage_disk_low", "gauge",
           "1 while free space is below the watermark and new messages are refused.");
  e.Sample("txmq_storage_disk_low", {}, uint64_t{st.disk_low});
  e.Family("txmq_storage_healthy", "gauge", "0 once a storage write failed (the broker stops).");
  e.Sample("txmq_storage_healthy", {}, uint64_t{!st.failed});

  // ---- limits ----
  e.Family("txmq_limit_value", "gauge",
           "Each limit's value, labelled by the txmqd flag that sets it.");
  for (const auto& l : s.limits) e.Sample("txmq_limit_value", L{{"limit", l.name}}, l.limit);
  e.Family("txmq_limit_used", "gauge",
           "What each limit counts now (for a per-client limit: the largest client's use).");
  for (const auto& l : s.limits) e.Sample("txmq_limit_used", L{{"limit", l.name}}, l.used);
  e.Family("txmq_limit_refused_total", "counter",
           "Requests refused (or replies dropped) by each limit since the broker started.");
  for (const auto& l : s.limits)
    e.Sample("txmq_limit_refused_total", L{{"limit", l.name}}, l.refused);
}

// The leader's view of each follower (only the leader has one: followers
// do not hear from each other), so an alert can name the replica that
// stopped answering or fell behind before the ISR shrinks.
void RenderReplicas(Exposition& e, const cluster::ClusterHealth& c) {
  using L = Exposition::Labels;
  if (!c.leading) return;
  std::vector<const cluster::ReplicaHealth*> followers;
  for (const auto& r : c.replicas) {
    if (r.node != c.node && r.progress_known) followers.push_back(&r);
  }
  auto labels = [&](const cluster::ReplicaHealth& r) {
    return L{{"group", c.group}, {"node", c.node}, {"replica", r.node}};
  };
  e.Family("txmq_replica_match_index", "gauge",
           "Leader only: the highest entry each follower has fsynced and matches the leader's "
           "log.");
  for (const auto* r : followers) e.Sample("txmq_replica_match_index", labels(*r), r->log_index);
  e.Family("txmq_replica_lag_entries", "gauge",
           "Leader only: entries the leader has that each follower has not confirmed.");
  for (const auto* r : followers) e.Sample("txmq_replica_lag_entries", labels(*r), r->lag_entries);
  e.Family("txmq_replica_in_isr", "gauge", "Leader only: 1 while the follower is in the ISR.");
  for (const auto* r : followers) e.Sample("txmq_replica_in_isr", labels(*r), uint64_t{r->in_isr});
  e.Family("txmq_replica_last_contact_seconds", "gauge",
           "Leader only: seconds since each follower last answered (absent: not in this epoch).");
  for (const auto* r : followers) {
    if (r->last_contact_ms >= 0) {
      e.Sample("txmq_replica_last_contact_seconds", labels(*r), Seconds(r->last_contact_ms));
    }
  }
}

// A member of a replicated group: its view of the group, so an alert can
// fire on a shrunken ISR or a follower that stopped catching up.
void RenderCluster(Exposition& e, const cluster::ClusterHealth& c) {
  using L = Exposition::Labels;
  const L group{{"group", c.group}, {"node", c.node}};
  e.Family("txmq_cluster_epoch", "gauge",
           "The replication group's epoch as this node last read or won it (0: none seen).");
  e.Sample("txmq_cluster_epoch", group, static_cast<uint64_t>(c.epoch < 0 ? 0 : c.epoch));
  e.Family("txmq_cluster_leader", "gauge", "1 while this node leads its group.");
  e.Sample("txmq_cluster_leader", group, uint64_t{c.leading});
  e.Family("txmq_cluster_in_isr", "gauge",
           "1 while this node is in its group's in-sync replica set (holds every acknowledged "
           "entry).");
  e.Sample("txmq_cluster_in_isr", group, uint64_t{c.InIsr()});
  e.Family("txmq_cluster_isr_size", "gauge", "Members of the group's in-sync replica set.");
  e.Sample("txmq_cluster_isr_size", group, static_cast<uint64_t>(c.isr.size()));
  e.Family("txmq_cluster_min_isr", "gauge",
           "--min-isr: the ISR size below which the leader acknowledges nothing.");
  e.Sample("txmq_cluster_min_isr", group, static_cast<uint64_t>(c.min_isr));
  e.Family("txmq_cluster_log_last_index", "gauge", "The index of this node's last replica entry.");
  e.Sample("txmq_cluster_log_last_index", group, c.last_index);
  e.Family("txmq_cluster_log_bytes", "gauge",
           "Bytes of this node's replica log files. The log keeps every entry its group ever "
           "wrote (it is not truncated yet): plan the disk for it and alert on its growth.");
  e.Sample("txmq_cluster_log_bytes", group, c.log_bytes);
  e.Family("txmq_cluster_commit_index", "gauge",
           "Leader only: the highest replica entry every ISR member has fsynced.");
  if (c.leading) e.Sample("txmq_cluster_commit_index", group, c.commit_index);
  e.Family("txmq_cluster_follower_commit_index", "gauge",
           "Follower only: the highest replica entry it has learned is committed.");
  if (!c.leading) e.Sample("txmq_cluster_follower_commit_index", group, c.follower_commit);
  e.Family("txmq_cluster_store_applied_index", "gauge",
           "Follower only: the replica entries the store it keeps holds; were it elected now, it "
           "would replay the committed entries after this before serving.");
  if (!c.leading) e.Sample("txmq_cluster_store_applied_index", group, c.store_applied);
  e.Family("txmq_cluster_coordinator_reachable", "gauge",
           "1 when the last lease tick reached etcd.");
  e.Sample("txmq_cluster_coordinator_reachable", group, uint64_t{c.coordinator_error.empty()});
  RenderReplicas(e, c);
}

void RenderProcess(Exposition& e, const ProcessStats& process) {
  if (process.ok) {
    e.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    e.Sample("process_resident_memory_bytes", {}, process.resident_bytes);
    e.Family("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
    e.Sample("process_cpu_seconds_total", {}, process.cpu_seconds);
    e.Family("process_open_fds", "gauge", "Open file descriptors.");
    e.Sample("process_open_fds", {}, process.open_fds);
    e.Family("process_max_fds", "gauge", "The limit of open file descriptors (soft).");
    e.Sample("process_max_fds", {}, process.max_fds);
    e.Family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
    e.Sample("process_start_time_seconds", {}, process.start_time_seconds);
  }
}

}  // namespace

std::string RenderMetrics(const MetricsSnapshot* snapshot, const cluster::ClusterHealth* cluster,
                          const ProcessStats& process) {
  Exposition e;
  if (snapshot != nullptr) RenderBroker(e, *snapshot);
  if (cluster != nullptr) RenderCluster(e, *cluster);
  RenderProcess(e, process);
  return e.text();
}

}  // namespace txmq::broker::http
