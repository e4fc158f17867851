#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgtally/collect/exposition.h"
#include "pgtally/collect/self_metrics.h"
#include "pgtally/config/collector_spec.h"
#include "pgtally/pg/connection.h"

namespace pgtally {

// A bound on the database connections that several targets hold together, named after the
// setting that sets it. A limit with a parent also takes one of the parent's for each of its own,
// so /probe's share and /metrics together stay within the process's budget. Thread-safe.
class ConnectionLimit {
 public:
  ConnectionLimit(int max, std::string setting, std::shared_ptr<ConnectionLimit> parent = nullptr)
      : max_(max), setting_(std::move(setting)), parent_(std::move(parent)) {}

  // Takes one of the connections. Returns null when it did, else the limit that is exhausted
  // (this one or an ancestor), for the error message.
  const ConnectionLimit* TryAcquire() {
    std::lock_guard lock(mutex_);
    if (in_use_ >= max_) return this;
    if (parent_) {
      if (const auto* exhausted = parent_->TryAcquire()) return exhausted;
    }
    ++in_use_;
    return nullptr;
  }
  void Release() {
    std::lock_guard lock(mutex_);
    --in_use_;
    if (parent_) parent_->Release();
  }
  int in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
  }
  int max() const { return max_; }
  const std::string& setting() const { return setting_; }

 private:
  const int max_;
  const std::string setting_;
  const std::shared_ptr<ConnectionLimit> parent_;
  mutable std::mutex mutex_;
  int in_use_ = 0;
};

// When a scrape must end. Requests that join a scrape in progress may push it later (never
// earlier), so the scrape runs to the longest budget among them. Thread-safe.
class ScrapeDeadline {
 public:
  explicit ScrapeDeadline(pg::Clock::time_point at) : at_(at.time_since_epoch().count()) {}
  void ExtendTo(pg::Clock::time_point at) {
    auto current = at_.load();
    const auto wanted = at.time_since_epoch().count();
    while (current < wanted && !at_.compare_exchange_weak(current, wanted)) {
    }
  }
  pg::Clock::time_point get() const {
    return pg::Clock::time_point(pg::Clock::duration(at_.load()));
  }

 private:
  std::atomic<pg::Clock::rep> at_;
};

struct TargetOptions {
  std::string dsn;
  // Read at every connection attempt; its password overrides the DSN's. Empty: none.
  std::string password_file;
  Millis connect_timeout{5000};
  Millis default_timeout{10000};
  Millis lock_timeout{1000};
  // scope: database collectors run on databases whose whole name matches include and not exclude.
  std::optional<std::regex> include_databases;
  std::optional<std::regex> exclude_databases;
  // How long a list of databases is used before it is read again.
  Millis discovery_interval{60000};
  // How many databases scope: database collectors run on at once, each on its own connection.
  int database_parallelism = 4;
  // Shared with other targets: each connection this target opens takes one until it is closed.
  // When the databases to visit do not all fit, they are visited in turn over fewer connections,
  // each closed when its database is done. Null: no bound.
  std::shared_ptr<ConnectionLimit> connection_limit;
};

// What happened to one collector during a scrape.
struct CollectorReport {
  enum class State { kSuccess, kFailed, kSkipped };
  std::string collector;
  State state = State::kSkipped;
  std::string skip_reason;  // "version", "role" or "unavailable" for skipped collectors
  double duration_seconds = 0;
  std::size_t series = 0;
  // Rows the queries returned (summed over databases), counted as they streamed in, before the
  // builder dropped any; a query that failed part way counts the rows it sent.
  std::size_t rows = 0;
  std::optional<double> rows_omitted;  // for collectors with an omitted_rows_column
  // The first failure, preferring one that failed the collector to an optional collector's
  // (unavailable): its class and message, "database NAME: " first for scope: database
  // collectors. The message has registered secrets masked and is at most ~1 KiB.
  std::optional<ErrorClass> error_class;
  std::string error;
  // Every result came from the cache (cache_ttl) instead of a query run in this scrape.
  bool cached = false;
};

struct TargetScrape {
  TargetType type = TargetType::kPostgres;
  bool up = false;
  // What the probe saw: server_version_num (PgBouncer's version in that shape), which picks each
  // collector's query variant, and the recovery state. Unset when the server was not reached.
  std::optional<int> server_version;
  bool in_recovery = false;
  std::vector<FamilyText> families;  // the collectors' metrics
  std::vector<CollectorReport> reports;
  std::string error;  // why the target is down, when it is
  // Set when the last connection attempt timed out and the target waits before the next one:
  // until when. pg_up is then 0 without an attempt (see Target::Connect).
  std::optional<pg::Clock::time_point> backing_off_until;
  // The role has more than monitoring needs (superuser, or grants beyond pg_monitor): what, and
  // how to drop it. Empty when the role is fine or was not checked (PgBouncer).
  std::string privilege_warning;
};

// What the DSN points at: PgBouncer's admin console when it says dbname=pgbouncer, else PostgreSQL.
TargetType TargetTypeOf(const std::string& dsn);

// PgBouncer's SHOW VERSION text ("PgBouncer 1.18.0") as a number in the shape of
// server_version_num (11800), for min_version/max_version.
int PgBouncerVersionNum(std::string_view text);

