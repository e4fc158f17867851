#include "pgtally/collect/target.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <limits>
#include <set>
#include <thread>

#include "pgtally/collect/family_builder.h"
#include "pgtally/collect/value_parser.h"
#include "pgtally/log/logging.h"
#include "pgtally/pg/dsn.h"

namespace pgtally {
namespace {

using pg::Clock;

constexpr std::string_view kProbeSql =
    "SELECT current_setting('server_version_num')::int, pg_is_in_recovery(), current_database()";
// PgBouncer's admin console answers only SHOW and a few commands; this tells its version.
constexpr std::string_view kPgBouncerProbeSql = "SHOW VERSION";
constexpr std::string_view kDatabasesSql =
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname";

// The role's privileges beyond monitoring: superuser, the attributes that create or bypass,
// and the roles it is a member of other than the monitoring ones.
constexpr std::string_view kPrivilegesSql = R"(SELECT quote_ident(r.rolname), r.rolsuper,
  r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
  array_to_string(ARRAY(
    SELECT quote_ident(g.rolname) FROM pg_roles g
    WHERE g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')
      AND g.rolname NOT IN ('pg_monitor', 'pg_read_all_settings', 'pg_read_all_stats',
                            'pg_stat_scan_tables', 'pg_database_owner')
    ORDER BY 1), ',')
FROM pg_roles r WHERE r.rolname = current_user)";

constexpr Millis kMinBackoff{1000};
constexpr Millis kMaxBackoff{10000};
// The client waits this much longer than statement_timeout before it gives up on the server.
constexpr Millis kClientGrace{500};
// A collector needs at least this much of the scrape's time left to be worth starting.
constexpr Millis kMinQueryBudget{50};
// A report keeps this much of an error message: the page needs the gist, not a whole DETAIL.
constexpr std::size_t kMaxReportedError = 1024;
// The bytes of rows one collector run may receive (cells' text, as the server sent it). Past
// it the result is abandoned, which closes the connection: the server stops sending and libpq's
// input buffer, grown to the largest row, is freed. Rows stream, so memory does not depend on
// it: it bounds how long a runaway result is read. 128 MiB is over twice a million rows of 50
// bytes (which resilience_test streams down to max_series) and ten times a max_series result
// (10,000 rows) of 1 KiB rows.
constexpr std::size_t kMaxResultBytes = 128 << 20;
// A row this large grew libpq's input buffer, which it never shrinks: the connection is closed
// after the collector so that the memory is not held until the next reconnect.
constexpr std::size_t kLargeRowBytes = 1 << 20;

std::size_t RowBytes(const pg::Rows& row) {
  std::size_t bytes = 0;
  for (int column = 0; column < row.columns(); ++column) bytes += row.Get(0, column).size();
  return bytes;
}

class RowsTable final : public Table {
 public:
  explicit RowsTable(const pg::Rows& rows) : rows_(rows) {}
  int rows() const override { return rows_.rows(); }
  int Column(const std::string& name) const override { return rows_.Column(name); }
  std::optional<std::string_view> Get(int row, int column) const override {
    if (rows_.IsNull(row, column)) return std::nullopt;
    return rows_.Get(row, column);
  }

 private:
  const pg::Rows& rows_;
};

}  // namespace

int PgBouncerVersionNum(std::string_view text) {
  int major = 0, minor = 0, patch = 0;
  const auto digits = text.find_first_of("0123456789");
  if (digits != std::string_view::npos) {
    std::sscanf(std::string(text.substr(digits)).c_str(), "%d.%d.%d", &major, &minor, &patch);
  }
  return major * 10000 + minor * 100 + patch;
}

namespace {

ErrorClass Classify(const pg::Error& error) {
  switch (error.kind) {
    case pg::Error::Kind::kTimeout:
      return ErrorClass::kTimeout;
    case pg::Error::Kind::kConnection:
      return ErrorClass::kConnection;
    case pg::Error::Kind::kSql:
      break;
  }
  return ErrorClass::kSql;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Moves the samples of `from` into the families of the same name in `into`.
void Append(std::vector<FamilyText>& into, std::vector<FamilyText> from) {
  for (auto& family : from) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const auto& f) { return f.name == family.name; });
    if (it == into.end()) {
      into.push_back(std::move(family));
    } else {
      it->samples += family.samples;
      it->count += family.count;
    }
  }
}

}  // namespace

