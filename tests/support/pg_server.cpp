#include "pg_server.h"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "os_util.h"

namespace pgtally::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kReadySeconds = 30;
constexpr int kPortAttempts = 5;

// Runs argv to completion (see Spawn); returns the exit code, or -1 if it died of a signal.
int RunProgram(const std::vector<std::string>& argv, const std::string& log,
               const std::optional<std::pair<uid_t, gid_t>>& as) {
  const pid_t pid = Spawn(argv, log, as);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw SystemError("waitpid");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct ProcStat {
  char state = 0;  // 'T' when stopped
  pid_t ppid = 0;
};

ProcStat ReadProcStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
  ProcStat stat;
  const auto comm_end = line.rfind(')');
  if (comm_end != std::string::npos) {
    std::istringstream(line.substr(comm_end + 1)) >> stat.state >> stat.ppid;
  }
  return stat;
}

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultClearer>;

Result RunSql(const std::string& dsn, const std::string& sql) {
  const std::unique_ptr<PGconn, ConnCloser> conn(
      PQconnectdb((dsn + " connect_timeout=10").c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("connecting to " + dsn + ": " + PQerrorMessage(conn.get()));
  }
  Result result(PQexec(conn.get(), sql.c_str()));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    throw std::runtime_error("`" + sql + "` on " + dsn + ": " + PQerrorMessage(conn.get()));
  }
  return result;  // a PGresult does not depend on its connection
}

}  // namespace

PgServer::PgServer() : PgServer(Options{}) {}

PgServer::PgServer(Options options) : PgServer(std::move(options), nullptr) {}

PgServer::PgServer(Options options, const PgServer* primary)
    : options_(std::move(options)), owner_(getpid()) {
  char pattern[] = "/tmp/pgtally-pg-XXXXXX";
  if (mkdtemp(pattern) == nullptr) throw SystemError("mkdtemp /tmp/pgtally-pg-XXXXXX");
  dir_ = pattern;
  try {
    Initialize(primary);
  } catch (...) {
    Shutdown();  // the destructor does not run for a constructor that throws
    throw;
  }
}

PgServer::~PgServer() { Shutdown(); }

std::unique_ptr<PgServer> PgServer::StandbyOf(const PgServer& primary) {
  return std::unique_ptr<PgServer>(new PgServer(primary.options_, &primary));
}

void PgServer::Initialize(const PgServer* primary) {
  run_as_ = ServerUserOwning(dir_);
  bindir_ = FindBinDir();
  // initdb's default pg_hba.conf trusts replication connections from loopback, and its defaults
  // (wal_level = replica, max_wal_senders = 10) allow a base backup with streamed WAL; -R writes
  // standby.signal and primary_conninfo.
  const std::string init_log = dir_ + "/init.log";
  const std::vector<std::string> init =
      primary == nullptr ? std::vector<std::string>{bindir_ + "/initdb",
                                                    "-D",
                                                    dir_ + "/data",
                                                    "-A",
                                                    "trust",
                                                    "-U",
                                                    "postgres",
                                                    "--no-sync",
                                                    "-E",
                                                    "UTF8",
                                                    "--locale=C"}
                         : std::vector<std::string>{bindir_ + "/pg_basebackup",
                                                    "-D",
                                                    dir_ + "/data",
                                                    "-h",
                                                    "127.0.0.1",
                                                    "-p",
                                                    std::to_string(primary->port()),
                                                    "-U",
                                                    "postgres",
                                                    "-R",
                                                    "-X",
                                                    "stream",
                                                    "--checkpoint=fast",
                                                    "--no-sync"};
  const int code = RunProgram(init, init_log, run_as_);
  if (code != 0) {
    throw std::runtime_error(init.front() + " exited with " + std::to_string(code) + "; " +
                             init_log + ":\n" + ReadTail(init_log));
  }
  WriteConfig();  // for a standby, appended after the primary's copy: the last setting wins
  for (int attempt = 1; !running_; ++attempt) {
    port_ = FreeLoopbackPort();
    std::error_code ignored;
    fs::remove(dir_ + "/server.log", ignored);  // so the check below sees this attempt only
    try {
      Start();
    } catch (const std::runtime_error&) {
      const bool port_taken = LogTail().find("Address already in use") != std::string::npos;
      if (!port_taken || attempt == kPortAttempts) throw;
    }
  }
  // A standby is read-only and has the primary's extensions already.
  if (options_.pg_stat_statements && primary == nullptr) {
    Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  }
}

