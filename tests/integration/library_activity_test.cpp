// The built-in connection, lock and statement collectors (queries/activity.yaml, locks.yaml,
// statements.yaml) against a real PostgreSQL 15: each test creates the condition (an idle
// transaction, a lock wait, a slow statement, a named application) and checks that the metric
// moves. Version selection of their variants is checked without a server.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally/config/collector_loader.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadQueries(const std::string& file) {
  std::ifstream in(PGTALLY_SOURCE_DIR "/queries/" + file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A client session that stays open across scrapes, for states a test must hold (an open
// transaction, a held lock, a statement waiting on a lock).
class Session {
 public:
  explicit Session(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str()), &PQfinish) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      ADD_FAILURE() << "connect: " << PQerrorMessage(conn_.get());
    }
  }

  // Runs SQL and waits for its result; fails the test on error.
  void Exec(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn_.get(), sql.c_str()),
                                                         &PQclear);
    const auto status = PQresultStatus(result.get());
    EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(conn_.get());
  }

  // Sends SQL without waiting for it to finish (it may block on a lock).
  void Send(const std::string& sql) {
    EXPECT_EQ(PQsendQuery(conn_.get(), sql.c_str()), 1) << PQerrorMessage(conn_.get());
  }

  // Reads every pending result of a Send().
  void Drain() {
    while (PGresult* result = PQgetResult(conn_.get())) PQclear(result);
  }

  int pid() const { return PQbackendPID(conn_.get()); }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

// One server for this suite, apart from the shared one: these tests reset pg_stat_statements and
// count sessions and locks server-wide.
class LibraryActivityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgServer::Options options;
    options.extra_conf = {"max_prepared_transactions = 5"};
    pg_ = new PgServer(options);
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  static std::unique_ptr<Exporter> Builtin() { return MakeExporter(pg_->Dsn(), "", true); }

  static PgServer* pg_;
};

PgServer* LibraryActivityTest::pg_ = nullptr;

// Polls `sql` until it returns "t", for at most 10 s.
bool WaitFor(const PgServer& pg, const std::string& sql) {
  for (int i = 0; i < 200; ++i) {
    if (pg.QueryValue(sql) == "t") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_F(LibraryActivityTest, IdleInTransactionAgeGrows) {
  pg_->Exec("CREATE DATABASE idle_db");
  Session session(pg_->Dsn("idle_db"));
  // Repeatable read keeps the transaction's snapshot, and so its xmin, while it sits idle.
  session.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  session.Exec("SELECT count(*) FROM pg_class");
  pg_->Exec("SELECT txid_current()");
  pg_->Exec("SELECT txid_current()");
  auto exporter = Builtin();
  const auto first = ScrapeBody(*exporter);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const auto second = ScrapeBody(*exporter);

  const std::string idle =
      R"(pg_stat_activity_oldest_idle_in_transaction_age_seconds{datname="idle_db"})";
  EXPECT_GE(SampleValue(first, idle), 0);
  EXPECT_GE(SampleValue(second, idle), 1.0);
  EXPECT_GT(SampleValue(second, idle), SampleValue(first, idle));
  EXPECT_GE(SampleValue(second, R"(pg_stat_activity_oldest_xact_age_seconds{datname="idle_db"})"),
            1.0);
  // The session runs nothing, so no query counts as active in its database.
  EXPECT_EQ(SampleValue(second, R"(pg_stat_activity_oldest_query_age_seconds{datname="idle_db"})"),
            0);
  // Two transactions have taken an ID since the session's snapshot.
  EXPECT_GE(
      SampleValue(second, R"(pg_stat_activity_oldest_xmin_age_transactions{datname="idle_db"})"),
      2);
  EXPECT_EQ(
      SampleValue(
          second,
          R"(pg_stat_activity_connections{datname="idle_db",usename="postgres",state="idle in transaction"})"),
      1);
  session.Exec("COMMIT");
  const auto after = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(after, idle), 0);
  EXPECT_EQ(SampleValue(after, R"(pg_stat_activity_oldest_xact_age_seconds{datname="idle_db"})"),
            0);
}

TEST_F(LibraryActivityTest, LockWaitShowsBlockedBackendAndWaitAge) {
  pg_->Exec("CREATE TABLE IF NOT EXISTS contended (id int)");
  pg_->Exec("CREATE DATABASE calm_db");
  Session holder(pg_->Dsn());
  Session waiter(pg_->Dsn());
  holder.Exec("BEGIN");
  holder.Exec("LOCK TABLE contended IN ACCESS EXCLUSIVE MODE");
  waiter.Send("SELECT count(*) FROM contended");
  ASSERT_TRUE(WaitFor(*pg_, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = " +
                                std::to_string(waiter.pid())));

  auto exporter = Builtin();
  const auto first = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(first, R"(pg_locks_blocked_backends{datname="postgres"})"), 1);
  EXPECT_EQ(SampleValue(first, R"(pg_locks_blocking_backends{datname="postgres"})"), 1);
  EXPECT_GE(
      SampleValue(
          first,
          R"(pg_locks_waiting{datname="postgres",locktype="relation",mode="AccessShareLock"})"),
      1);
  EXPECT_GE(
      SampleValue(
          first,
          R"(pg_locks_granted{datname="postgres",locktype="relation",mode="AccessExclusiveLock"})"),
      1);
  EXPECT_GE(
      SampleValue(
          first,
          R"(pg_stat_activity_wait_event_backends{datname="postgres",wait_event_type="Lock",wait_event="relation"})"),
      1);
  // Databases where nothing waits read 0 rather than vanishing.
  EXPECT_EQ(SampleValue(first, R"(pg_locks_blocked_backends{datname="calm_db"})"), 0);

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto second = ScrapeBody(*exporter);
  EXPECT_GE(SampleValue(second, R"(pg_locks_max_wait_seconds{datname="postgres"})"), 1.0);
  EXPECT_GT(SampleValue(second, R"(pg_locks_max_wait_seconds{datname="postgres"})"),
            SampleValue(first, R"(pg_locks_max_wait_seconds{datname="postgres"})"));
  // The waiting statement is active, so it is also the oldest active query.
  EXPECT_GE(SampleValue(second, R"(pg_stat_activity_oldest_query_age_seconds{datname="postgres"})"),
            1.0);

  holder.Exec("ROLLBACK");
  waiter.Drain();
  const auto after = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(after, R"(pg_locks_blocked_backends{datname="postgres"})"), 0);
  EXPECT_EQ(SampleValue(after, R"(pg_locks_max_wait_seconds{datname="postgres"})"), 0);
  EXPECT_TRUE(std::isnan(SampleValue(
      after,
      R"(pg_locks_waiting{datname="postgres",locktype="relation",mode="AccessShareLock"})")));
}

