// The vacuum and per-object collectors (queries/tables.yaml, vacuum.yaml, indexes.yaml,
// objects.yaml, progress.yaml) against a real PostgreSQL 15 with autovacuum off, so that nothing
// but the test changes the tables: each test creates a condition and checks the metric moves.
// The version variants are checked without a server, for 12 through 19.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally/config/collector_loader.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using Labels = std::map<std::string, std::string>;

std::string CollectorFile(const std::string& name) {
  std::ifstream in(PGTALLY_SOURCE_DIR "/queries/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value of the one sample of `metric` carrying all of `labels` (and maybe more: pid and phase
// labels are not known in advance), or NaN when there is none. Two matches fail the test.
double Value(const std::string& body, const std::string& metric, const Labels& labels) {
  double found = std::nan("");
  int matches = 0;
  for (const auto& line : LinesStartingWith(body, metric + "{")) {
    const auto close = line.rfind('}');
    const auto label_text = line.substr(metric.size(), close - metric.size() + 1);
    bool all = true;
    for (const auto& [name, value] : labels) {
      const auto pair = name + "=\"" + value + "\"";
      if (label_text.find("{" + pair + ",") == std::string::npos &&
          label_text.find("," + pair + ",") == std::string::npos &&
          label_text.find("," + pair + "}") == std::string::npos &&
          label_text.find("{" + pair + "}") == std::string::npos) {
        all = false;
      }
    }
    if (!all) continue;
    ++matches;
    found = std::stod(line.substr(close + 2));
  }
  EXPECT_LE(matches, 1) << metric << " has several samples with these labels";
  return found;
}

// Scrapes until `done` holds for the exposition or `timeout` passes; returns the last body.
// Statistics reach the shared views only when the writing backend reports them (at the latest
// when it exits), so a test waits for its own writes to show.
std::string ScrapeUntil(Exporter& exporter, const std::function<bool(const std::string&)>& done,
                        std::chrono::seconds timeout = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string body = ScrapeBody(exporter);
  while (!done(body) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    body = ScrapeBody(exporter);
  }
  return body;
}

// Polls a boolean query until it is true (15 s at most).
void WaitUntil(PgServer& pg, const std::string& sql, const std::string& dbname) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (pg.QueryValue(sql, dbname) != "t" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(pg.QueryValue(sql, dbname), "t") << sql;
}

TargetOptions OnlyDatabase(const std::string& datname) {
  TargetOptions options;
  options.include_databases = std::regex(datname);
  return options;
}

class LibraryVacuumTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgServer::Options options;
    options.extra_conf = {"autovacuum = off", "track_functions = all"};
    server_ = std::make_unique<PgServer>(options);
  }
  static void TearDownTestSuite() { server_.reset(); }

  // A fresh database for one test.
  static void CreateDatabase(const std::string& datname) {
    server_->Exec("DROP DATABASE IF EXISTS " + datname + " WITH (FORCE)");
    server_->Exec("CREATE DATABASE " + datname);
  }

  static std::unique_ptr<PgServer> server_;
  PgServer& pg_ = *server_;
};

std::unique_ptr<PgServer> LibraryVacuumTest::server_;

