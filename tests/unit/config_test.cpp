#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pgtally/cli/options.h"
#include "pgtally/config/duration.h"
#include "pgtally/config/exporter_config.h"
#include "pgtally/http/http_server.h"
#include "pgtally/pg/connection.h"

namespace pgtally {
namespace {

using ::testing::HasSubstr;

TEST(Duration, Parses) {
  EXPECT_EQ(ParseDuration("500ms"), Millis(500));
  EXPECT_EQ(ParseDuration("5s"), Millis(5000));
  EXPECT_EQ(ParseDuration("1.5s"), Millis(1500));
  EXPECT_EQ(ParseDuration("2m"), Millis(120000));
  EXPECT_EQ(ParseDuration("1h"), Millis(3600000));
  EXPECT_EQ(ParseDuration("10"), Millis(10000));
  EXPECT_EQ(ParseDuration("0.25"), Millis(250));
  EXPECT_EQ(ParseDuration("0s"), Millis(0));
  for (const char* bad : {"", "s", "fast", "-1s", "5 s", "5d", "1e300h"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
  EXPECT_EQ(FormatDuration(Millis(120000)), "2m");
  EXPECT_EQ(FormatDuration(Millis(1500)), "1500ms");
}

TEST(ExporterConfig, ReadsEverySection) {
  ExporterConfig config;
  const auto errors = ParseExporterConfig(R"(
data_source_name: postgresql://app@db/shop
collectors:
  builtin: false
  paths: [custom, /etc/pgtally/more.yaml]
  disabled: pg_stat_statements
  default_timeout: 3s
  lock_timeout: 200ms
  parameters:
    table_limit: 200
    schema_exclude: "^tmp_"
  cache_ttl: {pg_table_size: 30m, pg_database_size: 0s}
databases: {include: "shop|crm", exclude: "tmp_.*", discovery_interval: 5m, parallelism: 8}
connection: {connect_timeout: 2s}
scrape: {timeout: 20s}
web: {listen_address: "127.0.0.1:9999", telemetry_path: /m}
log: {level: debug, format: json}
)",
                                          "/etc/pgtally/pgtally.yaml", config);
  ASSERT_TRUE(errors.empty()) << errors[0].ToString();
  EXPECT_EQ(config.data_source_name, "postgresql://app@db/shop");
  EXPECT_FALSE(config.builtin_collectors);
  EXPECT_EQ(config.collector_paths,
            (std::vector<std::string>{"/etc/pgtally/custom", "/etc/pgtally/more.yaml"}));
  EXPECT_EQ(config.disabled_collectors, std::vector<std::string>{"pg_stat_statements"});
  EXPECT_EQ(config.default_collector_timeout, Millis(3000));
  EXPECT_EQ(config.lock_timeout, Millis(200));
  EXPECT_EQ(config.include_databases, "shop|crm");
  EXPECT_EQ(config.exclude_databases, "tmp_.*");
  EXPECT_EQ(config.database_parallelism, 8);
  EXPECT_EQ(config.discovery_interval, Millis(300000));
  ASSERT_EQ(config.collector_parameters.size(), 2u);
  EXPECT_EQ(config.collector_parameters[0].name, "table_limit");
  EXPECT_EQ(config.collector_parameters[0].value, "200");
  EXPECT_EQ(config.collector_parameters[0].location.ToString(), "/etc/pgtally/pgtally.yaml:10:5");
  EXPECT_EQ(config.collector_parameters[1].value, "^tmp_");
  ASSERT_EQ(config.collector_cache_ttls.size(), 2u);
  EXPECT_EQ(config.collector_cache_ttls[0].collector, "pg_table_size");
  EXPECT_EQ(config.collector_cache_ttls[0].ttl, Millis(30 * 60 * 1000));
  EXPECT_EQ(config.collector_cache_ttls[1].ttl, Millis(0));
  EXPECT_EQ(config.connect_timeout, Millis(2000));
  EXPECT_EQ(config.scrape_timeout, Millis(20000));
  EXPECT_EQ(config.listen_address, "127.0.0.1:9999");
  EXPECT_EQ(config.telemetry_path, "/m");
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.log_format, LogFormat::kJson);
}

TEST(ExporterConfig, ReportsProblemsWithLocations) {
  ExporterConfig config;
  const auto errors = ParseExporterConfig(
      "web:\n  listen: 1\nlog:\n  format: xml\nscrape: {timeout: soon}\n"
      "collectors: {cache_ttl: {pg_table_size: often}}\ndatabases: {parallelism: 0}\n",
      "p.yaml", config);
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[0].ToString(),
            "p.yaml:6:41: collectors.cache_ttl: \"pg_table_size\" must be a duration such as "
            "500ms, 5s or 2m, not \"often\"");
  EXPECT_EQ(errors[1].ToString(),
            "p.yaml:7:26: databases: \"parallelism\" must be between 1 and 64");
  EXPECT_EQ(
      errors[2].ToString(),
      "p.yaml:5:19: scrape: \"timeout\" must be a duration such as 500ms, 5s or 2m, not \"soon\"");
  EXPECT_EQ(errors[3].ToString(),
            "p.yaml:2:3: section \"web\": unknown key \"listen\" (expected one of: listen_address, "
            "telemetry_path)");
  EXPECT_EQ(errors[4].ToString(), "p.yaml:4:11: log: format must be logfmt or json, not \"xml\"");
}

TEST(ExporterConfig, ReadsAuthModulesInPostgresExporterFormat) {
  ExporterConfig config;
  const auto errors = ParseExporterConfig(R"(
auth_modules:
  prod:
    type: userpass
    userpass: {username: monitor, password_file: secrets/pw}
    options: {sslmode: verify-full, dbname: metrics}
  dev:
    type: userpass
    userpass: {username: dev, password: devpw}
probe: {idle_timeout: 90s, max_connections: 7, max_targets_per_host: 3, allowed_targets: 'db[0-9]+:5432/app'}
)",
                                          "/etc/pgtally/pgtally.yaml", config);
  for (const auto& error : errors) ADD_FAILURE() << error.ToString();
  ASSERT_EQ(config.auth_modules.size(), 2u);
  const AuthModule& prod = config.auth_modules.at("prod");
  EXPECT_EQ(prod.username, "monitor");
  EXPECT_EQ(prod.password_file, "/etc/pgtally/secrets/pw");  // relative to the config file
  EXPECT_EQ(prod.options, (std::map<std::string, std::string>{{"dbname", "metrics"},
                                                              {"sslmode", "verify-full"}}));
  EXPECT_EQ(config.auth_modules.at("dev").password, "devpw");
  EXPECT_EQ(config.probe_idle_timeout, Millis(90000));
  EXPECT_EQ(config.probe_max_connections, 7);
  EXPECT_EQ(config.probe_allowed_targets, "db[0-9]+:5432/app");
  EXPECT_EQ(config.probe_max_targets_per_host, 3);
}

