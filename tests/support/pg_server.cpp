#include "pg_server.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace pgtally::testing {
namespace {

namespace fs = std::filesystem;

std::string BinDir() {
  if (const char* dir = std::getenv("PGTALLY_PG_BINDIR")) return dir;
  return "/usr/lib/postgresql/15/bin";
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// Runs a command to completion, as the postgres user when we are root; returns its exit code.
int RunCommand(const std::vector<std::string>& argv, const std::string& output) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (geteuid() == 0) {
      const passwd* user = getpwnam("postgres");
      if (!user || setgid(user->pw_gid) != 0 || setuid(user->pw_uid) != 0) _exit(126);
    }
    const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct ConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};

}  // namespace

PgServer::PgServer() : PgServer(Options{}) {}

PgServer::PgServer(Options options) : options_(std::move(options)) {
  char pattern[] = "/tmp/pgtally-pg-XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  if (geteuid() == 0) {
    const passwd* user = getpwnam("postgres");
    if (!user || chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) {
      throw std::runtime_error(
          "tests run as root need the postgres system user (apt-get install postgresql-15)");
    }
  }
  chmod(dir_.c_str(), 0755);
  if (RunCommand({BinDir() + "/initdb", "-D", dir_ + "/data", "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C"},
                 dir_ + "/initdb.log") != 0) {
    throw std::runtime_error("initdb failed; see " + dir_ + "/initdb.log");
  }
  std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
  conf << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = '" << dir_ << "'\n"
       << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n";
  if (options_.pg_stat_statements) {
    conf << "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n";
  }
  for (const auto& line : options_.extra_conf) conf << line << "\n";
  conf.close();

  // A port found free can be taken before the server binds it; try a few.
  for (int attempt = 0; !running_ && attempt < 5; ++attempt) {
    port_ = FreePort();
    try {
      Start();
    } catch (const std::runtime_error&) {
      if (attempt == 4) throw;
    }
  }
  if (options_.pg_stat_statements) Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
}

PgServer::~PgServer() {
  if (paused_) Resume();
  if (running_) {
    RunCommand({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "stop"},
               dir_ + "/pg_ctl.log");
  }
  std::error_code error;
  fs::remove_all(dir_, error);
}

void PgServer::Start() {
  const int code =
      RunCommand({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-o",
                  "-p " + std::to_string(port_), "-w", "-t", "30", "start"},
                 dir_ + "/pg_ctl.log");
  if (code != 0) throw std::runtime_error("PostgreSQL did not start:\n" + LogTail());
  running_ = true;
}

void PgServer::Stop() {
  if (paused_) Resume();
  RunCommand({BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m", "fast", "-w", "stop"},
             dir_ + "/pg_ctl.log");
  running_ = false;
}

std::vector<int> PgServer::Pids() const {
  std::ifstream pid_file(dir_ + "/data/postmaster.pid");
  int postmaster = 0;
  pid_file >> postmaster;
  std::vector<int> pids;
  if (postmaster <= 0) return pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...; comm may contain spaces, so read after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == postmaster) pids.push_back(std::stoi(name));
  }
  pids.push_back(postmaster);  // children first on stop, postmaster last
  return pids;
}

void PgServer::Pause() {
  for (const int pid : Pids()) kill(pid, SIGSTOP);
  paused_ = true;
}

void PgServer::Resume() {
  auto pids = Pids();
  std::reverse(pids.begin(), pids.end());
  for (const int pid : pids) kill(pid, SIGCONT);
  paused_ = false;
}

std::string PgServer::Dsn(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname + " user=postgres";
}

std::string PgServer::Uri(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

void PgServer::Exec(const std::string& sql, const std::string& dbname) const {
  QueryValue(sql, dbname);
}

std::string PgServer::QueryValue(const std::string& sql, const std::string& dbname) const {
  std::unique_ptr<PGconn, ConnDeleter> conn(
      PQconnectdb((Dsn(dbname) + " connect_timeout=10").c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, ResultDeleter> result(PQexec(conn.get(), sql.c_str()));
  const auto status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
  if (status != PGRES_TUPLES_OK || PQntuples(result.get()) == 0) return "";
  return PQgetvalue(result.get(), 0, 0);
}

std::string PgServer::LogTail() const {
  std::ifstream log(dir_ + "/server.log");
  std::stringstream text;
  text << log.rdbuf();
  const auto all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

PgServer& SharedPgServer() {
  static PgServer server;  // thread-safe initialisation; destroyed at exit
  return server;
}

}  // namespace pgtally::testing
