#include "pgtally/collect/target.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
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
  Clock::time_point retry_after{};
  Millis backoff{0};
  pg::Error last_error;
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

pg::Connection* Target::Connect(const std::string& dbname, Clock::time_point deadline,
                                std::optional<pg::Error>& error) {
  // In the parallel phase every entry exists already (see Scrape), so this only reads the map.
  auto& db = databases_[dbname];
  if (!db) {
    db = std::make_unique<Database>(
        pg::ConnectOptions{options_.dsn, dbname, options_.connect_timeout, interrupt_});
  }
  if (db->conn.connected()) return &db->conn;
  const auto now = Clock::now();
  if (now < db->retry_after) {
    error = db->last_error;
    return nullptr;
  }
  if (const auto& limit = options_.connection_limit; limit && !db->slot) {
    if (!limit->TryAcquire()) {
      // Not a failure of this server: no backoff, the next scrape may find a free connection.
      error = pg::Error{pg::Error::Kind::kConnection, "",
                        fmt::format("all {} connections that pgtally may open are in use "
                                    "(probe.max_connections)",
                                    limit->max())};
      return nullptr;
    }
    db->slot = std::make_unique<ConnectionSlot>(limit);
  }
  std::optional<pg::Error> failure;
  const auto password = ReadPassword(failure);
  if (!failure) {
    failure = db->conn.Connect(std::min(deadline, now + options_.connect_timeout), password);
  }
  if (failure) {
    db->slot.reset();
    db->backoff = std::clamp(db->backoff * 2, kMinBackoff, kMaxBackoff);
    db->retry_after = now + db->backoff;
    db->last_error = *failure;
    error = std::move(failure);
    return nullptr;
  }
  db->backoff = Millis(0);
  return &db->conn;
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
    LogFailure(spec, datname_label, error, at);
    return fragment;
  };

  std::optional<pg::Error> connect_error;
  pg::Connection* conn = Connect(dbname, deadline, connect_error);
  if (!conn) return fail(ErrorClass::kConnection, *connect_error);

  const auto budget = std::chrono::duration_cast<Millis>(deadline - Clock::now()) - kClientGrace;
  if (budget < kMinQueryBudget) {
    return fail(ErrorClass::kTimeout, {pg::Error::Kind::kTimeout, "",
                                       "the scrape deadline passed before the collector ran"});
  }
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

TargetScrape Target::Scrape(Clock::time_point deadline) {
  deadline = interrupt_->Cap(deadline);
  TargetScrape scrape;
  scrape.type = type_;
  const bool bouncer = type_ == TargetType::kPgBouncer;
  const std::string_view probe_sql = bouncer ? kPgBouncerProbeSql : kProbeSql;
  const auto probe_deadline = std::min(deadline, Clock::now() + options_.connect_timeout);
  std::optional<pg::Error> error;
  std::optional<pg::QueryOutcome> probe;
  if (pg::Connection* conn = Connect("", deadline, error)) {
    probe = conn->Exec(probe_sql, probe_deadline);
    // A connection that broke since the last scrape (say, the server restarted) only shows it
    // now: try a fresh one at once rather than report the server down for a whole scrape.
    if (!probe->ok() && probe->error.kind == pg::Error::Kind::kConnection) {
      probe.reset();
      if ((conn = Connect("", deadline, error))) probe = conn->Exec(probe_sql, probe_deadline);
    }
    if (probe && !probe->ok()) error = probe->error;
  }
  if (!probe || !probe->ok()) {
    if (was_up_) {
      spdlog::warn("database down: target={} error={}", Quoted(display_name_),
                   Quoted(error ? error->message : ""));
    }
    was_up_ = false;
    scrape.error = error ? error->message : "";
    return scrape;
  }
  if (!was_up_) spdlog::info("database up: target={}", Quoted(display_name_));
  was_up_ = scrape.up = true;
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

  // Server collectors run in order on the DSN's connection. Database collectors then run on
  // every database, each database on its own connection, several databases at once: a pool of
  // database_parallelism workers takes the databases in turn and runs the collectors in order.
  std::vector<std::size_t> per_database;  // indexes of the database collectors that apply
  std::vector<std::vector<Fragment>> fragments(collectors_->size());
  const auto& specs = *collectors_;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (!applies(specs[i])) continue;
    if (specs[i].scope == Scope::kDatabase) {
      per_database.push_back(i);
    } else {
      fragments[i].push_back(
          Run(specs[i], *specs[i].QueryFor(server_version), "", "", interrupt_->Cap(deadline)));
    }
  }
  if (!per_database.empty() && !databases.empty()) {
    for (const auto& db : databases) {
      // Created here so that the workers only look entries up (see Connect).
      auto& entry = databases_[db == own_database ? "" : db];
      if (!entry) {
        entry = std::make_unique<Database>(pg::ConnectOptions{
            options_.dsn, db == own_database ? "" : db, options_.connect_timeout, interrupt_});
      }
    }
    std::vector<std::vector<Fragment>> by_database(databases.size());
    std::atomic<std::size_t> next{0};
    const auto work = [&] {
      for (std::size_t d; (d = next++) < databases.size();) {
        const std::string& db = databases[d];
        for (const std::size_t i : per_database) {
          by_database[d].push_back(Run(specs[i], *specs[i].QueryFor(server_version),
                                       db == own_database ? "" : db, db,
                                       interrupt_->Cap(deadline)));
        }
      }
    };
    const std::size_t workers =
        std::min<std::size_t>(std::max(options_.database_parallelism, 1), databases.size());
    std::vector<std::jthread> pool;
    for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work);
    work();
    pool.clear();  // joins
    for (auto& runs : by_database) {
      for (std::size_t k = 0; k < per_database.size(); ++k) {
        fragments[per_database[k]].push_back(std::move(runs[k]));
      }
    }
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