// One of a ConnectionLimit's connections, given back when this goes.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(std::shared_ptr<ConnectionLimit> limit) : limit_(std::move(limit)) {}
  ~ConnectionSlot() { limit_->Release(); }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

 private:
  std::shared_ptr<ConnectionLimit> limit_;
};

struct Target::Database {
  explicit Database(pg::ConnectOptions options) : conn(std::move(options)) {}
  // Declared first, so released after the connection below is closed.
  std::unique_ptr<ConnectionSlot> slot;  // held while connected, when connections are bounded
  pg::Connection conn;
  // After an attempt that timed out with the whole connect_timeout to spend, the next waits
  // until then: a server too slow to accept a connection is not sent another at every scrape.
  Clock::time_point retry_after{};
  Millis backoff{0};
  pg::Error last_error;
  std::uint64_t failed_in = 0;  // the scrape of the last failed attempt: not tried again in it
};

struct Target::Fragment {
  std::vector<FamilyText> families;
  std::optional<ErrorClass> error;
  std::string error_message;  // with "database NAME: " first when run on one of several
  bool quiet = false;         // an optional collector's SQL error: skipped, not failed
  bool cached = false;
  std::size_t series = 0;
  std::size_t rows = 0;
  double duration_seconds = 0;
  std::optional<double> omitted;
};

struct Target::CacheEntry {
  Clock::time_point expires;
  Fragment fragment;
};

TargetType TargetTypeOf(const std::string& dsn) {
  return pg::IsPgBouncerConsole(dsn) ? TargetType::kPgBouncer : TargetType::kPostgres;
}

Target::Target(TargetOptions options, std::shared_ptr<const std::vector<CollectorSpec>> collectors,
               SelfMetrics& self_metrics, std::shared_ptr<const pg::Interrupt> interrupt)
    : options_(std::move(options)),
      collectors_(std::move(collectors)),
      self_metrics_(self_metrics),
      interrupt_(interrupt ? std::move(interrupt) : std::make_shared<const pg::Interrupt>()),
      display_name_(pg::RedactDsn(options_.dsn)),
      // postgres_exporter's "server" label, for collectors that ask for it: libpq's defaults
      // are not applied, exactly as postgres_exporter does not apply them.
      server_address_(pg::DsnValue(options_.dsn, "host").value_or("localhost") + ":" +
                      pg::DsnValue(options_.dsn, "port").value_or("5432")),
      type_(TargetTypeOf(options_.dsn)) {}

Target::~Target() = default;

std::optional<std::string> Target::ReadPassword(std::optional<pg::Error>& error) {
  if (options_.password_file.empty()) return std::nullopt;
  pg::Error failure;
  auto password = pg::ReadPasswordFile(options_.password_file, failure, options_.connect_timeout);
  if (!password) {
    error = std::move(failure);
    return std::nullopt;
  }
  std::lock_guard lock(state_mutex_);
  if (*password != last_password_) {
    AddSecret(*password);
    if (!last_password_.empty()) {
      spdlog::info("password file changed; new connections use the new password: target={} file={}",
                   Quoted(display_name_), Quoted(options_.password_file));
    }
    last_password_ = *password;
  }
  return password;
}

namespace {

// Whether a failed connection attempt to `dbname` says something about that database alone
// (it does not exist, no CONNECT privilege, a pg_hba.conf line for it) rather than the whole
// server (too many clients, authentication, the network). The server's messages are in its own
// language, but they quote the database's name when it is the cause; libpq's own prefix, which
// quotes the host, is left out.
bool AboutDatabase(const pg::Error& error, const std::string& dbname) {
  if (dbname.empty()) return false;
  std::string_view message = error.message;
  if (const auto failed = message.find(" failed: "); failed != std::string_view::npos) {
    message.remove_prefix(failed);
  }
  return message.find('"' + dbname + '"') != std::string_view::npos;
}

}  // namespace

