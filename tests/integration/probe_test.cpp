// The multi-target /probe endpoint against real servers: two PostgreSQL instances that require a
// password, reached through a named auth module; bad requests; a dead target; connections kept
// between probes, closed when idle and bounded in number; and a real Prometheus that probes both
// servers through the relabelling the documentation shows.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <memory>

#include "http_client.h"
#include "os_util.h"
#include "pg_server.h"
#include "process.h"
#include "prometheus_server.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
const std::string kPassword = "probe-secret-9f3a";

// Its metric probe_port_v is the port of the server it runs on; probe_db_v{datname} is 1 for
// every database it visits.
const std::string kCollectors = R"(version: 1
collectors:
  - name: probe_port
    help: The server's port.
    query: SELECT current_setting('port')::int AS v
    values: [{column: v, type: gauge}]
  - name: probe_db
    help: One per database.
    scope: database
    query: SELECT 1 AS v
    values: [{column: v, type: gauge}]
)";

// A server where the role `monitor` must give its password over TCP.
std::unique_ptr<PgServer> PasswordServer() {
  auto pg = std::make_unique<PgServer>(PgServer::Options{
      .pg_stat_statements = false, .hba_first = {"host all monitor 127.0.0.1/32 scram-sha-256"}});
  pg->Exec("CREATE ROLE monitor LOGIN PASSWORD '" + kPassword + "' IN ROLE pg_monitor");
  pg->Exec("CREATE DATABASE app");
  return pg;
}

int MonitorConnections(const PgServer& pg) {
  return std::stoi(pg.QueryValue(
      "SELECT count(*) FROM pg_stat_activity WHERE usename = 'monitor' AND backend_type = "
      "'client backend'"));
}

class Probe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    first_ = PasswordServer().release();
    second_ = PasswordServer().release();
  }
  static void TearDownTestSuite() {
    delete first_;
    delete second_;
  }

  // Starts pgtally with the collectors above, the auth module `monitor` and `probe_settings`
  // (lines of the config file's probe section). Its own target is the first server.
  void Start(const std::string& probe_settings = "") {
    dir_.Write("password", kPassword + "\n");
    dir_.Write("collectors/probe.yaml", kCollectors);
    dir_.Write("pgtally.yaml",
               "auth_modules:\n  monitor:\n    type: userpass\n    userpass:\n"
               "      username: monitor\n      password_file: password\n"
               "    options:\n      sslmode: disable\n"
               "probe:\n" +
                   (probe_settings.empty() ? "  idle_timeout: 5m\n" : probe_settings) +
                   "collectors:\n  builtin: false\n  paths: [collectors]\n"
                   // Room for three targets of two databases each, and /metrics.
                   "connection:\n  max_connections: 10\n");
    process_ = std::make_unique<Process>(
        std::vector<std::string>{kBinary, "--web.listen-address=127.0.0.1:0", "--config",
                                 dir_ / "pgtally.yaml"},
        std::vector<std::string>{"DATA_SOURCE_NAME=" + first_->Dsn()});
    url_ = PgtallyUrl(*process_);
    ASSERT_FALSE(url_.empty()) << process_->Stderr();
  }

  void TearDown() override {
    if (!process_) return;
    process_->Signal(SIGTERM);
    EXPECT_EQ(process_->Wait(15s), 0) << process_->Stderr();
    EXPECT_THAT(process_->Stderr(), Not(HasSubstr(kPassword)));
  }

  HttpResponse ProbeGet(const std::string& target, const std::string& module = "monitor") {
    return HttpGet(url_ + "/probe?target=" + target + "&auth_module=" + module);
  }
  static std::string Address(const PgServer& pg) {
    return "127.0.0.1:" + std::to_string(pg.port());
  }

  static inline PgServer* first_ = nullptr;
  static inline PgServer* second_ = nullptr;
  TempDir dir_;
  std::unique_ptr<Process> process_;
  std::string url_;
};

