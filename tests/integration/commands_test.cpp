// The subcommands for collector authors, run as a user runs them: `pgtally run-collector` against
// a real server, `pgtally test` on fixture files, `pgtally docs` on custom collectors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pg_server.h"
#include "process.h"
#include "promtool.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
const std::string kFixtures = PGTALLY_SOURCE_DIR "/tests/collectors/fixtures";

// Runs `pgtally ARGS...` to the end; the exit code is -1 if it took longer than `limit`.
struct Outcome {
  int code;
  std::string out;
  std::string err;
};
Outcome Pgtally(std::vector<std::string> args, std::chrono::milliseconds limit = 30s) {
  args.insert(args.begin(), kBinary);
  Process process(args);
  const int code = process.Wait(limit);
  return {code, process.Stdout(), process.Stderr()};
}

class RunCollector : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SharedPgServer().Exec(
        "CREATE TABLE IF NOT EXISTS fixture_jobs (state text, wait_ms int8);"
        "TRUNCATE fixture_jobs;"
        "INSERT INTO fixture_jobs VALUES ('ready', 1500), ('ready', 250), ('done', NULL);");
  }
  // The fixture collectors only, against the shared server.
  static Outcome RunCollectorNamed(const std::string& name, const std::string& dsn) {
    return Pgtally({"run-collector", name, "--dsn", dsn, "--no-collectors.builtin",
                    "--collectors.path", kFixtures + "/queue.yaml"});
  }
};

TEST_F(RunCollector, PrintsTheSeriesAndWhatHappened) {
  const auto run = RunCollectorNamed("fixture_queue", SharedPgServer().Dsn());
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out,
            "# HELP fixture_queue_jobs Jobs by state.\n"
            "# TYPE fixture_queue_jobs gauge\n"
            "fixture_queue_jobs{state=\"done\"} 1\n"
            "fixture_queue_jobs{state=\"ready\"} 2\n"
            "# HELP fixture_queue_oldest_wait_seconds Longest wait of a job in the state.\n"
            "# TYPE fixture_queue_oldest_wait_seconds gauge\n"
            "fixture_queue_oldest_wait_seconds{state=\"done\"} 0\n"
            "fixture_queue_oldest_wait_seconds{state=\"ready\"} 1.5\n");
  EXPECT_EQ(PromtoolCheckMetrics(run.out), "");
  EXPECT_THAT(run.err, HasSubstr("state:        success\n"));
  EXPECT_THAT(run.err, HasSubstr("query:        the collector's only query\n"));
  EXPECT_THAT(run.err, HasSubstr("series:       4 (max_series 10000)\n"));
  EXPECT_THAT(run.err, HasSubstr("server:       server_version_num 15"));
}

TEST_F(RunCollector, RunsABuiltinCollectorAndNamesItsQueryVariant) {
  const auto run = Pgtally({"run-collector", "pg_lock_waits", "--dsn", SharedPgServer().Dsn()});
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("pg_locks_blocked_backends{datname=\"postgres\"} 0\n"));
  EXPECT_THAT(run.out, Not(HasSubstr("pg_up")));
  EXPECT_THAT(run.err, HasSubstr("query:        variant 1 of 2 (min_version 140000), for "
                                 "server_version_num 15"));
}

TEST_F(RunCollector, AnUnknownNameIsAUsageErrorWithSuggestions) {
  const auto run = RunCollectorNamed("fixture_queu", SharedPgServer().Dsn());
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err,
              HasSubstr("no collector named \"fixture_queu\"; did you mean fixture_queue"));
}

TEST_F(RunCollector, AFailingQueryExitsOneWithTheServersMessage) {
  const auto run = RunCollectorNamed("fixture_broken", SharedPgServer().Dsn());
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err, HasSubstr("state:        failed\n"));
  // First where the server found the problem: line 17 of the file, where the table is named.
  EXPECT_THAT(run.err, HasSubstr("error:        " + kFixtures +
                                 "/queue.yaml:17:38: ERROR:  relation \"fixture_no_such_table\" "
                                 "does not exist"));
}

