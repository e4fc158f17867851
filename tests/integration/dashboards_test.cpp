// The dashboards and rules against a real Prometheus: it scrapes pgtally on a PostgreSQL 15 primary
// under a small workload (dead tuples, an idle-in-transaction session holding a lock that another
// session waits for, pg_stat_statements traffic), on a streaming standby of it, and on a PgBouncer
// in front of it with a client waiting. Then every expression of every dashboard panel (variables
// substituted) must be accepted by Prometheus and return series, and every rule must evaluate
// without error. The setup creates every condition a panel is about (a running vacuum, lock
// waits, a standby, an inactive slot, archiving, PgBouncer clients waiting); a panel that needs
// one it cannot create goes into kConditionPanels with the reason.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "monitoring_files.h"
#include "pg_client.h"
#include "pg_server.h"
#include "pgbouncer_server.h"
#include "pgtally/http/http_server.h"
#include "prometheus_server.h"
#include "promql.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using namespace std::chrono_literals;

// "file/panel title" -> why it shows nothing here. Empty: every panel has data in this setup.
const std::map<std::string, std::string> kConditionPanels = {};

void Exec(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  const auto status = PQresultStatus(result);
  PQclear(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQerrorMessage(conn));
  }
}

// Sends `sql` without waiting for it: the session then waits on a lock or a pool.
void Send(PGconn* conn, const std::string& sql) {
  if (PQsendQuery(conn, sql.c_str()) != 1) {
    throw std::runtime_error(sql + ": " + PQerrorMessage(conn));
  }
}

// Polls `sql` (one boolean, in database shop) until it is true; 30 s at most.
void WaitFor(const PgServer& pg, const std::string& sql) {
  for (int i = 0; i < 300 && pg.QueryValue(sql, "shop") != "t"; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  if (pg.QueryValue(sql, "shop") != "t") throw std::runtime_error("still false after 30 s: " + sql);
}

// An exporter on the built-in collectors served on a free loopback port.
struct ServedExporter {
  explicit ServedExporter(const std::string& dsn)
      : exporter(MakeExporter(dsn, "", /*builtin=*/true)),
        server(HttpOptions{"127.0.0.1:0", "/metrics", Millis(10000)}, *exporter) {}
  std::string address() const { return "127.0.0.1:" + std::to_string(server.ports().at(0)); }
  std::unique_ptr<Exporter> exporter;
  HttpServer server;
};

class DashboardsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // WAL archiving on (to a command that always succeeds), so the archiver reports; autovacuum
    // wakes every second, so it visits the tables within the test.
    primary_ = std::make_unique<PgServer>(
        PgServer::Options{.extra_conf = {"archive_mode = on", "archive_command = 'true'",
                                         "autovacuum_naptime = 1s"}});
    primary_->Exec("SELECT pg_create_physical_replication_slot('spare_slot', true)");
    primary_->Exec("CREATE DATABASE shop");
    primary_->Exec(
        // Half deleted, analyzed and left to itself: dead tuples, bloat, autovacuum due.
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric) "
        "  WITH (autovacuum_enabled = false);"
        "INSERT INTO orders SELECT g, g FROM generate_series(1, 200000) g;"
        "DELETE FROM orders WHERE id % 2 = 0; ANALYZE orders;"
        // Vacuumed by hand.
        "CREATE TABLE customers (id int PRIMARY KEY);"
        "INSERT INTO customers SELECT generate_series(1, 1000);"
        // Vacuumed slowly during the whole test (below).
        "CREATE TABLE events (id int, payload text) WITH (autovacuum_enabled = false);"
        "INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, 50000) g;"
        "CREATE SEQUENCE invoice_no; SELECT nextval('invoice_no');",
        "shop");
    primary_->Exec("VACUUM ANALYZE customers", "shop");
    primary_->Exec("SELECT pg_switch_wal()");
    standby_ = PgServer::StandbyOf(*primary_);
    bouncer_ = std::make_unique<PgBouncerServer>(primary_->port(),
                                                 PgBouncerServer::Options{.pool_size = 1});

    // An idle-in-transaction session holding a lock another session waits for, and a snapshot
    // that stops vacuum from removing rows deleted after it. SHARE mode lets pgtally's size
    // functions (ACCESS SHARE) through; the UPDATE (ROW EXCLUSIVE) waits.
    holder_ = Connect(primary_->Dsn("shop"));
    Exec(holder_.get(),
         "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM customers;"
         "LOCK TABLE orders IN SHARE MODE");
    // Rows deleted behind that snapshot: autovacuum visits the table but cannot remove them, so
    // it stays due for vacuum, as behind a forgotten transaction in production.
    primary_->Exec(
        "CREATE TABLE audit (id int); INSERT INTO audit SELECT generate_series(1, 10000);"
        "DELETE FROM audit",
        "shop");
    WaitFor(*primary_,
            "SELECT last_autovacuum IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'audit'");
    waiter_ = Connect(primary_->Dsn("shop"));
    Send(waiter_.get(), "UPDATE orders SET total = 0 WHERE id = 1");
    // A VACUUM throttled to a crawl, so that it is still running when the panels are checked.
    vacuum_ = Connect(primary_->Dsn("shop"));
    Exec(vacuum_.get(), "SET vacuum_cost_delay = '100ms'; SET vacuum_cost_limit = 1");
    Send(vacuum_.get(), "VACUUM events");
    // A PgBouncer client holding the pool's only server connection, and one waiting for it.
    pooled_holder_ = Connect(bouncer_->Dsn("postgres"));
    Exec(pooled_holder_.get(), "BEGIN; SELECT 1");
    pooled_waiter_ = Connect(bouncer_->Dsn("postgres"));
    Send(pooled_waiter_.get(), "SELECT 1");

    primary_exporter_ = std::make_unique<ServedExporter>(primary_->Dsn());
    standby_exporter_ = std::make_unique<ServedExporter>(standby_->Dsn());
    bouncer_exporter_ = std::make_unique<ServedExporter>(bouncer_->AdminDsn());
    std::string rule_files;
    for (const char* file : {"pgtally-alerts.yaml", "pgtally-rules.yaml"}) {
      rule_files += std::string("  - ") + PGTALLY_SOURCE_DIR "/deploy/prometheus/" + file + "\n";
    }
    prometheus_ = std::make_unique<PrometheusServer>(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
        "rule_files:\n" +
        rule_files +
        "scrape_configs:\n"
        "  - job_name: postgres\n"
        "    static_configs: [{targets: ['" +
        primary_exporter_->address() + "', '" + standby_exporter_->address() +
        "']}]\n"
        "  - job_name: pgbouncer\n"
        "    static_configs: [{targets: ['" +
        bouncer_exporter_->address() + "']}]\n");

    // Statement traffic while Prometheus collects some 20 scrapes of each target.
    const Conn client = Connect(primary_->Dsn());
    const auto until = std::chrono::steady_clock::now() + 20s;
    for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
      Exec(client.get(), "SELECT count(*) FROM pg_class WHERE relpages > " + std::to_string(i));
      Exec(client.get(), "SELECT pg_sleep(0.01)");
      std::this_thread::sleep_for(50ms);
    }
  }

  static void TearDownTestSuite() {
    prometheus_.reset();
    bouncer_exporter_.reset();
    standby_exporter_.reset();
    primary_exporter_.reset();
    pooled_waiter_.reset();
    pooled_holder_.reset();
    vacuum_.reset();
    waiter_.reset();
    holder_.reset();
    bouncer_.reset();
    standby_.reset();
    primary_.reset();
  }

  static inline std::unique_ptr<PgServer> primary_;
  static inline std::unique_ptr<PgServer> standby_;
  static inline std::unique_ptr<PgBouncerServer> bouncer_;
  static inline Conn holder_, waiter_, vacuum_, pooled_holder_, pooled_waiter_;
  static inline std::unique_ptr<ServedExporter> primary_exporter_, standby_exporter_,
      bouncer_exporter_;
  static inline std::unique_ptr<PrometheusServer> prometheus_;
};

