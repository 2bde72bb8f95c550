#include "tools/txmq-bench/curve_setup.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "protocol/src/curve_keys.h"
#include "tools/txmq-bench/bench_error.h"

namespace txmq::bench {

namespace fs = std::filesystem;

CurveSetup::CurveSetup() {
  std::string pattern = (fs::temp_directory_path() / "txmq-bench-keys-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw BenchError("cannot create a temporary directory for keys: " + pattern);
  }
  dir_ = pattern;
  broker_key_ = dir_ + "/broker.key";
  server_pub_ = dir_ + "/broker.pub";
  client_key_ = dir_ + "/bench.key";
  acl_ = dir_ + "/acl.json";
  auto broker = curve::NewKeyPair();
  auto client = curve::NewKeyPair();
  if (!broker.ok() || !client.ok()) {
    fs::remove_all(dir_);
    throw BenchError("cannot make CURVE keys: " +
                     (broker.ok() ? client.status() : broker.status()).ToString());
  }
  for (auto [name, pair] : {std::pair{"broker", &*broker}, {"bench", &*client}}) {
    if (Status s = curve::WriteKeyPair(dir_ + "/" + name, *pair); !s.ok()) {
      fs::remove_all(dir_);
      throw BenchError("cannot write CURVE keys: " + s.ToString());
    }
  }
  const nlohmann::json acl = {{"principals",
                               {{"bench",
                                 {{"public_key", client->public_key},
                                  {"produce", {"*"}},
                                  {"consume", {"*"}},
                                  {"producer_groups", {"*"}},
                                  {"admin", true}}}}}};
  std::ofstream(acl_) << acl.dump(2) << "\n";
}

CurveSetup::~CurveSetup() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<std::string> CurveSetup::broker_args() const {
  return {"--curve-secret-key", broker_key_, "--acl", acl_};
}

}  // namespace txmq::bench
