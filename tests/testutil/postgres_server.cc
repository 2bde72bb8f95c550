#include "tests/testutil/postgres_server.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

namespace txmq::testing {

namespace {

// Debian keeps the server programs out of PATH, per major version.
std::string ServerBinDir() {
  namespace fs = std::filesystem;
  std::string best;
  if (fs::exists("/usr/lib/postgresql")) {
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql")) {
      const std::string bin = entry.path().string() + "/bin";
      if (fs::exists(bin + "/postgres") && bin > best) best = bin;
    }
  }
  return best;
}

// PostgreSQL refuses to run as root: as root, run it as "nobody".
std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> wrapped = {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup",
                                      "--clear-groups", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::string ConnInfo(int port, const std::string& db) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=txmq dbname=" + db +
         " connect_timeout=5";
}

}  // namespace

std::unique_ptr<PostgresServer> PostgresServer::Start(std::chrono::milliseconds timeout) {
  std::unique_ptr<PostgresServer> pg(new PostgresServer());
  if (pg->Launch(timeout)) return pg;
  ADD_FAILURE() << "PostgreSQL did not start within " << timeout.count() << " ms; log:\n"
                << pg->log();
  return nullptr;
}

bool PostgresServer::Launch(std::chrono::milliseconds timeout) {
  const std::string bin = ServerBinDir();
  if (bin.empty()) {
    ADD_FAILURE() << "no /usr/lib/postgresql/*/bin/postgres: install postgresql (scripts/deps.sh)";
    return false;
  }
  if (geteuid() == 0) {
    const passwd* nobody = getpwnam("nobody");
    if (nobody == nullptr || chown(dir_.path().c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
      ADD_FAILURE() << "cannot give " << dir_.path() << " to user nobody";
      return false;
    }
  }
  const std::string data = dir_.Sub("data");
  auto initdb =
      Process::Spawn(AsServerUser({bin + "/initdb", "-D", data, "-U", "txmq", "-A", "trust", "-E",
                                   "UTF8", "--no-sync", "--no-instructions"}),
                     dir_.Sub("initdb.log"));
  if (!initdb || initdb->Wait(timeout) != 0) return false;
  // The port is free when picked, not reserved: retry on a new one if the
  // server exits at once.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreeLoopbackPort();
    process_ = Process::Spawn(
        AsServerUser({bin + "/postgres", "-D", data, "-p", std::to_string(port_), "-c",
                      "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c",
                      "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=60", "-c",
                      "shared_buffers=16MB", "-c", "log_min_messages=warning"}),
        dir_.Sub("postgres.log"));
    if (!process_) return false;
    bool exited = false;
    const std::string conninfo = ConnInfo(port_, "postgres");
    WaitFor(
        [&] {
          exited = process_->Wait(std::chrono::milliseconds(0)).has_value();
          return exited || PQping(conninfo.c_str()) == PQPING_OK;
        },
        timeout);
    if (!exited && PQping(conninfo.c_str()) == PQPING_OK) return true;
    if (!exited) return false;
  }
  return false;
}

PostgresServer::~PostgresServer() { Stop(); }

void PostgresServer::Stop() {
  if (!process_) return;
  process_->Signal(SIGINT);
  if (!process_->Wait(std::chrono::seconds(5))) {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(5));
  }
  process_.reset();
}

std::string PostgresServer::CreateDatabase() {
  const std::string name = "t" + std::to_string(++databases_);
  PGconn* conn = PQconnectdb(ConnInfo(port_, "postgres").c_str());
  PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) ADD_FAILURE() << "CREATE DATABASE " << name << ": " << PQerrorMessage(conn);
  PQclear(r);
  PQfinish(conn);
  return ConnInfo(port_, name);
}

std::string PostgresServer::log() const {
  return ReadFile(dir_.Sub("initdb.log")) + ReadFile(dir_.Sub("postgres.log"));
}

}  // namespace txmq::testing
