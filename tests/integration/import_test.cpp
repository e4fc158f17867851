// Other exporters' collector files in the real binary against PostgreSQL 15: pg_exporter's files
// from --collectors.path, postgres_exporter's from --extend.query-path, the series they make,
// `pgtally convert`'s output making the same, and a clash with a built-in collector stopping
// the start.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally_process.h"
#include "process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
const std::string kExamples = std::string(PGTALLY_SOURCE_DIR) + "/tests/collectors";
const std::string kPgExporterDir = kExamples + "/pg_exporter";
const std::string kQueriesFile = kExamples + "/postgres_exporter/queries.yaml";

// Every series of an exposition but pgtally's own (pgtally_*), with its value as written.
std::map<std::string, std::string> Series(const std::string& body) {
  std::map<std::string, std::string> series;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.starts_with('#') || line.starts_with("pgtally_")) continue;
    const auto space = line.rfind(' ');
    series[line.substr(0, space)] = line.substr(space + 1);
  }
  return series;
}

// The series a pgtally started with `flags` exports on its first scrape of `dsn`.
std::map<std::string, std::string> Scrape(const std::vector<std::string>& flags,
                                          std::string* body_out = nullptr,
                                          const std::string& dsn = SharedPgServer().Dsn()) {
  PgtallyProcess pgtally(flags, {"DATA_SOURCE_NAME=" + dsn});
  EXPECT_FALSE(pgtally.url().empty()) << pgtally.Stderr();
  if (pgtally.url().empty()) return {};
  const auto response = HttpGet(pgtally.url() + "/metrics");
  EXPECT_EQ(response.status, 200);
  if (body_out) *body_out = response.body;
  return Series(response.body);
}

std::map<std::string, std::string> Expected() {
  const std::string server = "server=\"127.0.0.1:" + std::to_string(SharedPgServer().port()) + "\"";
  const auto worker = [&](const std::string& queue) {
    return "{" + server + ",queue=\"" + queue + "\"}";
  };
  const std::string api = "{" + server + ",endpoint=\"api\"";
  return {
      {"pg_up", "1"},
      // pg_exporter: app_queue_primary (the standby branch does not run on a primary).
      {R"(app_queue_jobs{queue="mail",job_state="ready"})", "3"},
      {R"(app_queue_jobs{queue="sms",job_state="done"})", "1"},
      {R"(app_queue_wait_seconds{queue="mail",job_state="ready"})", "1.5"},
      {R"(app_queue_wait_seconds{queue="sms",job_state="done"})", "0.25"},
      {R"(app_queue_lag_s{queue="mail",job_state="ready"})", "0"},  // NULL, default: 0
      {R"(app_queue_lag_s{queue="sms",job_state="done"})", "2.5"},
      // app_txn_new (min_version 150000), not app_txn_old (max_version 150000, exclusive).
      {"app_txn_commits", "42"},
      {"app_txn_rollbacks", "7"},
      {"app_statements_readable", "1"},
      // postgres_exporter: MAPPEDMETRIC, DURATION, NULL, HISTOGRAM, runonserver with ||.
      {"pg_app_worker_state" + worker("mail"), "1"},
      {"pg_app_worker_state" + worker("sms"), "0"},
      {"pg_app_worker_state" + worker("push"), "Nan"},
      {"pg_app_worker_uptime_milliseconds" + worker("mail"), "90000"},
      {"pg_app_worker_uptime_milliseconds" + worker("sms"), "Nan"},
      {"pg_app_worker_uptime_milliseconds" + worker("push"), "250"},
      {"pg_app_worker_workers" + worker("mail"), "5"},
      {"pg_app_worker_workers" + worker("sms"), "Nan"},
      {"pg_app_worker_workers" + worker("push"), "2"},
      {"pg_app_latency_latency_bucket" + api + ",le=\"0.1\"}", "3"},
      {"pg_app_latency_latency_bucket" + api + ",le=\"0.5\"}", "7"},
      {"pg_app_latency_latency_bucket" + api + ",le=\"1\"}", "9"},
      {"pg_app_latency_latency_bucket" + api + ",le=\"+Inf\"}", "10"},
      {"pg_app_latency_latency_sum" + api + "}", "4.25"},
      {"pg_app_latency_latency_count" + api + "}", "10"},
      {"pg_app_hits_hits{" + server + "}", "12"},
  };
}

const std::vector<std::string> kImportFlags = {"--no-collectors.builtin", "--collectors.path",
                                               kPgExporterDir, "--extend.query-path", kQueriesFile};

TEST(Import, BothFormatsMakeTheirSeries) {
  std::string body;
  EXPECT_EQ(Scrape(kImportFlags, &body), Expected()) << body;
  // The types each format gives: counters stay counters without _total, histograms are
  // histograms.
  EXPECT_THAT(body, AllOf(HasSubstr("# TYPE app_txn_commits counter\n"),
                          HasSubstr("# TYPE pg_app_hits_hits counter\n"),
                          HasSubstr("# TYPE pg_app_latency_latency histogram\n"),
                          HasSubstr("# TYPE app_queue_jobs gauge\n"),
                          HasSubstr("# HELP app_queue_jobs Jobs in the queue\n")));
  // What ran: the standby branch skipped on a primary, nothing before 15; a branch with a custom
  // tag or skip: true is not even loaded.
  EXPECT_THAT(body,
              AllOf(HasSubstr("pgtally_collector_success{collector=\"app_queue_primary\"} 1\n"),
                    HasSubstr("pgtally_collector_skipped{collector=\"app_queue_standby\","
                              "reason=\"role\"} 1\n"),
                    HasSubstr("pgtally_collector_skipped{collector=\"app_txn_old\","
                              "reason=\"version\"} 1\n")));
  EXPECT_EQ(body.find("app_billing"), std::string::npos);
  EXPECT_EQ(body.find("app_disabled"), std::string::npos);
}

