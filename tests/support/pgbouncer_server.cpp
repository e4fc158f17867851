#include "pgbouncer_server.h"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "os_util.h"

namespace pgtally::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kReadyLimit = std::chrono::seconds(30);
constexpr auto kStopLimit = std::chrono::seconds(10);
constexpr int kPortAttempts = 5;

std::string PgBouncerBinary() {
  const char* binary = std::getenv("PGTALLY_PGBOUNCER");
  std::string path = binary != nullptr && *binary != '\0' ? binary : "/usr/sbin/pgbouncer";
  if (access(path.c_str(), X_OK) != 0) {
    throw std::runtime_error("no PgBouncer at " + path +
                             "; install the pgbouncer package (scripts/install-deps.sh) or set "
                             "PGTALLY_PGBOUNCER");
  }
  return path;
}

// The exit code of `pid` if it has exited (reaping it), else nullopt.
std::optional<int> ExitedWith(pid_t pid) {
  int status = 0;
  const pid_t reaped = waitpid(pid, &status, WNOHANG);
  if (reaped != pid) return std::nullopt;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

PgBouncerServer::PgBouncerServer(int postgres_port, Options options)
    : postgres_port_(postgres_port), options_(options), owner_(getpid()) {
  char pattern[] = "/tmp/pgtally-pgbouncer-XXXXXX";
  if (mkdtemp(pattern) == nullptr) throw SystemError("mkdtemp /tmp/pgtally-pgbouncer-XXXXXX");
  dir_ = pattern;
  try {
    run_as_ = ServerUserOwning(dir_);
    for (int attempt = 1; pid_ == 0; ++attempt) {
      port_ = FreeLoopbackPort();
      WriteConfig();
      try {
        Start();
      } catch (const std::runtime_error&) {
        const bool port_taken = LogTail().find("Address already in use") != std::string::npos;
        if (!port_taken || attempt == kPortAttempts) throw;
      }
    }
  } catch (...) {
    Shutdown();  // the destructor does not run for a constructor that throws
    throw;
  }
}

PgBouncerServer::~PgBouncerServer() { Shutdown(); }

void PgBouncerServer::WriteConfig() const {
  // "postgres" with an empty password: auth_type trust only checks that the user is listed.
  std::ofstream users(dir_ + "/userlist.txt");
  users << "\"postgres\" \"\"\n";
  users.close();
  std::ofstream ini(dir_ + "/pgbouncer.ini");
  ini << "[databases]\n"
      << "* = host=127.0.0.1 port=" << postgres_port_ << "\n"
      << "[pgbouncer]\n"
      << "listen_addr = 127.0.0.1\n"
      << "listen_port = " << port_ << "\n"
      << "unix_socket_dir = " << dir_ << "\n"
      << "auth_type = trust\n"
      << "auth_file = " << dir_ << "/userlist.txt\n"
      << "admin_users = postgres\n"
      << "pool_mode = transaction\n"
      << "default_pool_size = " << options_.pool_size << "\n"
      << "max_client_conn = " << options_.max_client_conn
      << "\n"
      // Tests look at what just happened: refresh the averages and close idle servers quickly.
      << "stats_period = 1\n";
  ini.close();
  if (!ini || !users) throw std::runtime_error("could not write the PgBouncer config in " + dir_);
  if (run_as_) {
    for (const char* name : {"/userlist.txt", "/pgbouncer.ini"}) {
      if (chown((dir_ + name).c_str(), run_as_->first, run_as_->second) != 0) {
        throw SystemError("chown " + dir_ + name);
      }
    }
  }
}

void PgBouncerServer::Start() {
  const std::string binary = PgBouncerBinary();
  const std::string ini = dir_ + "/pgbouncer.ini";
  const std::string log = dir_ + "/pgbouncer.log";
  std::error_code ignored;
  fs::remove(log, ignored);  // so a port conflict is judged on this attempt's log only
  // In the foreground, PgBouncer logs to stderr: that is the log file.
  const pid_t pid = Spawn({binary, ini}, log, run_as_);
  const auto give_up = steady_clock::now() + kReadyLimit;
  while (steady_clock::now() < give_up) {
    if (const auto code = ExitedWith(pid)) {
      throw std::runtime_error("PgBouncer exited with " + std::to_string(*code) + " on port " +
                               std::to_string(port_) + "; " + log + ":\n" + LogTail());
    }
    if (AcceptsConnections()) {
      pid_ = pid;
      return;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  throw std::runtime_error("PgBouncer on port " + std::to_string(port_) + " was not ready within " +
                           "30 s; " + log + ":\n" + LogTail());
}

bool PgBouncerServer::AcceptsConnections() const {
  PGconn* conn = PQconnectdb((AdminDsn() + " connect_timeout=2").c_str());
  const bool ok = PQstatus(conn) == CONNECTION_OK;
  PQfinish(conn);
  return ok;
}

void PgBouncerServer::Stop() {
  if (pid_ == 0) return;
  // SIGTERM: immediate shutdown, clients are dropped (SIGINT would wait for them).
  kill(pid_, SIGTERM);
  const auto give_up = steady_clock::now() + kStopLimit;
  while (!ExitedWith(pid_)) {
    if (steady_clock::now() >= give_up) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  pid_ = 0;
}

void PgBouncerServer::Shutdown() noexcept {
  // A test may fork a child that exits through exit(); it must not stop our PgBouncer.
  if (getpid() != owner_) return;
  Stop();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string PgBouncerServer::LogTail() const { return ReadTail(dir_ + "/pgbouncer.log"); }

std::string PgBouncerServer::Dsn(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname + " user=postgres";
}

}  // namespace pgtally::testing
