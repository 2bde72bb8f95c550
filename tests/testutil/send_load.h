// Load for crash and power-loss tests: producer threads that send until
// stopped, each message with its own id (resent under that id until it is
// acknowledged), remembering which sends were acknowledged; and the check
// that compares that with what a consumer finds afterwards.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace txmq::testing {

class SendLoad {
 public:
  SendLoad(const std::string& endpoint, int producers, const std::string& topic);
  ~SendLoad();
  SendLoad(const SendLoad&) = delete;
  SendLoad& operator=(const SendLoad&) = delete;

  // Stops sending; sends still in flight end (acknowledged or not).
  void Stop();
  std::set<std::string> acked();
  size_t acked_count();

 private:
  void Run(int producer);

  std::string endpoint_, topic_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::set<std::string> acked_;  // guarded by mu_
};

// Every acknowledged id was delivered, and no id was delivered more than
// once (`seen`: deliveries per id to one fresh group that acknowledged
// each: a second delivery means a second stored copy). Records the counts
// as test properties and prints them.
void ExpectEveryAckedOnceAndNoneTwice(const std::set<std::string>& acked,
                                      const std::map<std::string, int>& seen);

}  // namespace txmq::testing