TEST_F(LibraryVacuumTest, DeadTuplesAfterDeletes) {
  CreateDatabase("vac_dead");
  pg_.Exec(
      "CREATE TABLE t (id int, v text);"
      "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g",
      "vac_dead");
  pg_.Exec("DELETE FROM t WHERE id % 2 = 0", "vac_dead");
  auto exporter =
      MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, OnlyDatabase("vac_dead"));
  const Labels t = {{"datname", "vac_dead"}, {"relname", "t"}, {"schemaname", "public"}};
  const auto body = ScrapeUntil(*exporter, [&](const std::string& b) {
    return Value(b, "pg_stat_user_tables_n_dead_tup", t) >= 500;
  });
  EXPECT_EQ(Value(body, "pg_stat_user_tables_n_dead_tup", t), 500);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_n_live_tup", t), 500);
  EXPECT_NEAR(Value(body, "pg_stat_user_tables_dead_tup_ratio", t), 0.5, 0.01);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_n_tup_ins_total", t), 1000);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_n_tup_del_total", t), 500);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_n_ins_since_vacuum", t), 1000);
  // Never vacuumed nor analyzed: no "seconds since" samples rather than a made-up value.
  EXPECT_TRUE(std::isnan(Value(body, "pg_stat_user_tables_last_vacuum_age_seconds", t)));
  EXPECT_TRUE(std::isnan(Value(body, "pg_stat_user_tables_last_analyze_age_seconds", t)));

  pg_.Exec("VACUUM ANALYZE t", "vac_dead");
  const auto after = ScrapeUntil(*exporter, [&](const std::string& b) {
    return Value(b, "pg_stat_user_tables_n_dead_tup", t) == 0;
  });
  EXPECT_EQ(Value(after, "pg_stat_user_tables_n_dead_tup", t), 0);
  EXPECT_EQ(Value(after, "pg_stat_user_tables_dead_tup_ratio", t), 0);
  EXPECT_GE(Value(after, "pg_stat_user_tables_last_vacuum_age_seconds", t), 0);
  EXPECT_LT(Value(after, "pg_stat_user_tables_last_vacuum_age_seconds", t), 60);
  EXPECT_LT(Value(after, "pg_stat_user_tables_last_analyze_age_seconds", t), 60);
  EXPECT_TRUE(std::isnan(Value(after, "pg_stat_user_tables_last_autovacuum_age_seconds", t)));
}

TEST_F(LibraryVacuumTest, AutovacuumDueFollowsThresholdsAndReloptions) {
  CreateDatabase("vac_due");
  // Three tables of 1000 rows, vacuumed and analyzed: reltuples = 1000, nothing due. With the
  // default settings a vacuum is due above 50 + 0.2 * 1000 = 250 dead rows, an analyze above
  // 50 + 0.1 * 1000 = 150 modified rows, an insert vacuum above 1000 + 0.2 * 1000 = 1200 inserts.
  pg_.Exec(
      "CREATE TABLE plain (id int);"
      "CREATE TABLE high_threshold (id int) WITH (autovacuum_vacuum_threshold = 1000000);"
      "CREATE TABLE disabled (id int) WITH (autovacuum_enabled = false);"
      "INSERT INTO plain SELECT generate_series(1, 1000);"
      "INSERT INTO high_threshold SELECT generate_series(1, 1000);"
      "INSERT INTO disabled SELECT generate_series(1, 1000);",
      "vac_due");
  // The inserts must be counted before the vacuum resets the counters.
  WaitUntil(pg_, "SELECT sum(n_tup_ins) = 3000 FROM pg_stat_user_tables", "vac_due");
  pg_.Exec("VACUUM ANALYZE plain, high_threshold, disabled", "vac_due");
  auto exporter =
      MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, OnlyDatabase("vac_due"));
  const auto table = [](const std::string& name) {
    return Labels{{"datname", "vac_due"}, {"relname", name}};
  };
  // Waits until every table shows `n` dead rows.
  const auto dead_rows = [&](double n) {
    return [&, n](const std::string& b) {
      for (const char* name : {"plain", "high_threshold", "disabled"}) {
        if (Value(b, "pg_stat_user_tables_n_dead_tup", table(name)) != n) return false;
      }
      return true;
    };
  };
  auto body = ScrapeUntil(*exporter, dead_rows(0));
  for (const char* name : {"plain", "high_threshold", "disabled"}) {
    EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due", table(name)), 0) << name;
    EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_analyze_due", table(name)), 0) << name;
    EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_insert_vacuum_due", table(name)), 0)
        << name;
  }

  // 200 dead rows: under the vacuum threshold (250), over the analyze threshold (150).
  for (const char* name : {"plain", "high_threshold", "disabled"}) {
    pg_.Exec(std::string("DELETE FROM ") + name + " WHERE id <= 200", "vac_due");
  }
  body = ScrapeUntil(*exporter, dead_rows(200));
  EXPECT_EQ(Value(body, "pg_stat_user_tables_n_dead_tup", table("plain")), 200);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due", table("plain")), 0);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_analyze_due", table("plain")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_analyze_due", table("disabled")), 0);

  // 300 dead rows: over the vacuum threshold, except where a reloption says otherwise.
  for (const char* name : {"plain", "high_threshold", "disabled"}) {
    pg_.Exec(std::string("DELETE FROM ") + name + " WHERE id <= 300", "vac_due");
  }
  body = ScrapeUntil(*exporter, dead_rows(300));
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due", table("plain")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due", table("high_threshold")), 0);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_analyze_due", table("high_threshold")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due", table("disabled")), 0);

  // A per-table scale factor counts too: 0.5 * 1000 + 50 = 550 > 300 dead rows.
  pg_.Exec("ALTER TABLE plain SET (autovacuum_vacuum_scale_factor = 0.5)", "vac_due");
  body = ScrapeBody(*exporter);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due", table("plain")), 0);

  // Inserts: 1300 rows since the last vacuum is over the insert threshold (1200).
  pg_.Exec("INSERT INTO plain SELECT generate_series(1, 1300)", "vac_due");
  body = ScrapeUntil(*exporter, [&](const std::string& b) {
    return Value(b, "pg_stat_user_tables_n_ins_since_vacuum", table("plain")) == 1300;
  });
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_insert_vacuum_due", table("plain")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_insert_vacuum_due", table("disabled")), 0);
}