TEST(ExporterConfig, RejectsAuthModulesThatCouldMisdirectCredentials) {
  ExporterConfig config;
  const auto errors = ParseExporterConfig(
      "auth_modules:\n"
      "  a: {type: ldap, userpass: {username: u}}\n"
      "  b: {type: userpass, userpass: {username: u, password: p, password_file: f}}\n"
      "  c: {type: userpass, userpass: {username: u}, options: {host: evil.example}}\n"
      "  d: {type: userpass}\n"
      "probe: {max_connections: 0}\n",
      "p.yaml", config);
  std::vector<std::string> messages;
  for (const auto& error : errors) messages.push_back(error.ToString());
  EXPECT_THAT(messages,
              ::testing::UnorderedElementsAre(
                  "p.yaml:2:13: auth module \"a\": type must be userpass, not \"ldap\"",
                  "p.yaml:3:75: auth module \"b\": give password or password_file, not both",
                  "p.yaml:4:64: auth module \"c\": option \"host\" cannot be set here: the "
                  "/probe target gives the server and userpass the credentials",
                  "p.yaml:5:6: auth module \"d\": \"userpass\" is required",
                  "p.yaml:6:26: probe: \"max_connections\" must be between 1 and 10000"));
}

// The shipped example is a working file whose values are the documented defaults.
TEST(ExporterConfig, ShippedExampleLoads) {
  ExporterConfig config;
  const auto errors =
      LoadExporterConfigFile(PGTALLY_SOURCE_DIR "/deploy/pgtally.example.yaml", config);
  for (const auto& error : errors) ADD_FAILURE() << error.ToString();
  const ExporterConfig defaults;
  EXPECT_EQ(config.listen_address, defaults.listen_address);
  EXPECT_EQ(config.default_collector_timeout, defaults.default_collector_timeout);
  EXPECT_EQ(config.lock_timeout, defaults.lock_timeout);
  EXPECT_EQ(config.scrape_timeout, defaults.scrape_timeout);
  EXPECT_EQ(config.connect_timeout, defaults.connect_timeout);
  EXPECT_EQ(config.database_parallelism, defaults.database_parallelism);
  EXPECT_EQ(config.probe_idle_timeout, defaults.probe_idle_timeout);
  EXPECT_EQ(config.probe_max_connections, defaults.probe_max_connections);
  EXPECT_TRUE(config.auth_modules.empty());
  EXPECT_FALSE(config.data_source_name.empty());
}

