// Which broker of a replicated group a client's connection talks to, and
// when it may send again: the decisions only, without sockets or clocks of
// its own, so they are unit-tested alone (Connection does the moving).
//
// Rules:
// - Start at the first bootstrap URL.
// - NOT_LEADER naming a leader: go there at once, unless that URL failed
//   (refused a connection, or left a call unanswered) within the last
//   `refused_memory` while it was already the leader named (a dead leader
//   that etcd still names while the election runs): then as without a
//   name. A newly named leader is followed even if it failed just before:
//   a node refuses for a moment while it turns from standby to leader;
//   named in place of another, also if it refuses within
//   `leader_start_grace` after (its store is being rebuilt).
// - NOT_LEADER naming nobody (an election runs), or the link to the
//   current broker failed: go to the next bootstrap URL, and send nothing
//   before `hold_until()`, a backoff doubling from `min_backoff` to
//   `max_backoff`, reset once a broker serves a call. The next URL is the
//   first in turn that did not fail lately; if all did, one that refused
//   a connection within `refused_memory` (cheap to try again) before one
//   that hung a call or a connection within `slow_memory` (a paused or
//   cut-off node costs a whole timeout each try; while its group elects
//   another leader, the others' refusals mean they are about to serve). With one bootstrap
//   URL and no leader named, stay (a single broker restarts in place).
// - NOT_LEADER naming the broker that answered (elected, not serving yet):
//   stay, and ask again after the backoff.
// - A call the current broker left unanswered until its deadline, or
//   answered UNAVAILABLE (paused, stepping down, its storage failed): with
//   more than one bootstrap URL, as when its link failed; with one, stay
//   (nothing changes: a single broker is waited for, as ever).
//
// Thread safety: none; the connection's I/O thread owns it.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "protocol/src/util.h"

namespace txmq::net {

class BrokerPicker {
 public:
  struct Options {
    std::chrono::milliseconds min_backoff{50};
    std::chrono::milliseconds max_backoff{1000};
    std::chrono::milliseconds refused_memory{2000};
    std::chrono::milliseconds slow_memory{5000};
    // How long a leader named in place of another may refuse and still be
    // followed when named again (it is opening its store).
    std::chrono::milliseconds leader_start_grace{2000};
  };

  // `bootstrap` is non-empty (ParseBrokerList).
  explicit BrokerPicker(std::vector<std::string> bootstrap) : BrokerPicker(bootstrap, Options{}) {}
  BrokerPicker(std::vector<std::string> bootstrap, Options options);

  const std::string& current() const { return current_; }
  const std::vector<std::string>& bootstrap() const { return bootstrap_; }
  SteadyTime hold_until() const { return hold_until_; }

  // The current broker answered NOT_LEADER naming `leader` ("" for
  // nobody). The URL to move to, or "" to stay.
  std::string OnNotLeader(const std::string& leader, SteadyTime now);
  // The link to the current broker failed: refused, or (`slow`) no
  // connection for long. The URL to move to, or "" to stay.
  std::string OnLinkDown(SteadyTime now, bool slow = false);
  // The current broker left a call unanswered until its deadline, or
  // answered UNAVAILABLE. The URL to move to, or "" to stay (one bootstrap
  // URL: nothing else is tried).
  std::string OnSilent(SteadyTime now);
  // A broker answered a call with something other than NOT_LEADER or
  // UNAVAILABLE.
  void OnServed();

 private:
  struct Failure {
    SteadyTime when{};
    bool slow = false;  // hung until a timeout, rather than refused at once
  };
  std::string Next(SteadyTime now);
  bool RefusedLately(const std::string& url, SteadyTime now) const;
  // 0: no failure lately; 1: refused lately; 2: hung lately (Next's order).
  int FailureRank(const std::string& url, SteadyTime now) const;
  void Hold(SteadyTime now);

  const std::vector<std::string> bootstrap_;
  const Options options_;
  std::string current_;
  size_t next_ = 1;  // bootstrap index tried on the next rotation
  std::chrono::milliseconds backoff_;
  SteadyTime hold_until_{};
  std::map<std::string, Failure> refused_;  // URL -> how it last failed
  std::string named_;                       // the last leader a NOT_LEADER named ("" before any)
  SteadyTime named_since_{};                // since when named_ is named
};

}  // namespace txmq::net