TEST_F(LibraryActivityTest, PreparedTransactionShowsItsAge) {
  pg_->Exec("CREATE DATABASE twophase_db");
  auto exporter = Builtin();
  const std::string count = R"(pg_prepared_xacts_transactions{datname="twophase_db"})";
  const std::string age = R"(pg_prepared_xacts_oldest_age_seconds{datname="twophase_db"})";
  const auto before = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(before, count), 0);
  EXPECT_EQ(SampleValue(before, age), 0);

  pg_->Exec("BEGIN; CREATE TABLE in_doubt (id int); PREPARE TRANSACTION 'lib_activity_gid'",
            "twophase_db");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto prepared = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(prepared, count), 1);
  EXPECT_GE(SampleValue(prepared, age), 1.0);
  // Its lock on the new table outlives the session that prepared it.
  EXPECT_GE(SampleValue(prepared, R"(pg_locks_granted{datname="twophase_db",locktype="relation",)"
                                  R"(mode="AccessExclusiveLock"})"),
            1);

  pg_->Exec("ROLLBACK PREPARED 'lib_activity_gid'", "twophase_db");
  const auto after = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(after, count), 0);
  EXPECT_EQ(SampleValue(after, age), 0);
}

TEST_F(LibraryActivityTest, SlowStatementHasItsTimeAndText) {
  pg_->Exec("SELECT pg_stat_statements_reset()");
  pg_->Exec("SELECT pg_sleep(0.3)");
  pg_->Exec("SELECT 1 + 1");
  pg_->Exec("SELECT count(*) FROM pg_class");
  const auto queryid =
      pg_->QueryValue("SELECT queryid FROM pg_stat_statements WHERE query = 'SELECT pg_sleep($1)'");
  ASSERT_FALSE(queryid.empty());
  const std::string labels =
      "{queryid=\"" + queryid + "\",datname=\"postgres\",usename=\"postgres\"";

  const auto yaml = ReadQueries("statements.yaml");
  auto exporter = MakeExporter(pg_->Dsn(), yaml);
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_stat_statements_calls_total" + labels + "}"), 1);
  EXPECT_GE(SampleValue(body, "pg_stat_statements_exec_seconds_total" + labels + "}"), 0.3);
  EXPECT_LT(SampleValue(body, "pg_stat_statements_exec_seconds_total" + labels + "}"), 5);
  EXPECT_EQ(SampleValue(body, "pg_stat_statements_rows_total" + labels + "}"), 1);
  EXPECT_GE(SampleValue(body, "pg_stat_statements_wal_bytes_total" + labels + "}"), 0);
  EXPECT_GE(SampleValue(body, "pg_stat_statements_jit_seconds_total" + labels + "}"), 0);
  EXPECT_EQ(SampleValue(
                body, "pg_stat_statements_query_info" + labels + ",query=\"SELECT pg_sleep($1)\"}"),
            1);
  EXPECT_EQ(SampleValue(body, R"(pgtally_collector_rows_omitted{collector="pg_stat_statements"})"),
            0);
  EXPECT_GE(SampleValue(body, "pg_stat_statements_info_dealloc_total"), 0);
  EXPECT_GE(SampleValue(body, "pg_stat_statements_info_entries"), 3);
  EXPECT_GT(SampleValue(body, "pg_stat_statements_info_max_entries"),
            SampleValue(body, "pg_stat_statements_info_entries"));
  for (const auto* collector :
       {"pg_stat_statements", "pg_stat_statements_query", "pg_stat_statements_info"}) {
    EXPECT_EQ(SampleValue(
                  body, "pgtally_collector_success{collector=\"" + std::string(collector) + "\"}"),
              1)
        << collector;
  }
}