TEST_F(LibraryVacuumTest, WraparoundAgeOfEveryDatabase) {
  CreateDatabase("vac_wrap");
  auto exporter = MakeExporter(pg_.Dsn(), CollectorFile("vacuum.yaml"), false,
                               OnlyDatabase("vac_wrap|postgres"));
  const auto before = ScrapeBody(*exporter);
  for (const char* datname : {"postgres", "template0", "template1", "vac_wrap"}) {
    const Labels db = {{"datname", datname}};
    EXPECT_GT(Value(before, "pg_database_xid_age", db), 0) << datname;
    const auto ratio = Value(before, "pg_database_xid_age_ratio", db);
    EXPECT_GT(ratio, 0) << datname;
    EXPECT_LT(ratio, 1) << datname;
    EXPECT_NEAR(ratio, Value(before, "pg_database_xid_age", db) / 200e6, 1e-9) << datname;
    EXPECT_GT(Value(before, "pg_database_xid_wraparound_ratio", db), 0) << datname;
    EXPECT_LT(Value(before, "pg_database_xid_wraparound_ratio", db), ratio) << datname;
    EXPECT_GE(Value(before, "pg_database_mxid_age_ratio", db), 0) << datname;
    EXPECT_LT(Value(before, "pg_database_mxid_age_ratio", db), 1) << datname;
  }
  EXPECT_GT(Value(before, "pg_database_oldest_table_xid_age", {{"datname", "vac_wrap"}}), 0);

  // 100 transactions later every database is 100 transactions older.
  pg_.Exec(
      "CREATE PROCEDURE burn() LANGUAGE plpgsql AS $$ BEGIN FOR i IN 1..100 LOOP "
      "PERFORM txid_current(); COMMIT; END LOOP; END $$",
      "vac_wrap");
  pg_.Exec("CALL burn()", "vac_wrap");
  const auto after = ScrapeBody(*exporter);
  const Labels db = {{"datname", "vac_wrap"}};
  EXPECT_GE(Value(after, "pg_database_xid_age", db) - Value(before, "pg_database_xid_age", db),
            100);
  EXPECT_GE(Value(after, "pg_database_oldest_table_xid_age", db) -
                Value(before, "pg_database_oldest_table_xid_age", db),
            100);
  // Autovacuum is off here: no workers, and the ratio is a clean zero rather than NaN.
  EXPECT_EQ(SampleValue(after, "pg_autovacuum_workers_busy"), 0);
  EXPECT_EQ(SampleValue(after, "pg_autovacuum_workers_busy_ratio"), 0);
}