pg::Connection* Target::Connect(const std::string& dbname, Clock::time_point deadline,
                                std::optional<pg::Error>& error) {
  // In the parallel phase every entry exists already (see Scrape), so this only reads the map.
  auto& db = databases_[dbname];
  if (!db) {
    db = std::make_unique<Database>(
        pg::ConnectOptions{options_.dsn, dbname, options_.connect_timeout, interrupt_});
  }
  // A connection kept from an earlier scrape that the server closed since (it restarted, or
  // ended the backend) is replaced now rather than failing the next collector.
  db->conn.CloseIfClosedByServer();
  if (db->conn.connected()) return &db->conn;
  const auto now = Clock::now();
  if (now < db->retry_after || db->failed_in == scrape_number_) {
    error = db->last_error;
    return nullptr;
  }
  {
    std::lock_guard lock(state_mutex_);
    if (refused_) {
      error = refused_;
      return nullptr;
    }
  }
  if (const auto& limit = options_.connection_limit; limit && !db->slot) {
    if (const ConnectionLimit* exhausted = limit->TryAcquire()) {
      // Not a failure of this server: no backoff, the next scrape may find a free connection.
      error = pg::Error{pg::Error::Kind::kConnection, "",
                        fmt::format("all {} connections that pgtally may open are in use ({})",
                                    exhausted->max(), exhausted->setting())};
      NoteConnectFailure(dbname, *error, /*refused=*/false);
      return nullptr;
    }
    db->slot = std::make_unique<ConnectionSlot>(limit);
  }
  const auto attempt_deadline = std::min(deadline, now + options_.connect_timeout);
  std::optional<pg::Error> failure;
  const auto password = ReadPassword(failure);
  if (!failure) failure = db->conn.Connect(attempt_deadline, password);
  if (failure) {
    db->slot.reset();
    db->failed_in = scrape_number_;
    // Only a timeout the server caused backs off: one cut short by a scrape's own deadline says
    // nothing about the server (and is not logged as its failure), and a refusal is cheap to
    // ask again at the next scrape.
    const bool timeout = failure->kind == pg::Error::Kind::kTimeout;
    const bool ours =
        timeout && (attempt_deadline < now + options_.connect_timeout || interrupt_->triggered());
    db->backoff =
        timeout && !ours ? std::clamp(db->backoff * 2, kMinBackoff, kMaxBackoff) : Millis(0);
    db->retry_after = now + db->backoff;
    db->last_error = *failure;
    if (!ours) NoteConnectFailure(dbname, *failure, !AboutDatabase(*failure, dbname));
    error = std::move(failure);
    return nullptr;
  }
  db->backoff = Millis(0);
  db->retry_after = {};
  if (dbname.empty()) check_privileges_ = true;
  std::lock_guard lock(state_mutex_);
  const auto forgotten = std::erase_if(logged_failures_, [&](const auto& logged) {
    return logged.second.empty() || logged.second == dbname;
  });
  if (forgotten > 0) spdlog::info("connecting works again: target={}", Quoted(display_name_));
  return &db->conn;
}

void Target::Disconnect(const std::string& dbname) {
  if (auto it = databases_.find(dbname); it != databases_.end()) {
    it->second->conn.Close();
    it->second->slot.reset();
  }
}

void Target::NoteConnectFailure(const std::string& dbname, const pg::Error& error, bool refused) {
  std::lock_guard lock(state_mutex_);
  if (refused && !refused_) refused_ = error;
  // A refusal of the whole server is forgotten when any connection succeeds, one about a
  // database when a connection to that database does.
  const bool about_database = !refused && AboutDatabase(error, dbname);
  if (logged_failures_.emplace(error.message, about_database ? dbname : "").second) {
    spdlog::warn(
        "cannot connect: target={} database={} error={} (logged once until a connection "
        "succeeds{})",
        Quoted(display_name_), Quoted(dbname.empty() ? "-" : dbname), Quoted(error.message),
        refused ? "; no more attempts in this scrape" : "");
  }
}

