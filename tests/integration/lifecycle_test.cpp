// pgtally's life beside a production database: starting before the database does, reloading
// changed collector and config files (the way Kubernetes updates a mounted ConfigMap), picking up
// a rotated password file, and stopping on SIGTERM in the middle of a scrape.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>

#include "http_client.h"
#include "pg_server.h"
#include "process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;

// A collector file with one collector, `name`, whose metric `name`_v is the query's column v.
std::string CollectorFile(const std::string& name, const std::string& sql) {
  return "version: 1\ncollectors:\n  - name: " + name + "\n    help: Test.\n    query: " + sql +
         "\n    timeout: 30s\n    values: [{column: v, type: gauge}]\n";
}

double Scraped(const std::string& url, const std::string& series) {
  return SampleValue(HttpGet(url + "/metrics").body, series);
}

// A directory laid out as the kubelet lays out a mounted ConfigMap: the files live in a hidden
// versioned directory, the hidden link ..data points at it, and each visible name links through
// ..data. An update writes a new version and swaps ..data in one rename, so readers see either
// the old set or the new one.
class ConfigMapDir {
 public:
  explicit ConfigMapDir(std::string path) : path_(std::move(path)) {
    fs::create_directories(path_);
  }

  void Publish(const std::map<std::string, std::string>& files) {
    const std::string version = "..v" + std::to_string(++version_);
    fs::create_directory(path_ / version);
    for (const auto& [name, text] : files) std::ofstream(path_ / version / name) << text;
    fs::create_directory_symlink(version, path_ / "..data_tmp");
    fs::rename(path_ / "..data_tmp", path_ / "..data");
    for (const auto& [name, text] : files) {
      if (!fs::is_symlink(path_ / name))
        fs::create_symlink(fs::path("..data") / name, path_ / name);
    }
    if (version_ > 1) fs::remove_all(path_ / ("..v" + std::to_string(version_ - 1)));
  }

  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
  int version_ = 0;
};

TEST(Lifecycle, StartsBeforeItsDatabaseAndConnectsWhenItComesUp) {
  PgServer pg(PgServer::Options{.pg_stat_statements = false});
  pg.Stop();
  Process process({kBinary, "--web.listen-address=127.0.0.1:0"}, {"DATA_SOURCE_NAME=" + pg.Dsn()});
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();
  EXPECT_EQ(Scraped(url, "pg_up"), 0);
  EXPECT_EQ(HttpGet(url + "/healthz").status, 200);
  // Readiness never waits for the database: an unready sidecar would keep the whole pod, and
  // so the database, out of its Service.
  EXPECT_EQ(HttpGet(url + "/readyz").status, 200);

  pg.Start();
  // Reconnection backs off to at most 10 s between attempts.
  EXPECT_TRUE(Eventually([&] { return Scraped(url, "pg_up") == 1; }, 30s)) << process.Stderr();
  EXPECT_FALSE(LinesStartingWith(HttpGet(url + "/metrics").body, "pg_stat_database_").empty());
  EXPECT_THAT(process.Stderr(), HasSubstr("database up"));
  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
}

