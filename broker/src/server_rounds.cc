// How the server finishes a written round: on a single node its
// completions run at once; on a cluster leader the round, handed to
// replication when it was sealed, completes once committed (DESIGN.md
// "Wiring into txmqd: the decisions"), and committed rounds are marked in
// the store (leader_mark.h). Core thread.
#include "broker/src/replicated_round.h"
#include "broker/src/server.h"
#include "protocol/src/log.h"

namespace txmq::broker {

void Server::HandToReplicationWhenSealed() {
  if (options_.replicator == nullptr) return;
  // The store writes it only once the replica log holds it, so that a
  // leader killed at any instant has a store that is a prefix of its log
  // (page cache included: kill -9 takes neither), which its next start
  // continues instead of building a store from the whole log
  // (standby_store.h). The store's own write is not synced on a cluster
  // node, so waiting for the log's append costs the round little: its
  // acknowledgement waits for the log's sync anyway.
  sealed_ = [this](storage::Round& round) {
    RoundReplicator* replicator = options_.replicator;
    const uint64_t ticket = replicator->Replicate(EncodeReplicatedRound(
        round.entry().time_ms, round.records(), round.ops_record(), round.entry().position));
    sealed_tickets_.emplace_back(&round, ticket);
    round.set_before_write([replicator, ticket] { return replicator->WaitAppended(ticket); });
  };
}

void Server::FinishRound(std::unique_ptr<storage::Round> round) {
  std::optional<uint64_t> ticket;
  if (!sealed_tickets_.empty() && sealed_tickets_.front().first == round.get()) {
    ticket = sealed_tickets_.front().second;
    sealed_tickets_.pop_front();
  }
  const Status lost =
      options_.replicator != nullptr ? options_.replicator->failure() : Status::OK();
  // Not written because replication failed (this node stopped leading):
  // the store holds no round its log lacks. It fails in its turn, after
  // the rounds before it, and CompleteReplicated stops the broker, saying
  // why.
  const bool refused = !lost.ok() && round->status().code() == lost.code() &&
                       round->status().message() == lost.message();
  if (!round->status().ok() && !refused) {
    core_.SetStorageFailed(round->status());
    // RESOURCE_EXHAUSTED: storage waited a minute for a file descriptor.
    const bool descriptors = round->status().code() == StatusCode::kResourceExhausted;
    Logger("broker")->critical(
        "storage write failed: {}. The broker refuses writes from now on; {} and restart it "
        "(acknowledged data is safe)",
        round->status().ToString(),
        descriptors ? "find what holds the file descriptors (raise ulimit -n)" : "fix the disk");
  }
  if (options_.replicator != nullptr && (round->status().ok() || refused)) {
    if (ticket) last_ticket_ = *ticket;
    // Completions alone wait for the round before them.
    replicating_.push_back({last_ticket_, std::move(round)});
    return CompleteReplicated();
  }
  round->Complete();
  delivery_.OnTopicsAdvanced(topics_.TakeAdvanced());
}

void Server::CompleteReplicated() {
  const uint64_t committed = options_.replicator->committed();
  const Status lost = options_.replicator->failure();
  if (lost.ok() && (replicating_.empty() || replicating_.front().ticket > committed)) return;
  while (!replicating_.empty() && (replicating_.front().ticket <= committed || !lost.ok())) {
    Replicating r = std::move(replicating_.front());
    replicating_.pop_front();
    // Not committed here; it may still commit under the next leader, so
    // the client retries (same message id) rather than gives up.
    if (!r.round->status().ok()) {
      // Refused unwritten (FinishRound): it fails with that, whatever
      // committed (a round without its own ticket carries the one before).
    } else if (r.ticket > committed) {
      r.round->set_status(Status::Unavailable(lost.message()));
    } else if (!r.round->writes_nothing()) {
      leader_mark_.Committed(*r.round, r.ticket);
    }
    r.round->Complete();
  }
  leader_mark_.MaybeWrite(*store_, *options_.replicator);
  if (!lost.ok() && !core_.storage_failed()) {
    core_.SetStorageFailed(lost);
    Logger("broker")->critical("{}; stopping (this node's rounds since may never commit)",
                               lost.message());
  }
  delivery_.OnTopicsAdvanced(topics_.TakeAdvanced());
}

void Server::DrainReplicated() {
  if (options_.replicator == nullptr) return;
  const SteadyTime deadline = SteadyClock::now() + std::chrono::seconds(5);
  while (!replicating_.empty() && options_.replicator->failure().ok() &&
         SteadyClock::now() < deadline) {
    zmq::pollitem_t item{nullptr, options_.replicator->event().fd(), ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
    } catch (const zmq::error_t&) {
    }
    options_.replicator->event().Drain();
    CompleteReplicated();
  }
  for (Replicating& r : replicating_) {
    r.round->set_status(Status::Unavailable("the broker stopped before the round was replicated"));
    r.round->Complete();
  }
  replicating_.clear();
}

}  // namespace txmq::broker