TEST_F(LibraryVacuumTest, PerDatabaseSeriesForEveryDatabase) {
  CreateDatabase("vac_a");
  CreateDatabase("vac_b");
  pg_.Exec("CREATE TABLE in_a (id int primary key)", "vac_a");
  pg_.Exec("CREATE TABLE in_b (id int primary key)", "vac_b");
  auto tables =
      MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, OnlyDatabase("vac_a|vac_b"));
  auto body = ScrapeBody(*tables);
  EXPECT_EQ(
      Value(body, "pg_stat_user_tables_n_live_tup", {{"datname", "vac_a"}, {"relname", "in_a"}}),
      0);
  EXPECT_EQ(
      Value(body, "pg_stat_user_tables_n_live_tup", {{"datname", "vac_b"}, {"relname", "in_b"}}),
      0);
  EXPECT_TRUE(std::isnan(
      Value(body, "pg_stat_user_tables_n_live_tup", {{"datname", "vac_a"}, {"relname", "in_b"}})));
  EXPECT_GT(Value(body, "pg_table_indexes_size_bytes", {{"datname", "vac_b"}, {"relname", "in_b"}}),
            0);

  auto indexes =
      MakeExporter(pg_.Dsn(), CollectorFile("indexes.yaml"), false, OnlyDatabase("vac_a|vac_b"));
  body = ScrapeBody(*indexes);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_idx_scan_total",
                  {{"datname", "vac_a"}, {"indexrelname", "in_a_pkey"}}),
            0);
  EXPECT_GT(
      Value(body, "pg_index_size_bytes", {{"datname", "vac_b"}, {"indexrelname", "in_b_pkey"}}), 0);
}

TEST_F(LibraryVacuumTest, TableLimitKeepsTheLargestAndCountsTheRest) {
  CreateDatabase("vac_limit");
  // t1 .. t10 with 1000 * i rows each: t10 is the largest; other.t99 is in another schema.
  pg_.Exec(
      "DO $$ BEGIN FOR i IN 1..10 LOOP "
      "EXECUTE format('CREATE TABLE t%s (id int primary key, pad text)', i); "
      "EXECUTE format('INSERT INTO t%s SELECT g, repeat(''x'', 100) FROM generate_series(1, %s) g',"
      "               i, 1000 * i); END LOOP; END $$;"
      "CREATE SCHEMA other; CREATE TABLE other.t99 (id int primary key);",
      "vac_limit");
  pg_.Exec("VACUUM ANALYZE", "vac_limit");  // sets pg_class.relpages
  const auto only = OnlyDatabase("vac_limit");
  const auto series = [](const std::string& body, const std::string& metric) {
    std::set<std::string> tables;
    for (const auto& line : LinesStartingWith(body, metric + "{")) {
      const auto start = line.find("relname=\"") + 9;
      tables.insert(line.substr(start, line.find('"', start) - start));
    }
    return tables;
  };
  const auto omitted = [](const std::string& body, const std::string& collector) {
    return SampleValue(body, "pgtally_collector_rows_omitted{collector=\"" + collector + "\"}");
  };

  auto body = ScrapeBody(*MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, only));
  EXPECT_EQ(series(body, "pg_stat_user_tables_n_live_tup").size(), 11u);
  EXPECT_EQ(omitted(body, "pg_stat_user_tables"), 0);

  body = ScrapeBody(*MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, only,
                                  {{"table_limit", "3", {}}}));
  EXPECT_THAT(series(body, "pg_stat_user_tables_n_live_tup"),
              ::testing::ElementsAre("t10", "t8", "t9"));
  EXPECT_EQ(omitted(body, "pg_stat_user_tables"), 8);
  EXPECT_THAT(series(body, "pg_table_size_bytes"), ::testing::ElementsAre("t10", "t8", "t9"));
  EXPECT_EQ(omitted(body, "pg_table_size"), 8);

  body = ScrapeBody(*MakeExporter(pg_.Dsn(), CollectorFile("indexes.yaml"), false, only,
                                  {{"index_limit", "2", {}}}));
  EXPECT_THAT(series(body, "pg_stat_user_indexes_idx_scan_total"),
              ::testing::ElementsAre("t10", "t9"));
  EXPECT_EQ(omitted(body, "pg_stat_user_indexes"), 9);

  // Regexes: tables named t1 or t1<digit>, outside schema "other"; then only schema "other".
  body = ScrapeBody(
      *MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, only,
                    {{"table_include", "^t1[0-9]?$", {}}, {"table_exclude", "^t10$", {}}}));
  EXPECT_THAT(series(body, "pg_stat_user_tables_n_live_tup"), ::testing::ElementsAre("t1"));
  body = ScrapeBody(*MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, only,
                                  {{"schema_include", "^other$", {}}}));
  EXPECT_THAT(series(body, "pg_stat_user_tables_n_live_tup"), ::testing::ElementsAre("t99"));
  body = ScrapeBody(*MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, only,
                                  {{"schema_exclude", "^public$", {}}}));
  EXPECT_THAT(series(body, "pg_stat_user_tables_n_live_tup"), ::testing::ElementsAre("t99"));
}

