// A BrokerStore on a directory, for the store's own tests: Open, and
// Commit to submit the open round and wait for it.
#pragma once

#include <memory>
#include <string>

#include "protocol/src/event_fd.h"
#include "storage/src/broker_store.h"

namespace txmq::storage {

struct Harness {
  explicit Harness(const std::string& dir, FileSystem* fs = FileSystem::Default(),
                   leveldb::Env* env = nullptr, uint64_t segment = 1 << 20) {
    options.dir = dir;
    options.segment_bytes = segment;
    options.max_round_bytes = segment / 4;
    options.fs = fs;
    options.env = env;
  }
  Status Open() {
    auto s = BrokerStore::Open(options, &done);
    if (!s.ok()) return s.status();
    store = std::move(s.value());
    return Status::OK();
  }
  // Submits the open round and waits for it; its status.
  Status Commit() {
    store->Submit(++clock);
    auto round = store->WaitFinished();
    Status s = round->status();
    round->Complete();
    return s;
  }
  StoreOptions options;
  EventFd done;
  std::unique_ptr<BrokerStore> store;
  int64_t clock = 1'000'000;
};

inline MessageView Msg(const std::string& id, const std::string& body, int64_t stored_ms = 1000) {
  MessageView m;
  m.id = id;
  m.topic = "orders";
  m.key = "k";
  m.body = body;
  m.born_ms = 1;
  m.stored_ms = stored_ms;
  return m;
}

}  // namespace txmq::storage