TEST(Flags, ParsesBothForms) {
  Flags flags;
  ASSERT_FALSE(ParseFlags({"--config", "a.yaml", "--web.listen-address=:1234", "--collectors.path",
                           "x", "--collectors.path=y", "--collectors.disable=a,b",
                           "--no-collectors.builtin", "--log.format", "json"},
                          flags));
  EXPECT_EQ(flags.config_file, "a.yaml");
  EXPECT_EQ(flags.listen_address, ":1234");
  EXPECT_EQ(flags.collector_paths, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(flags.disabled_collectors, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(flags.builtin_collectors, false);
  EXPECT_EQ(flags.log_format, "json");
}

TEST(Flags, RejectsUnknownAndIncomplete) {
  Flags flags;
  EXPECT_EQ(ParseFlags({"--web.listen"}, flags), "unknown flag \"--web.listen\"; see --help");
  EXPECT_EQ(ParseFlags({"--config"}, flags), "flag --config needs a value");
}

TEST(Flags, EnvironmentAndFlagsOverrideTheFile) {
  Flags flags;
  flags.listen_address = ":1";
  ExporterConfig config;
  config.data_source_name = "host=from-file";
  ASSERT_TRUE(BuildConfig(flags, {"host=from-env", "", ""}, config).empty());
  EXPECT_EQ(config.data_source_name, "host=from-env");
  EXPECT_EQ(config.listen_address, ":1");
}

TEST(Flags, PasswordFileAndProcessDurations) {
  Flags flags;
  ASSERT_EQ(ParseFlags({"--config.watch-interval=0", "--shutdown.timeout", "2s"}, flags),
            std::nullopt);
  ExporterConfig config;
  ASSERT_TRUE(
      ParseExporterConfig("connection: {password_file: secret/pw}\n", "/etc/pgtally/x.yaml", config)
          .empty());
  EXPECT_EQ(config.password_file, "/etc/pgtally/secret/pw");  // relative to the config file
  ASSERT_TRUE(BuildConfig(flags, {"host=db", "/run/env-pw", ""}, config).empty());
  EXPECT_EQ(config.password_file, "/run/env-pw");  // the environment overrides the file
  EXPECT_EQ(config.watch_interval, Millis(0));
  EXPECT_EQ(config.shutdown_timeout, Millis(2000));
  flags.password_file = "/run/flag-pw";
  ASSERT_TRUE(BuildConfig(flags, {"host=db", "/run/env-pw", ""}, config).empty());
  EXPECT_EQ(config.password_file, "/run/flag-pw");  // and the flag overrides both

  Flags bad;
  ASSERT_EQ(ParseFlags({"--shutdown.timeout=soon"}, bad), std::nullopt);
  const auto errors = BuildConfig(bad, {"host=db", "", ""}, config);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("--shutdown.timeout must be a duration"));
}

TEST(PasswordFile, TrailingLineBreaksAreNotPartOfThePassword) {
  const auto path =
      std::filesystem::temp_directory_path() / ("pgtally-pw-" + std::to_string(::getpid()));
  pg::Error error;
  EXPECT_EQ(pg::ReadPasswordFile(path.string(), error), std::nullopt);
  EXPECT_THAT(error.message, HasSubstr("cannot read the password file"));
  std::ofstream(path) << "s3cret word\r\n";
  EXPECT_EQ(pg::ReadPasswordFile(path.string(), error), "s3cret word");
  std::ofstream(path) << "\n";
  EXPECT_EQ(pg::ReadPasswordFile(path.string(), error), std::nullopt);
  EXPECT_THAT(error.message, HasSubstr("is empty"));
  std::filesystem::remove(path);
}

TEST(Flags, NeedsADatabase) {
  ExporterConfig config;
  const auto errors = BuildConfig(Flags{}, {}, config);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("set DATA_SOURCE_NAME"));
}

TEST(Http, ListenAddressAndScrapeBudget) {
  EXPECT_EQ(CivetListeningPorts(":9187"), "9187");
  EXPECT_EQ(CivetListeningPorts("127.0.0.1:9187"), "127.0.0.1:9187");
  EXPECT_EQ(ScrapeBudget(nullptr, Millis(10000)), Millis(10000));
  EXPECT_EQ(ScrapeBudget("10", Millis(30000)), Millis(9500));
  EXPECT_EQ(ScrapeBudget("2.5", Millis(30000)), Millis(2250));
  EXPECT_EQ(ScrapeBudget("garbage", Millis(7000)), Millis(7000));
  EXPECT_EQ(ScrapeBudget("-3", Millis(7000)), Millis(7000));
}

}  // namespace
}  // namespace pgtally