// Counts executions of statements containing `marker`, as pg_stat_statements sees them.
long long Calls(PgServer& pg, const std::string& marker) {
  return std::stoll(
      pg.QueryValue("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%" +
                    marker + "%' AND query NOT LIKE '%pg_stat_statements%'"));
}

TEST_F(LibraryVacuumTest, SizesAreCached) {
  CreateDatabase("vac_size");
  pg_.Exec(
      "CREATE TABLE docs (id int primary key, body text);"
      "INSERT INTO docs SELECT g, (SELECT string_agg(md5(random()::text || g || i), '') "
      "                            FROM generate_series(1, 200) i) FROM generate_series(1, 200) g",
      "vac_size");
  auto exporter =
      MakeExporter(pg_.Dsn(), CollectorFile("tables.yaml"), false, OnlyDatabase("vac_size"));
  const Labels docs = {{"datname", "vac_size"}, {"relname", "docs"}};
  const auto before = Calls(pg_, "pg_indexes_size(relid)");
  const auto first = ScrapeBody(*exporter);
  const auto table_bytes = Value(first, "pg_table_size_bytes", docs);
  EXPECT_GT(table_bytes, 0);
  // 6400 bytes of random hex do not compress: stored out of line, in the TOAST table.
  EXPECT_GT(Value(first, "pg_table_toast_size_bytes", docs), 200 * 6400);
  EXPECT_LT(Value(first, "pg_table_toast_size_bytes", docs), table_bytes);
  EXPECT_GT(Value(first, "pg_table_indexes_size_bytes", docs), 0);

  // More data, but the second scrape is within the TTL: same size, query not run again.
  pg_.Exec("INSERT INTO docs SELECT g, repeat('x', 100) FROM generate_series(201, 4000) g",
           "vac_size");
  const auto second = ScrapeBody(*exporter);
  EXPECT_EQ(Value(second, "pg_table_size_bytes", docs), table_bytes);
  EXPECT_EQ(Calls(pg_, "pg_indexes_size(relid)") - before, 1);
}

TEST_F(LibraryVacuumTest, RunningVacuumShowsItsProgress) {
  CreateDatabase("vac_run");
  // A 50,000-row table with every row dead once, and a vacuum throttled to a crawl: it stays in
  // "scanning heap" for many seconds, long enough to be seen every time.
  pg_.Exec(
      "CREATE TABLE slow (id int, pad text);"
      "INSERT INTO slow SELECT g, repeat('x', 50) FROM generate_series(1, 50000) g;"
      "UPDATE slow SET id = id + 1;"
      "ALTER DATABASE vac_run SET vacuum_cost_delay = 100;"
      "ALTER DATABASE vac_run SET vacuum_cost_limit = 1",
      "vac_run");
  const auto pages = std::stod(pg_.QueryValue(
      "SELECT pg_relation_size('slow') / current_setting('block_size')::int", "vac_run"));
  std::thread vacuum([&] {
    try {
      pg_.Exec("VACUUM slow", "vac_run");
    } catch (const std::runtime_error&) {
      // cancelled below
    }
  });
  auto exporter =
      MakeExporter(pg_.Dsn(), CollectorFile("vacuum.yaml"), false, OnlyDatabase("vac_run"));
  const Labels slow = {{"datname", "vac_run"},
                       {"relname", "slow"},
                       {"schemaname", "public"},
                       {"started_by", "manual"}};
  const auto body = ScrapeUntil(*exporter, [&](const std::string& b) {
    return Value(b, "pg_stat_progress_vacuum_heap_scanned_bytes", slow) > 0;
  });
  pg_.Exec("SELECT pg_cancel_backend(pid) FROM pg_stat_progress_vacuum", "vac_run");
  vacuum.join();

  EXPECT_EQ(Value(body, "pg_stat_progress_vacuum_heap_total_bytes", slow), pages * 8192);
  EXPECT_GT(Value(body, "pg_stat_progress_vacuum_heap_scanned_ratio", slow), 0);
  EXPECT_LT(Value(body, "pg_stat_progress_vacuum_heap_scanned_ratio", slow), 1);
  EXPECT_GE(Value(body, "pg_stat_progress_vacuum_running_seconds", slow), 0);
  EXPECT_GT(Value(body, "pg_stat_progress_vacuum_max_dead_tuples", slow), 0);
  EXPECT_EQ(Value(body, "pg_stat_progress_vacuum_index_vacuum_cycles", slow), 0);
  EXPECT_FALSE(LinesStartingWith(body, "pg_stat_progress_vacuum_heap_total_bytes{").empty());
  EXPECT_THAT(LinesStartingWith(body, "pg_stat_progress_vacuum_heap_total_bytes{")[0],
              ::testing::HasSubstr("phase=\"scanning heap\""));
  // PostgreSQL 17+ columns are absent on 15, not zero.
  EXPECT_TRUE(LinesStartingWith(body, "pg_stat_progress_vacuum_dead_tuple_bytes{").empty());
  // Gone once the vacuum is.
  const auto after = ScrapeUntil(*exporter, [](const std::string& b) {
    return LinesStartingWith(b, "pg_stat_progress_vacuum_heap_total_bytes{").empty();
  });
  EXPECT_TRUE(LinesStartingWith(after, "pg_stat_progress_vacuum_heap_total_bytes{").empty());
}