TEST_F(LibraryActivityTest, StatementsLimitCapsSeriesAndCountsTheRest) {
  pg_->Exec("SELECT pg_stat_statements_reset()");
  pg_->Exec("SELECT pg_sleep(0.2)");
  pg_->Exec("SELECT pg_sleep(0.1)::text");
  for (int i = 0; i < 5; ++i)
    pg_->Exec("SELECT " + std::to_string(i) + " AS c" + std::to_string(i));
  const auto total = std::stoi(
      pg_->QueryValue("SELECT count(DISTINCT (queryid, dbid, userid)) FROM pg_stat_statements"));
  ASSERT_GT(total, 3);

  auto exporter =
      MakeExporter(pg_->Dsn(), ReadQueries("statements.yaml"), false, {},
                   {{"statements_limit", "2", {}}, {"statement_text_length", "12", {}}});
  const auto body = ScrapeBody(*exporter);
  const auto calls = LinesStartingWith(body, "pg_stat_statements_calls_total{");
  EXPECT_EQ(calls.size(), 2u);
  EXPECT_EQ(LinesStartingWith(body, "pg_stat_statements_query_info{").size(), 2u);
  // The two longest statements are kept; texts are cut to 12 characters.
  EXPECT_THAT(body, HasSubstr(R"(query="SELECT pg_sl"} 1)"));
  EXPECT_THAT(body, Not(HasSubstr("pg_sleep($1)")));
  // The scrape's own statements and the ones above exceed the limit; rows_omitted reports them
  // (at least the ones counted before the scrape).
  EXPECT_GE(SampleValue(body, R"(pgtally_collector_rows_omitted{collector="pg_stat_statements"})"),
            total - 2);
}

TEST_F(LibraryActivityTest, ConnectionsByApplicationAndUtilisation) {
  Session app(pg_->Dsn() + " application_name=billing_worker");
  Session other(pg_->Dsn() + " application_name=billing_worker");
  Session anonymous(pg_->Dsn());
  auto exporter = Builtin();
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(
      SampleValue(
          body,
          R"(pg_stat_activity_application_connections{datname="postgres",application_name="billing_worker",state="idle"})"),
      2);
  // No application name is the empty label, never a missing series.
  EXPECT_GE(
      SampleValue(
          body,
          R"(pg_stat_activity_application_connections{datname="postgres",application_name="",state="idle"})"),
      1);
  EXPECT_EQ(
      SampleValue(body,
                  R"(pgtally_collector_rows_omitted{collector="pg_stat_activity_application"})"),
      0);

  const auto ratio = SampleValue(body, "pg_connections_utilization_ratio");
  const auto max_connections = std::stod(pg_->QueryValue("SHOW max_connections"));
  const auto reserved = std::stod(pg_->QueryValue("SHOW superuser_reserved_connections"));
  // At least our three sessions and pgtally's own connection.
  EXPECT_GE(ratio * (max_connections - reserved), 3.99);
  EXPECT_GT(ratio, 0);
  EXPECT_LE(ratio, 1);

  EXPECT_GE(SampleValue(body, R"(pg_stat_activity_backends{backend_type="client backend"})"), 4);
  EXPECT_EQ(SampleValue(body, R"(pg_stat_activity_backends{backend_type="checkpointer"})"), 1);
  EXPECT_GE(
      SampleValue(body, R"(pg_stat_activity_address_family_connections{address_family="ipv4"})"),
      4);
  EXPECT_GE(SampleValue(body, R"(pg_stat_ssl_connections{ssl="false",version="",cipher=""})"), 4);
  EXPECT_GE(
      SampleValue(body, R"(pg_stat_gssapi_connections{authenticated="false",encrypted="false"})"),
      4);
}