void Target::CheckPrivileges(pg::Connection& conn, Clock::time_point deadline) {
  check_privileges_ = false;
  auto outcome = conn.Exec(kPrivilegesSql, deadline);
  if (!outcome.ok() || outcome.rows->rows() != 1) return;  // not worth failing a scrape over
  const pg::Rows& row = *outcome.rows;
  std::string warning;
  const std::string role(row.Get(0, 0));
  if (row.Get(0, 1) == "t") {
    warning = fmt::format(
        "role {} is a superuser: a collector can do anything, even past pgtally's checks; "
        "connect as a role with only pg_monitor (CREATE ROLE ... LOGIN IN ROLE pg_monitor)",
        role);
  } else {
    std::vector<std::string> extra;
    const char* attributes[] = {"CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS"};
    for (int i = 0; i < 4; ++i) {
      if (row.Get(0, 2 + i) == "t")
        extra.push_back(fmt::format("ALTER ROLE {} NO{}", role, attributes[i]));
    }
    std::string_view roles = row.Get(0, 6);
    while (!roles.empty()) {
      const auto comma = roles.find(',');
      extra.push_back(fmt::format("REVOKE {} FROM {}", roles.substr(0, comma), role));
      roles.remove_prefix(comma == std::string_view::npos ? roles.size() : comma + 1);
    }
    if (!extra.empty()) {
      warning = fmt::format("role {} may do more than monitoring needs; drop it with: {}", role,
                            fmt::join(extra, "; "));
    }
  }
  if (warning != privilege_warning_ && !warning.empty()) {
    spdlog::warn("connected with more privileges than monitoring needs: target={} advice={}",
                 Quoted(display_name_), Quoted(warning));
  }
  privilege_warning_ = std::move(warning);
}

