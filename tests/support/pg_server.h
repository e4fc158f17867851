#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgtally::testing {

// A throwaway PostgreSQL 15 server for tests: initdb into a fresh directory under /tmp, a free
// loopback port, trust authentication for `postgres`, durability switched off for speed. Every
// instance has its own directory and port, so test processes can run in parallel (ctest -j).
//
// When the tests run as root, the server's programs run as the `postgres` system user, because
// initdb and postgres refuse to run as root. The binaries are found in PGTALLY_PG_BINDIR, else
// /usr/lib/postgresql/15/bin, else `pg_config --bindir`.
//
// Not thread-safe: one thread drives an instance (SharedPgServer() only makes its creation safe).
// Nothing leaks when the constructor throws: the server is stopped and its directory removed.
class PgServer {
 public:
  struct Options {
    // Preloads pg_stat_statements (track = all) and creates the extension in `postgres`.
    bool pg_stat_statements = true;
    std::vector<std::string> extra_conf = {};  // lines appended to postgresql.conf
    // Lines put first in pg_hba.conf, e.g. to require a password from one role (the rest is
    // trusted).
    std::vector<std::string> hba_first = {};
  };

  PgServer();
  // Initialises, starts and waits until the server accepts connections (30 s at most). Throws
  // std::runtime_error with the tail of the relevant log on failure.
  explicit PgServer(Options options);
  // Stops the server (immediate mode, resuming it first if paused) and removes its directory.
  // Never throws. Does nothing in a forked child of the process that created the server.
  ~PgServer();
  // A hot standby of `primary` (pg_basebackup, streaming replication) on its own port, with the
  // primary's options. Waits until it accepts connections.
  static std::unique_ptr<PgServer> StandbyOf(const PgServer& primary);
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // A clean shutdown (fast mode); then connections are refused until Start().
  void Stop();
  // Starts again on the same port and data directory and waits until it accepts connections.
  void Start();
  // SIGSTOP / SIGCONT the postmaster and every backend: the kernel still completes TCP
  // handshakes but nothing ever answers, which is how a hung host or network looks to a client.
  void Pause();
  void Resume();
  // SIGKILL to the postmaster and every backend, as the OOM killer or a power cut would do it.
  // Start() brings it back through crash recovery.
  void Crash();
  // Promotes a standby to primary and waits until it has left recovery.
  void Promote();

  int port() const { return port_; }
  // The scratch directory: data/, server.log, and the Unix socket.
  const std::string& dir() const { return dir_; }
  // The last few KB of the server log, for failure messages.
  std::string LogTail() const;

  // "host=127.0.0.1 port=N dbname=DBNAME user=postgres"
  std::string Dsn(const std::string& dbname = "postgres") const;
  // "postgresql://postgres@127.0.0.1:N/DBNAME"
  std::string Uri(const std::string& dbname = "postgres") const;

  // Runs SQL (several statements allowed) on a fresh connection; throws std::runtime_error with
  // the server's message on error.
  void Exec(const std::string& sql, const std::string& dbname = "postgres") const;
  // The first column of the first row of the last statement; "" for NULL or no rows.
  std::string QueryValue(const std::string& sql, const std::string& dbname = "postgres") const;

 private:
  PgServer(Options options, const PgServer* primary);
  // initdb, or a base backup of `primary` when given; then configure and start.
  void Initialize(const PgServer* primary);
  std::string FindBinDir() const;
  void WriteConfig() const;
  // The postmaster first, then its children; empty if our server is not running.
  std::vector<pid_t> ServerPids() const;
  void StopImmediately() noexcept;
  void Shutdown() noexcept;

  Options options_;
  pid_t owner_;  // the process that created the server and may stop it
  std::string dir_;
  std::string bindir_;
  std::optional<std::pair<uid_t, gid_t>> run_as_;  // `postgres` when we are root
  int port_ = 0;
  bool running_ = false;
  bool paused_ = false;
};

// One server shared by all tests of a process: created on first use (thread-safe), stopped and
// removed at exit.
PgServer& SharedPgServer();

}  // namespace pgtally::testing
