// The scrape engine against a real PostgreSQL 15: built-in and custom collectors, scopes,
// gating, caching, isolation of failures, and the read-only guarantee.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "http_client.h"
#include "pg_server.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ScrapeTest : public ::testing::Test {
 protected:
  PgServer& pg_ = SharedPgServer();
};

TEST_F(ScrapeTest, BuiltinCollectorsReportTheServer) {
  auto exporter = MakeExporter(pg_.Dsn(), "", /*builtin=*/true);
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_GE(SampleValue(body, "pg_settings_max_connections"), 1);
  EXPECT_EQ(LinesStartingWith(body, "pg_version_info{").size(), 1u);
  EXPECT_GT(SampleValue(body, "pg_postmaster_start_time_seconds"), 1.7e9);
  EXPECT_GE(SampleValue(body, "pg_stat_database_xact_commit_total{datname=\"postgres\"}"), 1);
  EXPECT_FALSE(LinesStartingWith(body, "pg_stat_activity_connections{").empty());
  EXPECT_FALSE(LinesStartingWith(body, "pg_stat_statements_calls_total{").empty());
  // Every collector that ran succeeded.
  const auto success = LinesStartingWith(body, "pgtally_collector_success{");
  EXPECT_GE(success.size(), 5u);
  for (const auto& line : success) EXPECT_THAT(line, ::testing::EndsWith(" 1"));
  EXPECT_EQ(SampleValue(body, "pgtally_build_info{version=\"" + std::string(BuildVersion()) +
                                  "\",revision=\"" + std::string(BuildRevision()) + "\"}"),
            1);
}

TEST_F(ScrapeTest, CustomCollectorWithLabelsScaleAndNulls) {
  pg_.Exec("CREATE TABLE IF NOT EXISTS jobs (queue text, state text, wait_ms float8)");
  pg_.Exec(
      "TRUNCATE jobs; INSERT INTO jobs VALUES ('mail','ready',1500), ('mail','ready',500), "
      "('sms','done',NULL)");
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - name: app_jobs
    help: Jobs.
    query: SELECT queue, state, count(*) AS jobs, max(wait_ms) AS wait_ms FROM jobs GROUP BY 1, 2
    labels: [queue, {column: state, name: job_state}]
    values:
      - {column: jobs, type: gauge}
      - {column: wait_ms, type: gauge, name: app_jobs_max_wait_seconds, scale: 0.001}
)yaml");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "app_jobs_jobs{queue=\"mail\",job_state=\"ready\"}"), 2);
  EXPECT_EQ(SampleValue(body, "app_jobs_jobs{queue=\"sms\",job_state=\"done\"}"), 1);
  EXPECT_EQ(SampleValue(body, "app_jobs_max_wait_seconds{queue=\"mail\",job_state=\"ready\"}"),
            1.5);
  EXPECT_TRUE(
      std::isnan(SampleValue(body, "app_jobs_max_wait_seconds{queue=\"sms\",job_state=\"done\"}")));
  EXPECT_EQ(SampleValue(body, "pgtally_collector_series{collector=\"app_jobs\"}"), 3);
}

TEST_F(ScrapeTest, AFailingQueryBreaksOnlyItsCollector) {
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: good, help: G., query: SELECT 7 AS v, values: [{column: v, type: gauge}]}
  - {name: bad, help: B., query: SELECT v FROM no_such_table, values: [{column: v, type: gauge}]}
  - {name: unmapped, help: U., query: SELECT 1 AS w, values: [{column: v, type: gauge}]}
  - {name: quiet, help: Q., optional: true, query: SELECT v FROM no_such_view, values: [{column: v, type: gauge}]}
)yaml");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(body, "good_v"), 7);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"good\"}"), 1);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"bad\"}"), 0);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_errors_total{class=\"sql\",collector=\"bad\"}"),
            1);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"unmapped\"}"), 0);
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_errors_total{class=\"mapping\",collector=\"unmapped\"}"),
      1);
  // An optional collector's failure is a skip, not an error.
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_skipped{collector=\"quiet\",reason=\"unavailable\"}"),
      1);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_errors_total{class=\"sql\",collector=\"quiet\"}"),
            0);
  EXPECT_THAT(body, Not(HasSubstr("no_such_table")));  // messages go to the log, not to labels
}

