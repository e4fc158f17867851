// Drop-in compatibility with postgres_exporter's custom queries: the example queries.yaml that
// Debian's prometheus-postgres-exporter package ships is given to the real postgres_exporter and
// to pgtally (--extend.query-path, and again as `pgtally convert` rewrote it), each pointed at
// the same database in turn; for every metric the file defines, both must export the same
// series: the same names with the same label sets.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <set>

#include "http_client.h"
#include "os_util.h"
#include "pg_client.h"
#include "pg_server.h"
#include "pgtally_process.h"
#include "process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
const std::string kExporter = "/usr/bin/prometheus-postgres-exporter";
const std::string kPackageQueries =
    "/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml";

// The metric names a postgres_exporter queries file defines, by its own rules: <namespace>_
// <column> for each column that is not a label or discarded; DURATION adds _milliseconds and a
// HISTOGRAM is its _bucket, _sum and _count series.
std::map<std::string, std::string> DefinedMetrics(const std::string& path) {
  std::map<std::string, std::string> names;  // metric name -> namespace
  for (const auto& entry : YAML::LoadFile(path)) {
    const std::string ns = entry.first.as<std::string>();
    for (const auto& column : entry.second["metrics"]) {
      const std::string name = ns + "_" + column.begin()->first.as<std::string>();
      const std::string usage = column.begin()->second["usage"].as<std::string>();
      if (usage == "LABEL" || usage == "DISCARD") continue;
      if (usage == "DURATION") {
        names[name + "_milliseconds"] = ns;
      } else if (usage == "HISTOGRAM") {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) names[name + suffix] = ns;
      } else {
        names[name] = ns;
      }
    }
  }
  return names;
}

// Each sample line of `exposition` whose metric is in `metrics`, as "name{a=x,b=y}" with the
// labels sorted: a series' identity, whatever order an exporter writes its labels in.
std::set<std::string> Series(const std::string& exposition,
                             const std::map<std::string, std::string>& metrics) {
  std::set<std::string> series;
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    const auto name_end = line.find_first_of("{ ");
    const std::string name = line.substr(0, name_end);
    if (!metrics.contains(name)) continue;
    std::set<std::string> labels;
    if (line[name_end] == '{') {
      std::size_t at = name_end + 1;
      while (line[at] != '}') {
        const auto eq = line.find('=', at);
        std::string label = line.substr(at, eq - at) + "=";
        for (at = eq + 2; line[at] != '"'; ++at) {
          if (line[at] == '\\') ++at;
          label += line[at];
        }
        labels.insert(label);
        at += line[at + 1] == ',' ? 2 : 1;
      }
    }
    std::string key = name + "{";
    for (const auto& label : labels) key += label + ",";
    series.insert(key + "}");
  }
  return series;
}

std::string Describe(const std::set<std::string>& series) {
  std::string text;
  for (const auto& s : series) text += "  " + s + "\n";
  return text;
}

class PostgresExporterCompat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new PgServer();
    server_->Exec("CREATE SCHEMA app");
    server_->Exec("CREATE TABLE app.jobs (id int PRIMARY KEY, state text)");
    server_->Exec("INSERT INTO app.jobs SELECT g, 'new' FROM generate_series(1, 50) g");
    server_->Exec("CREATE TABLE public.events (id bigint)");
    server_->Exec("ANALYZE");
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kExporter))
        << kExporter << " is missing: install the prometheus-postgres-exporter package "
        << "(scripts/install-deps.sh does)";
    ASSERT_TRUE(std::filesystem::exists(kPackageQueries))
        << kPackageQueries << " is missing; `dpkg -L prometheus-postgres-exporter` lists the "
        << "package's files";
    // lib/pq, in postgres_exporter, asks for TLS unless told not to.
    dsn_ = server_->Dsn() + " sslmode=disable";
    // Idle sessions for pg_process_idle: one unnamed, as postgres_exporter's own spare
    // connection is, so that either exporter sees the same application names.
    idle_.push_back(Connect(server_->Dsn() + " application_name=compat_idle"));
    idle_.push_back(Connect(server_->Dsn() + " application_name=''"));
  }

  // One scrape of postgres_exporter with `queries`, which is then stopped.
  std::string ScrapePostgresExporter(const std::string& queries) {
    const int port = FreeLoopbackPort();
    Process exporter({kExporter, "--extend.query-path=" + queries,
                      "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
                     {"DATA_SOURCE_NAME=" + dsn_});
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    std::string body;
    EXPECT_TRUE(Eventually(
        [&] {
          const auto response = HttpGet(url);
          body = response.body;
          return response.status == 200 && SampleValue(body, "pg_up") == 1;
        },
        20s))
        << exporter.Stderr();
    return body;
  }

  // One scrape of pgtally, without its built-in collectors, with `flags` naming the queries.
  std::string ScrapePgtally(std::vector<std::string> flags) {
    flags.insert(flags.begin(), "--no-collectors.builtin");
    PgtallyProcess pgtally(flags, {"DATA_SOURCE_NAME=" + dsn_});
    EXPECT_FALSE(pgtally.url().empty()) << pgtally.Stderr();
    const auto response = HttpGet(pgtally.url() + "/metrics");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(SampleValue(response.body, "pg_up"), 1) << pgtally.Stderr();
    return response.body;
  }

  static PgServer* server_;
  std::string dsn_;
  std::vector<Conn> idle_;
};