TEST_F(LibraryVacuumTest, IndexUsageAndUnusedIndexes) {
  CreateDatabase("vac_idx");
  pg_.Exec(
      "CREATE TABLE items (id int primary key, sku text, color text);"
      "CREATE INDEX items_sku ON items (sku); CREATE INDEX items_color ON items (color);"
      "INSERT INTO items SELECT g, 'sku' || g, 'c' || (g % 10) FROM generate_series(1, 1000) g;"
      "ANALYZE items",
      "vac_idx");
  auto exporter =
      MakeExporter(pg_.Dsn(), CollectorFile("indexes.yaml"), false, OnlyDatabase("vac_idx"));
  const auto index = [](const std::string& name) {
    return Labels{{"datname", "vac_idx"}, {"relname", "items"}, {"indexrelname", name}};
  };
  auto body = ScrapeBody(*exporter);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_unused", index("items_sku")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_unused", index("items_color")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_unused", index("items_pkey")), 0);  // a constraint

  pg_.Exec("SET enable_seqscan = off; SELECT * FROM items WHERE sku = 'sku7'", "vac_idx");
  body = ScrapeUntil(*exporter, [&](const std::string& b) {
    return Value(b, "pg_stat_user_indexes_idx_scan_total", index("items_sku")) >= 1;
  });
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_idx_scan_total", index("items_sku")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_idx_tup_read_total", index("items_sku")), 1);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_unused", index("items_sku")), 0);
  EXPECT_EQ(Value(body, "pg_stat_user_indexes_unused", index("items_color")), 1);
  EXPECT_GT(Value(body, "pg_index_size_bytes", index("items_sku")), 0);
}

