#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

namespace pgtally::testing {

// A throwaway PgBouncer in front of a PostgreSQL server on 127.0.0.1, for tests: its own
// directory under /tmp with pgbouncer.ini, an auth file, the log and the pid file; a free
// loopback port; every database forwarded (`* = host=127.0.0.1 port=<postgres port>`), trust
// authentication, `postgres` as admin user, transaction pooling.
//
// When the tests run as root, PgBouncer runs as the `postgres` system user (it refuses root).
// The binary is PGTALLY_PGBOUNCER, else /usr/sbin/pgbouncer (Debian package pgbouncer).
//
// Not thread-safe: one thread drives an instance. Nothing leaks when the constructor throws.
class PgBouncerServer {
 public:
  struct Options {
    int pool_size = 20;  // default_pool_size: server connections per (database, user)
    int max_client_conn = 100;
  };

  // Starts PgBouncer for the PostgreSQL server on `postgres_port` and waits until its admin
  // console answers (30 s at most). Throws std::runtime_error with the log's tail on failure.
  PgBouncerServer(int postgres_port, Options options);
  explicit PgBouncerServer(int postgres_port) : PgBouncerServer(postgres_port, Options{}) {}
  // Stops PgBouncer (SIGINT, then SIGKILL) and removes its directory. Never throws.
  ~PgBouncerServer();
  PgBouncerServer(const PgBouncerServer&) = delete;
  PgBouncerServer& operator=(const PgBouncerServer&) = delete;

  // Stops PgBouncer and waits until it has exited; connections are refused afterwards.
  void Stop();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string LogTail() const;

  // "host=127.0.0.1 port=N dbname=DBNAME user=postgres": a pooled connection to DBNAME.
  std::string Dsn(const std::string& dbname) const;
  // The admin console: "host=127.0.0.1 port=N dbname=pgbouncer user=postgres".
  std::string AdminDsn() const { return Dsn("pgbouncer"); }

 private:
  void Start();
  void WriteConfig() const;
  bool AcceptsConnections() const;
  void Shutdown() noexcept;

  int postgres_port_;
  Options options_;
  pid_t owner_;  // the process that created the server and may stop it
  std::string dir_;
  std::optional<std::pair<uid_t, gid_t>> run_as_;
  int port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace pgtally::testing
