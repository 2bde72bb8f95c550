// Where `txmqctl outbox` finds a service's outbox: a LevelDB store opened
// offline (--db; LevelDB lets one process open it, so a running service
// keeps txmqctl out), or the service's PostgreSQL database (--pg) or SQLite
// database file (--sqlite); both are shared, so they work while the
// service runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "txmq/outbox.h"
#include "txmq/status.h"

namespace txmq::ctl {

class OutboxSource {
 public:
  // Exactly one of `db`, `pg` and `sqlite` is non-empty.
  static Result<std::unique_ptr<OutboxSource>> Open(const std::string& db, const std::string& pg,
                                                    const std::string& sqlite);
  virtual ~OutboxSource() = default;

  virtual Result<std::vector<OutboxRow>> Rows(bool parked) = 0;
  virtual Status Requeue(const std::string& id, const std::string& operator_name) = 0;
  // A pending or parked row.
  virtual Status Delete(const std::string& id, const std::string& operator_name) = 0;
  // "./orders-db", "database 'orders'": for messages.
  virtual std::string name() const = 0;
  // What deleting a pending row may not stop: a relay that claimed it.
  virtual bool live() const = 0;
};

}  // namespace txmq::ctl
