#include "producer/src/sql/schema.h"

#include "protocol/src/log.h"

namespace txmq::sql {

Status MigrateComponent(SchemaSteps& steps, const Component& c) {
  if (Status s = steps.CreateSchemaTable(); !s.ok()) return s;
  auto version = steps.Version(c.name);
  if (!version.ok()) return version.status();
  if (*version > c.version) {
    return Status::FailedPrecondition(
        std::string("the database's txmq ") + c.name + " tables are version " +
        std::to_string(*version) + "; this txmq knows versions up to " + std::to_string(c.version) +
        ": upgrade txmq (a newer txmq migrated this database)");
  }
  if (*version == c.version) return Status::OK();
  for (const char* statement : c.v1) {
    if (Status s = steps.Run(statement); !s.ok()) return s;
  }
  if (Status s = steps.SetVersion(c.name, c.version); !s.ok()) return s;
  Logger(c.name)->info("created the txmq {} tables (version {}) in {}", c.name, c.version,
                       steps.where());
  return Status::OK();
}

Status MigrationInsideTransaction(const Component& c) {
  return Status::FailedPrecondition(std::string("the txmq ") + c.name +
                                    " tables are migrated on a connection outside any "
                                    "transaction");
}

}  // namespace txmq::sql
