// The built-in collector library as a whole: a role with nothing but pg_monitor sees everything a
// superuser sees, and the example collectors in queries/examples work.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "http_client.h"
#include "pg_server.h"
#include "promtool.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The metric families a scrape exported, by name.
std::set<std::string> Families(const std::string& body) {
  std::set<std::string> names;
  for (const auto& line : LinesStartingWith(body, "# TYPE ")) {
    std::istringstream words(line.substr(7));
    std::string name;
    words >> name;
    names.insert(name);
  }
  return names;
}

// Collector names whose pgtally_collector_success or _skipped sample has `value` and `reason`.
std::set<std::string> Collectors(const std::string& body, const std::string& prefix) {
  std::set<std::string> names;
  for (const auto& line : LinesStartingWith(body, prefix)) {
    const auto start = line.find("collector=\"") + 11;
    names.insert(line.substr(start, line.find('"', start) - start));
  }
  return names;
}

// What `a` has and `b` lacks.
std::vector<std::string> Minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> difference;
  std::ranges::set_difference(a, b, std::back_inserter(difference));
  return difference;
}

TEST(Library, PgMonitorRoleSeesWhatASuperuserSees) {
  PgServer pg;
  pg.Exec("CREATE ROLE pgtally_monitor LOGIN IN ROLE pg_monitor");
  pg.Exec("CREATE DATABASE shop");
  pg.Exec(
      "CREATE TABLE orders (id serial PRIMARY KEY, total numeric);"
      "INSERT INTO orders (total) SELECT g FROM generate_series(1, 1000) g;"
      "DELETE FROM orders WHERE id % 3 = 0; ANALYZE orders;"
      "CREATE SEQUENCE invoice_no; SELECT nextval('invoice_no');",
      "shop");
  pg.Exec("SELECT pg_stat_force_next_flush()", "shop");
  pg.Exec(
      "SELECT pg_replication_origin_create('upstream');"
      "SELECT pg_replication_origin_advance('upstream', '0/1000')");

  auto superuser = MakeExporter(pg.Dsn(), "", /*builtin=*/true);
  auto monitor = MakeExporter(pg.Dsn() + " user=pgtally_monitor", "", /*builtin=*/true);
  ScrapeBody(*superuser);  // the first scrape fills pg_stat_statements with pgtally's queries
  ScrapeBody(*monitor);
  const auto as_superuser = ScrapeBody(*superuser);
  const auto as_monitor = ScrapeBody(*monitor);

  ASSERT_EQ(SampleValue(as_monitor, "pg_up"), 1);
  const auto ran = [](const std::string& body) {
    return Collectors(body, "pgtally_collector_success{");
  };
  const auto skipped = [](const std::string& body) {
    return Collectors(body, "pgtally_collector_skipped{");
  };
  EXPECT_THAT(ran(as_monitor), ::testing::Not(::testing::IsEmpty()));
  const auto failed = [](const std::string& body) {
    std::set<std::string> names;
    for (const auto& line : LinesStartingWith(body, "pgtally_collector_success{")) {
      if (line.ends_with(" 0")) names.insert(line);
    }
    return names;
  };
  EXPECT_THAT(failed(as_monitor), ::testing::IsEmpty());
  EXPECT_THAT(failed(as_superuser), ::testing::IsEmpty());
  EXPECT_EQ(PromtoolCheckMetrics(as_superuser), "");

  // Two things are data rather than statistics, and pg_monitor does not cover them; the README
  // names the grants and the last part of this test checks they are enough.
  // - Replication origins: superuser only. The optional collector is skipped, not failed.
  EXPECT_THAT(Minus(skipped(as_monitor), skipped(as_superuser)),
              ::testing::ElementsAre("pg_replication_origin"));
  EXPECT_THAT(Minus(skipped(as_superuser), skipped(as_monitor)), ::testing::IsEmpty());
  EXPECT_EQ(
      SampleValue(as_superuser, R"(pg_replication_origin_remote_lsn_bytes{origin="upstream"})"),
      4096);
  // - How full a sequence is: pg_sequences shows last_value only to a role that may read it.
  const auto superuser_families = Families(as_superuser);
  EXPECT_THAT(Minus(superuser_families, Families(as_monitor)),
              ::testing::ElementsAre("pg_replication_origin_local_lsn_bytes",
                                     "pg_replication_origin_remote_lsn_bytes",
                                     "pg_sequence_remaining_values", "pg_sequence_used_ratio"));
  EXPECT_THAT(Minus(Families(as_monitor), superuser_families), ::testing::IsEmpty());
  EXPECT_THAT(Minus(ran(as_superuser), ran(as_monitor)),
              ::testing::ElementsAre("pg_replication_origin"));
  EXPECT_THAT(Minus(ran(as_monitor), ran(as_superuser)), ::testing::IsEmpty());

  pg.Exec(
      "GRANT pg_read_all_data TO pgtally_monitor;"
      "GRANT EXECUTE ON FUNCTION pg_show_replication_origin_status() TO pgtally_monitor");
  auto granted = MakeExporter(pg.Dsn() + " user=pgtally_monitor", "", /*builtin=*/true);
  const auto as_granted = ScrapeBody(*granted);
  EXPECT_EQ(Families(as_granted), superuser_families);
  EXPECT_EQ(skipped(as_granted), skipped(as_superuser));
  EXPECT_EQ(ran(as_granted), ran(as_superuser));
  EXPECT_THAT(failed(as_granted), ::testing::IsEmpty());
}

TEST(Library, AlembicExampleReportsTheRevision) {
  PgServer& pg = SharedPgServer();
  pg.Exec("DROP DATABASE IF EXISTS migrated WITH (FORCE)");
  pg.Exec("CREATE DATABASE migrated");
  pg.Exec(
      "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
      "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
      "migrated");
  TargetOptions options;
  options.include_databases = std::regex("migrated|postgres");
  auto exporter = MakeExporter(
      pg.Dsn(), ReadFile(PGTALLY_SOURCE_DIR "/queries/examples/alembic.yaml"), false, options);
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(
      SampleValue(body, R"(alembic_version_info{datname="migrated",version_num="ae1027a6acf"})"),
      1);
  // The database without the table is skipped quietly; the collector as a whole succeeded.
  EXPECT_TRUE(LinesStartingWith(body, R"(alembic_version_info{datname="postgres")").empty());
  EXPECT_EQ(SampleValue(body, R"(pgtally_collector_success{collector="alembic_version"})"), 1);
  pg.Exec("DROP DATABASE migrated WITH (FORCE)");
}

}  // namespace
}  // namespace pgtally::testing
