#include "tests/testutil/prometheus_text.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace txmq::testing {

namespace {

bool IsNameChar(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon_ok && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool ValidName(const std::string& name, bool colon_ok) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, colon_ok)) return false;
  }
  return true;
}

bool ParseValue(const std::string& text, double* out) {
  if (text == "+Inf" || text == "Inf") {
    *out = INFINITY;
    return true;
  }
  if (text == "-Inf") {
    *out = -INFINITY;
    return true;
  }
  if (text == "NaN") {
    *out = NAN;
    return true;
  }
  if (text.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// The family a sample belongs to: a histogram's _bucket, _sum and _count
// belong to its base name.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto t = types.find(base);
      if (t != types.end() && (t->second == "histogram" || t->second == "summary")) return base;
    }
  }
  return name;
}

// Parses `{a="x",b="y"}` starting at line[*pos] == '{'; false on a syntax error.
bool ParseLabels(const std::string& line, size_t* pos, std::map<std::string, std::string>* labels,
                 std::string* error) {
  size_t i = *pos + 1;
  while (i < line.size() && line[i] != '}') {
    size_t eq = line.find('=', i);
    if (eq == std::string::npos) {
      *error = "label without '='";
      return false;
    }
    const std::string name = line.substr(i, eq - i);
    if (!ValidName(name, false)) {
      *error = "bad label name '" + name + "'";
      return false;
    }
    if (eq + 1 >= line.size() || line[eq + 1] != '"') {
      *error = "label value of '" + name + "' not quoted";
      return false;
    }
    std::string value;
    i = eq + 2;
    bool closed = false;
    while (i < line.size()) {
      const char c = line[i];
      if (c == '\\') {
        if (i + 1 >= line.size()) break;
        const char n = line[i + 1];
        if (n == '\\') {
          value += '\\';
        } else if (n == '"') {
          value += '"';
        } else if (n == 'n') {
          value += '\n';
        } else {
          *error = std::string("bad escape \\") + n + " in label '" + name + "'";
          return false;
        }
        i += 2;
      } else if (c == '"') {
        closed = true;
        ++i;
        break;
      } else {
        value += c;
        ++i;
      }
    }
    if (!closed) {
      *error = "unterminated value of label '" + name + "'";
      return false;
    }
    if (!labels->emplace(name, value).second) {
      *error = "label '" + name + "' twice";
      return false;
    }
    if (i < line.size() && line[i] == ',') ++i;
  }
  if (i >= line.size()) {
    *error = "labels not closed";
    return false;
  }
  *pos = i + 1;
  return true;
}

std::string SeriesKey(const PromSample& s) {
  std::string key = s.name + "{";
  for (const auto& [k, v] : s.labels) {
    if (k == "le") continue;
    key += k + "=" + v + ",";
  }
  return key + "}";
}

void CheckHistograms(PromText& out) {
  // Per histogram series (labels without le): buckets in order, cumulative,
  // ending in +Inf, equal to _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  for (const PromSample& s : out.samples) {
    const std::string family = FamilyOf(s.name, out.types);
    if (out.types[family] != "histogram") continue;
    PromSample base = s;
    base.name = family;
    if (s.name == family + "_bucket") {
      auto le = s.labels.find("le");
      double bound = 0;
      if (le == s.labels.end() || !ParseValue(le->second, &bound)) {
        out.errors.push_back(s.name + ": bucket without a numeric le");
        continue;
      }
      buckets[SeriesKey(base)].emplace_back(bound, s.value);
    } else if (s.name == family + "_count") {
      counts[SeriesKey(base)] = s.value;
    }
  }
  for (const auto& [series, list] : buckets) {
    for (size_t i = 1; i < list.size(); ++i) {
      if (list[i].first <= list[i - 1].first || list[i].second < list[i - 1].second) {
        out.errors.push_back(series + ": buckets not increasing and cumulative");
      }
    }
    if (list.empty() || !std::isinf(list.back().first)) {
      out.errors.push_back(series + ": no +Inf bucket last");
    } else if (counts.count(series) == 0 || counts[series] != list.back().second) {
      out.errors.push_back(series + ": +Inf bucket differs from _count");
    }
  }
}

}  // namespace

std::optional<double> PromText::Value(const std::string& name,
                                      const std::map<std::string, std::string>& labels) const {
  std::optional<double> found;
  for (const PromSample& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (!match) continue;
    if (found) return std::nullopt;  // ambiguous
    found = s.value;
  }
  return found;
}

PromText ParsePromText(const std::string& text) {
  PromText out;
  std::set<std::string> helped, finished, series;
  std::string current;  // the family whose samples come now
  std::istringstream in(text);
  int number = 0;
  if (!text.empty() && text.back() != '\n') out.errors.push_back("text does not end in a newline");
  for (std::string line; std::getline(in, line);) {
    ++number;
    const std::string where = "line " + std::to_string(number) + ": ";
    if (line.empty()) continue;
    auto start_family = [&](const std::string& family) {
      if (family == current) return;
      if (!current.empty()) finished.insert(current);
      if (finished.count(family))
        out.errors.push_back(where + family + " interleaved with another family");
      current = family;
    };
    if (line[0] == '#') {
      std::istringstream words(line.substr(1));
      std::string keyword, name;
      words >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a comment
      if (!ValidName(name, true)) {
        out.errors.push_back(where + "bad metric name '" + name + "'");
        continue;
      }
      start_family(name);
      if (keyword == "TYPE") {
        std::string type;
        words >> type;
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped") {
          out.errors.push_back(where + "unknown type '" + type + "'");
        }
        if (!out.types.emplace(name, type).second)
          out.errors.push_back(where + "second TYPE of " + name);
        if (type == "counter" && !name.ends_with("_total")) {
          out.errors.push_back(where + "counter " + name + " does not end in _total");
        }
      } else if (!helped.insert(name).second) {
        out.errors.push_back(where + "second HELP of " + name);
      }
      continue;
    }
    PromSample s;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    s.name = line.substr(0, pos);
    if (!ValidName(s.name, true)) {
      out.errors.push_back(where + "bad metric name '" + s.name + "'");
      continue;
    }
    std::string error;
    if (pos < line.size() && line[pos] == '{' && !ParseLabels(line, &pos, &s.labels, &error)) {
      out.errors.push_back(where + error);
      continue;
    }
    if (pos >= line.size() || line[pos] != ' ') {
      out.errors.push_back(where + "no space before the value");
      continue;
    }
    std::istringstream rest(line.substr(pos + 1));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (!ParseValue(value, &s.value)) out.errors.push_back(where + "bad value '" + value + "'");
    if (!timestamp.empty() && timestamp.find_first_not_of("-0123456789") != std::string::npos) {
      out.errors.push_back(where + "bad timestamp '" + timestamp + "'");
    }
    if (!extra.empty()) out.errors.push_back(where + "text after the value");
    const std::string family = FamilyOf(s.name, out.types);
    if (out.types.count(family) == 0)
      out.errors.push_back(where + s.name + " has no TYPE before it");
    start_family(family);
    std::string key = s.name + "{";
    for (const auto& [k, v] : s.labels) key += k + "=" + v + ",";
    if (!series.insert(key).second) out.errors.push_back(where + "series " + key + "} twice");
    out.samples.push_back(std::move(s));
  }
  CheckHistograms(out);
  return out;
}

}  // namespace txmq::testing
