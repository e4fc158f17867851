#include "pgtally/pg/connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "pgtally/pg/deadline_calls.h"

namespace pgtally::pg {
namespace {

// ROLLBACK undoes what a collector's statement could change in its transaction, settings
// included; session-level advisory locks outlive it, and would then be held by pgtally's
// connection from scrape to scrape. Sent after it in the same round trip.
constexpr const char* kReleaseSessionLocks = "SELECT pg_advisory_unlock_all()";

std::string Trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void IgnoreNotice(void*, const char*) {}

// Derived from the text, so that the same statement has the same name on every connection.
std::string StatementName(std::string_view sql) {
  return fmt::format("pgtally_{:016x}", std::hash<std::string_view>{}(sql));
}

// What the file at a path was when last read: a file with the same identity, size and times
// has the same content (a rotated Secret is a new file; an edit changes the times).
struct FileStamp {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  timespec modified{};
  timespec changed{};

  explicit FileStamp(const struct stat& st)
      : device(st.st_dev),
        inode(st.st_ino),
        size(st.st_size),
        modified(st.st_mtim),
        changed(st.st_ctim) {}
  bool operator==(const FileStamp& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec &&
           changed.tv_sec == other.changed.tv_sec && changed.tv_nsec == other.changed.tv_nsec;
  }
};

struct PasswordRead {
  std::string password;
  std::string error;  // empty on success
};

// The last content read from each password file, so an unchanged file is not read again.
struct PasswordCache {
  std::mutex mutex;
  std::map<std::string, std::pair<FileStamp, std::string>> files;
};

PasswordCache& Passwords() {
  static PasswordCache cache;
  return cache;
}

// Reads of password files run here, off the connecting thread, so a hung mount costs the caller
// its timeout and not the scrape. Four stuck reads at once is already a broken mount.
DeadlineCalls& FileReads() {
  static DeadlineCalls calls(4);
  return calls;
}

PasswordRead Refused(std::string message) { return {"", std::move(message)}; }

// Runs on a DeadlineCalls thread: may block as long as the file system does.
PasswordRead ReadPasswordOnce(const std::string& path) {
  const auto failed = [&](const char* what) {
    return Refused(
        fmt::format("cannot {} the password file {}: {}", what, path, std::strerror(errno)));
  };
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return failed("read");
  {
    std::lock_guard lock(Passwords().mutex);
    const auto it = Passwords().files.find(path);
    if (it != Passwords().files.end() && it->second.first == FileStamp(st)) {
      return {it->second.second, ""};
    }
  }
  // Checked before opening too: opening a FIFO without a writer would wait for one.
  if (!S_ISREG(st.st_mode)) {
    return Refused(fmt::format("the password file {} is not a regular file", path));
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxPasswordFileBytes) {
    return Refused(
        fmt::format("the password file {} is {} bytes, more than the {} a password "
                    "file may have",
                    path, st.st_size, kMaxPasswordFileBytes));
  }
  // O_NONBLOCK: should the path have become a FIFO since stat(), open() does not wait.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return failed("open");
  struct stat opened {};
  if (fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode)) {
    close(fd);
    return Refused(fmt::format("the password file {} is not a regular file", path));
  }
  // One byte more than allowed, to notice a file that grew since fstat().
  std::string text(kMaxPasswordFileBytes + 1, '\0');
  std::size_t length = 0;
  while (length < text.size()) {
    const ssize_t n = read(fd, text.data() + length, text.size() - length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const auto result = failed("read");
      close(fd);
      return result;
    }
    if (n == 0) break;
    length += static_cast<std::size_t>(n);
  }
  close(fd);
  if (length > kMaxPasswordFileBytes) {
    return Refused(
        fmt::format("the password file {} is more than the {} bytes a password file "
                    "may have",
                    path, kMaxPasswordFileBytes));
  }
  text.resize(length);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return Refused(fmt::format("the password file {} is empty", path));
  std::lock_guard lock(Passwords().mutex);
  Passwords().files.insert_or_assign(path, std::make_pair(FileStamp(opened), text));
  return {std::move(text), ""};
}

}  // namespace

Interrupt::Interrupt()
    : at_(Clock::time_point::max().time_since_epoch().count()),
      fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Interrupt::~Interrupt() {
  if (fd_ >= 0) close(fd_);
}

void Interrupt::Trigger(Clock::time_point at) {
  Clock::rep current = at_.load();
  const Clock::rep wanted = at.time_since_epoch().count();
  while (wanted < current && !at_.compare_exchange_weak(current, wanted)) {
  }
  if (fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = write(fd_, &one, sizeof one);
  }
}

Clock::time_point Interrupt::Cap(Clock::time_point deadline) const {
  return std::min(deadline, Clock::time_point(Clock::duration(at_.load())));
}

