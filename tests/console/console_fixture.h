// Shared by the web console's tests: a real txmqd with --http and an audit
// log, its console token, and HTTP requests to it as a browser, a script
// or an attacker would send them.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"

namespace txmq {

struct HttpAnswer {
  int status = -1;  // -1: no answer
  std::string body;
  httplib::Headers headers;

  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string Error() const {
    auto j = Json();
    return j.is_object() && j.contains("error") ? j["error"].get<std::string>() : body;
  }
  bool Has(const std::string& header) const { return headers.count(header) != 0; }
};

class ConsoleTest : public ::testing::Test {
 protected:
  // Checks fast enough that a half nobody answers for is stuck within a
  // second or two.
  static std::vector<std::string> BrokerArgs() {
    return {"--http",           "127.0.0.1:0", "--transaction-timeout", "200ms",
            "--check-interval", "100ms",       "--check-interval-max",  "200ms",
            "--check-max",      "2",           "--check-timeout",       "300ms",
            "--queues",         "1",           "--client-timeout",      "1s"};
  }

  void SetUp() override {
    auto args = BrokerArgs();
    args.insert(args.end(), {"--audit-log", dir_.Sub("audit.log")});
    broker_ = std::make_unique<testing::BrokerProcess>(dir_.Sub("data"), args);
    ASSERT_TRUE(broker_->Start());
    token_ = testing::SplitLines(testing::ReadFile(dir_.Sub("data/http-token"))).at(0);
    admin_ = std::make_unique<testing::AdminClient>(broker_->endpoint());
  }

  // One request; `headers` on top of a Host of the bound address.
  HttpAnswer Request(const std::string& method, const std::string& path,
                     httplib::Headers headers = {}, const std::string& body = "",
                     const std::string& content_type = "") {
    httplib::Client client(broker_->http_endpoint());
    client.set_connection_timeout(5);
    client.set_read_timeout(15);
    httplib::Result r = method == "GET"    ? client.Get(path, headers)
                        : method == "POST" ? client.Post(path, headers, body, content_type)
                                           : client.Options(path, headers);
    if (!r) return {};
    return {r->status, r->body, r->headers};
  }

  httplib::Headers Bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
  }
  HttpAnswer Get(const std::string& path) { return Request("GET", path, Bearer(token_)); }
  HttpAnswer Post(const std::string& path, const nlohmann::json& body) {
    return Request("POST", path, Bearer(token_), body.dump(), "application/json");
  }

  // The audit lines written so far that contain every one of `parts`.
  std::vector<std::string> AuditLines(const std::vector<std::string>& parts) {
    std::vector<std::string> out;
    for (const std::string& line : testing::SplitLines(testing::ReadFile(dir_.Sub("audit.log")))) {
      bool all = true;
      for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
      if (all) out.push_back(line);
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::BrokerProcess> broker_;
  std::unique_ptr<testing::AdminClient> admin_;
  std::string token_;
};

}  // namespace txmq