// One PostgreSQL server (or PgBouncer admin console, when the DSN says dbname=pgbouncer) and the
// collectors run against it. Keeps one persistent connection per
// database (the DSN's own database, plus each database that scope: database collectors visit),
// reconnects with backoff when one breaks, and caches results of collectors with a cache_ttl.
// Not thread-safe: the owner runs one Scrape at a time.
class Target {
 public:
  // `interrupt`, when triggered, cuts short the scrape in progress (see pg::Interrupt).
  Target(TargetOptions options, std::shared_ptr<const std::vector<CollectorSpec>> collectors,
         SelfMetrics& self_metrics, std::shared_ptr<const pg::Interrupt> interrupt = nullptr);
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  // Runs every applicable collector. Never throws; pg_up comes from this scrape alone. Each
  // step reads the deadline anew, so a later request that extends it gives the rest more time.
  TargetScrape Scrape(const ScrapeDeadline& deadline);

  // The DSN with its password masked, for logs and pages.
  const std::string& display_name() const { return display_name_; }
  TargetType type() const { return type_; }
  // The collectors this target runs, in the order of the reports of a scrape.
  const std::shared_ptr<const std::vector<CollectorSpec>>& collectors() const {
    return collectors_;
  }

 private:
  struct Database;
  struct CacheEntry;
  struct Fragment;

  // The connection to `dbname` ("" is the DSN's own), connecting if needed: no new attempt in a
  // scrape where one to that database failed, none while backing off after a timeout, none
  // after the server refused a connection for all databases in this scrape, none beyond the
  // connection budget.
  pg::Connection* Connect(const std::string& dbname, pg::Clock::time_point deadline,
                          std::optional<pg::Error>& error);
  // Closes the database's connection and gives its place in the budget back.
  void Disconnect(const std::string& dbname);
  // Logs a failed connection attempt once per cause (not per database per scrape) until a
  // connection succeeds again. `refused`: the server refused it whatever the database, so this
  // scrape makes no more attempts.
  void NoteConnectFailure(const std::string& dbname, const pg::Error& error, bool refused);
  // What the role may do beyond monitoring, logged when it changes (see
  // TargetScrape::privilege_warning).
  void CheckPrivileges(pg::Connection& conn, pg::Clock::time_point deadline);
  // The password file's password, if there is a password file; nullopt with `error` set when it
  // cannot be read.
  std::optional<std::string> ReadPassword(std::optional<pg::Error>& error);
  std::optional<std::vector<std::string>> ListDatabases(pg::Connection& conn,
                                                        pg::Clock::time_point deadline);
  // The databases scope: database collectors visit, read again when the list is too old.
  const std::vector<std::string>& Databases(pg::Clock::time_point deadline);
  // Runs a collector's query, streaming its rows to `sink`.
  pg::QueryOutcome Query(pg::Connection& conn, const CollectorSpec& spec, const QueryVariant& query,
                         Millis timeout, const pg::RowSink& sink);
  // Logs once when an optional collector becomes unavailable on a database, and when it is back.
  void NoteAvailability(const CollectorSpec& spec, const std::string& datname,
                        const pg::Error* error);
  // Connects to the DSN's database and runs the probe query (version, recovery, database):
  // its rows, or nullopt with `error` set.
  std::optional<pg::QueryOutcome> Probe(pg::Clock::time_point deadline,
                                        std::optional<pg::Error>& error);
  // Runs the scope: database collectors `specs` on every database of `databases`, by
  // database_parallelism workers within the connection budget: each database's fragments, in
  // the order of `specs`.
  std::vector<std::vector<Fragment>> RunOnDatabases(const std::vector<std::string>& databases,
                                                    const std::string& own_database,
                                                    const std::vector<const CollectorSpec*>& specs,
                                                    int server_version,
                                                    const ScrapeDeadline& deadline);
  // Runs (or serves from cache) one collector on one database.
  Fragment Run(const CollectorSpec& spec, const QueryVariant& query, const std::string& dbname,
               const std::string& datname_label, pg::Clock::time_point deadline);
  // `at`: where in the collector file the server found the problem, or empty.
  void LogFailure(const CollectorSpec& spec, const std::string& dbname, const pg::Error& error,
                  const std::string& at);

  TargetOptions options_;
  std::shared_ptr<const std::vector<CollectorSpec>> collectors_;
  SelfMetrics& self_metrics_;
  std::shared_ptr<const pg::Interrupt> interrupt_;
  std::string display_name_;
  std::string server_address_;  // "host:port", for collectors' target_label
  TargetType type_;
  std::map<std::string, std::unique_ptr<Database>> databases_;
  // Guards what the database workers share: the cache, the unavailable set, listed_at_ and the
  // last password. Each worker uses only its own databases' connections.
  std::mutex state_mutex_;
  std::vector<std::string> database_list_;
  std::optional<pg::Clock::time_point> listed_at_;  // unset: read the list on the next scrape
  std::set<std::pair<std::string, std::string>> unavailable_;  // {collector, datname}
  std::map<std::pair<std::string, std::string>, std::unique_ptr<CacheEntry>> cache_;
  // For logging state changes once, not on every scrape.
  bool was_up_ = true;
  std::optional<bool> was_in_recovery_;
  std::string last_password_;        // to notice a rotated password file
  std::uint64_t scrape_number_ = 0;  // to try each database at most once per scrape
  // A refusal of this scrape that holds for every database (too many clients, authentication,
  // network): no more attempts until the next scrape.
  std::optional<pg::Error> refused_;
  // Connection failures logged, by message: the database a failure is about, or "" for one about
  // the server. Forgotten when a connection (to that database) succeeds.
  std::map<std::string, std::string> logged_failures_;
  bool check_privileges_ = false;                   // the DSN's connection is new: check its role
  std::atomic<std::size_t> runs_past_deadline_{0};  // in this scrape, logged at its end
  std::string privilege_warning_;
};

}  // namespace pgtally
