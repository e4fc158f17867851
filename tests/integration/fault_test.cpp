// What pgtally does when the database goes away: a stopped server, a hung server, killed
// connections. Each test has its own server, since it breaks it on purpose.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "http_client.h"
#include "pg_server.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kCollectors = R"yaml(version: 1
collectors:
  - {name: probe, help: P., query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
  - {name: per_db, help: D., scope: database, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
)yaml";

// Scrapes until pg_up has `value` or `limit` passes; returns the number of scrapes it took.
int ScrapesUntilUp(Exporter& exporter, double value, std::chrono::seconds limit) {
  const auto give_up = Clock::now() + limit;
  for (int scrapes = 1; Clock::now() < give_up; ++scrapes) {
    if (SampleValue(ScrapeBody(exporter, Millis(3000)), "pg_up") == value) return scrapes;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return -1;
}

TEST(Faults, StoppedServerGivesPgUpZeroThenRecovers) {
  PgServer pg;
  TargetOptions options;
  options.connect_timeout = Millis(1000);
  auto exporter = MakeExporter(pg.Dsn(), kCollectors, false, options);
  ASSERT_EQ(SampleValue(ScrapeBody(*exporter), "pg_up"), 1);

  pg.Stop();
  const auto start = Clock::now();
  const auto body = ScrapeBody(*exporter);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(SampleValue(body, "pg_up"), 0);  // the very next scrape knows
  EXPECT_TRUE(std::isnan(SampleValue(body, "probe_v")));

  pg.Start();
  const int scrapes = ScrapesUntilUp(*exporter, 1, std::chrono::seconds(20));
  EXPECT_GT(scrapes, 0) << "pgtally did not reconnect after the server came back";
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "probe_v"), 1);
}

TEST(Faults, HungServerCannotHangTheScrape) {
  PgServer pg;
  TargetOptions options;
  options.connect_timeout = Millis(1000);
  auto exporter = MakeExporter(pg.Dsn(), kCollectors, false, options);
  ASSERT_EQ(SampleValue(ScrapeBody(*exporter), "pg_up"), 1);

  pg.Pause();
  for (int i = 0; i < 2; ++i) {  // an established connection, then a fresh connection attempt
    const auto start = Clock::now();
    const auto body = ScrapeBody(*exporter, Millis(2000));
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(2500));
    EXPECT_EQ(SampleValue(body, "pg_up"), 0);
  }
  pg.Resume();
  EXPECT_GT(ScrapesUntilUp(*exporter, 1, std::chrono::seconds(20)), 0);
}

TEST(Faults, KilledConnectionsAreReplacedWithinTheScrape) {
  PgServer pg;
  auto exporter = MakeExporter(pg.Dsn(), kCollectors);
  ASSERT_EQ(SampleValue(ScrapeBody(*exporter), "pg_up"), 1);
  EXPECT_EQ(
      pg.QueryValue("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgtally'"),
      "1");

  pg.Exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgtally'");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(body, "probe_v"), 1);
}

TEST(Faults, ConnectionsArePersistent) {
  PgServer pg;
  auto exporter = MakeExporter(pg.Dsn(), kCollectors);
  ScrapeBody(*exporter);
  const auto pid = pg.QueryValue(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgtally' AND datname = "
      "'postgres'");
  for (int i = 0; i < 3; ++i) ScrapeBody(*exporter);
  EXPECT_EQ(pg.QueryValue("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgtally' AND "
                          "datname = 'postgres'"),
            pid);
}

TEST(Faults, RoleGatedCollectorsFollowAFailover) {
  PgServer primary(PgServer::Options{.pg_stat_statements = false, .extra_conf = {}});
  const auto standby = PgServer::StandbyOf(primary);
  auto exporter = MakeExporter(standby->Dsn(), R"yaml(version: 1
collectors:
  - {name: on_standby, help: S., role: standby, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
  - {name: on_primary, help: P., role: primary, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
)yaml");
  auto body = ScrapeBody(*exporter);
  ASSERT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(body, "on_standby_v"), 1);
  EXPECT_TRUE(std::isnan(SampleValue(body, "on_primary_v")));

  standby->Promote();  // the same connection now talks to a primary
  body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(body, "on_primary_v"), 1);
  EXPECT_TRUE(std::isnan(SampleValue(body, "on_standby_v")));
  EXPECT_EQ(
      SampleValue(body, "pgtally_collector_skipped{collector=\"on_standby\",reason=\"role\"}"), 1);
}

TEST(Faults, UnreachableServerIsDownNotAnError) {
  auto exporter = MakeExporter("host=127.0.0.1 port=1 user=nobody connect_timeout=1", kCollectors);
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 0);
  EXPECT_TRUE(LinesStartingWith(body, "pgtally_collector_success").empty());
}

}  // namespace
}  // namespace pgtally::testing