TEST(Import, OnAStandbyTheStandbyBranchRuns) {
  const auto standby = PgServer::StandbyOf(SharedPgServer());
  std::string body;
  const auto series = Scrape({"--no-collectors.builtin", "--collectors.path", kPgExporterDir},
                             &body, standby->Dsn());
  EXPECT_EQ(series.at(R"(app_queue_jobs{queue="mail",job_state="ready"})"), "0");
  EXPECT_EQ(series.at(R"(app_queue_lag_s{queue="mail",job_state="ready"})"), "1.5");
  EXPECT_EQ(series.count(R"(app_queue_jobs{queue="sms",job_state="done"})"), 0u);
  EXPECT_THAT(body, HasSubstr("pgtally_collector_skipped{collector=\"app_queue_primary\","
                              "reason=\"role\"} 1\n"));
}

TEST(Import, EnvironmentVariableReadsPostgresExporterFormat) {
  // A URI, as postgres_exporter's DSNs usually are: the server label is its host and port.
  PgtallyProcess pgtally({"--no-collectors.builtin"},
                         {"DATA_SOURCE_NAME=" + SharedPgServer().Uri(),
                          "PG_EXPORTER_EXTEND_QUERY_PATH=" + kQueriesFile});
  ASSERT_FALSE(pgtally.url().empty()) << pgtally.Stderr();
  const auto series = Series(HttpGet(pgtally.url() + "/metrics").body);
  EXPECT_EQ(series.at("pg_app_hits_hits{server=\"127.0.0.1:" +
                      std::to_string(SharedPgServer().port()) + "\"}"),
            "12");
}

TEST(Import, ConfigKeyReadsPostgresExporterFormat) {
  TempDir dir;
  // Relative to the config file.
  dir.Write("queries/custom.yaml",
            "pg_app_conf:\n  query: SELECT 3 AS answers\n  metrics:\n"
            "    - answers: {usage: GAUGE, description: Answers}\n");
  const auto config =
      dir.Write("pgtally.yaml",
                "collectors:\n  builtin: false\n  extend_query_paths: [queries/custom.yaml]\n");
  const auto series = Scrape({"--config", config});
  EXPECT_EQ(series.at("pg_app_conf_answers{server=\"127.0.0.1:" +
                      std::to_string(SharedPgServer().port()) + "\"}"),
            "3");
}

TEST(Import, ConvertedFilesMakeTheSameSeries) {
  Process convert({kBinary, "convert", kPgExporterDir + "/app.yaml",
                   kPgExporterDir + "/versions.yaml", "--extend.query-path", kQueriesFile},
                  {"DATA_SOURCE_NAME="});
  ASSERT_EQ(convert.Wait(30s), 0) << convert.Stderr();
  EXPECT_THAT(convert.Stderr(), HasSubstr("pgtally: converted 8 collector(s)"));
  const std::string converted = convert.Stdout();
  EXPECT_THAT(converted,
              AllOf(HasSubstr("version: 1\ncollectors:\n"), HasSubstr("    target_label: server\n"),
                    HasSubstr("    role: standby\n")));
  TempDir dir;
  const auto file = dir.Write("converted.yaml", converted);
  EXPECT_EQ(Scrape({"--no-collectors.builtin", "--collectors.path", file}), Expected());
}

TEST(Import, ConvertReportsProblemsAndPrintsNothing) {
  TempDir dir;
  const auto broken = dir.Write("broken.yaml", R"(b:
  name: app
  query: SELECT 1 AS v
  predicate_queries: [{name: p, predicate_query: SELECT true}]
  metrics: [{v: {usage: GAUGE}}]
)");
  Process convert({kBinary, "convert", broken}, {"DATA_SOURCE_NAME="});
  EXPECT_EQ(convert.Wait(30s), 1);
  EXPECT_EQ(convert.Stdout(), "");
  EXPECT_THAT(convert.Stderr(),
              AllOf(HasSubstr(broken + ":4:22: query branch \"b\": predicate_queries are not "
                                       "supported"),
                    HasSubstr("pgtally: 1 problem(s); nothing converted")));

  Process usage({kBinary, "convert"}, {"DATA_SOURCE_NAME="});
  EXPECT_EQ(usage.Wait(30s), 2);
  EXPECT_THAT(usage.Stderr(), HasSubstr("usage: pgtally convert FILE..."));
}

TEST(Import, AClashWithABuiltinCollectorStopsTheStart) {
  const std::string clash = kExamples + "/postgres_exporter/clash.yaml";
  Process pgtally({kBinary, "--web.listen-address=127.0.0.1:0", "--extend.query-path", clash},
                  {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
  EXPECT_EQ(pgtally.Wait(30s), 1);
  const std::string builtin = "queries/server.yaml:";
  EXPECT_THAT(pgtally.Stderr(),
              AllOf(HasSubstr(clash + ":5:3: collector \"pg_postmaster\" is already defined at "),
                    HasSubstr(clash + ":8:7: metric \"pg_postmaster_start_time_seconds\" is "
                                      "already defined at "),
                    HasSubstr(builtin)))
      << pgtally.Stderr();
}

}  // namespace
}  // namespace pgtally::testing
