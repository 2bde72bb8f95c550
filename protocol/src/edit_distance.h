// Edit distance and "did you mean" for names a user typed: txmqd's config
// keys, txmqctl's commands.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace txmq {

// Levenshtein distance (insert, delete, substitute: 1 each).
inline size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate nearest to `typed` if it is close enough to be a typo
// (at most a third of its length, at least 2, away); "" otherwise.
inline std::string Nearest(const std::string& typed, const std::vector<std::string>& candidates) {
  std::string nearest;
  size_t best = std::max<size_t>(2, typed.size() / 3) + 1;
  for (const std::string& c : candidates) {
    if (const size_t d = EditDistance(typed, c); d < best) best = d, nearest = c;
  }
  return nearest;
}

}  // namespace txmq