TEST_F(Probe, ScrapesEachServerWithTheAuthModulesCredentials) {
  Start();
  for (const PgServer* pg : {first_, second_}) {
    const auto response = ProbeGet(Address(*pg));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(SampleValue(response.body, "pg_up"), 1) << process_->Stderr();
    EXPECT_EQ(SampleValue(response.body, "probe_port_v"), pg->port());
    EXPECT_EQ(SampleValue(response.body, "probe_db_v{datname=\"app\"}"), 1);
    EXPECT_EQ(SampleValue(response.body, "pgtally_collector_success{collector=\"probe_port\"}"), 1);
    // A probe reports on its target only: no reload state, no pool gauges.
    EXPECT_THAT(response.body, Not(HasSubstr("pgtally_config_last_reload")));
    EXPECT_THAT(response.body, Not(HasSubstr("pgtally_probe_")));
    EXPECT_THAT(response.body, Not(HasSubstr(kPassword)));
  }
  // A database in the target's path becomes the connection's own database.
  const auto app = ProbeGet(Address(*second_) + "/app");
  EXPECT_EQ(SampleValue(app.body, "pg_up"), 1);
  EXPECT_EQ(second_->QueryValue("SELECT count(*) FROM pg_stat_activity WHERE usename = 'monitor' "
                                "AND datname = 'app'"),
            "2");  // one for each target: "127.0.0.1:port" and "127.0.0.1:port/app"
  // The URI form names the same target.
  const auto uri = ProbeGet("postgresql://" + Address(*second_) + "/app");
  EXPECT_EQ(SampleValue(uri.body, "probe_port_v"), second_->port());

  // /metrics still serves the own target, and counts the probe targets.
  const auto metrics = HttpGet(url_ + "/metrics").body;
  EXPECT_EQ(SampleValue(metrics, "probe_port_v"), first_->port());
  EXPECT_EQ(SampleValue(metrics, "pgtally_probe_targets"), 3);
  // probe.max_connections (50) within the budget, less the connection kept for /metrics.
  EXPECT_EQ(SampleValue(metrics, "pgtally_probe_connections_max"), 9);
}

TEST_F(Probe, RejectsBadRequestsWithTheReason) {
  Start("  allowed_targets: '127\\.0\\.0\\.1:[0-9]+'\n");
  const auto expect = [&](const HttpResponse& response, int status, const std::string& reason) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_THAT(response.body, HasSubstr(reason));
  };
  expect(HttpGet(url_ + "/probe?auth_module=monitor"), 400, "target parameter is required");
  expect(HttpGet(url_ + "/probe?target=" + Address(*first_)), 400,
         "auth_module parameter is required");
  expect(ProbeGet(Address(*first_), "nobody"), 400, "unknown auth_module \"nobody\"");
  expect(ProbeGet("monitor:" + kPassword + "@" + Address(*first_)), 400,
         "may not carry a user or password");
  expect(ProbeGet(Address(*first_) + "%3Fsslmode%3Ddisable"), 400,
         "may not carry connection parameters");
  expect(ProbeGet("127.0.0.1:99999"), 400, "not a port number");
  expect(ProbeGet(std::string(2000, 'a')), 400, "longer than 1023 bytes");
  expect(ProbeGet("localhost:" + std::to_string(first_->port())), 403,
         "not in probe.allowed_targets");
  EXPECT_EQ(SampleValue(HttpGet(url_ + "/metrics").body, "pgtally_probe_targets"), 0);
}

TEST_F(Probe, DeadTargetAnswersPgUpZeroAtOnce) {
  Start();
  const int closed_port = FreeLoopbackPort();
  const auto started = std::chrono::steady_clock::now();
  const auto response = ProbeGet("127.0.0.1:" + std::to_string(closed_port));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(SampleValue(response.body, "pg_up"), 0);
  // The live targets are not affected.
  EXPECT_EQ(SampleValue(ProbeGet(Address(*second_)).body, "pg_up"), 1);
}

TEST_F(Probe, KeepsConnectionsBetweenProbesAndClosesThemWhenIdle) {
  Start("  idle_timeout: 2s\n");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(SampleValue(ProbeGet(Address(*second_)).body, "pg_up"), 1);
  }
  // One connection for the server collector's database, one for app: reused, not reopened.
  EXPECT_EQ(MonitorConnections(*second_), 2);
  EXPECT_EQ(second_->QueryValue("SELECT count(DISTINCT backend_start) FROM pg_stat_activity "
                                "WHERE usename = 'monitor'"),
            "2");
  EXPECT_TRUE(Eventually([&] { return MonitorConnections(*second_) == 0; }, 10s));
  EXPECT_EQ(SampleValue(HttpGet(url_ + "/metrics").body, "pgtally_probe_targets"), 0);
  // Probed again, it simply connects again.
  EXPECT_EQ(SampleValue(ProbeGet(Address(*second_)).body, "pg_up"), 1);
}