TEST_F(ScrapeTest, DatabaseScopeRunsOnEveryDatabase) {
  for (const char* db : {"scope_a", "scope_b", "scope_skip"}) {
    if (pg_.QueryValue(std::string("SELECT count(*) FROM pg_database WHERE datname = '") + db +
                       "'") == "0") {
      pg_.Exec(std::string("CREATE DATABASE ") + db);
    }
  }
  pg_.Exec("CREATE TABLE IF NOT EXISTS marker (id int)", "scope_a");
  TargetOptions options;
  options.exclude_databases = std::regex("scope_skip");
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - name: app_tables
    help: User tables in each database.
    scope: database
    query: SELECT count(*) AS count FROM pg_tables WHERE tablename = 'marker'
    values: [{column: count, type: gauge}]
)yaml",
                               false, options);
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "app_tables_count{datname=\"scope_a\"}"), 1);
  EXPECT_EQ(SampleValue(body, "app_tables_count{datname=\"scope_b\"}"), 0);
  EXPECT_FALSE(std::isnan(SampleValue(body, "app_tables_count{datname=\"postgres\"}")));
  EXPECT_TRUE(std::isnan(SampleValue(body, "app_tables_count{datname=\"scope_skip\"}")));
  EXPECT_TRUE(LinesStartingWith(body, "app_tables_count{datname=\"template").empty());
}

TEST_F(ScrapeTest, DatabasesAreVisitedInParallelUpToTheBound) {
  // Each run sleeps, then counts the runs active at that moment: what the server saw at once.
  for (int i = 0; i < 8; ++i) {
    const std::string db = "par_" + std::to_string(i);
    if (pg_.QueryValue("SELECT count(*) FROM pg_database WHERE datname = '" + db + "'") == "0") {
      pg_.Exec("CREATE DATABASE " + db);
    }
  }
  const auto max_running = [&](int parallelism) {
    TargetOptions options;
    options.include_databases = std::regex("par_.*");
    options.database_parallelism = parallelism;
    auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - name: par
    help: Runs at once.
    scope: database
    query: |
      SELECT (SELECT count(*) FROM pg_stat_activity
              WHERE state = 'active' AND query LIKE '%par_marker%') AS running
      FROM pg_sleep(0.4) -- par_marker
    values: [{column: running, type: gauge}]
)yaml",
                                 false, options);
    const auto body = ScrapeBody(*exporter);
    const auto lines = LinesStartingWith(body, "par_running{");
    EXPECT_EQ(lines.size(), 8u) << body;
    double most = 0;
    for (const auto& line : lines) most = std::max(most, std::stod(line.substr(line.rfind(' '))));
    return most;
  };
  EXPECT_EQ(max_running(1), 1);
  const double four = max_running(4);
  EXPECT_GE(four, 2);
  EXPECT_LE(four, 4);
}