TEST_F(LibraryVacuumTest, BloatEstimatesGrowWhenRowsAreDeleted) {
  CreateDatabase("vac_bloat");
  // About 8 MB of rows and a 2 MB primary key: above bloat_min_bytes.
  pg_.Exec(
      "CREATE TABLE wide (id int primary key, a text, b int, c timestamptz);"
      "INSERT INTO wide SELECT g, md5(g::text), g % 7, now() FROM generate_series(1, 100000) g",
      "vac_bloat");
  pg_.Exec("VACUUM ANALYZE wide", "vac_bloat");
  const Labels wide = {{"datname", "vac_bloat"}, {"relname", "wide"}};
  Labels pkey = wide;
  pkey["indexrelname"] = "wide_pkey";
  const auto scrape = [&](const std::string& file) {
    return ScrapeBody(
        *MakeExporter(pg_.Dsn(), CollectorFile(file), false, OnlyDatabase("vac_bloat")));
  };
  auto tables = scrape("vacuum.yaml");
  auto indexes = scrape("indexes.yaml");
  EXPECT_LT(Value(tables, "pg_table_bloat_ratio", wide), 0.1);
  EXPECT_LT(Value(indexes, "pg_index_bloat_ratio", pkey), 0.2);

  // Two rows of three deleted all over the table: vacuum frees the space inside the pages but
  // keeps the pages.
  pg_.Exec("DELETE FROM wide WHERE id % 3 <> 0", "vac_bloat");
  pg_.Exec("VACUUM ANALYZE wide", "vac_bloat");
  tables = scrape("vacuum.yaml");
  indexes = scrape("indexes.yaml");
  EXPECT_NEAR(Value(tables, "pg_table_bloat_ratio", wide), 0.667, 0.1);
  EXPECT_GT(Value(tables, "pg_table_bloat_bytes", wide), 2e6);
  EXPECT_GT(Value(indexes, "pg_index_bloat_ratio", pkey), 0.5);
  // A table under bloat_min_bytes gets no estimate.
  pg_.Exec("CREATE TABLE tiny (id int); INSERT INTO tiny VALUES (1); ANALYZE tiny", "vac_bloat");
  EXPECT_TRUE(std::isnan(Value(scrape("vacuum.yaml"), "pg_table_bloat_ratio",
                               {{"datname", "vac_bloat"}, {"relname", "tiny"}})));
}

TEST_F(LibraryVacuumTest, FunctionsAndSequences) {
  CreateDatabase("vac_obj");
  pg_.Exec(
      "CREATE FUNCTION slow_add(a int, b int) RETURNS int LANGUAGE plpgsql AS "
      "$$ BEGIN PERFORM pg_sleep(0.05); RETURN a + b; END $$;"
      "CREATE FUNCTION slow_add(a text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;"
      "CREATE SEQUENCE ticket AS smallint; CREATE SEQUENCE never_called;"
      "CREATE SEQUENCE wheel AS smallint CYCLE;",
      "vac_obj");
  pg_.Exec(
      "SELECT slow_add(1, 2), slow_add(3, 4), slow_add('x'), setval('ticket', 30000),"
      "setval('wheel', 32000)",
      "vac_obj");
  auto exporter =
      MakeExporter(pg_.Dsn(), CollectorFile("objects.yaml"), false, OnlyDatabase("vac_obj"));
  const Labels two_ints = {
      {"datname", "vac_obj"}, {"funcname", "slow_add"}, {"args", "a integer, b integer"}};
  const auto body = ScrapeUntil(*exporter, [&](const std::string& b) {
    return Value(b, "pg_stat_user_functions_calls_total", two_ints) == 2;
  });
  EXPECT_EQ(Value(body, "pg_stat_user_functions_calls_total", two_ints), 2);
  EXPECT_GE(Value(body, "pg_stat_user_functions_seconds_total", two_ints), 0.1);
  EXPECT_GE(Value(body, "pg_stat_user_functions_self_seconds_total", two_ints), 0);
  EXPECT_EQ(Value(body, "pg_stat_user_functions_calls_total",
                  {{"datname", "vac_obj"}, {"funcname", "slow_add"}, {"args", "a text"}}),
            1);

  const Labels ticket = {{"datname", "vac_obj"}, {"sequencename", "ticket"}};
  EXPECT_NEAR(Value(body, "pg_sequence_used_ratio", ticket), 29999.0 / 32766, 1e-9);
  EXPECT_EQ(Value(body, "pg_sequence_remaining_values", ticket), 32767 - 30000);
  // Never called: no last_value yet. Cycling: never exhausted.
  EXPECT_TRUE(std::isnan(Value(body, "pg_sequence_used_ratio",
                               {{"datname", "vac_obj"}, {"sequencename", "never_called"}})));
  EXPECT_TRUE(std::isnan(
      Value(body, "pg_sequence_used_ratio", {{"datname", "vac_obj"}, {"sequencename", "wheel"}})));
}

