// `pgtally check` as a collector author or a CI job runs it: the real binary on the broken
// example files (tests/collectors/broken) and on the built-in collectors, without a database,
// against PostgreSQL 15 and against PgBouncer's admin console.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <sstream>

#include "pg_client.h"
#include "pg_server.h"
#include "pgbouncer_server.h"
#include "pgtally/pg/connection.h"
#include "process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
const std::string kBroken = std::string(PGTALLY_SOURCE_DIR) + "/tests/collectors/broken";
constexpr const char* kPassword = "TopSecret-4711";

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `pgtally check` with `args`, never with a DATA_SOURCE_NAME from the test's environment.
Result Check(std::vector<std::string> args, std::vector<std::string> env = {"DATA_SOURCE_NAME="}) {
  args.insert(args.begin(), {kBinary, "check"});
  Process process(args, env);
  Result result;
  result.exit_code = process.Wait(60s);
  result.out = process.Stdout();
  result.err = process.Stderr();
  return result;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The server's version as check reports it: 150004 and "PostgreSQL 15.4".
std::pair<std::string, std::string> ServerVersion(const PgServer& pg) {
  const auto text = pg.QueryValue("SHOW server_version");
  return {pg.QueryValue("SHOW server_version_num"), "PostgreSQL " + text.substr(0, text.find(' '))};
}

const std::string kCounterError =
    kBroken +
    "/counter_name.yaml:10:15: error: collector \"broken_counter_name\" value \"commits\": counter "
    "\"broken_counter_name_commits\" must have a name ending in _total";
const std::string kUnknownKeyError =
    kBroken +
    "/unknown_key.yaml:7:5: error: collector \"broken_unknown_key\": unknown key \"lables\" "
    "(expected one of: name, help, query, queries, scope, role, min_version, max_version, "
    "timeout, optional, cache_ttl, max_series, labels, values, parameters, omitted_rows_column, "
    "target_type, target_label, legacy_names, allow_unsafe)";
const std::string kYamlError =
    kBroken + "/yaml_syntax.yaml:8:11: error: YAML syntax: end of sequence flow not found";

TEST(Check, BrokenFilesWithoutADatabase) {
  const auto result = Check({"--no-collectors.builtin", "--collectors.path", kBroken});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_THAT(Lines(result.out),
              ElementsAre(kCounterError, kUnknownKeyError, kYamlError,
                          "checked 8 collectors without a database (give --dsn to check the "
                          "queries too): 3 errors, 0 warnings, 0 notes"));
  EXPECT_THAT(result.err, IsEmpty());
}

TEST(Check, BrokenFilesAgainstPostgres) {
  auto& pg = SharedPgServer();
  const auto [version, server] = ServerVersion(pg);
  const auto result =
      Check({"--no-collectors.builtin", "--collectors.path", kBroken, "--dsn", pg.Dsn()});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_THAT(
      Lines(result.out),
      ElementsAre(
          kCounterError,
          kBroken + "/missing_column.yaml:4:5: note: collector \"broken_missing_column\": column "
                    "\"connections\" is neither a label nor a value and is ignored",
          kBroken +
              "/missing_column.yaml:9:9: error: collector \"broken_missing_column\": value column "
              "\"conns\" is not in the query's result (it returns state, connections)",
          kBroken +
              "/no_variant.yaml:4:5: note: collector \"broken_no_variant\": no variant for "
              "server version " +
              version + ": the exporter skips it here (reason=\"version\")",
          kBroken +
              "/numeric_label.yaml:4:5: warning: collector \"broken_numeric_label\": label column "
              "\"pid\" has type integer: numbers work as labels, but a number usually belongs in "
              "a value column, and every distinct one makes another series",
          kBroken +
              "/optional_extension.yaml:5:5: note: collector \"broken_optional_extension\": "
              "skipped: relation \"pg_buffercache\" does not exist (an optional collector: the "
              "exporter skips it on this server, reason=\"unavailable\")",
          kBroken +
              "/sql_syntax.yaml:8:7: error: collector \"broken_sql_syntax\": the server rejects "
              "the query: syntax error at or near \"FORM\"",
          kBroken +
              "/text_value.yaml:9:9: error: collector \"broken_text_value\": value column "
              "\"max_connections\" has type text, which pgtally does not read as a number; cast "
              "it in the query (for example max_connections::float8)",
          kUnknownKeyError, kYamlError,
          "checked 8 collectors against " + server + ": 6 errors, 1 warning, 3 notes"));
}

// Each file alone: warnings and notes pass, errors fail, which is what CI relies on.
TEST(Check, ExitCodeOfEachBrokenFile) {
  const std::map<std::string, int> expected = {
      {"yaml_syntax.yaml", 1},    {"unknown_key.yaml", 1},   {"counter_name.yaml", 1},
      {"missing_column.yaml", 1}, {"numeric_label.yaml", 0}, {"text_value.yaml", 1},
      {"sql_syntax.yaml", 1},     {"no_variant.yaml", 0},    {"optional_extension.yaml", 0},
  };
  const auto dsn = SharedPgServer().Dsn();
  for (const auto& [file, code] : expected) {
    const auto result =
        Check({"--no-collectors.builtin", "--collectors.path", kBroken + "/" + file, "--dsn", dsn});
    EXPECT_EQ(result.exit_code, code) << file << ":\n" << result.out << result.err;
  }
}

TEST(Check, JsonFindings) {
  auto& pg = SharedPgServer();
  const auto [version, server] = ServerVersion(pg);
  const auto result = Check({"--no-collectors.builtin", "--collectors.path", kBroken, "--dsn",
                             pg.Dsn(), "--format", "json"});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  const YAML::Node doc = YAML::Load(result.out);
  const YAML::Node findings = doc["findings"];
  ASSERT_TRUE(findings.IsSequence()) << result.out;
  ASSERT_EQ(findings.size(), 10u) << result.out;

  const YAML::Node sql = findings[6];
  EXPECT_EQ(sql["file"].as<std::string>(), kBroken + "/sql_syntax.yaml");
  EXPECT_EQ(sql["line"].as<int>(), 8);  // where FORM is written
  EXPECT_EQ(sql["column"].as<int>(), 7);
  EXPECT_EQ(sql["severity"].as<std::string>(), "error");
  EXPECT_EQ(sql["collector"].as<std::string>(), "broken_sql_syntax");
  EXPECT_EQ(sql["message"].as<std::string>(),
            "the server rejects the query: syntax error at or near \"FORM\"");

  const YAML::Node yaml = findings[9];
  EXPECT_EQ(yaml["file"].as<std::string>(), kBroken + "/yaml_syntax.yaml");
  EXPECT_EQ(yaml["line"].as<int>(), 8);
  EXPECT_EQ(yaml["column"].as<int>(), 11);
  EXPECT_TRUE(yaml["collector"].IsNull());
  EXPECT_EQ(yaml["message"].as<std::string>(), "YAML syntax: end of sequence flow not found");

  std::map<std::string, int> by_severity;
  for (const auto& finding : findings) ++by_severity[finding["severity"].as<std::string>()];
  EXPECT_EQ(by_severity, (std::map<std::string, int>{{"error", 6}, {"note", 3}, {"warning", 1}}));

  const YAML::Node summary = doc["summary"];
  EXPECT_EQ(summary["collectors"].as<int>(), 8);
  EXPECT_EQ(summary["server"].as<std::string>(), server);
  EXPECT_EQ(summary["server_version"].as<std::string>(), version);
  EXPECT_EQ(summary["errors"].as<int>(), 6);
  EXPECT_EQ(summary["warnings"].as<int>(), 1);
  EXPECT_EQ(summary["notes"].as<int>(), 3);
}

// The built-in collectors pass against PostgreSQL 15 (with pg_stat_statements, as PgServer
// sets it up): warnings and notes at most. The DSN comes from the environment here, with a
// password (which trust authentication ignores) that must never show.
TEST(Check, BuiltinCollectorsPassAgainstPostgres15) {
  auto& pg = SharedPgServer();
  const auto [version, server] = ServerVersion(pg);
  const std::string uri = "postgresql://postgres:" + std::string(kPassword) +
                          "@127.0.0.1:" + std::to_string(pg.port()) + "/postgres";
  const auto result = Check({}, {"DATA_SOURCE_NAME=" + uri});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto lines = Lines(result.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(),
              AllOf(StartsWith("checked "), HasSubstr("against " + server + ": 0 errors")));
  for (const auto& line : lines) EXPECT_THAT(line, Not(HasSubstr(": error: ")));
  // What the exporter skips on a PostgreSQL 15 primary, check says it skips.
  EXPECT_THAT(result.out, HasSubstr("collector \"pg_stat_wal_receiver\": role: standby: the "
                                    "exporter skips it on this server, which is a primary"));
  EXPECT_THAT(result.out, HasSubstr("collector \"pgbouncer_pools\": not checked: a target_type: "
                                    "pgbouncer collector needs a DSN with dbname=pgbouncer"));
  EXPECT_THAT(result.out + result.err, Not(HasSubstr(kPassword)));
}

// On a standby the role: primary collectors are the ones skipped; their queries are checked
// all the same, and the standby's own pass.
TEST(Check, BuiltinCollectorsPassOnAStandby) {
  auto& pg = SharedPgServer();
  const auto standby = PgServer::StandbyOf(pg);
  const auto result = Check({"--dsn", standby->Dsn()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("collector \"pg_wal_lsn\": role: primary: the exporter skips "
                                    "it on this server, which is a standby"));
  EXPECT_THAT(result.out, Not(HasSubstr("which is a primary")));
  EXPECT_THAT(Lines(result.out).back(), HasSubstr(": 0 errors, "));
}

// Against PgBouncer's admin console the pgbouncer collectors' SHOW commands are run (the console
// cannot prepare), and the PostgreSQL collectors are left alone.
TEST(Check, BuiltinCollectorsPassAgainstPgBouncer) {
  auto& pg = SharedPgServer();
  PgBouncerServer bouncer(pg.port());
  const auto result = Check({"--dsn", bouncer.AdminDsn()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(Lines(result.out).back(),
              AllOf(HasSubstr("against PgBouncer "), HasSubstr(": 0 errors, ")))
      << result.out;
  EXPECT_THAT(result.out,
              HasSubstr("collector \"pg_stat_database\": not checked: a PostgreSQL collector, and "
                        "the DSN is PgBouncer's admin console (dbname=pgbouncer)"));
  EXPECT_THAT(result.out, Not(HasSubstr("collector \"pgbouncer_pools\": not checked")));
}

// An optional collector's syntax error is still an error (the exporter would skip it quietly), a
// missing relation is one for a collector that is not optional, parameters are left to the
// server to type, and the DSN can come from the config file.
TEST(Check, OptionalCollectorsStillNeedValidSql) {
  TempDir dir;
  const auto collectors = dir.Write(
      "c.yaml",
      "version: 1\ncollectors:\n"
      "  - name: app_optional\n    help: O.\n    optional: true\n"
      "    query: SELECT 1 AS v FROM nowhere WHERE\n    values: [{column: v, type: gauge}]\n"
      "  - name: app_buffers\n    help: B.\n"
      "    query: SELECT count(*) AS v FROM pg_buffercache\n    values: [{column: v, type: "
      "gauge}]\n"
      "  - name: app_param\n    help: P.\n    parameters: {limit: 5}\n"
      "    query: SELECT relpages::float8 AS v FROM pg_class LIMIT {{limit}}::int\n"
      "    values: [{column: v, type: gauge}]\n");
  const auto config = dir.Write("pgtally.yaml", "data_source_name: \"" + SharedPgServer().Dsn() +
                                                    "\"\ncollectors:\n  builtin: false\n");
  const auto result = Check({"--config", config, "--collectors.path", collectors});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_THAT(
      Lines(result.out),
      // At the place in the file: the end of line 6, and pg_buffercache on line 10.
      ElementsAre(collectors + ":6:44: error: collector \"app_optional\": the server rejects the "
                               "query: syntax error at end of input (the exporter would skip this "
                               "optional collector without a word)",
                  collectors + ":10:38: error: collector \"app_buffers\": the server rejects the "
                               "query: relation \"pg_buffercache\" does not exist",
                  StartsWith("checked 3 collectors against PostgreSQL 15.")));
}

// Preparing a query locks the tables it reads: a lock held elsewhere is waited on for
// lock_timeout at most, and is no fault of the collector.
TEST(Check, ALockedTableIsAWarningAfterLockTimeout) {
  auto& pg = SharedPgServer();
  pg.Exec("CREATE TABLE check_locked (v int)");
  const auto holder = Connect(pg.Dsn());
  pg::ResultPtr locked(
      PQexec(holder.get(), "BEGIN; LOCK TABLE check_locked IN ACCESS EXCLUSIVE MODE"));
  ASSERT_EQ(PQresultStatus(locked.get()), PGRES_COMMAND_OK) << PQerrorMessage(holder.get());
  TempDir dir;
  const auto collectors = dir.Write("c.yaml",
                                    "version: 1\ncollectors:\n  - {name: app_locked, help: L., "
                                    "query: SELECT count(*) AS v FROM check_locked, values: "
                                    "[{column: v, type: gauge}]}\n");
  const auto start = std::chrono::steady_clock::now();
  const auto result =
      Check({"--no-collectors.builtin", "--collectors.path", collectors, "--dsn", pg.Dsn()});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(
      Lines(result.out),
      ElementsAre(collectors + ":3:5: warning: collector \"app_locked\": not checked: canceling "
                               "statement due to lock timeout (another session held a lock on a "
                               "table it reads for longer than lock_timeout, 1000 ms)",
                  HasSubstr(": 0 errors, 1 warning, 0 notes")));
}

TEST(Check, UnreachableDatabaseIsAnErrorWithoutThePassword) {
  const auto result = Check({"--no-collectors.builtin", "--collectors.path",
                             kBroken + "/numeric_label.yaml", "--dsn",
                             std::string("host=127.0.0.1 port=1 user=postgres password=") +
                                 kPassword + " connect_timeout=2"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(Lines(result.out),
              ElementsAre(StartsWith("error: cannot connect to host=127.0.0.1 port=1 "
                                     "user=postgres password=xxxxx connect_timeout=2: "),
                          "checked 1 collector without its queries (the database could not be "
                          "reached): 1 error, 0 warnings, 0 notes"));
  EXPECT_THAT(result.out + result.err, Not(HasSubstr(kPassword)));
}

TEST(Check, UsageErrors) {
  const auto format = Check({"--format", "xml"});
  EXPECT_EQ(format.exit_code, 2);
  EXPECT_THAT(format.err, HasSubstr("--format must be text or json, not \"xml\""));
  EXPECT_THAT(format.out, IsEmpty());
  const auto argument = Check({kBroken});
  EXPECT_EQ(argument.exit_code, 2);
  EXPECT_THAT(argument.err, HasSubstr("unexpected argument \"" + kBroken + "\""));
}

}  // namespace
}  // namespace pgtally::testing
