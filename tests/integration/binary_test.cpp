// The pgtally binary as a user runs it: flags, environment, refusing bad input, serving, and
// never showing the password anywhere.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "http_client.h"
#include "pg_server.h"
#include "process.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
constexpr const char* kPassword = "TopSecret-4711";

class TempFile {
 public:
  TempFile(const std::string& name, std::string_view text)
      : path_((std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name))
                  .string()) {
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Binary, HelpAndVersion) {
  Process help({kBinary, "--help"});
  EXPECT_EQ(help.Wait(10s), 0);
  EXPECT_THAT(help.Stdout(), HasSubstr("--web.listen-address"));
  Process version({kBinary, "--version"});
  EXPECT_EQ(version.Wait(10s), 0);
  EXPECT_THAT(version.Stdout(), HasSubstr("pgtally version "));
  Process bad({kBinary, "--no-such-flag"});
  EXPECT_EQ(bad.Wait(10s), 2);
  EXPECT_THAT(bad.Stderr(), HasSubstr("unknown flag \"--no-such-flag\""));
}

TEST(Binary, RefusesToStartOnAnInvalidCollectorFile) {
  TempFile file("broken.yaml",
                "version: 1\ncollectors:\n  - name: x\n    help: X.\n    query: SELECT 1\n    "
                "values:\n      - {column: v, type: summary}\n");
  Process process({kBinary, "--collectors.path", file.path()},
                  {"DATA_SOURCE_NAME=host=127.0.0.1 port=1"});
  EXPECT_EQ(process.Wait(10s), 1);
  EXPECT_THAT(
      process.Stderr(),
      HasSubstr(file.path() +
                ":7:27: collector \"x\" value \"v\": type must be gauge, counter or histogram"));
  EXPECT_THAT(process.Stderr(), HasSubstr("not starting"));
}

TEST(Binary, NeedsADataSource) {
  Process process({kBinary});
  EXPECT_EQ(process.Wait(10s), 1);
  EXPECT_THAT(process.Stderr(), HasSubstr("set DATA_SOURCE_NAME"));
}

TEST(Binary, RejectsAnInvalidDataSourceWithoutShowingIt) {
  Process process({kBinary},
                  {std::string("DATA_SOURCE_NAME=host=db password=") + kPassword + " garbage"});
  EXPECT_EQ(process.Wait(10s), 1);
  EXPECT_THAT(process.Stderr(), HasSubstr("DATA_SOURCE_NAME is not a valid connection string"));
  EXPECT_THAT(process.Stderr(), Not(HasSubstr(kPassword)));
}

TEST(Binary, ServesAndNeverShowsThePassword) {
  auto& pg = SharedPgServer();
  TempFile custom("failing.yaml",
                  "version: 1\ncollectors:\n  - {name: failing, help: F., query: SELECT v FROM "
                  "nope, values: [{column: v, type: gauge}]}\n");
  const std::string dsn = "postgresql://postgres:" + std::string(kPassword) +
                          "@127.0.0.1:" + std::to_string(pg.port()) + "/postgres";
  Process process({kBinary, "--web.listen-address=127.0.0.1:0", "--log.level=debug",
                   "--collectors.path", custom.path()},
                  {"DATA_SOURCE_NAME=" + dsn});
  const auto base = PgtallyUrl(process);
  ASSERT_FALSE(base.empty()) << process.Stderr();

  const auto metrics = HttpGet(base + "/metrics");
  EXPECT_EQ(SampleValue(metrics.body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(metrics.body, "pgtally_collector_success{collector=\"failing\"}"), 0);
  EXPECT_FALSE(LinesStartingWith(metrics.body, "pg_stat_database_xact_commit_total{").empty());
  const auto landing = HttpGet(base + "/");
  EXPECT_THAT(landing.body, HasSubstr("postgresql://postgres:xxxxx@127.0.0.1"));
  for (const auto* page : {&metrics, &landing}) EXPECT_THAT(page->body, Not(HasSubstr(kPassword)));
  EXPECT_THAT(HttpGet(base + "/readyz").body, Not(HasSubstr(kPassword)));
  EXPECT_THAT(HttpGet(base + "/no-such-page").body, Not(HasSubstr(kPassword)));

  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
  const auto log = process.Stderr();
  EXPECT_THAT(log, HasSubstr("msg=\"collector failed\""));
  // The server's position of "nope", as the place in the file: line 3, column 52.
  EXPECT_THAT(log, ::testing::ContainsRegex("at=[^ ]*failing\\.yaml:3:52\\b"));
  EXPECT_THAT(log, HasSubstr("xxxxx"));
  EXPECT_THAT(log + process.Stdout(), Not(HasSubstr(kPassword)));
}

TEST(Binary, RunsFromAConfigFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("pgtally-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "collectors.d");
  std::ofstream(dir / "collectors.d" / "app.yaml")
      << "version: 1\ncollectors:\n  - {name: app_answer, help: A., query: SELECT 42 AS v, values: "
         "[{column: v, type: gauge}]}\n"
         "  - {name: app_clock, help: C., query: SELECT extract(epoch FROM clock_timestamp()) AS "
         "v, values: [{column: v, type: gauge}]}\n";
  std::ofstream(dir / "pgtally.yaml")
      << "data_source_name: \"" << SharedPgServer().Uri()
      << "\"\ncollectors:\n  builtin: false\n  paths: [collectors.d]\n"
         "  cache_ttl: {app_clock: 1h}\n"
         "web:\n  listen_address: 127.0.0.1:0\n  telemetry_path: /m\n";
  Process process({kBinary, "--config", (dir / "pgtally.yaml").string()});
  const auto base = PgtallyUrl(process);
  ASSERT_FALSE(base.empty()) << process.Stderr();
  const auto body = HttpGet(base + "/m").body;
  EXPECT_EQ(SampleValue(body, "app_answer_v"), 42);
  EXPECT_TRUE(LinesStartingWith(body, "pg_stat_database").empty());  // builtin: false
  // The config's cache TTL applies: the clock is read once and served from the cache after.
  EXPECT_GT(SampleValue(body, "app_clock_v"), 1.7e9);
  EXPECT_EQ(SampleValue(HttpGet(base + "/m").body, "app_clock_v"),
            SampleValue(body, "app_clock_v"));
  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
  std::filesystem::remove_all(dir);
}

TEST(Binary, DeadDatabaseStillServes) {
  Process process(
      {kBinary, "--web.listen-address=127.0.0.1:0", "--log.format=json"},
      {"DATA_SOURCE_NAME=host=127.0.0.1 port=1 user=x password=" + std::string(kPassword)});
  const auto base = PgtallyUrl(process);
  ASSERT_FALSE(base.empty()) << process.Stderr();
  EXPECT_EQ(SampleValue(HttpGet(base + "/metrics").body, "pg_up"), 0);
  EXPECT_EQ(HttpGet(base + "/healthz").status, 200);
  EXPECT_EQ(HttpGet(base + "/readyz").status, 200);
  EXPECT_THAT(HttpGet(base + "/readyz").body, HasSubstr("database: unreachable"));
  // Nothing but metrics and probes on the metrics port: no debug or profiling endpoints.
  for (const char* path : {"/debug/pprof/", "/debug/pprof/heap", "/debug/vars", "/-/reload"}) {
    EXPECT_EQ(HttpGet(base + path).status, 404) << path;
  }
  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
  EXPECT_THAT(process.Stderr(), HasSubstr("\"msg\":\"database down\""));
  EXPECT_THAT(process.Stderr(), Not(HasSubstr(kPassword)));
}

}  // namespace
}  // namespace pgtally::testing