TEST_F(LibraryVacuumTest, TheCollectorsWorkForAPgMonitorRole) {
  CreateDatabase("vac_mon");
  pg_.Exec(
      "DO $$ BEGIN CREATE ROLE vac_monitor LOGIN IN ROLE pg_monitor; "
      "EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  pg_.Exec("CREATE TABLE watched (id int primary key); INSERT INTO watched VALUES (1)", "vac_mon");
  for (const char* file :
       {"tables.yaml", "vacuum.yaml", "indexes.yaml", "objects.yaml", "progress.yaml"}) {
    auto exporter = MakeExporter(pg_.Dsn() + " user=vac_monitor", CollectorFile(file), false,
                                 OnlyDatabase("vac_mon"));
    const auto body = ScrapeBody(*exporter);
    for (const auto& line : LinesStartingWith(body, "pgtally_collector_success{")) {
      EXPECT_THAT(line, ::testing::EndsWith(" 1")) << file;
    }
  }
  const auto body =
      ScrapeBody(*MakeExporter(pg_.Dsn() + " user=vac_monitor", CollectorFile("tables.yaml"), false,
                               OnlyDatabase("vac_mon")));
  EXPECT_EQ(Value(body, "pg_stat_user_tables_autovacuum_vacuum_due",
                  {{"datname", "vac_mon"}, {"relname", "watched"}}),
            0);
}

// Which SQL each collector runs on each PostgreSQL version: the variants must follow the
// catalog changes (13: n_ins_since_vacuum and the progress views for ANALYZE and base backups;
// 14: COPY progress; 17: vacuum progress in bytes; 18: max threshold, relallfrozen, delay_time;
// 19: pg_stat_autovacuum_scores).
TEST(LibraryVacuumVersions, VariantsFollowTheCatalog) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().ToString();
  const auto sql = [&](const std::string& name, int version) -> std::string {
    for (const auto& spec : loaded.collectors) {
      if (spec.name != name) continue;
      const auto* query = spec.versions.Contains(version) ? spec.QueryFor(version) : nullptr;
      return query ? query->sql : "";
    }
    ADD_FAILURE() << "no collector " << name;
    return "";
  };
  using ::testing::HasSubstr;
  using ::testing::IsEmpty;
  using ::testing::Not;
  for (int major = 12; major <= 19; ++major) {
    SCOPED_TRACE(major);
    const int version = major * 10000 + 3;
    for (const char* always :
         {"pg_stat_user_tables", "pg_table_size", "pg_database_wraparound",
          "pg_database_oldest_table", "pg_autovacuum", "pg_stat_progress_vacuum", "pg_table_bloat",
          "pg_stat_user_indexes", "pg_index_size", "pg_index_bloat", "pg_stat_user_functions",
          "pg_sequences", "pg_stat_progress_create_index", "pg_stat_progress_cluster"}) {
      EXPECT_THAT(sql(always, version), Not(IsEmpty())) << always;
    }
    const auto tables = sql("pg_stat_user_tables", version);
    if (major >= 13) {
      EXPECT_THAT(tables, HasSubstr("autovacuum_vacuum_insert_threshold"));
    } else {
      EXPECT_THAT(tables, HasSubstr("NULL::bigint AS n_ins_since_vacuum"));
    }
    EXPECT_EQ(tables.find("relallfrozen") != std::string::npos, major >= 18);
    EXPECT_EQ(tables.find("autovacuum_vacuum_max_threshold") != std::string::npos, major >= 18);

    const auto progress = sql("pg_stat_progress_vacuum", version);
    EXPECT_EQ(progress.find("p.num_dead_tuples") != std::string::npos, major <= 16);
    EXPECT_EQ(progress.find("p.num_dead_item_ids") != std::string::npos, major >= 17);
    EXPECT_EQ(progress.find("p.delay_time") != std::string::npos, major >= 18);

    EXPECT_EQ(sql("pg_stat_progress_analyze", version).empty(), major < 13);
    EXPECT_EQ(sql("pg_stat_progress_basebackup", version).empty(), major < 13);
    EXPECT_EQ(sql("pg_stat_progress_copy", version).empty(), major < 14);
    EXPECT_EQ(sql("pg_stat_autovacuum_scores", version).empty(), major < 19);
  }
}

}  // namespace
}  // namespace pgtally::testing
