// The built-in PgBouncer collectors (queries/pgbouncer.yaml) against a real PgBouncer in front of
// a real PostgreSQL: pools move when clients hold and wait for server connections, traffic
// counters grow, no PostgreSQL collector runs on the admin console, and pgbouncer_up follows
// PgBouncer going away.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "http_client.h"
#include "pg_client.h"
#include "pg_server.h"
#include "pgbouncer_server.h"
#include "process.h"
#include "promtool.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::EndsWith;
using ::testing::StartsWith;

void RunSql(PGconn* conn, const char* sql) {
  PGresult* result = PQexec(conn, sql);
  const ExecStatusType status = PQresultStatus(result);
  EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
      << sql << ": " << PQerrorMessage(conn);
  PQclear(result);
}

constexpr char kPool[] = R"({database="postgres",user="postgres",pool_mode="transaction"})";

class PgBouncerLibraryTest : public ::testing::Test {
 protected:
  PgServer& pg_ = SharedPgServer();
  // One server connection per pool, so a second client in a transaction must wait.
  PgBouncerServer bouncer_{pg_.port(), {.pool_size = 1, .max_client_conn = 100}};
  std::unique_ptr<Exporter> exporter_ = MakeExporter(bouncer_.AdminDsn(), "", /*builtin=*/true);
};

TEST_F(PgBouncerLibraryTest, RunsOnlyPgBouncerCollectors) {
  const auto body = ScrapeBody(*exporter_);
  EXPECT_EQ(SampleValue(body, "pgbouncer_up"), 1);
  EXPECT_TRUE(std::isnan(SampleValue(body, "pg_up")));
  const auto success = LinesStartingWith(body, "pgtally_collector_success{");
  EXPECT_GE(success.size(), 5u);
  for (const auto& line : success) {
    EXPECT_THAT(line, StartsWith("pgtally_collector_success{collector=\"pgbouncer_"));
    EXPECT_THAT(line, EndsWith(" 1"));
  }
  // No PostgreSQL collector ran, failed or was skipped here.
  for (const auto& line : LinesStartingWith(body, "pgtally_collector_")) {
    EXPECT_THAT(line, ::testing::Not(::testing::HasSubstr("collector=\"pg_")));
  }
  // The configured limits and internal lists are there.
  EXPECT_EQ(SampleValue(body, R"(pgbouncer_databases_pool_size{name="pgbouncer",host="",port=")" +
                                  std::to_string(bouncer_.port()) + R"(",database="pgbouncer"})"),
            2);
  EXPECT_GE(SampleValue(body, R"(pgbouncer_lists_items{list="used_clients"})"), 1);
  EXPECT_GT(SampleValue(body, R"(pgbouncer_mem_bytes{name="client_cache"})"), 0);
  EXPECT_EQ(PromtoolCheckMetrics(body), "");
}

TEST_F(PgBouncerLibraryTest, PoolsShowActiveAndWaitingClients) {
  // The first client holds the only server connection in an open transaction; the second
  // queues behind it.
  const Conn holder = Connect(bouncer_.Dsn("postgres"));
  RunSql(holder.get(), "BEGIN");
  RunSql(holder.get(), "SELECT 1");
  const Conn waiter = Connect(bouncer_.Dsn("postgres"));
  ASSERT_EQ(PQsendQuery(waiter.get(), "SELECT 2"), 1) << PQerrorMessage(waiter.get());

  std::string body;
  for (int i = 0; i < 50; ++i) {
    body = ScrapeBody(*exporter_);
    if (SampleValue(body, std::string("pgbouncer_pools_client_waiting_connections") + kPool) == 1) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(SampleValue(body, std::string("pgbouncer_pools_client_waiting_connections") + kPool),
            1);
  EXPECT_EQ(SampleValue(body, std::string("pgbouncer_pools_client_active_connections") + kPool), 1);
  EXPECT_EQ(SampleValue(body, std::string("pgbouncer_pools_server_active_connections") + kPool), 1);
  EXPECT_GE(SampleValue(body, std::string("pgbouncer_pools_client_maxwait_seconds") + kPool), 0);
  EXPECT_EQ(
      SampleValue(
          body,
          R"(pgbouncer_databases_current_connections{name="postgres",host="127.0.0.1",port=")" +
              std::to_string(pg_.port()) + R"(",database="postgres"})"),
      1);

  // The transaction ends: the waiter gets the connection and nobody waits any more.
  RunSql(holder.get(), "COMMIT");
  while (PGresult* result = PQgetResult(waiter.get())) {
    EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK);
    PQclear(result);
  }
  body = ScrapeBody(*exporter_);
  EXPECT_EQ(SampleValue(body, std::string("pgbouncer_pools_client_waiting_connections") + kPool),
            0);
  EXPECT_EQ(SampleValue(body, std::string("pgbouncer_pools_server_active_connections") + kPool), 0);
}