TEST_F(Probe, NeverOpensMoreThanMaxConnections) {
  Start("  max_connections: 1\n");
  // The target needs two connections (postgres and app); only one is allowed.
  const auto response = ProbeGet(Address(*second_));
  EXPECT_EQ(SampleValue(response.body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(response.body, "probe_port_v"), second_->port());
  EXPECT_EQ(SampleValue(response.body, "pgtally_collector_success{collector=\"probe_db\"}"), 0);
  EXPECT_EQ(MonitorConnections(*second_), 1);
  EXPECT_THAT(process_->Stderr(), HasSubstr("probe.max_connections"));
  // Another target cannot take the kept one's place before it has connected, and it cannot
  // connect while the kept one holds the only connection: it is answered, with pg_up 0, and the
  // kept target keeps its connection.
  EXPECT_EQ(SampleValue(ProbeGet(Address(*first_)).body, "pg_up"), 0);
  EXPECT_EQ(MonitorConnections(*second_), 1);
  EXPECT_EQ(MonitorConnections(*first_), 0);
  const auto metrics = HttpGet(url_ + "/metrics").body;
  EXPECT_EQ(SampleValue(metrics, "pgtally_probe_targets"), 1);
  EXPECT_EQ(SampleValue(metrics, "pgtally_probe_connections"), 1);
}

// Issue 16: 25 probes of databases that do not exist, on an allowed host (here every host is
// allowed), pushed the legitimate target out of the pool. A target is now kept only once it has
// connected, so they are answered (pg_up 0) and forgotten, and the legitimate target keeps its
// connection.
TEST_F(Probe, BogusDatabasesDoNotEvictTheLegitimateTarget) {
  Start("  max_connections: 10\n");
  const std::string legitimate = Address(*second_) + "/app";
  ASSERT_EQ(SampleValue(ProbeGet(legitimate).body, "pg_up"), 1) << process_->Stderr();
  const auto backend_started = [&] {
    return second_->QueryValue(
        "SELECT backend_start FROM pg_stat_activity WHERE usename = 'monitor' AND datname = "
        "'app'");
  };
  const std::string started = backend_started();
  for (int i = 0; i < 25; ++i) {
    const auto bogus = ProbeGet(Address(*second_) + "/nosuchdb" + std::to_string(i));
    ASSERT_EQ(bogus.status, 200) << bogus.body;
    EXPECT_EQ(SampleValue(bogus.body, "pg_up"), 0);
  }
  const auto metrics = HttpGet(url_ + "/metrics").body;
  EXPECT_EQ(SampleValue(metrics, "pgtally_probe_targets"), 1);
  // Still the same connection, and the target still up.
  EXPECT_EQ(backend_started(), started);
  EXPECT_EQ(SampleValue(ProbeGet(legitimate).body, "pg_up"), 1);
  EXPECT_EQ(backend_started(), started);
}

TEST_F(Probe, BoundsTheTargetsKeptPerHost) {
  Start("  max_targets_per_host: 1\n");
  EXPECT_EQ(SampleValue(ProbeGet(Address(*second_) + "/app").body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(ProbeGet(Address(*first_)).body, "pg_up"), 1);
  // A second database on the same server takes the place of the first; the other server's
  // target stays.
  EXPECT_EQ(SampleValue(ProbeGet(Address(*second_) + "/postgres").body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(HttpGet(url_ + "/metrics").body, "pgtally_probe_targets"), 2);
  EXPECT_TRUE(Eventually([&] { return MonitorConnections(*second_) == 2; }, 5s));
  EXPECT_THAT(process_->Stderr(), HasSubstr("probe.max_targets_per_host"));
}

// allowed_targets matches the whole target, database included.
TEST_F(Probe, AllowedTargetsNameTheDatabase) {
  Start("  allowed_targets: '127\\.0\\.0\\.1:[0-9]+/(postgres|app)'\n");
  EXPECT_EQ(ProbeGet(Address(*second_) + "/app").status, 200);
  EXPECT_EQ(ProbeGet(Address(*second_)).status, 200);  // the default database, postgres
  const auto other = ProbeGet(Address(*second_) + "/template1");
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.body, HasSubstr("/template1 is not in probe.allowed_targets"));
}

TEST_F(Probe, PrometheusProbesBothServersThroughRelabelling) {
  Start();
  const std::string port = url_.substr(url_.rfind(':') + 1);
  // The scrape config docs/scale-out.md shows.
  PrometheusServer prometheus(
      "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
      "  - job_name: postgres\n    metrics_path: /probe\n    params:\n"
      "      auth_module: [monitor]\n    static_configs:\n      - targets: ['" +
      Address(*first_) + "', '" + Address(*second_) +
      "']\n    relabel_configs:\n"
      "      - source_labels: [__address__]\n        target_label: __param_target\n"
      "      - source_labels: [__param_target]\n        target_label: instance\n"
      "      - target_label: __address__\n        replacement: 127.0.0.1:" +
      port + "\n");
  EXPECT_TRUE(Eventually([&] { return prometheus.Query("pg_up == 1").series == 2; }, 30s))
      << prometheus.LogTail();
  EXPECT_EQ(prometheus
                .Query("probe_port_v{instance=\"" + Address(*second_) +
                       "\"} == " + std::to_string(second_->port()))
                .series,
            1u);
}

}  // namespace
}  // namespace pgtally::testing