TEST(Lifecycle, ReloadsWhenAMountedConfigMapChanges) {
  auto& pg = SharedPgServer();
  TempDir dir;
  ConfigMapDir collectors(dir / "collectors");
  collectors.Publish({{"app.yaml", CollectorFile("app_first", "SELECT 1 AS v")}});
  Process process({kBinary, "--web.listen-address=127.0.0.1:0", "--no-collectors.builtin",
                   "--collectors.path", collectors.path(), "--config.watch-interval=200ms"},
                  {"DATA_SOURCE_NAME=" + pg.Dsn()});
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();
  const auto first = HttpGet(url + "/metrics").body;
  EXPECT_EQ(SampleValue(first, "app_first_v"), 1);
  EXPECT_EQ(SampleValue(first, "pgtally_config_last_reload_successful"), 1);
  const double loaded_at =
      SampleValue(first, "pgtally_config_last_reload_success_timestamp_seconds");
  EXPECT_GT(loaded_at, 1.7e9);

  // A new version of the ConfigMap: the new collector replaces the old one without a restart.
  collectors.Publish({{"app.yaml", CollectorFile("app_second", "SELECT 2 AS v")}});
  EXPECT_TRUE(Eventually([&] { return Scraped(url, "app_second_v") == 2; }, 10s))
      << process.Stderr();
  const auto second = HttpGet(url + "/metrics").body;
  EXPECT_TRUE(std::isnan(SampleValue(second, "app_first_v")));
  EXPECT_EQ(SampleValue(second, "pgtally_config_last_reload_successful"), 1);
  EXPECT_GE(SampleValue(second, "pgtally_config_last_reload_success_timestamp_seconds"), loaded_at);
  // The removed collector's error counters go with it; the new one's start at zero.
  EXPECT_TRUE(
      LinesStartingWith(second, "pgtally_collector_errors_total{collector=\"app_first\"").empty());
  EXPECT_EQ(
      SampleValue(second, "pgtally_collector_errors_total{class=\"sql\",collector=\"app_second\"}"),
      0);
  EXPECT_THAT(process.Stderr(), HasSubstr("config reloaded"));

  // A broken version is rejected: the previous collectors keep serving, and the gauge says so.
  collectors.Publish({{"app.yaml",
                       "version: 1\ncollectors:\n  - name: app_third\n    help: T.\n    query: "
                       "SELECT 3 AS v\n    values: [{column: v, type: summary}]\n"}});
  EXPECT_TRUE(
      Eventually([&] { return Scraped(url, "pgtally_config_last_reload_successful") == 0; }, 10s))
      << process.Stderr();
  EXPECT_EQ(Scraped(url, "app_second_v"), 2);
  EXPECT_THAT(process.Stderr(), HasSubstr("config reload rejected"));
  EXPECT_THAT(process.Stderr(), HasSubstr("app.yaml:6:"));
  EXPECT_THAT(process.Stderr(), HasSubstr("type must be gauge, counter or histogram"));

  // Fixed: loaded again.
  collectors.Publish({{"app.yaml", CollectorFile("app_third", "SELECT 3 AS v")}});
  EXPECT_TRUE(Eventually([&] { return Scraped(url, "app_third_v") == 3; }, 10s))
      << process.Stderr();
  EXPECT_EQ(Scraped(url, "pgtally_config_last_reload_successful"), 1);
  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
}

TEST(Lifecycle, SighupReloadsTheConfigFile) {
  auto& pg = SharedPgServer();
  TempDir dir;
  dir.Write("a.yaml", CollectorFile("app_a", "SELECT 1 AS v"));
  dir.Write("b.yaml", CollectorFile("app_b", "SELECT 2 AS v"));
  // At first the config points at a port where nothing listens.
  const auto config = [&](const std::string& dsn, const std::string& collectors) {
    dir.Write("pgtally.yaml", "data_source_name: \"" + dsn + "\"\ncollectors:\n  builtin: false\n" +
                                  "  paths: [" + collectors + "]\n");
  };
  config("host=127.0.0.1 port=1 dbname=postgres user=postgres", "a.yaml");
  Process process({kBinary, "--config", dir / "pgtally.yaml", "--web.listen-address=127.0.0.1:0",
                   "--config.watch-interval=0"});
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();
  EXPECT_EQ(Scraped(url, "pg_up"), 0);

  config(pg.Dsn(), "b.yaml");
  process.Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return Scraped(url, "app_b_v") == 2; }, 10s)) << process.Stderr();
  const auto body = HttpGet(url + "/metrics").body;
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_TRUE(std::isnan(SampleValue(body, "app_a_v")));
  EXPECT_THAT(process.Stderr(), HasSubstr("cause=SIGHUP"));
  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
}

