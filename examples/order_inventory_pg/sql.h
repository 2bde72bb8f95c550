// The few libpq calls the PostgreSQL variant of the order/inventory
// example makes, with errors turned into exceptions so the services read
// as their business logic. A real service would use its own database
// layer (libpqxx, an ORM); txmq needs only the PGconn* underneath it.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace example {

using Rows = std::unique_ptr<PGresult, decltype(&PQclear)>;

// Runs `sql` with text parameters $1, $2, ...; throws with PostgreSQL's
// message when it fails.
inline Rows Sql(PGconn* conn, const std::string& sql, const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  Rows r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                      nullptr, nullptr, 0),
         &PQclear);
  const ExecStatusType status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(r.get()));
  }
  return r;
}

inline std::unique_ptr<PGconn, decltype(&PQfinish)> Connect(const std::string& conninfo) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to '" + conninfo + "': " + PQerrorMessage(conn.get()));
  }
  return conn;
}

}  // namespace example
