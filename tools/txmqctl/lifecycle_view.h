// What the lifecycle verbs (cmd_lifecycle.cc) send and print: the request
// with the global flags filled in, the --to forms of group reset, and each
// verb's report, for people and (--json) for scripts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tools/txmqctl/ctl.h"

namespace txmq::ctl {

// One lifecycle request as --operator; `fill` sets the verb.
Result<wire::Frame> CallLifecycle(Ctl& ctl, bool dry_run, bool force,
                                  const std::function<void(wire::LifecycleRequest::Builder)>& fill);

// group reset --to: earliest, latest, a UTC time "2026-01-31T12:00:00Z"
// (fractions of a second allowed), "now-DURATION" (against `now_ms`), or
// "Q:OFFSET[,Q:OFFSET...]". INVALID_ARGUMENT names the value and the forms.
struct ResetTarget {
  wire::ResetTarget to = wire::ResetTarget::EARLIEST;
  int64_t time_ms = 0;
  std::vector<std::pair<uint32_t, uint64_t>> offsets;
};
Result<ResetTarget> ParseResetTarget(const std::string& text, int64_t now_ms);
// A point in time as operators write it: "2026-01-31T12:00:00Z" (UTC, ms
// optional) or "now-30m"; epoch ms, or nullopt when it is neither.
std::optional<int64_t> ParseTimeArg(const std::string& text, int64_t now_ms);

// One broker group's topic deletion report: as JSON fields (messages,
// queues, groups, delayed, live_consumers), in words (a dry run with its
// tables); PrintTopicDeletion prints either, with the other groups whose
// part stays.
nlohmann::json TopicDeletionJson(wire::TopicDeletion::Reader d);
void PrintTopicDeletionText(wire::TopicDeletion::Reader d, bool dry_run);
void PrintTopicDeletion(Ctl& ctl, wire::TopicDeletion::Reader d, bool dry_run);

// txmqctl topic delete without --broker-group in a cluster (of one broker
// group or more; cluster_topic_delete.cc): `first` is the answer of
// --broker's own group `home` to the deletion, `others` those of the other
// groups (OtherBrokerGroups); once no group holds a part, this deletes the
// topic's placement. Prints the outcome of each; returns the exit code.
int DeleteTopicInEveryGroup(Ctl& ctl, const std::string& topic, bool dry_run, bool force,
                            const std::string& home, Result<wire::Frame> first,
                            std::vector<BrokerGroupView> others);
void PrintGroupDeletion(Ctl& ctl, wire::GroupDeletion::Reader d, bool dry_run);
void PrintGroupReset(Ctl& ctl, wire::GroupResetResult::Reader r, bool dry_run,
                     const std::string& to);
void PrintDlqPurge(Ctl& ctl, wire::DlqPurgeResult::Reader p, bool dry_run);

}  // namespace txmq::ctl