std::optional<std::vector<std::string>> Target::ListDatabases(pg::Connection& conn,
                                                              Clock::time_point deadline) {
  auto outcome = conn.Exec(kDatabasesSql, deadline);
  if (!outcome.ok()) {
    spdlog::warn("cannot list databases: target={} error={}", Quoted(display_name_),
                 Quoted(outcome.error.message));
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (int row = 0; row < outcome.rows->rows(); ++row) {
    std::string name(outcome.rows->Get(row, 0));
    if (options_.include_databases && !std::regex_match(name, *options_.include_databases)) {
      continue;
    }
    if (options_.exclude_databases && std::regex_match(name, *options_.exclude_databases)) continue;
    names.push_back(std::move(name));
  }
  return names;
}

const std::vector<std::string>& Target::Databases(Clock::time_point deadline) {
  const auto now = Clock::now();
  if (listed_at_ && now - *listed_at_ < options_.discovery_interval) return database_list_;
  auto listed = ListDatabases(databases_[""]->conn, deadline);
  if (!listed) return database_list_;  // keep the last list; try again next scrape
  database_list_ = std::move(*listed);
  listed_at_ = now;
  // Close connections to, and forget cached results of, databases that are gone or filtered out.
  const std::set<std::string> present(database_list_.begin(), database_list_.end());
  std::erase_if(databases_, [&](const auto& entry) {
    return !entry.first.empty() && !present.contains(entry.first);
  });
  std::erase_if(cache_, [&](const auto& entry) {
    return !entry.first.second.empty() && !present.contains(entry.first.second);
  });
  std::erase_if(unavailable_, [&](const auto& entry) {
    return !entry.second.empty() && !present.contains(entry.second);
  });
  return database_list_;
}

pg::QueryOutcome Target::Query(pg::Connection& conn, const CollectorSpec& spec,
                               const QueryVariant& query, Millis timeout, const pg::RowSink& sink) {
  if (type_ == TargetType::kPgBouncer) {
    // No transactions and no statement_timeout on the admin console: the client deadline is all.
    return conn.Exec(query.sql, Clock::now() + timeout, &sink);
  }
  return conn.ExecReadOnly(query.sql, spec.Arguments(query), timeout, options_.lock_timeout,
                           Clock::now() + timeout + kClientGrace, &sink);
}

void Target::NoteAvailability(const CollectorSpec& spec, const std::string& datname,
                              const pg::Error* error) {
  const auto key = std::make_pair(spec.name, datname);
  const std::string database = datname.empty() ? "-" : datname;
  std::lock_guard lock(state_mutex_);
  if (error && unavailable_.insert(key).second) {
    spdlog::info(
        "optional collector unavailable, skipping it until it works: target={} collector={} "
        "database={} error={}",
        Quoted(display_name_), spec.name, Quoted(database), Quoted(error->message));
  } else if (!error && unavailable_.erase(key) > 0) {
    spdlog::info("optional collector available again: target={} collector={} database={}",
                 Quoted(display_name_), spec.name, Quoted(database));
  }
}

void Target::LogFailure(const CollectorSpec& spec, const std::string& dbname,
                        const pg::Error& error, const std::string& at) {
  spdlog::warn("collector failed: target={} collector={} database={} error={}{}",
               Quoted(display_name_), spec.name, Quoted(dbname.empty() ? "-" : dbname),
               Quoted(error.message), at.empty() ? "" : " at=" + Quoted(at));
}

Target::Fragment Target::Run(const CollectorSpec& spec, const QueryVariant& query,
                             const std::string& dbname, const std::string& datname_label,
                             Clock::time_point deadline) {
  Fragment fragment;
  const auto cache_key = std::make_pair(spec.name, datname_label);
  const auto start = Clock::now();
  if (spec.cache_ttl.count() > 0) {
    std::lock_guard lock(state_mutex_);
    if (auto it = cache_.find(cache_key); it != cache_.end() && start < it->second->expires) {
      Fragment cached = it->second->fragment;
      cached.cached = true;
      return cached;
    }
    cache_.erase(cache_key);
  }

  bool logged_elsewhere = false;
  const auto fail = [&](ErrorClass error_class, const pg::Error& error) {
    // Where the server found the problem, as a place in the collector file, when it said.
    const std::string at = error.kind == pg::Error::Kind::kSql && error.position > 0
                               ? query.Locate(error.position).ToString()
                               : "";
    fragment.error = error_class;
    fragment.error_message = datname_label.empty()
                                 ? error.message
                                 : fmt::format("database {}: {}", datname_label, error.message);
    // "file:line:column: message", as compilers put it.
    if (!at.empty()) fragment.error_message = at + ": " + fragment.error_message;
    // The database may have been dropped: read the list again on the next scrape.
    if (error_class == ErrorClass::kConnection && !dbname.empty()) {
      std::lock_guard lock(state_mutex_);
      listed_at_.reset();
    }
    fragment.duration_seconds = SecondsSince(start);
    if (spec.optional && error_class == ErrorClass::kSql) {
      fragment.quiet = true;
      NoteAvailability(spec, datname_label, &error);
      return fragment;
    }
    self_metrics_.CountError(spec.name, error_class);
    // Connection failures are logged by cause as they happen (NoteConnectFailure), runs past
    // the deadline at the end of the scrape: not once for every collector of every database.
    if (!logged_elsewhere) LogFailure(spec, datname_label, error, at);
    return fragment;
  };

  const auto time_left = [&] {
    return std::chrono::duration_cast<Millis>(deadline - Clock::now()) - kClientGrace;
  };
  // Past the deadline every run left fails the same way: counted, and logged once per scrape.
  const auto too_late = [&] {
    ++runs_past_deadline_;
    logged_elsewhere = true;
    return fail(ErrorClass::kTimeout, {pg::Error::Kind::kTimeout, "",
                                       "the scrape deadline passed before the collector ran"});
  };
  if (time_left() < kMinQueryBudget) return too_late();
  std::optional<pg::Error> connect_error;
  pg::Connection* conn = Connect(dbname, deadline, connect_error);
  if (!conn) {
    if (time_left() < kMinQueryBudget) return too_late();
    logged_elsewhere = true;
    return fail(ErrorClass::kConnection, *connect_error);
  }
  const auto budget = time_left();
  if (budget < kMinQueryBudget) return too_late();
  const Millis statement_timeout =
      std::min(spec.timeout.value_or(options_.default_timeout), budget);

  // Rows stream into the builder one at a time, so a query returning millions of rows costs
  // memory only for the series kept (max_series), not for the whole result.
  FamilyBuilder builder(spec);
  std::vector<prometheus::ClientMetric::Label> extra_labels;
  if (spec.scope == Scope::kDatabase) extra_labels.push_back({"datname", datname_label});
  if (!spec.target_label.empty()) extra_labels.push_back({spec.target_label, server_address_});
  bool first_row = true;
  std::optional<std::string> mapping_error;
  std::size_t received = 0;
  std::size_t largest_row = 0;
  const pg::RowSink sink = [&](const pg::Rows& row) {
    const std::size_t bytes = RowBytes(row);
    received += bytes;
    largest_row = std::max(largest_row, bytes);
    if (received > kMaxResultBytes) {
      conn->Abandon();
      return;
    }
    ++fragment.rows;
    const RowsTable table(row);
    if (first_row) {
      first_row = false;
      mapping_error = builder.Begin(table, extra_labels);
      if (!spec.omitted_rows_column.empty()) {
        if (const int column = table.Column(spec.omitted_rows_column); column >= 0) {
          fragment.omitted = ParsePgNumber(table.Get(0, column).value_or("")).value_or(0);
        }
      }
    }
    if (!mapping_error) builder.AddRow(table, 0);
  };
  auto outcome = Query(*conn, spec, query, statement_timeout, sink);
  if (largest_row >= kLargeRowBytes) conn->Close();
  if (received > kMaxResultBytes) {
    return fail(ErrorClass::kLimit,
                {pg::Error::Kind::kConnection, "",
                 fmt::format("the result passed {} MiB; pgtally stopped reading it and closed "
                             "the connection",
                             kMaxResultBytes >> 20)});
  }
  if (!outcome.ok()) return fail(Classify(outcome.error), outcome.error);
  if (spec.optional) NoteAvailability(spec, datname_label, nullptr);
  // With no rows the columns are still checked, on the empty result.
  if (first_row) mapping_error = builder.Begin(RowsTable(*outcome.rows), extra_labels);
  if (mapping_error) return fail(ErrorClass::kMapping, {pg::Error::Kind::kSql, "", *mapping_error});
  if (!spec.omitted_rows_column.empty()) {
    if (outcome.rows->Column(spec.omitted_rows_column) < 0) {
      return fail(ErrorClass::kMapping, {pg::Error::Kind::kSql, "",
                                         "omitted_rows_column \"" + spec.omitted_rows_column +
                                             "\" is not in the result"});
    }
    fragment.omitted = fragment.omitted.value_or(0);
  }
  const auto& drops = builder.drops();
  const auto count = [&](DropReason reason, std::size_t dropped) {
    if (dropped > 0) self_metrics_.CountDropped(spec.name, reason, static_cast<double>(dropped));
  };
  count(DropReason::kDuplicate, drops.duplicate);
  count(DropReason::kInvalidValue, drops.invalid_value);
  count(DropReason::kLimit, drops.limit);
  count(DropReason::kTooLarge, drops.too_large);
  if (drops.limit) {
    self_metrics_.CountError(spec.name, ErrorClass::kLimit);
    spdlog::warn(
        "collector over its series limit: target={} collector={} database={} max_series={} "
        "dropped={}",
        Quoted(display_name_), spec.name, Quoted(datname_label.empty() ? "-" : datname_label),
        spec.max_series, drops.limit);
  }
  fragment.series = builder.series();
  fragment.families = builder.Take();
  fragment.duration_seconds = SecondsSince(start);
  if (spec.cache_ttl.count() > 0) {
    std::lock_guard lock(state_mutex_);
    cache_[cache_key] = std::make_unique<CacheEntry>(CacheEntry{start + spec.cache_ttl, fragment});
  }
  return fragment;
}

std::vector<std::vector<Target::Fragment>> Target::RunOnDatabases(
    const std::vector<std::string>& databases, const std::string& own_database,
    const std::vector<const CollectorSpec*>& specs, int server_version,
    const ScrapeDeadline& deadline) {
  const auto key = [&](const std::string& db) { return db == own_database ? "" : db; };
  for (const auto& db : databases) {
    // Created here so that the workers only look entries up (see Connect).
    auto& entry = databases_[key(db)];
    if (!entry) {
      entry = std::make_unique<Database>(
          pg::ConnectOptions{options_.dsn, key(db), options_.connect_timeout, interrupt_});
    }
  }
  // Within the connection budget the DSN's connection and one per database stay open from
  // scrape to scrape. Beyond it, the databases are visited in turn over budget - 1
  // connections, each closed when its database is done.
  const int budget = options_.connection_limit ? options_.connection_limit->max()
                                               : std::numeric_limits<int>::max();
  const auto others = static_cast<std::size_t>(std::count_if(
      databases.begin(), databases.end(), [&](const auto& db) { return !key(db).empty(); }));
  const bool keep_open = others < static_cast<std::size_t>(budget);
  if (!keep_open) {
    for (auto& [name, entry] : databases_) {
      if (!name.empty()) Disconnect(name);
    }
  }
  std::vector<std::vector<Fragment>> by_database(databases.size());
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t d; (d = next++) < databases.size();) {
      const std::string& db = databases[d];
      for (const CollectorSpec* spec : specs) {
        by_database[d].push_back(Run(*spec, *spec->QueryFor(server_version), key(db), db,
                                     interrupt_->Cap(deadline.get())));
      }
      if (!keep_open && !key(db).empty()) Disconnect(db);
    }
  };
  const std::size_t workers =
      std::min<std::size_t>({static_cast<std::size_t>(std::max(options_.database_parallelism, 1)),
                             databases.size(), static_cast<std::size_t>(std::max(budget - 1, 1))});
  std::vector<std::jthread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  pool.clear();  // joins
  return by_database;
}