std::string PgServer::FindBinDir() const {
  if (const char* dir = std::getenv("PGTALLY_PG_BINDIR"); dir != nullptr && *dir != '\0') {
    if (access((std::string(dir) + "/initdb").c_str(), X_OK) == 0) return dir;
    throw std::runtime_error("PGTALLY_PG_BINDIR=" + std::string(dir) + " has no initdb");
  }
  std::string debian = "/usr/lib/postgresql/15/bin";
  if (access((debian + "/initdb").c_str(), X_OK) == 0) return debian;
  const std::string output = dir_ + "/pg_config.out";
  if (RunProgram({"pg_config", "--bindir"}, output, std::nullopt) == 0) {
    std::ifstream in(output);
    std::string dir;
    if (std::getline(in, dir) && access((dir + "/initdb").c_str(), X_OK) == 0) return dir;
  }
  throw std::runtime_error("no initdb in " + debian + " nor in `pg_config --bindir`; install " +
                           "postgresql-15 (scripts/install-deps.sh) or set PGTALLY_PG_BINDIR");
}

void PgServer::WriteConfig() const {
  const std::string path = dir_ + "/data/postgresql.conf";
  std::ofstream conf(path, std::ios::app);
  // Durability is pointless for a server that is thrown away, and costs seconds per test run.
  conf << "\n# pgtally test server\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = '" << dir_ << "'\n"
       << "max_connections = 100\n"
       << "fsync = off\n"
       << "synchronous_commit = off\n"
       << "full_page_writes = off\n";
  if (options_.pg_stat_statements) {
    conf << "shared_preload_libraries = 'pg_stat_statements'\n"
         << "pg_stat_statements.track = all\n";
  }
  for (const auto& line : options_.extra_conf) conf << line << "\n";
  conf.close();
  if (!conf) throw std::runtime_error("could not write " + path);
  if (!options_.hba_first.empty()) {
    const std::string hba_path = dir_ + "/data/pg_hba.conf";
    std::string hba;
    for (const auto& line : options_.hba_first) hba += line + "\n";
    hba += ReadFile(hba_path);
    std::ofstream out(hba_path, std::ios::trunc);
    out << hba;
    out.close();
    if (!out) throw std::runtime_error("could not write " + hba_path);
  }
}

void PgServer::Start() {
  if (running_) return;
  // pg_ctl -w waits until the server accepts connections, not just until it has forked.
  const int code =
      RunProgram({bindir_ + "/pg_ctl", "start", "-D", dir_ + "/data", "-l", dir_ + "/server.log",
                  "-o", "-p " + std::to_string(port_), "-w", "-t", std::to_string(kReadySeconds)},
                 dir_ + "/pg_ctl.log", run_as_);
  if (code != 0) {
    StopImmediately();  // after a timeout the postmaster may still be coming up
    throw std::runtime_error("PostgreSQL in " + dir_ + " failed to start on port " +
                             std::to_string(port_) + " (or was not ready within " +
                             std::to_string(kReadySeconds) + " s); server log:\n" + LogTail());
  }
  running_ = true;
}

void PgServer::Stop() {
  if (!running_) return;
  if (paused_) Resume();
  const std::string log = dir_ + "/pg_ctl.log";
  if (RunProgram({bindir_ + "/pg_ctl", "stop", "-D", dir_ + "/data", "-m", "fast", "-w"}, log,
                 run_as_) != 0) {
    throw std::runtime_error("pg_ctl stop failed; " + log + ":\n" + ReadTail(log));
  }
  running_ = false;
}