PgServer* PostgresExporterCompat::server_ = nullptr;

TEST_F(PostgresExporterCompat, PackageExampleGivesTheSameSeries) {
  const auto metrics = DefinedMetrics(kPackageQueries);
  ASSERT_GE(metrics.size(), 40u);
  const auto theirs = Series(ScrapePostgresExporter(kPackageQueries), metrics);
  const auto ours = Series(ScrapePgtally({"--extend.query-path", kPackageQueries}), metrics);
  EXPECT_EQ(ours, theirs) << "postgres_exporter:\n"
                          << Describe(theirs) << "pgtally:\n"
                          << Describe(ours);

  // Every namespace exports something, except pg_stat_statements: the example's query reads
  // total_time, which PostgreSQL 13 renamed, so it fails in both exporters alike.
  std::set<std::string> exported;
  for (const auto& series : ours) exported.insert(metrics.at(series.substr(0, series.find('{'))));
  EXPECT_EQ(exported, (std::set<std::string>{"pg_postmaster", "pg_process_idle", "pg_replication",
                                             "pg_stat_user_tables", "pg_statio_user_tables"}));
  EXPECT_THAT(ours,
              ::testing::Contains("pg_stat_user_tables_n_live_tup{datname=postgres,relname=jobs,"
                                  "schemaname=app,server=127.0.0.1:" +
                                  std::to_string(server_->port()) + ",}"));
}

TEST_F(PostgresExporterCompat, ConvertedFileGivesTheSameSeries) {
  TempDir dir;
  Process convert({kBinary, "convert", "--extend.query-path", kPackageQueries});
  ASSERT_EQ(convert.Wait(30s), 0) << convert.Stderr();
  const std::string converted = dir.Write("converted.yaml", convert.Stdout());

  const auto metrics = DefinedMetrics(kPackageQueries);
  const auto theirs = Series(ScrapePostgresExporter(kPackageQueries), metrics);
  const auto ours = Series(ScrapePgtally({"--collectors.path", converted}), metrics);
  EXPECT_EQ(ours, theirs) << "postgres_exporter:\n"
                          << Describe(theirs) << "pgtally with the converted file:\n"
                          << Describe(ours);
}

// Our own example (tests/collectors/postgres_exporter/queries.yaml) has a histogram, a counter
// on two version ranges and NULLs, which agree; and MAPPEDMETRIC and DURATION columns, which
// postgres_exporter 0.11 fails to parse in a custom query ("Unexpected error parsing column":
// it reads their text as a plain number), while pgtally applies the mapping and parses the
// duration as postgres_exporter documents them (docs/importing.md).
TEST_F(PostgresExporterCompat, OwnExampleAgreesWherePostgresExporterCanParse) {
  const std::string file =
      std::string(PGTALLY_SOURCE_DIR) + "/tests/collectors/postgres_exporter/queries.yaml";
  auto metrics = DefinedMetrics(file);
  const std::set<std::string> text_read = {"pg_app_worker_state",
                                           "pg_app_worker_uptime_milliseconds"};
  for (const auto& name : text_read) ASSERT_EQ(metrics.erase(name), 1u) << name;
  ASSERT_TRUE(metrics.contains("pg_app_latency_latency_bucket"));
  const std::string theirs_text = ScrapePostgresExporter(file);
  const std::string ours_text = ScrapePgtally({"--extend.query-path", file});
  const auto theirs = Series(theirs_text, metrics);
  EXPECT_EQ(Series(ours_text, metrics), theirs) << "postgres_exporter:\n" << Describe(theirs);
  EXPECT_EQ(theirs.size(), 10u) << Describe(theirs);

  const std::map<std::string, std::string> mapped = {{"pg_app_worker_state", "pg_app_worker"}};
  EXPECT_EQ(Series(theirs_text, mapped).size(), 0u);
  EXPECT_EQ(Series(ours_text, mapped).size(), 3u);
}

}  // namespace
}  // namespace pgtally::testing
