#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "pgtally/config/duration.h"
#include "pgtally/pg/host_resolver.h"

namespace pgtally::pg {

using Clock = std::chrono::steady_clock;

struct ConnDeleter {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// Why a query or connection attempt failed. Messages never contain the password.
struct Error {
  enum class Kind {
    kTimeout,     // statement_timeout fired, or the client deadline passed
    kSql,         // the server rejected the statement
    kConnection,  // no connection, or it broke
  };
  Kind kind = Kind::kSql;
  std::string sqlstate;  // five characters for server errors, empty otherwise
  std::string message;
  // For server errors: the one-line message without "ERROR:" and context, the server's hint,
  // and where in the statement it found the problem (1-based, in characters; 0 when it did not
  // say). Initialised here so that Error{kind, sqlstate, message} may leave them out.
  std::string primary{};
  std::string hint{};
  int position = 0;
};

// A query's rows, read-only. Owns the PGresult.
class Rows {
 public:
  explicit Rows(ResultPtr result) : result_(std::move(result)) {}

  int rows() const { return PQntuples(result_.get()); }
  int columns() const { return PQnfields(result_.get()); }
  // The column's index, or -1 when the result has no such column.
  int Column(const std::string& name) const {
    return PQfnumber(result_.get(), ("\"" + name + "\"").c_str());
  }
  std::string_view ColumnName(int column) const { return PQfname(result_.get(), column); }
  // The column's type OID (for a domain, its base type's: that is what the server sends).
  Oid ColumnType(int column) const { return PQftype(result_.get(), column); }
  bool IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::string_view Get(int row, int column) const {
    return {PQgetvalue(result_.get(), row, column),
            static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
  }

 private:
  ResultPtr result_;
};

// Receives a streamed statement's rows one at a time (rows() == 1), as they arrive, so that
// no more than one row is held however large the result: libpq's single-row mode.
using RowSink = std::function<void(const Rows& row)>;

// Rows, or the error that prevented them. A streamed statement's rows went to its sink; these
// then hold none, only the column names.
struct QueryOutcome {
  std::optional<Rows> rows;
  Error error;

  bool ok() const { return rows.has_value(); }
};

// Lets one thread cut short the network waits of connections that other threads are using:
// after Trigger(at), every wait of a connection sharing this object ends by `at` at the latest,
// however far off its own deadline is. Used to bound a scrape in flight when pgtally stops.
// Thread-safe.
class Interrupt {
 public:
  Interrupt();
  ~Interrupt();
  Interrupt(const Interrupt&) = delete;
  Interrupt& operator=(const Interrupt&) = delete;

  void Trigger(Clock::time_point at);
  bool triggered() const {
    return at_.load() != Clock::time_point::max().time_since_epoch().count();
  }
  // The earlier of `deadline` and the triggered time.
  Clock::time_point Cap(Clock::time_point deadline) const;
  // Becomes readable once triggered, for poll().
  int fd() const { return fd_; }

 private:
  std::atomic<Clock::rep> at_;
  int fd_;
};

struct ConnectOptions {
  std::string dsn;     // as the user gave it
  std::string dbname;  // empty: the DSN's database
  Millis connect_timeout{5000};
  std::shared_ptr<const Interrupt> interrupt;  // optional
  // Looks host names up within the connect deadline; null: HostResolver::System().
  HostResolver* resolver = nullptr;
};

// One libpq connection to one database. Every wait on the network has a deadline: connecting
// and querying use libpq's asynchronous API and poll(), so a hung server or network costs at
// most the deadline. A connection that misses a deadline or breaks is closed; the owner decides
// when to connect again. Not thread-safe: one scrape at a time uses a connection.
class Connection {
 public:
  explicit Connection(ConnectOptions options);

  // Connects (closing any previous connection). On failure returns the error and stays closed.
  // A `password` overrides the DSN's.
  std::optional<Error> Connect(Clock::time_point deadline,
                               const std::optional<std::string>& password = std::nullopt);
  bool connected() const;
  // Closes the connection if the server sent anything while it was idle between statements:
  // only its end does (a restart, a terminated backend), so the next statement would fail.
  // One poll() that does not wait.
  void CloseIfClosedByServer();
  void Close() {
    conn_.reset();
    prepared_.clear();
  }