TEST_F(PgBouncerLibraryTest, StatsCountQueriesAndBytes) {
  const std::string queries = R"(pgbouncer_stats_queries_total{database="postgres"})";
  const std::string received = R"(pgbouncer_stats_received_bytes_total{database="postgres"})";
  const std::string query_time = R"(pgbouncer_stats_query_time_seconds_total{database="postgres"})";
  const auto before = ScrapeBody(*exporter_);
  const double queries_before =
      std::isnan(SampleValue(before, queries)) ? 0 : SampleValue(before, queries);

  const Conn client = Connect(bouncer_.Dsn("postgres"));
  for (int i = 0; i < 10; ++i) RunSql(client.get(), "SELECT pg_sleep(0.01)");

  // PgBouncer folds new traffic into SHOW STATS every stats_period (1 s here).
  std::string after;
  for (int i = 0; i < 50; ++i) {
    after = ScrapeBody(*exporter_);
    if (SampleValue(after, queries) >= queries_before + 10) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(SampleValue(after, queries), queries_before + 10);
  EXPECT_GE(SampleValue(after, R"(pgbouncer_stats_transactions_total{database="postgres"})"), 10);
  EXPECT_GT(SampleValue(after, received), 0);
  EXPECT_GT(SampleValue(after, R"(pgbouncer_stats_sent_bytes_total{database="postgres"})"), 0);
  // Ten queries of 10 ms each: at least 0.1 s, and microseconds were scaled to seconds.
  EXPECT_GE(SampleValue(after, query_time), 0.1);
  EXPECT_LT(SampleValue(after, query_time), 60);
}

// pgtally prepares its statements once per connection. Behind transaction pooling the next
// transaction may run on a backend that never saw them: pgtally prepares them again there.
TEST_F(PgBouncerLibraryTest, PreparedStatementsSurviveTransactionPooling) {
  auto through_pool = MakeExporter(bouncer_.Dsn("postgres"), R"yaml(version: 1
collectors:
  - {name: pooled, help: P., query: "SELECT 7 AS v", values: [{column: v, type: gauge}]}
)yaml");
  EXPECT_EQ(SampleValue(ScrapeBody(*through_pool), "pooled_v"), 7);
  // The pool has one server connection. RECONNECT closes it once released, so the next
  // transaction runs on a fresh backend.
  const auto backend = [&] {
    const auto conn = Connect(bouncer_.Dsn("postgres"));
    PGresult* result = PQexec(conn.get(), "SELECT pg_backend_pid()");
    const std::string pid = PQntuples(result) == 1 ? PQgetvalue(result, 0, 0) : "";
    PQclear(result);
    return pid;
  };
  const auto before = backend();
  RunSql(Connect(bouncer_.AdminDsn()).get(), "RECONNECT postgres");
  EXPECT_TRUE(Eventually([&] { return backend() != before; }, std::chrono::seconds(10)));
  for (int i = 0; i < 3; ++i) {
    const auto body = ScrapeBody(*through_pool);
    EXPECT_EQ(SampleValue(body, "pooled_v"), 7) << body;
    EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"pooled\"}"), 1);
  }
}

TEST_F(PgBouncerLibraryTest, UpFollowsPgBouncer) {
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter_), "pgbouncer_up"), 1);
  bouncer_.Stop();
  const auto body = ScrapeBody(*exporter_);
  EXPECT_EQ(SampleValue(body, "pgbouncer_up"), 0);
  EXPECT_TRUE(LinesStartingWith(body, "pgbouncer_pools_").empty());
}

}  // namespace
}  // namespace pgtally::testing
