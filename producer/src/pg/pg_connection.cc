#include "producer/src/pg/pg_connection.h"

#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>

#include "protocol/src/log.h"

namespace txmq::pg {

namespace {

Status FromResult(PGconn* conn, const PGresult* r, std::string_view sql) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state ? state : "";
  std::string text = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  // The first words of the statement say which one failed, without its data.
  std::string what(sql.substr(0, std::min<size_t>(sql.size(), 48)));
  for (char& c : what) {
    if (c == '\n') c = ' ';
  }
  const std::string message = "PostgreSQL " +
                              (code.empty() ? std::string("error") : "SQLSTATE " + code) + " in '" +
                              what + "...': " + text;
  if (PQstatus(conn) != CONNECTION_OK) return Status::Unavailable(message);
  if (code == "40001" || code == "40P01") return Status::Aborted(message);
  if (code == "23505") return Status::Conflict(message);
  if (code == "25P02") return Status::FailedPrecondition(message);
  if (code == "55P03") return Status::Timeout(message);  // lock_timeout ran out
  if (code.starts_with("08") || code == "57P01") return Status::Unavailable(message);
  return Status::Internal(message);
}

}  // namespace

namespace {

// libpq's three parallel arrays of the parameters.
struct ParamArrays {
  explicit ParamArrays(const std::vector<Param>& params) {
    for (const Param& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
  }
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
};

Result<ResultPtr> Checked(PGconn* conn, ResultPtr r, std::string_view sql) {
  const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return FromResult(conn, r.get(), sql);
  }
  return r;
}

}  // namespace

Result<ResultPtr> Exec(PGconn* conn, std::string_view sql, const std::vector<Param>& params) {
  const ParamArrays a(params);
  const std::string statement(sql);
  ResultPtr r(PQexecParams(conn, statement.c_str(), static_cast<int>(params.size()), nullptr,
                           a.values.data(), a.lengths.data(), a.formats.data(), 0));
  return Checked(conn, std::move(r), sql);
}

Result<ResultPtr> PreparedStatements::Exec(PGconn* conn, const std::string& sql,
                                           const std::vector<Param>& params) {
  auto it = names_.find(sql);
  if (it == names_.end()) {
    const std::string name = "txmq_" + std::to_string(names_.size() + 1);
    ResultPtr prepared(PQprepare(conn, name.c_str(), sql.c_str(), 0, nullptr));
    if (auto r = Checked(conn, std::move(prepared), sql); !r.ok()) return r.status();
    it = names_.emplace(sql, name).first;
  }
  const ParamArrays a(params);
  ResultPtr r(PQexecPrepared(conn, it->second.c_str(), static_cast<int>(params.size()),
                             a.values.data(), a.lengths.data(), a.formats.data(), 0));
  return Checked(conn, std::move(r), sql);
}

Result<ResultPtr> Exec(PGconn* conn, PreparedStatements* prepared, const std::string& sql,
                       const std::vector<Param>& params) {
  return prepared != nullptr ? prepared->Exec(conn, sql, params) : Exec(conn, sql, params);
}

std::string_view Field(const PGresult* r, int row, int column) {
  return {PQgetvalue(r, row, column), static_cast<size_t>(PQgetlength(r, row, column))};
}

int64_t IntField(const PGresult* r, int row, int column) {
  return std::strtoll(PQgetvalue(r, row, column), nullptr, 10);
}

std::string BytesField(const PGresult* r, int row, int column) {
  size_t n = 0;
  unsigned char* bytes =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, column)), &n);
  if (bytes == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(bytes), n);
  PQfreemem(bytes);
  return out;
}

int64_t RowsChanged(const PGresult* r) {
  return std::strtoll(PQcmdTuples(const_cast<PGresult*>(r)), nullptr, 10);
}

Result<Connection> Connection::Open(const std::string& conninfo) {
  Connection c;
  c.conn_.reset(PQconnectdb(conninfo.c_str()));
  if (!c.conn_) return Status::Unavailable("out of memory opening a PostgreSQL connection");
  if (PQstatus(c.conn_.get()) != CONNECTION_OK) {
    std::string why = PQerrorMessage(c.conn_.get());
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Status::Unavailable("cannot connect to PostgreSQL (" + Redacted(conninfo) + "): " + why);
  }
  // The server's notices ("relation ... already exists, skipping" from
  // the migrations) would go to the service's stderr: they are debug lines
  // of txmq's log instead. (Only txmq's own connections; the service's
  // keep whatever it set.)
  PQsetNoticeProcessor(
      c.conn_.get(),
      [](void*, const char* message) {
        std::string line = message;
        while (!line.empty() && line.back() == '\n') line.pop_back();
        Logger("pg")->debug("PostgreSQL: {}", line);
      },
      nullptr);
  return c;
}

Result<Connection> ConnectionPool::Take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!idle_.empty()) {
      Connection c = std::move(idle_.back());
      idle_.pop_back();
      if (!c.broken()) return c;
    }
  }
  return Connection::Open(conninfo_);
}

void ConnectionPool::Give(Connection conn) {
  if (conn.broken() || PQtransactionStatus(conn.get()) != PQTRANS_IDLE) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(idle_.size()) < max_idle_) idle_.push_back(std::move(conn));
}

Result<int64_t> DeleteOlderThan(PGconn* conn, std::string_view table, std::string_view time_column,
                                std::chrono::milliseconds horizon, const std::string& group,
                                std::string_view unless, bool* more) {
  std::string where =
      std::string(time_column) + " < clock_timestamp() - $1::bigint * interval '1 millisecond'";
  if (!group.empty()) where += " AND group_name = $2";
  if (!unless.empty()) where += " AND NOT (" + std::string(unless) + ")";
  std::vector<Param> params = {Param::Int(horizon.count())};
  if (!group.empty()) params.push_back(Param::Text(group));
  const std::string statement = "DELETE FROM " + std::string(table) +
                                " WHERE ctid IN (SELECT ctid FROM " + std::string(table) +
                                " WHERE " + where + " LIMIT " +
                                std::to_string(producer::kSweepBatchRows) + ")";
  return producer::DeleteInBatches(
      [&]() -> Result<int64_t> {
        auto r = Exec(conn, statement, params);
        if (!r.ok()) return r.status();
        return RowsChanged(r->get());
      },
      more);
}

std::string Redacted(const std::string& conninfo) {
  static const std::regex kv(R"((password\s*=\s*)('[^']*'|\S+))", std::regex::icase);
  static const std::regex url(R"((postgres(ql)?://[^:/@]*:)[^@]*@)", std::regex::icase);
  std::string out = std::regex_replace(conninfo, kv, "$1***");
  return std::regex_replace(out, url, "$1***@");
}

}  // namespace txmq::pg