void PgServer::StopImmediately() noexcept {
  try {
    if (RunProgram({bindir_ + "/pg_ctl", "stop", "-D", dir_ + "/data", "-m", "immediate", "-w"},
                   dir_ + "/pg_ctl.log", run_as_) != 0) {
      for (const pid_t pid : ServerPids()) kill(pid, SIGKILL);
    }
  } catch (...) {
    // Shutdown path: there is nobody left to tell.
  }
  running_ = false;
}

void PgServer::Shutdown() noexcept {
  // A test may fork a child that exits through exit(); it must not tear down our server.
  if (getpid() != owner_) return;
  try {
    if (paused_) Resume();
  } catch (...) {
    // StopImmediately() falls back to SIGKILL, which needs no resume.
  }
  if (running_) StopImmediately();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::vector<pid_t> PgServer::ServerPids() const {
  std::ifstream pid_file(dir_ + "/data/postmaster.pid");
  pid_t postmaster = 0;
  if (!(pid_file >> postmaster) || postmaster <= 0) return {};
  // The file outlives a crashed server, and its pid may be reused: a postmaster runs in its data
  // directory, so that tells ours from a stranger.
  std::error_code error;
  if (!fs::equivalent("/proc/" + std::to_string(postmaster) + "/cwd", dir_ + "/data", error)) {
    return {};
  }
  std::vector<pid_t> pids{postmaster};
  for (fs::directory_iterator it("/proc", error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (ReadProcStat(pid).ppid == postmaster) pids.push_back(pid);
  }
  return pids;
}

void PgServer::Pause() {
  const std::vector<pid_t> pids = ServerPids();
  if (pids.empty()) throw std::runtime_error("Pause: no PostgreSQL running in " + dir_);
  // The postmaster first: once it has stopped it cannot fork a backend that escapes the freeze.
  const pid_t postmaster = pids.front();
  kill(postmaster, SIGSTOP);
  paused_ = true;
  for (int i = 0; i < 1000 && ReadProcStat(postmaster).state != 'T'; ++i) usleep(1000);
  for (const pid_t pid : ServerPids()) kill(pid, SIGSTOP);
}

void PgServer::Crash() {
  const std::vector<pid_t> pids = ServerPids();
  if (pids.empty()) throw std::runtime_error("Crash: no PostgreSQL running in " + dir_);
  for (const pid_t pid : pids) kill(pid, SIGKILL);
  // Until every one of them is reaped: a new postmaster refuses to start while the old one's
  // pid (even a zombie's) or its shared memory is still around.
  for (const pid_t pid : pids) {
    for (int i = 0; i < 10000 && kill(pid, 0) == 0; ++i) usleep(1000);
  }
  running_ = false;
}

void PgServer::Resume() {
  const std::vector<pid_t> pids = ServerPids();
  // Backends first, so that the postmaster wakes up to a running server.
  for (auto it = pids.rbegin(); it != pids.rend(); ++it) kill(*it, SIGCONT);
  paused_ = false;
}

void PgServer::Promote() {
  const std::string log = dir_ + "/pg_ctl.log";
  // -w waits until the server has left recovery (pg_ctl polls pg_control).
  if (RunProgram({bindir_ + "/pg_ctl", "promote", "-D", dir_ + "/data", "-w", "-t",
                  std::to_string(kReadySeconds)},
                 log, run_as_) != 0) {
    throw std::runtime_error("pg_ctl promote failed; " + log + ":\n" + ReadTail(log));
  }
}

std::string PgServer::LogTail() const { return ReadTail(dir_ + "/server.log"); }

std::string PgServer::Dsn(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname + " user=postgres";
}

std::string PgServer::Uri(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

void PgServer::Exec(const std::string& sql, const std::string& dbname) const {
  RunSql(Dsn(dbname), sql);
}

std::string PgServer::QueryValue(const std::string& sql, const std::string& dbname) const {
  const Result result = RunSql(Dsn(dbname), sql);
  if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0 ||
      PQgetisnull(result.get(), 0, 0)) {
    return "";
  }
  return PQgetvalue(result.get(), 0, 0);
}

PgServer& SharedPgServer() {
  static PgServer server;  // C++ makes this initialisation thread-safe; destroyed at exit
  return server;
}

}  // namespace pgtally::testing
