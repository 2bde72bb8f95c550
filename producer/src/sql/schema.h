// Versioned txmq_ tables, the part every SQL backend shares (pg_schema.cc,
// sqlite_schema.cc): a component's version is a row of txmq_schema; a
// migration brings it to this txmq's version, and a database whose tables
// are newer than this txmq knows is refused, naming both versions. The
// backend runs MigrateComponent inside the transaction (and lock) it opened.
#pragma once

#include <span>
#include <string>

#include "txmq/status.h"

namespace txmq::sql {

// The statements of one migration step.
using Step = std::span<const char* const>;

// A component's tables: steps[0] creates version 1, steps[i] brings
// version i to i + 1; `version` is steps.size(). A database at version v
// runs steps[v..] in the one transaction, so it never stops in between.
struct Component {
  const char* name;
  std::span<const Step> steps;
  int version() const { return static_cast<int>(steps.size()); }
};

// One database's statements of a migration.
class SchemaSteps {
 public:
  virtual ~SchemaSteps() = default;
  virtual Status CreateSchemaTable() = 0;
  // The component's version in txmq_schema; 0 when it has none.
  virtual Result<int> Version(const char* component) = 0;
  virtual Status Run(const char* statement) = 0;
  virtual Status SetVersion(const char* component, int version) = 0;
  // "database 'orders'", for the log line.
  virtual std::string where() const = 0;
};

Status MigrateComponent(SchemaSteps& steps, const Component& c);

// The refusal of a migration on a connection inside a transaction.
Status MigrationInsideTransaction(const Component& c);

}  // namespace txmq::sql
