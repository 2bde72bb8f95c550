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

// A component's tables: the statements of its version 1 (later versions
// will add a step each).
struct Component {
  const char* name;
  int version;
  std::span<const char* const> v1;
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