TEST_F(RunCollector, ASkippedCollectorSaysWhy) {
  const auto run =
      Pgtally({"run-collector", "pg_stat_autovacuum_scores", "--dsn", SharedPgServer().Dsn()});
  EXPECT_EQ(run.code, 1);
  EXPECT_THAT(run.err, HasSubstr("state:        skipped (version: the collector has "
                                 "min_version 190000; the server is 15"));
}

TEST_F(RunCollector, ADeadDatabaseExitsOneQuicklyWithoutThePassword) {
  const auto start = std::chrono::steady_clock::now();
  const auto run = RunCollectorNamed(
      "fixture_queue", "host=127.0.0.1 port=1 user=postgres password=Hush-4711 connect_timeout=2");
  EXPECT_EQ(run.code, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err, HasSubstr("state:        not run: the database is down (pg_up 0)"));
  EXPECT_THAT(run.err, HasSubstr("Connection refused"));
  EXPECT_THAT(run.err, HasSubstr("password=xxxxx"));
  EXPECT_THAT(run.err, Not(HasSubstr("Hush-4711")));
}

TEST(TestCommand, TheBuiltinFixturesPass) {
  const auto run = Pgtally({"test", PGTALLY_SOURCE_DIR "/queries"});
  EXPECT_EQ(run.code, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("ok   " PGTALLY_SOURCE_DIR "/queries/locks.test.yaml: "));
  EXPECT_THAT(run.out, HasSubstr(" 0 failed (3 test files)"));
}

TEST(TestCommand, AFailingCaseShowsItsPlaceAndDiff) {
  // The collector file names its test file; the result is the same as naming the test file.
  const auto run = Pgtally({"test", kFixtures + "/queue.yaml"});
  EXPECT_EQ(run.code, 1);
  const std::string test_file = kFixtures + "/queue.test.yaml";
  EXPECT_THAT(run.out, HasSubstr("ok   " + test_file + ": jobs and waits by state\n"));
  EXPECT_THAT(run.out, HasSubstr("FAIL " + test_file + ":19:5: deliberately wrong scale\n"));
  EXPECT_THAT(run.out, HasSubstr("    -fixture_queue_oldest_wait_seconds{state=\"ready\"} 1500\n"
                                 "    +fixture_queue_oldest_wait_seconds{state=\"ready\"} 1.5\n"));
  EXPECT_THAT(run.out, HasSubstr("1 passed, 1 failed (1 test file)\n"));
}

TEST(TestCommand, ProblemsInTestFilesAndArguments) {
  EXPECT_EQ(Pgtally({"test"}).code, 2);
  const auto missing = Pgtally({"test", "/nonexistent/x.test.yaml"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.out, HasSubstr("ERROR /nonexistent/x.test.yaml: no such file or directory"));
}

TEST(DocsCommand, DescribesCustomCollectors) {
  const auto run =
      Pgtally({"docs", "--no-collectors.builtin", "--collectors.path", kFixtures + "/queue.yaml"});
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("## fixture_queue\n"));
  EXPECT_THAT(run.out, HasSubstr("| `fixture_queue_oldest_wait_seconds` | gauge | `state` | "
                                 "Longest wait of a job in the state. |\n"));
  EXPECT_THAT(run.out, HasSubstr("3 metrics from 2 collectors"));
}

TEST(DocsCommand, TheBuiltinReferenceIsDocsMetricsMd) {
  const auto run = Pgtally({"docs"});
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("# Built-in metrics\n"));
  EXPECT_THAT(run.out, HasSubstr("| `pg_stat_activity_connections` | gauge |"));
  const auto broken = Pgtally({"docs", "--collectors.path", "/nonexistent"});
  EXPECT_EQ(broken.code, 1);
  EXPECT_THAT(broken.err, HasSubstr("/nonexistent"));
}

}  // namespace
}  // namespace pgtally::testing