TEST(Lifecycle, UsesARotatedPasswordFile) {
  constexpr const char* kFirst = "first-Secret-1";
  constexpr const char* kSecond = "second-Secret-2";
  constexpr const char* kWrong = "wrong-Secret-3";
  PgServer pg(PgServer::Options{.pg_stat_statements = false,
                                .hba_first = {"host all monitor 127.0.0.1/32 scram-sha-256"}});
  pg.Exec(std::string("CREATE ROLE monitor LOGIN IN ROLE pg_monitor PASSWORD '") + kFirst + "'");
  TempDir dir;
  const auto password_file = dir.Write("password", std::string(kFirst) + "\n");
  const auto collectors = dir.Write("app.yaml", CollectorFile("app_user", "SELECT 1 AS v"));
  Process process({kBinary, "--web.listen-address=127.0.0.1:0", "--no-collectors.builtin",
                   "--collectors.path", collectors},
                  {"DATA_SOURCE_NAME=host=127.0.0.1 port=" + std::to_string(pg.port()) +
                       " dbname=postgres user=monitor",
                   "DATA_SOURCE_PASS_FILE=" + password_file});
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();
  EXPECT_EQ(Scraped(url, "pg_up"), 1) << process.Stderr();

  // Rotation: the role's password and the file change; the open connection goes on working
  // until it ends, and the next one uses the new password.
  const auto rotate = [&](const char* in_database, const char* in_file) {
    pg.Exec(std::string("ALTER ROLE monitor PASSWORD '") + in_database + "'");
    dir.Write("password", std::string(in_file) + "\n");
    pg.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'monitor'");
  };
  rotate(kSecond, kSecond);
  EXPECT_TRUE(Eventually([&] { return Scraped(url, "pg_up") == 1; }, 15s)) << process.Stderr();
  EXPECT_EQ(pg.QueryValue("SELECT count(*) FROM pg_stat_activity WHERE usename = 'monitor'"), "1");
  EXPECT_THAT(process.Stderr(), HasSubstr("password file changed"));

  rotate(kSecond, kWrong);
  EXPECT_TRUE(Eventually([&] { return Scraped(url, "pg_up") == 0; }, 15s));
  EXPECT_TRUE(process.WaitForStderr("password authentication failed", 5s)) << process.Stderr();

  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
  for (const char* secret : {kFirst, kSecond, kWrong}) {
    EXPECT_THAT(process.Stderr() + process.Stdout(), Not(HasSubstr(secret)));
  }
}

TEST(Lifecycle, SigtermDuringASlowScrapeExitsWithinTheBound) {
  auto& pg = SharedPgServer();
  TempDir dir;
  // Collectors run in file order: `quick` finishes within the shutdown timeout, `slow` cannot.
  dir.Write("collectors/1.yaml", CollectorFile("quick", "SELECT 1 AS v FROM pg_sleep(1)"));
  dir.Write("collectors/2.yaml", CollectorFile("slow", "SELECT 1 AS v FROM pg_sleep(6)"));
  Process process(
      {kBinary, "--web.listen-address=127.0.0.1:0", "--no-collectors.builtin", "--collectors.path",
       dir / "collectors", "--scrape.timeout=60s", "--shutdown.timeout=3s"},
      {"DATA_SOURCE_NAME=" + pg.Dsn() + " application_name=pgtally_shutdown"});
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();

  auto scrape = std::async(std::launch::async, [&] { return HttpGet(url + "/metrics"); });
  const auto sessions = [&](const std::string& where) {
    return pg.QueryValue(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgtally_shutdown'" +
        where);
  };
  ASSERT_TRUE(Eventually(
      [&] { return sessions(" AND state = 'active' AND query LIKE '%pg_sleep(1)%'") == "1"; },
      10s));
  const auto signalled = std::chrono::steady_clock::now();
  process.Signal(SIGTERM);
  const int code = process.Wait(15s);
  const auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_EQ(code, 0) << process.Stderr();
  // The 3 s timeout, plus up to 2 s for the HTTP server to stop; pgtally gives up by itself
  // (exit code 1) only after 8 s.
  EXPECT_LT(took, 6s);

  // The scrape in flight got its answer: what finished in time, and the rest marked failed.
  const auto response = scrape.get();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(SampleValue(response.body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(response.body, "pgtally_collector_success{collector=\"quick\"}"), 1);
  EXPECT_EQ(SampleValue(response.body, "pgtally_collector_success{collector=\"slow\"}"), 0);
  EXPECT_THAT(process.Stderr(), HasSubstr("msg=\"collector failed\""));
  EXPECT_THAT(process.Stderr(), HasSubstr("pgtally stopped"));
  // Its connections are closed: the server ends the last session once the sleep it was cut off
  // in is over.
  EXPECT_TRUE(Eventually([&] { return sessions("") == "0"; }, 15s));
}

}  // namespace
}  // namespace pgtally::testing