TEST_F(ScrapeTest, DatabaseListIsReadAgainOnItsInterval) {
  for (const char* db : {"disc_new", "disc_gone"}) {
    pg_.Exec(std::string("DROP DATABASE IF EXISTS ") + db + " WITH (FORCE)");
  }
  pg_.Exec("CREATE DATABASE disc_gone");
  TargetOptions options;
  options.include_databases = std::regex("disc_.*");
  options.discovery_interval = Millis(1000);
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: disc, help: D., scope: database, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
)yaml",
                               false, options);
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "disc_v{datname=\"disc_gone\"}"), 1);

  // A dropped database: its connection breaks, and the next scrape reads the list again at once.
  pg_.Exec("DROP DATABASE disc_gone WITH (FORCE)");
  pg_.Exec("CREATE DATABASE disc_new");
  ScrapeBody(*exporter);
  auto body = ScrapeBody(*exporter);
  EXPECT_TRUE(std::isnan(SampleValue(body, "disc_v{datname=\"disc_gone\"}")));
  EXPECT_EQ(SampleValue(body, "disc_v{datname=\"disc_new\"}"), 1);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"disc\"}"), 1);

  // A new database appears once the interval has passed, not before.
  pg_.Exec("CREATE DATABASE disc_late");
  options.discovery_interval = Millis(3600 * 1000);
  auto slow = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: disc, help: D., scope: database, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
)yaml",
                           false, options);
  ScrapeBody(*slow);
  pg_.Exec("CREATE DATABASE disc_later");
  EXPECT_TRUE(std::isnan(SampleValue(ScrapeBody(*slow), "disc_v{datname=\"disc_later\"}")));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "disc_v{datname=\"disc_later\"}"), 1);
  for (const char* db : {"disc_new", "disc_late", "disc_later"}) {
    pg_.Exec(std::string("DROP DATABASE ") + db + " WITH (FORCE)");
  }
}

TEST_F(ScrapeTest, ParametersAndOmittedRows) {
  constexpr std::string_view kTopN = R"yaml(version: 1
collectors:
  - name: top
    help: T.
    parameters: {top_limit: 3, top_exclude: ""}
    omitted_rows_column: omitted
    query: |
      SELECT g::text AS n, g AS v, greatest(count(*) OVER () - {{top_limit}}::int, 0) AS omitted
      FROM generate_series(1, 10) g
      WHERE {{top_exclude}} = '' OR g::text !~ {{top_exclude}}
      ORDER BY g DESC LIMIT {{top_limit}}::int
    labels: [n]
    values: [{column: v, type: gauge}]
)yaml";
  auto body = ScrapeBody(*MakeExporter(pg_.Dsn(), kTopN));
  EXPECT_EQ(LinesStartingWith(body, "top_v{").size(), 3u);
  EXPECT_EQ(SampleValue(body, "top_v{n=\"10\"}"), 10);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_rows_omitted{collector=\"top\"}"), 7);

  body = ScrapeBody(*MakeExporter(pg_.Dsn(), kTopN, false, {},
                                  {{"top_limit", "5", {}}, {"top_exclude", "^(9|10)$", {}}}));
  EXPECT_EQ(LinesStartingWith(body, "top_v{").size(), 5u);
  EXPECT_TRUE(std::isnan(SampleValue(body, "top_v{n=\"10\"}")));
  EXPECT_EQ(SampleValue(body, "top_v{n=\"8\"}"), 8);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_rows_omitted{collector=\"top\"}"), 3);
}

TEST_F(ScrapeTest, VersionAndRoleGating) {
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: old_only, help: O., max_version: 99999, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
  - {name: standby_only, help: S., role: standby, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
  - {name: primary_only, help: P., role: primary, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
  - name: variants
    help: V.
    queries:
      - {max_version: 149999, query: SELECT 14 AS v}
      - {min_version: 150000, query: SELECT 15 AS v}
    values: [{column: v, type: gauge}]
)yaml");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_skipped{collector=\"old_only\",reason=\"version\"}"), 1);
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_skipped{collector=\"standby_only\",reason=\"role\"}"),
      1);
  EXPECT_EQ(SampleValue(body, "primary_only_v"), 1);
  EXPECT_EQ(SampleValue(body, "variants_v"), 15);
  EXPECT_TRUE(std::isnan(SampleValue(body, "old_only_v")));
}