// Which variant each collector picks on 12 through 19, without a server.
TEST(LibraryActivityVersions, VariantsFollowTheCatalogOfEachVersion) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
  const auto sql = [&](const std::string& name, int version) -> std::string {
    for (const auto& spec : loaded.collectors) {
      if (spec.name != name) continue;
      const auto* query = spec.QueryFor(version);
      return query ? query->sql : "";
    }
    ADD_FAILURE() << "no collector " << name;
    return "";
  };

  for (const int version : {120000, 120022}) {
    const auto statements = sql("pg_stat_statements", version);
    EXPECT_THAT(statements, HasSubstr("sum(total_time)")) << version;
    EXPECT_THAT(statements, Not(HasSubstr("total_exec_time"))) << version;
    EXPECT_THAT(statements, HasSubstr("NULL::numeric AS wal_bytes")) << version;
    EXPECT_THAT(sql("pg_stat_statements_query", version), HasSubstr("sum(total_time)"));
  }
  for (const int version : {130000, 130018, 140000, 149999}) {
    const auto statements = sql("pg_stat_statements", version);
    EXPECT_THAT(statements, HasSubstr("sum(total_exec_time)")) << version;
    EXPECT_THAT(statements, HasSubstr("sum(wal_bytes)")) << version;
    EXPECT_THAT(statements, HasSubstr("sum(blk_read_time)")) << version;
    EXPECT_THAT(statements, HasSubstr("NULL::float8 AS temp_block_read_time")) << version;
  }
  for (const int version : {150000, 150007, 160000, 169999}) {
    const auto statements = sql("pg_stat_statements", version);
    EXPECT_THAT(statements, HasSubstr("sum(temp_blk_read_time)")) << version;
    EXPECT_THAT(statements, HasSubstr("sum(blk_read_time)")) << version;
    EXPECT_THAT(statements, Not(HasSubstr("jit_deform_time"))) << version;
  }
  for (const int version : {170000, 170004, 180000, 190000}) {
    const auto statements = sql("pg_stat_statements", version);
    EXPECT_THAT(statements, HasSubstr("shared_blk_read_time + local_blk_read_time")) << version;
    EXPECT_THAT(statements, Not(HasSubstr("sum(blk_read_time)"))) << version;
    EXPECT_THAT(statements, HasSubstr("jit_deform_time")) << version;
  }
  for (int major = 12; major <= 19; ++major) {
    const int version = major * 10000;
    EXPECT_THAT(sql("pg_stat_statements_query", version), HasSubstr("pg_stat_statements(true)"));
    EXPECT_THAT(sql("pg_stat_statements", version), Not(HasSubstr("pg_stat_statements(true)")));
    EXPECT_EQ(sql("pg_stat_statements_info", version).find("pg_stat_statements_info i") !=
                  std::string::npos,
              major >= 14)
        << version;
    EXPECT_EQ(sql("pg_lock_waits", version).find("waitstart") != std::string::npos, major >= 14)
        << version;
    EXPECT_EQ(sql("pg_connections", version).find("current_setting('reserved_connections')") !=
                  std::string::npos,
              major >= 16)
        << version;
    for (const auto* name : {"pg_stat_activity", "pg_stat_activity_application",
                             "pg_stat_activity_oldest", "pg_stat_activity_backend_types",
                             "pg_stat_activity_wait_event", "pg_stat_activity_address_family",
                             "pg_stat_ssl", "pg_stat_gssapi", "pg_locks", "pg_prepared_xacts"}) {
      EXPECT_FALSE(sql(name, version).empty()) << name << " on " << version;
    }
  }
}

}  // namespace
}  // namespace pgtally::testing
