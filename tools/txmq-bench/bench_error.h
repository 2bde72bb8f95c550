// The one error type of txmq-bench: a failed run, reported by main() as one
// line on stderr with exit code 1.
#pragma once

#include <stdexcept>
#include <string>

namespace txmq::bench {

class BenchError : public std::runtime_error {
 public:
  explicit BenchError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace txmq::bench
