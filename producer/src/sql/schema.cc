#include "producer/src/sql/schema.h"

#include "protocol/src/log.h"

namespace txmq::sql {

Status MigrateComponent(SchemaSteps& steps, const Component& c) {
  if (Status s = steps.CreateSchemaTable(); !s.ok()) return s;
  auto version = steps.Version(c.name);
  if (!version.ok()) return version.status();
  const int target = c.version();
  if (*version > target) {
    return Status::FailedPrecondition(std::string("the database's txmq ") + c.name +
                                      " tables are version " + std::to_string(*version) +
                                      "; this txmq knows versions up to " + std::to_string(target) +
                                      ": upgrade txmq (a newer txmq migrated this database)");
  }
  if (*version == target) return Status::OK();
  for (int from = *version; from < target; ++from) {
    for (const char* statement : c.steps[from]) {
      if (Status s = steps.Run(statement); !s.ok()) return s;
    }
  }
  if (Status s = steps.SetVersion(c.name, target); !s.ok()) return s;
  if (*version == 0) {
    Logger(c.name)->info("created the txmq {} tables (version {}) in {}", c.name, target,
                         steps.where());
  } else {
    Logger(c.name)->info("migrated the txmq {} tables from version {} to {} in {}", c.name,
                         *version, target, steps.where());
  }
  return Status::OK();
}

Status MigrationInsideTransaction(const Component& c) {
  return Status::FailedPrecondition(std::string("the txmq ") + c.name +
                                    " tables are migrated on a connection outside any "
                                    "transaction");
}

}  // namespace txmq::sql