// The second line of defence: the loader refuses these (docs/security.md); allowed anyway, the
// read-only transaction and the one-statement protocol still stop them.
TEST_F(ScrapeTest, CollectorsCannotWrite) {
  pg_.Exec(
      "CREATE TABLE IF NOT EXISTS precious (id int); TRUNCATE precious; INSERT INTO precious "
      "VALUES (1)");
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: w_insert, help: W., query: "INSERT INTO precious VALUES (2) RETURNING id AS v", allow_unsafe: [INSERT], values: [{column: v, type: gauge}]}
  - {name: w_cte, help: W., query: "WITH d AS (DELETE FROM precious RETURNING id) SELECT count(*) AS v FROM d", values: [{column: v, type: gauge}]}
  - {name: w_multi, help: W., query: "SELECT 1 AS v; DROP TABLE precious", allow_unsafe: [DROP], values: [{column: v, type: gauge}]}
  - {name: w_escape, help: W., query: "COMMIT; DROP TABLE precious", allow_unsafe: [COMMIT, DROP], values: [{column: v, type: gauge}]}
  - {name: w_setting, help: W., query: "SELECT set_config('transaction_read_only', 'off', true) AS v", allow_unsafe: [set_config], values: [{column: v, type: gauge}]}
)yaml");
  const auto body = ScrapeBody(*exporter);
  for (const char* name : {"w_insert", "w_cte", "w_multi", "w_escape", "w_setting"}) {
    EXPECT_EQ(
        SampleValue(body, std::string("pgtally_collector_success{collector=\"") + name + "\"}"), 0)
        << name;
  }
  EXPECT_EQ(pg_.QueryValue("SELECT string_agg(id::text, ',') FROM precious"), "1");
}

TEST_F(ScrapeTest, SlowQueryIsCancelledAndTheScrapeAnswers) {
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: slow, help: S., timeout: 300ms, query: "SELECT 1 AS v FROM pg_sleep(30)", values: [{column: v, type: gauge}]}
  - {name: fast, help: F., query: SELECT 2 AS v, values: [{column: v, type: gauge}]}
)yaml");
  const auto start = std::chrono::steady_clock::now();
  const auto body = ScrapeBody(*exporter);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_errors_total{class=\"timeout\",collector=\"slow\"}"), 1);
  EXPECT_EQ(SampleValue(body, "fast_v"), 2);
  // The cancelled statement is really gone from the server.
  EXPECT_EQ(pg_.QueryValue("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                           "'%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()"),
            "0");
}

TEST_F(ScrapeTest, ScrapeBudgetCapsTheStatementTimeout) {
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: sleepy, help: S., timeout: 60s, query: "SELECT 1 AS v FROM pg_sleep(30)", values: [{column: v, type: gauge}]}
)yaml");
  const auto start = std::chrono::steady_clock::now();
  const auto body = ScrapeBody(*exporter, Millis(1500));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_errors_total{class=\"timeout\",collector=\"sleepy\"}"),
      1);
}

// Counts executions of statements that mention `marker` as pg_stat_statements sees them.
long long Calls(PgServer& pg, const std::string& marker) {
  const auto calls =
      pg.QueryValue("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%" +
                    marker + "%' AND query NOT LIKE '%pg_stat_statements%'");
  return std::stoll(calls);
}

TEST_F(ScrapeTest, CacheTtlServesThePreviousResult) {
  pg_.Exec("CREATE TABLE IF NOT EXISTS cache_probe_table (id int)");
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: cached, help: C., cache_ttl: 1h, query: "SELECT count(*) AS v FROM cache_probe_table", values: [{column: v, type: gauge}]}
)yaml");
  const auto before = Calls(pg_, "cache_probe_table");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "cached_v"), 0);
  EXPECT_EQ(Calls(pg_, "cache_probe_table") - before, 1);
}

TEST_F(ScrapeTest, ConcurrentScrapesShareOneRun) {
  pg_.Exec("CREATE TABLE IF NOT EXISTS coalesce_probe_table (id int)");
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: shared, help: S., query: "SELECT count(*) AS v FROM coalesce_probe_table, pg_sleep(1)", values: [{column: v, type: gauge}]}
)yaml");
  const auto before = Calls(pg_, "coalesce_probe_table");
  std::vector<std::thread> scrapers;
  std::vector<std::string> bodies(5);
  for (auto& body : bodies) scrapers.emplace_back([&] { body = ScrapeBody(*exporter); });
  for (auto& scraper : scrapers) scraper.join();
  for (const auto& body : bodies) EXPECT_EQ(SampleValue(body, "shared_v"), 0);
  EXPECT_EQ(Calls(pg_, "coalesce_probe_table") - before, 1);
}