std::optional<pg::QueryOutcome> Target::Probe(Clock::time_point deadline,
                                              std::optional<pg::Error>& error) {
  const std::string_view probe_sql =
      type_ == TargetType::kPgBouncer ? kPgBouncerProbeSql : kProbeSql;
  std::optional<pg::QueryOutcome> probe;
  if (pg::Connection* conn = Connect("", deadline, error)) {
    probe = conn->Exec(probe_sql, deadline);
    // A connection that broke since the last scrape (say, the server restarted) only shows it
    // now: try a fresh one at once rather than report the server down for a whole scrape.
    if (!probe->ok() && probe->error.kind == pg::Error::Kind::kConnection) {
      probe.reset();
      if ((conn = Connect("", deadline, error))) probe = conn->Exec(probe_sql, deadline);
    }
    if (probe && !probe->ok()) error = probe->error;
    if (conn && probe && probe->ok() && check_privileges_ && type_ == TargetType::kPostgres) {
      CheckPrivileges(*conn, deadline);
    }
  }
  if (probe && probe->ok()) return probe;
  return std::nullopt;
}

TargetScrape Target::Scrape(const ScrapeDeadline& deadline) {
  ++scrape_number_;
  {
    std::lock_guard lock(state_mutex_);
    refused_.reset();
  }
  TargetScrape scrape;
  scrape.type = type_;
  const bool bouncer = type_ == TargetType::kPgBouncer;
  const auto probe_deadline =
      std::min(interrupt_->Cap(deadline.get()), Clock::now() + options_.connect_timeout);
  std::optional<pg::Error> error;
  const auto probe = Probe(probe_deadline, error);
  if (!probe) {
    if (was_up_) {
      spdlog::warn("database down: target={} error={}", Quoted(display_name_),
                   Quoted(error ? error->message : ""));
    }
    was_up_ = false;
    scrape.error = error ? error->message : "";
    if (const auto& main = databases_[""]; main && Clock::now() < main->retry_after) {
      scrape.backing_off_until = main->retry_after;
    }
    return scrape;
  }
  if (!was_up_) spdlog::info("database up: target={}", Quoted(display_name_));
  was_up_ = scrape.up = true;
  scrape.privilege_warning = privilege_warning_;
  const std::string version_text(probe->rows->rows() > 0 ? probe->rows->Get(0, 0) : "");
  const int server_version =
      bouncer ? PgBouncerVersionNum(version_text) : std::atoi(version_text.c_str());
  const bool in_recovery = !bouncer && probe->rows->Get(0, 1) == "t";
  scrape.server_version = server_version;
  scrape.in_recovery = in_recovery;
  if (was_in_recovery_ && *was_in_recovery_ != in_recovery) {
    // A failover or promotion: role: primary/standby collectors switch from this scrape on.
    spdlog::info("recovery state changed: target={} in_recovery={}", Quoted(display_name_),
                 in_recovery);
  }
  was_in_recovery_ = in_recovery;
  const std::string own_database(bouncer ? "" : probe->rows->Get(0, 2));

  const auto applies = [&](const CollectorSpec& spec) {
    return spec.QueryFor(server_version) != nullptr && spec.RunsOn(in_recovery);
  };
  static const std::vector<std::string> kNoDatabases;
  const std::vector<std::string>& databases =
      std::any_of(collectors_->begin(), collectors_->end(),
                  [&](const auto& spec) { return spec.scope == Scope::kDatabase && applies(spec); })
          ? Databases(probe_deadline)
          : kNoDatabases;

  // Server collectors run in order on the DSN's connection; database collectors then run on
  // every database (RunOnDatabases).
  std::vector<std::size_t> per_database;  // indexes of the database collectors that apply
  std::vector<std::vector<Fragment>> fragments(collectors_->size());
  const auto& specs = *collectors_;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (!applies(specs[i])) continue;
    if (specs[i].scope == Scope::kDatabase) {
      per_database.push_back(i);
    } else {
      fragments[i].push_back(Run(specs[i], *specs[i].QueryFor(server_version), "", "",
                                 interrupt_->Cap(deadline.get())));
    }
  }
  if (!per_database.empty() && !databases.empty()) {
    std::vector<const CollectorSpec*> database_specs;
    for (const std::size_t i : per_database) database_specs.push_back(&specs[i]);
    auto by_database =
        RunOnDatabases(databases, own_database, database_specs, server_version, deadline);
    for (auto& runs : by_database) {
      for (std::size_t k = 0; k < per_database.size(); ++k) {
        fragments[per_database[k]].push_back(std::move(runs[k]));
      }
    }
  }

  if (const auto late = runs_past_deadline_.exchange(0); late > 0) {
    spdlog::warn(
        "scrape deadline passed before every collector ran: target={} runs_skipped={} (raise "
        "the scraper's scrape_timeout, or set cache_ttl on slow collectors)",
        Quoted(display_name_), late);
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    CollectorReport report;
    report.collector = spec.name;
    if (!applies(spec)) {
      report.skip_reason = spec.QueryFor(server_version) ? "role" : "version";
      scrape.reports.push_back(std::move(report));
      continue;
    }
    bool failed = false;
    bool all_quiet = !fragments[i].empty();
    report.cached = !fragments[i].empty();
    const Fragment* first_error = nullptr;
    for (auto& fragment : fragments[i]) {
      report.duration_seconds += fragment.duration_seconds;
      report.series += fragment.series;
      report.rows += fragment.rows;
      report.cached = report.cached && fragment.cached;
      if (fragment.omitted)
        report.rows_omitted = report.rows_omitted.value_or(0) + *fragment.omitted;
      failed = failed || (fragment.error && !fragment.quiet);
      all_quiet = all_quiet && fragment.quiet;
      if (fragment.error && (!first_error || (first_error->quiet && !fragment.quiet))) {
        first_error = &fragment;
      }
      Append(scrape.families, std::move(fragment.families));
    }
    if (first_error) {
      report.error_class = first_error->error;
      // Masked as log lines are: a SQL error can quote the text it choked on.
      report.error =
          SanitizeUtf8(ScrubSecrets(first_error->error_message).substr(0, kMaxReportedError));
    }
    if (failed) {
      report.state = CollectorReport::State::kFailed;
    } else if (all_quiet) {
      report.skip_reason = "unavailable";
    } else {
      report.state = CollectorReport::State::kSuccess;
    }
    scrape.reports.push_back(std::move(report));
  }
  return scrape;
}

}  // namespace pgtally
