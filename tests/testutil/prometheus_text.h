// A checker of the Prometheus text exposition format (0.0.4), strict
// enough to catch what a scraper would reject or misread, and a lookup of
// samples by name and labels for exact checks.
//
// Checked: every line is a comment (# HELP / # TYPE / other), blank, or a
// sample `name{label="value",...} value [timestamp]`; names and label names
// are valid; label values use only the escapes \\ \" \n; TYPE and HELP come
// at most once per family and before its samples; a family's samples are
// not interleaved with another's; every sample belongs to a TYPEd family;
// counters end in _total; a series appears once; histogram buckets carry
// `le`, are cumulative, and end in +Inf equal to _count.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace txmq::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromText {
  std::vector<std::string> errors;  // empty: the text is valid
  std::vector<PromSample> samples;
  std::map<std::string, std::string> types;  // family -> counter, gauge, ...

  // The value of the one sample named `name` whose labels include
  // `labels`; nullopt when there is none (or more than one).
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
};

PromText ParsePromText(const std::string& text);

}  // namespace txmq::testing