Connection::Connection(ConnectOptions options) : options_(std::move(options)) {}

Connection::Wait Connection::WaitForSocket(bool for_write, Clock::time_point deadline) const {
  const Interrupt* interrupt = options_.interrupt.get();
  pollfd fds[2] = {{PQsocket(conn_.get()), static_cast<short>(for_write ? POLLOUT : POLLIN), 0},
                   {interrupt ? interrupt->fd() : -1, POLLIN, 0}};
  while (true) {
    // Once triggered the interrupt stays readable, so it is only watched until then; from then
    // on the capped deadline does the work.
    const bool watch_interrupt = interrupt && !interrupt->triggered() && interrupt->fd() >= 0;
    if (interrupt) deadline = interrupt->Cap(deadline);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    const int ready = poll(fds, watch_interrupt ? 2 : 1,
                           static_cast<int>(std::min<long long>(left.count(), 60'000)));
    if (ready > 0 && fds[0].revents != 0) return Wait::kReady;
    if (ready < 0 && errno != EINTR) return Wait::kError;
  }
}

bool Connection::connected() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }

Error Connection::Fail(Error::Kind kind, std::string message) {
  Close();
  return Error{kind, "", std::move(message)};
}

std::optional<Error> Connection::Connect(Clock::time_point deadline,
                                         const std::optional<std::string>& password) {
  Close();
  // Order matters: later entries override earlier ones, and the first dbname is expanded as the
  // whole connection string. So our defaults come first, the user's string next, and what we
  // must control (encoding, the database of this connection) last.
  const std::string timeout_seconds =
      std::to_string(std::max<long long>(1, (options_.connect_timeout.count() + 999) / 1000));
  std::vector<const char*> keys = {
      "fallback_application_name", "connect_timeout", "keepalives_idle", "keepalives_interval",
      "keepalives_count",          "dbname",          "client_encoding"};
  std::vector<const char*> values = {"pgtally", timeout_seconds.c_str(), "30",  "10",
                                     "3",       options_.dsn.c_str(),    "UTF8"};
  if (!options_.dbname.empty()) {
    keys.push_back("dbname");
    values.push_back(options_.dbname.c_str());
  }
  if (password) {
    keys.push_back("password");
    values.push_back(password->c_str());
  }
  // libpq would look host names up inside PQconnectPoll, with no deadline.
  HostResolver& resolver = options_.resolver ? *options_.resolver : HostResolver::System();
  const auto resolved = resolver.Resolve(options_.dsn, deadline);
  if (resolved.error) return Fail(Error::Kind::kConnection, *resolved.error);
  for (const auto& [key, value] : resolved.parameters) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  conn_.reset(PQconnectStartParams(keys.data(), values.data(), 1));
  if (!conn_) return Fail(Error::Kind::kConnection, "out of memory");
  if (PQstatus(conn_.get()) == CONNECTION_BAD) {
    return Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn_.get())));
  }
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) {
      return Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn_.get())));
    }
    switch (WaitForSocket(status == PGRES_POLLING_WRITING, deadline)) {
      case Wait::kTimeout:
        return Fail(Error::Kind::kTimeout, "timed out connecting to the server");
      case Wait::kError:
        return Fail(Error::Kind::kConnection, "poll() failed while connecting");
      case Wait::kReady:
        break;
    }
    status = PQconnectPoll(conn_.get());
  }
  PQsetNoticeProcessor(conn_.get(), IgnoreNotice, nullptr);
  return std::nullopt;
}

void Connection::CloseIfClosedByServer() {
  if (!conn_) return;
  pollfd idle{PQsocket(conn_.get()), POLLIN, 0};
  if (poll(&idle, 1, 0) != 0) Close();
}