// Each statement is prepared once per connection and planned once, not on every scrape.
TEST(PreparedStatements, AreExecutedWithoutPlanningAgain) {
  PgServer pg(PgServer::Options{.extra_conf = {"pg_stat_statements.track_planning = on"}});
  pg.Exec("CREATE TABLE plan_probe_table (id int, v int)");
  auto exporter = MakeExporter(pg.Dsn(), R"yaml(version: 1
collectors:
  - {name: planned, help: P., query: "SELECT count(*) AS v FROM plan_probe_table", values: [{column: v, type: gauge}]}
  - name: columns
    help: C.
    query: SELECT * FROM plan_probe_table
    labels: [id]
    values: [{column: v, type: gauge}]
)yaml");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "planned_v"), 0);
  EXPECT_EQ(pg.QueryValue("SELECT calls || '/' || plans FROM pg_stat_statements WHERE query LIKE "
                          "'SELECT count(*) AS v FROM plan_probe_table%'"),
            "5/1");

  // A prepared statement whose table changes its columns cannot run as prepared
  // ("cached plan must not change result type"): it is prepared again.
  pg.Exec("INSERT INTO plan_probe_table VALUES (1, 10)");
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "columns_v{id=\"1\"}"), 10);
  pg.Exec("ALTER TABLE plan_probe_table ADD COLUMN extra text");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "columns_v{id=\"1\"}"), 10);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"columns\"}"), 1);
}

TEST_F(ScrapeTest, DuplicateRowsAreDroppedAndCounted) {
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - name: dupes
    help: D.
    query: "SELECT 'a' AS l, 1 AS v UNION ALL SELECT 'a', 2 UNION ALL SELECT 'b', 3 UNION ALL SELECT 'c', 'NaN'::float8"
    labels: [l]
    values: [{column: v, type: gauge}]
)yaml");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "dupes_v{l=\"a\"}"), 1);
  EXPECT_EQ(SampleValue(body, "dupes_v{l=\"b\"}"), 3);
  EXPECT_TRUE(std::isnan(SampleValue(body, "dupes_v{l=\"c\"}")));  // NaN is a valid sample value
  EXPECT_EQ(LinesStartingWith(body, "dupes_v{l=\"c\"} Nan").size(), 1u);
  EXPECT_EQ(
      SampleValue(body, "pgtally_samples_dropped_total{collector=\"dupes\",reason=\"duplicate\"}"),
      1);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"dupes\"}"), 1);
}

TEST_F(ScrapeTest, AResultReplacesThePreviousSeriesWhole) {
  pg_.Exec(
      "CREATE TABLE IF NOT EXISTS queue_depth (q text, n int); TRUNCATE queue_depth;"
      "INSERT INTO queue_depth VALUES ('a', 1), ('b', 2)");
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: depth, help: D., query: "SELECT q, n FROM queue_depth", labels: [q], values: [{column: n, type: gauge}]}
)yaml");
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "depth_n{q=\"b\"}"), 2);
  pg_.Exec("DELETE FROM queue_depth WHERE q = 'b'");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "depth_n{q=\"a\"}"), 1);
  EXPECT_TRUE(std::isnan(SampleValue(body, "depth_n{q=\"b\"}")));
}

TEST_F(ScrapeTest, SeriesLimitIsEnforced) {
  auto exporter = MakeExporter(pg_.Dsn(), R"yaml(version: 1
collectors:
  - {name: wide, help: W., max_series: 10, query: "SELECT g::text AS id, g AS v FROM generate_series(1, 100) g", labels: [id], values: [{column: v, type: gauge}]}
)yaml");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(LinesStartingWith(body, "wide_v{").size(), 10u);
  EXPECT_EQ(SampleValue(body, "pgtally_samples_dropped_total{collector=\"wide\",reason=\"limit\"}"),
            90);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_errors_total{class=\"limit\",collector=\"wide\"}"),
            1);
}

}  // namespace
}  // namespace pgtally::testing
