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

  auto superuser = MakeExporter(pg.Dsn(), "", /*builtin=*/true);
  auto monitor = MakeExporter(pg.Dsn() + " user=pgtally_monitor", "", /*builtin=*/true);
  ScrapeBody(*superuser);  // the first scrape fills pg_stat_statements with pgtally's queries
  ScrapeBody(*monitor);
  const auto as_superuser = ScrapeBody(*superuser);
  const auto as_monitor = ScrapeBody(*monitor);

  ASSERT_EQ(SampleValue(as_monitor, "pg_up"), 1);
  EXPECT_THAT(Collectors(as_monitor, "pgtally_collector_success{"),
              ::testing::Not(::testing::IsEmpty()));
  EXPECT_THAT(Collectors(as_monitor, "pgtally_collector_success{"),
              ::testing::ContainerEq(Collectors(as_superuser, "pgtally_collector_success{")));
  // Failed collectors, and optional ones skipped for want of a privilege, show up here.
  const auto failed = [](const std::string& body) {
    std::set<std::string> names;
    for (const auto& line : LinesStartingWith(body, "pgtally_collector_success{")) {
      if (line.ends_with(" 0")) names.insert(line);
    }
    return names;
  };
  EXPECT_THAT(failed(as_monitor), ::testing::IsEmpty());
  EXPECT_THAT(failed(as_superuser), ::testing::IsEmpty());
  EXPECT_EQ(Collectors(as_monitor, "pgtally_collector_skipped{"),
            Collectors(as_superuser, "pgtally_collector_skipped{"));
  std::vector<std::string> only_superuser;
  const auto monitor_families = Families(as_monitor);
  const auto superuser_families = Families(as_superuser);
  std::ranges::set_difference(superuser_families, monitor_families,
                              std::back_inserter(only_superuser));
  // Sequence values are data, not statistics: pg_sequences shows last_value only to a role that
  // may read the sequence. The README says so and names the grant; this checks the grant works.
  EXPECT_THAT(only_superuser,
              ::testing::ElementsAre("pg_sequence_remaining_values", "pg_sequence_used_ratio"));
  EXPECT_THAT(monitor_families, ::testing::IsSubsetOf(superuser_families));

  pg.Exec("GRANT pg_read_all_data TO pgtally_monitor");
  auto reader = MakeExporter(pg.Dsn() + " user=pgtally_monitor", "", /*builtin=*/true);
  EXPECT_EQ(Families(ScrapeBody(*reader)), superuser_families);
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