QueryOutcome Connection::Await(Clock::time_point deadline, const RowSink* sink) {
  PGconn* conn = conn_.get();
  if (sink && !PQsetSingleRowMode(conn)) sink = nullptr;  // cannot fail right after sending
  std::optional<Error> first_error;
  ResultPtr last;
  while (true) {
    while (PQisBusy(conn)) {
      switch (WaitForSocket(false, deadline)) {
        case Wait::kTimeout:
          // The server did not answer in time although statement_timeout should have stopped the
          // query before the deadline: it or the network is stuck. Drop the connection rather
          // than wait on a cancel request that may hang just the same.
          return {std::nullopt, Fail(Error::Kind::kTimeout,
                                     options_.interrupt && options_.interrupt->triggered()
                                         ? "cut short because pgtally is stopping"
                                         : "no answer from the server before the deadline")};
        case Wait::kError:
          return {std::nullopt,
                  Fail(Error::Kind::kConnection, "poll() failed while waiting for the server")};
        case Wait::kReady:
          break;
      }
      if (!PQconsumeInput(conn)) {
        return {std::nullopt, Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn)))};
      }
    }
    ResultPtr result(PQgetResult(conn));
    if (!result) break;
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_SINGLE_TUPLE) {
      // Each row is freed as soon as the sink has seen it.
      if (!first_error) (*sink)(Rows(std::move(result)));
      if (abandon_) {
        abandon_ = false;
        return {std::nullopt, Fail(Error::Kind::kConnection, "the result was abandoned")};
      }
    } else if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
      last = std::move(result);
    } else if (!first_error) {
      const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      Error error{Error::Kind::kSql, state ? state : "",
                  Trimmed(PQresultErrorMessage(result.get()))};
      error.primary = Trimmed(PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY));
      error.hint = Trimmed(PQresultErrorField(result.get(), PG_DIAG_MESSAGE_HINT));
      if (const char* position = PQresultErrorField(result.get(), PG_DIAG_STATEMENT_POSITION)) {
        error.position = std::atoi(position);
      }
      if (error.sqlstate == "57014") error.kind = Error::Kind::kTimeout;  // query_canceled
      if (PQstatus(conn) == CONNECTION_BAD || error.sqlstate.starts_with("08")) {
        error.kind = Error::Kind::kConnection;
      }
      first_error = std::move(error);
    }
  }
  if (PQstatus(conn) == CONNECTION_BAD) {
    auto error =
        first_error.value_or(Error{Error::Kind::kConnection, "", Trimmed(PQerrorMessage(conn))});
    error.kind = Error::Kind::kConnection;
    Close();
    return {std::nullopt, std::move(error)};
  }
  if (first_error) return {std::nullopt, std::move(*first_error)};
  if (!last) {
    return {std::nullopt, Error{Error::Kind::kSql, "", "the statement returned no result"}};
  }
  return {Rows(std::move(last)), {}};
}

QueryOutcome Connection::Exec(std::string_view sql, Clock::time_point deadline,
                              const RowSink* sink) {
  if (!connected()) return {std::nullopt, Fail(Error::Kind::kConnection, "not connected")};
  if (!PQsendQuery(conn_.get(), std::string(sql).c_str())) {
    return {std::nullopt, Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn_.get())))};
  }
  return Await(deadline, sink);
}

QueryOutcome Connection::Describe(std::string_view sql, Clock::time_point deadline) {
  if (!connected()) return {std::nullopt, Fail(Error::Kind::kConnection, "not connected")};
  if (!PQsendPrepare(conn_.get(), "", std::string(sql).c_str(), 0, nullptr)) {
    return {std::nullopt, Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn_.get())))};
  }
  if (auto prepared = Await(deadline, nullptr); !prepared.ok()) return prepared;
  if (!PQsendDescribePrepared(conn_.get(), "")) {
    return {std::nullopt, Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn_.get())))};
  }
  return Await(deadline, nullptr);
}

QueryOutcome Connection::ExecReadOnly(std::string_view sql,
                                      const std::vector<std::string>& arguments,
                                      Millis statement_timeout, Millis lock_timeout,
                                      Clock::time_point deadline, const RowSink* sink) {
  const std::string name = StatementName(sql);
  QueryOutcome outcome;
  // Twice at most: once more when the server's prepared statement is not what we thought.
  for (int attempt = 0; attempt < 2; ++attempt) {
    outcome = ExecPipelined(name, sql, arguments, statement_timeout, lock_timeout, deadline, sink);
    if (outcome.ok() || !connected()) break;
    const std::string& state = outcome.error.sqlstate;
    if (state == "26000") {
      // invalid_sql_statement_name: a pooler handed us a backend that does not know it.
      prepared_.clear();
    } else if (state == "42P05") {
      // duplicate_prepared_statement: an earlier client of this backend (through a pooler)
      // prepared it. Same name, same text: use it.
      prepared_.insert(name);
    } else if (state == "0A000" &&
               outcome.error.message.find("cached plan must not change result type") !=
                   std::string::npos) {
      // A table or view the statement reads changed its columns: prepare it afresh.
      if (!Exec("DEALLOCATE " + name, deadline).ok() && !connected()) break;
      prepared_.erase(name);
    } else {
      break;
    }
  }
  return outcome;
}