  // One statement with the simple query protocol, outside any transaction we open. With a
  // `sink`, the rows stream to it.
  QueryOutcome Exec(std::string_view sql, Clock::time_point deadline,
                    const RowSink* sink = nullptr);

  // One statement through the extended protocol (which refuses multiple statements) inside
  // BEGIN READ ONLY with statement_timeout and lock_timeout set for that transaction only.
  // `arguments` are bound as text to $1, $2, ... With a `sink`, the rows stream to it; when the
  // statement fails part way, the sink has seen some of them.
  //
  // The statement is prepared on first use and kept for the life of the connection, so the
  // server plans it once, not on every scrape (on catalog queries, planning took a third of
  // the SQL time). Statement names derive from the text, so a pooler that hands the connection
  // another backend is handled: a missing statement is prepared again, an existing one reused.
  // All of it (begin, timeouts, prepare, execute, rollback, then releasing any session-level
  // advisory lock the statement took, which a rollback keeps) takes one round trip, not six.
  QueryOutcome ExecReadOnly(std::string_view sql, const std::vector<std::string>& arguments,
                            Millis statement_timeout, Millis lock_timeout,
                            Clock::time_point deadline, const RowSink* sink = nullptr);

  // The columns `sql` would return, without running it: the statement is prepared as the
  // unnamed statement (parsed and analysed, neither planned nor executed) and described, so the
  // rows hold no data, only the column names and types. Parameters ($1, ...) get the types the
  // server infers, as when the statement is prepared for a scrape. Two round trips.
  QueryOutcome Describe(std::string_view sql, Clock::time_point deadline);

  // For a RowSink: stop reading the statement's result. Once the sink returns, the connection
  // is closed (the server stops sending at its next write; libpq's input buffer is freed) and
  // the statement fails with kConnection.
  void Abandon() { abandon_ = true; }

  const ConnectOptions& options() const { return options_; }

 private:
  // Waits for the query in flight to finish; returns its last result or the first error.
  // With a `sink`, switches to single-row mode and hands it every row.
  QueryOutcome Await(Clock::time_point deadline, const RowSink* sink);
  Error Fail(Error::Kind kind, std::string message);
  enum class Wait { kReady, kTimeout, kError };
  Wait WaitForSocket(bool for_write, Clock::time_point deadline) const;

  // One round trip: BEGIN READ ONLY, the timeouts, the statement (prepared first unless this
  // connection did already) and ROLLBACK, sent together in libpq's pipeline mode.
  QueryOutcome ExecPipelined(const std::string& name, std::string_view sql,
                             const std::vector<std::string>& arguments, Millis statement_timeout,
                             Millis lock_timeout, Clock::time_point deadline, const RowSink* sink);
  // Reads up to the pipeline's sync point; false (and the connection closed) if it never comes.
  bool AwaitSync(Clock::time_point deadline);

  ConnectOptions options_;
  ConnPtr conn_;
  std::unordered_set<std::string> prepared_;  // statement names, for this conn_ only
  bool abandon_ = false;                      // set by Abandon, for Await
};

// The largest password file read. Passwords are short, but cloud IAM tokens used as passwords
// (RDS, Entra ID) run to a few KiB; a file any larger is a mistake, and reading it whole at every
// connection (then SASLprep and SCRAM over all of it) cost minutes.
inline constexpr std::size_t kMaxPasswordFileBytes = 16 * 1024;

// The password stored in the file at `path`, without trailing line breaks (as echo or a
// Kubernetes Secret may leave them). Nullopt, with `error` set, when it cannot be read, is empty,
// is not a regular file (a FIFO would block), is larger than kMaxPasswordFileBytes (refused from
// its size, unread), or cannot be read within `timeout` (a hung network mount).
//
// A file whose identity, size and times are those of the last read of `path` is not read again:
// its content is remembered. A changed (rotated, replaced) file is read afresh.
std::optional<std::string> ReadPasswordFile(const std::string& path, Error& error,
                                            Millis timeout = Millis(2000));

}  // namespace pgtally::pg