TEST_F(DashboardsTest, PrometheusScrapesAllThreeTargets) {
  const auto up = prometheus_->Query("up == 1");
  EXPECT_EQ(up.error, "");
  EXPECT_EQ(up.series, 3u) << prometheus_->LogTail();
}

TEST_F(DashboardsTest, EveryPanelQueryReturnsSeries) {
  const auto dashboards = LoadDashboards();
  ASSERT_FALSE(dashboards.empty());
  std::set<std::string> listed_and_seen;
  for (const auto& dashboard : dashboards) {
    const auto values = TestVariableValues(dashboard, "15s", "1m");
    // Query variables: label_values(selector, label) must find values.
    for (const auto& variable : dashboard.variables) {
      if (variable.type != "query") continue;
      const auto result =
          prometheus_->Query(ExpandGrafanaVariables(LabelValuesSelector(variable), values));
      EXPECT_EQ(result.error, "") << dashboard.file << " variable " << variable.name;
      EXPECT_GT(result.series, 0u) << dashboard.file << " variable " << variable.name;
    }
    for (const auto& panel : dashboard.panels) {
      const std::string key = dashboard.file + "/" + panel.title;
      const bool condition = kConditionPanels.contains(key);
      for (const auto& target : panel.targets) {
        const std::string expr = ExpandGrafanaVariables(target.expr, values);
        const auto result = prometheus_->Query(expr);
        EXPECT_EQ(result.error, "") << key << " " << target.ref_id << ": " << expr;
        if (!condition) {
          EXPECT_GT(result.series, 0u) << key << " " << target.ref_id << " shows nothing: " << expr;
        }
      }
    }
  }
}

TEST_F(DashboardsTest, EveryRuleEvaluates) {
  const auto rules = LoadRules();
  ASSERT_FALSE(rules.empty());
  for (const auto& rule : rules) {
    const auto result = prometheus_->Query(rule.expr);
    EXPECT_EQ(result.error, "") << rule.alert << rule.record << ": " << rule.expr;
  }
  // Prometheus loaded them all and evaluates them without error.
  const YAML::Node groups = prometheus_->Api("/api/v1/rules")["data"]["groups"];
  std::size_t evaluated = 0;
  for (const auto& group : groups) {
    for (const auto& rule : group["rules"]) {
      ++evaluated;
      EXPECT_EQ(rule["health"].as<std::string>(""), "ok")
          << rule["name"].as<std::string>("") << ": " << rule["lastError"].as<std::string>("");
    }
  }
  EXPECT_EQ(evaluated, rules.size());
  // Recording rules produce series here.
  for (const auto& rule : rules) {
    if (rule.record.empty()) continue;
    EXPECT_GT(prometheus_->Query(rule.record).series, 0u) << rule.record << " records nothing";
  }
}

}  // namespace
}  // namespace pgtally::testing