QueryOutcome Connection::ExecPipelined(const std::string& name, std::string_view sql,
                                       const std::vector<std::string>& arguments,
                                       Millis statement_timeout, Millis lock_timeout,
                                       Clock::time_point deadline, const RowSink* sink) {
  if (!connected()) return {std::nullopt, Fail(Error::Kind::kConnection, "not connected")};
  PGconn* conn = conn_.get();
  const bool prepare = !prepared_.contains(name);
  const std::string timeouts[] = {std::to_string(std::max<long long>(1, statement_timeout.count())),
                                  std::to_string(std::max<long long>(1, lock_timeout.count()))};
  const char* timeout_values[] = {timeouts[0].c_str(), timeouts[1].c_str()};
  std::vector<const char*> values;
  values.reserve(arguments.size());
  for (const auto& argument : arguments) values.push_back(argument.c_str());
  const int count = static_cast<int>(values.size());
  const auto send = [conn](const char* statement, int n, const char* const* params) {
    return PQsendQueryParams(conn, statement, n, nullptr, params, nullptr, nullptr, 0) == 1;
  };
  const bool sent =
      PQenterPipelineMode(conn) == 1 && send("BEGIN TRANSACTION READ ONLY", 0, nullptr) &&
      send(
          "SELECT set_config('statement_timeout', $1, true), "
          "set_config('lock_timeout', $2, true)",
          2, timeout_values) &&
      (!prepare || PQsendPrepare(conn, name.c_str(), std::string(sql).c_str(), count, nullptr)) &&
      PQsendQueryPrepared(conn, name.c_str(), count, values.data(), nullptr, nullptr, 0) == 1 &&
      send("ROLLBACK", 0, nullptr) && send(kReleaseSessionLocks, 0, nullptr) &&
      PQpipelineSync(conn) == 1;
  if (!sent) return {std::nullopt, Fail(Error::Kind::kConnection, Trimmed(PQerrorMessage(conn)))};

  // The results come in the order the statements went. The first error is the one to report:
  // the server skips every statement after it ("aborted") up to the sync.
  std::optional<Error> first_error;
  const auto step = [&](const RowSink* rows_to) {
    auto outcome = Await(deadline, first_error ? nullptr : rows_to);
    if (!outcome.ok() && !first_error) first_error = outcome.error;
    return outcome;
  };
  step(nullptr);                   // BEGIN
  if (connected()) step(nullptr);  // the timeouts
  if (connected() && prepare && step(nullptr).ok()) prepared_.insert(name);
  std::optional<QueryOutcome> result;
  if (connected()) result = step(sink);
  if (connected()) step(nullptr);  // ROLLBACK
  if (connected()) step(nullptr);  // the session locks
  if (connected() && !AwaitSync(deadline)) {
    first_error = first_error.value_or(Error{Error::Kind::kConnection, "", "the pipeline broke"});
  }
  if (connected()) {
    PQexitPipelineMode(conn);
    // An error left the transaction open (and failed), and the server skipped the rest: end it
    // and release the locks here, or drop the connection.
    if (PQtransactionStatus(conn) != PQTRANS_IDLE &&
        !Exec(fmt::format("ROLLBACK; {}", kReleaseSessionLocks), deadline).ok()) {
      Close();
    }
  }
  if (first_error) {
    // A server error that ended the connection (FATAL, such as 57P01 when the database is
    // dropped) counts as a broken connection. In pipeline mode libpq reports the error before
    // it has seen the connection close.
    if (!connected() && first_error->kind == Error::Kind::kSql) {
      first_error->kind = Error::Kind::kConnection;
    }
    return {std::nullopt, std::move(*first_error)};
  }
  return std::move(*result);
}

bool Connection::AwaitSync(Clock::time_point deadline) {
  PGconn* conn = conn_.get();
  while (true) {
    while (PQisBusy(conn)) {
      if (WaitForSocket(false, deadline) != Wait::kReady || !PQconsumeInput(conn)) {
        Fail(Error::Kind::kConnection, "no answer from the server before the deadline");
        return false;
      }
    }
    ResultPtr result(PQgetResult(conn));
    if (result && PQresultStatus(result.get()) == PGRES_PIPELINE_SYNC) return true;
    if (!result) {
      Fail(Error::Kind::kConnection, "the server's answers ended before the pipeline's sync");
      return false;
    }
  }
}

std::optional<std::string> ReadPasswordFile(const std::string& path, Error& error, Millis timeout) {
  auto read = FileReads().Run<PasswordRead>([path] { return ReadPasswordOnce(path); },
                                            Clock::now() + timeout);
  const auto fail = [&](std::string message) {
    error = {Error::Kind::kConnection, "", std::move(message)};
    return std::nullopt;
  };
  switch (read.status) {
    case DeadlineCalls::Status::kLate:
      return fail(
          fmt::format("the password file {} could not be read within {} ms (a hung "
                      "network file system?)",
                      path, timeout.count()));
    case DeadlineCalls::Status::kBusy:
      return fail(
          fmt::format("the password file {} cannot be read: {} earlier reads have not "
                      "ended (a hung network file system?)",
                      path, FileReads().outstanding()));
    case DeadlineCalls::Status::kDone:
      break;
  }
  if (!read.value->error.empty()) return fail(std::move(read.value->error));
  return std::move(read.value->password);
}

}  // namespace pgtally::pg
