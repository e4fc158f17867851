#pragma once

#include <string>
#include <vector>

namespace pgtally::testing {

// A throwaway PostgreSQL 15 server for tests: initdb into a fresh directory under /tmp, a free
// loopback port, trust authentication, and pg_stat_statements loaded. Every instance has its own
// directory and port, so test processes can run in parallel. Runs the server as the `postgres`
// user when the tests run as root (initdb refuses root).
class PgServer {
 public:
  struct Options {
    bool pg_stat_statements = true;
    std::vector<std::string> extra_conf;  // lines appended to postgresql.conf
  };

  PgServer();
  // Starts the server; throws std::runtime_error with the server log's tail on failure.
  explicit PgServer(Options options);
  // Stops the server (immediate mode) and removes its directory. Never throws.
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  void Stop();
  void Start();
  // SIGSTOP / SIGCONT the postmaster and its children: a server that accepts TCP connections
  // but never answers, as a hung host or network looks to a client.
  void Pause();
  void Resume();

  int port() const { return port_; }
  std::string Dsn(const std::string& dbname = "postgres") const;
  std::string Uri(const std::string& dbname = "postgres") const;

  // Runs SQL through libpq; throws std::runtime_error with the server's message on error.
  void Exec(const std::string& sql, const std::string& dbname = "postgres") const;
  // The first column of the first row, "" for NULL or no rows.
  std::string QueryValue(const std::string& sql, const std::string& dbname = "postgres") const;

 private:
  void Run(const std::vector<std::string>& argv) const;
  std::vector<int> Pids() const;
  std::string LogTail() const;

  Options options_;
  std::string dir_;
  int port_ = 0;
  bool running_ = false;
  bool paused_ = false;
};

// One server shared by all tests of a process, started on first use and stopped at exit.
PgServer& SharedPgServer();

}  // namespace pgtally::testing
