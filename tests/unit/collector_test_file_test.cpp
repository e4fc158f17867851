#include "pgtally/cli/collector_test_file.h"

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace pgtally {
namespace {

constexpr const char* kCollectors = R"(version: 1
collectors:
  - name: app_jobs
    help: Jobs by queue and state.
    query: SELECT queue, state, count(*) AS jobs, max(wait) AS wait_ms FROM jobs GROUP BY 1, 2
    labels: [queue, state]
    max_series: 3
    values:
      - {column: jobs, type: gauge, help: Jobs.}
      - {column: wait_ms, type: gauge, name: app_jobs_wait_seconds, scale: 0.001, on_null: 0,
         help: Longest wait.}
  - name: app_tables
    help: Rows per table.
    scope: database
    min_version: 140000
    query: SELECT relname, n_live_tup FROM pg_stat_user_tables
    labels: [relname]
    values:
      - {column: n_live_tup, type: gauge, name: app_table_rows, help: Live rows.}
)";

class CollectorTestFileTest : public ::testing::Test {
 protected:
  void Write(const std::string& name, const std::string& text) { dir_.Write(name, text); }
  std::string Path(const std::string& name) const { return dir_ / name; }

  testing::TempDir dir_;
};

TEST_F(CollectorTestFileTest, RunsRowsThroughTheMapping) {
  Write("app.yaml", kCollectors);
  Write("app.test.yaml", R"(tests:
  - name: jobs by queue
    collector: app_jobs
    rows:
      - {queue: mail, state: ready, jobs: "3", wait_ms: "1500"}
      - {queue: mail, state: ready, jobs: "4", wait_ms: "1"}   # a duplicate: dropped
      - {queue: "sms \"x\"", state: done, jobs: 1, wait_ms: null}
    expect: |
      # HELP app_jobs_jobs Jobs.
      # TYPE app_jobs_jobs gauge
      app_jobs_jobs{queue="mail",state="ready"} 3
      app_jobs_jobs{queue="sms \"x\"",state="done"} 1
      # HELP app_jobs_wait_seconds Longest wait.
      # TYPE app_jobs_wait_seconds gauge
      app_jobs_wait_seconds{queue="mail",state="ready"} 1.5
  - name: tables
    collector: app_tables
    server_version: 150004
    database: shop
    rows: [{relname: orders, n_live_tup: "10"}]
    expect: |
      # HELP app_table_rows Live rows.
      # TYPE app_table_rows gauge
      app_table_rows{datname="shop",relname="orders"} 10
)");
  Diagnostics errors;
  const auto file = LoadCollectorTestFile(Path("app.test.yaml"), errors);
  ASSERT_TRUE(errors.empty()) << errors.front().ToString();
  ASSERT_EQ(file.cases.size(), 2u);
  EXPECT_EQ(file.collector_files, std::vector<std::string>{Path("app.yaml")});
  EXPECT_EQ(file.cases[0].location.line, 2);
  EXPECT_EQ(file.cases[0].columns, (std::vector<std::string>{"queue", "state", "jobs", "wait_ms"}));
  EXPECT_FALSE(file.cases[0].rows[2][3].has_value());  // null is NULL

  const auto jobs = RunCollectorTest(file.collectors[0], file.cases[0]);
  EXPECT_TRUE(jobs.passed) << LineDiff(*file.cases[0].expect, jobs.output);
  // The fourth sample is past max_series: 3.
  EXPECT_EQ(jobs.dropped, "2 duplicate, 1 over max_series");
  const auto tables = RunCollectorTest(file.collectors[1], file.cases[1]);
  EXPECT_TRUE(tables.passed) << LineDiff(*file.cases[1].expect, tables.output);
}

TEST_F(CollectorTestFileTest, AMismatchFailsWithItsDiff) {
  Write("app.yaml", kCollectors);
  Write("app.test.yaml", R"(tests:
  - name: wrong value
    collector: app_tables
    rows: [{relname: orders, n_live_tup: "10"}, {relname: items, n_live_tup: "NaN"}]
    expect: |
      # HELP app_table_rows Live rows.
      # TYPE app_table_rows gauge
      app_table_rows{datname="postgres",relname="orders"} 11
      app_table_rows{datname="postgres",relname="items"} NaN
)");
  Diagnostics errors;
  const auto file = LoadCollectorTestFile(Path("app.test.yaml"), errors);
  ASSERT_TRUE(errors.empty()) << errors.front().ToString();
  const auto result = RunCollectorTest(file.collectors[1], file.cases[0]);
  EXPECT_FALSE(result.passed);
  EXPECT_EQ(LineDiff(*file.cases[0].expect, result.output),
            "--- expected\n+++ got\n@@ -1,4 +1,4 @@\n"
            " # HELP app_table_rows Live rows.\n"
            " # TYPE app_table_rows gauge\n"
            "-app_table_rows{datname=\"postgres\",relname=\"orders\"} 11\n"
            "-app_table_rows{datname=\"postgres\",relname=\"items\"} NaN\n"
            "+app_table_rows{datname=\"postgres\",relname=\"orders\"} 10\n"
            "+app_table_rows{datname=\"postgres\",relname=\"items\"} Nan\n");
}

TEST_F(CollectorTestFileTest, ExpectedMappingErrors) {
  Write("app.yaml", kCollectors);
  Write("app.test.yaml", R"(tests:
  - name: missing column
    collector: app_tables
    columns: [relname]
    expect_error: the result has no column "n_live_tup"
  - name: no error after all
    collector: app_tables
    rows: [{relname: orders, n_live_tup: "1"}]
    expect_error: no column
)");
  Diagnostics errors;
  const auto file = LoadCollectorTestFile(Path("app.test.yaml"), errors);
  ASSERT_TRUE(errors.empty()) << errors.front().ToString();
  EXPECT_TRUE(RunCollectorTest(file.collectors[1], file.cases[0]).passed);
  const auto unexpected = RunCollectorTest(file.collectors[1], file.cases[1]);
  EXPECT_FALSE(unexpected.passed);
  EXPECT_FALSE(unexpected.error.has_value());
}

TEST_F(CollectorTestFileTest, ProblemsInTheTestFileAreLocated) {
  Write("app.yaml", kCollectors);
  Write("app.test.yaml", R"(tests:
  - name: unknown collector
    collector: app_job
    expect: ""
  - name: old server
    collector: app_tables
    server_version: 130000
    rows: [{relname: [a, b]}]
    expect: ""
    expected: ""
)");
  Diagnostics errors;
  const auto file = LoadCollectorTestFile(Path("app.test.yaml"), errors);
  EXPECT_TRUE(file.cases.empty());
  ASSERT_EQ(errors.size(), 4u);
  std::vector<std::string> messages;
  for (const auto& error : errors) messages.push_back(error.ToString());
  const std::string test_file = Path("app.test.yaml");
  EXPECT_EQ(messages[0], test_file +
                             ":3:16: test \"unknown collector\": no collector \"app_job\" in " +
                             Path("app.yaml") + " (it has: app_jobs, app_tables)");
  EXPECT_EQ(messages[1],
            test_file +
                ":10:5: test \"old server\": unknown key \"expected\" (expected one of: "
                "name, collector, server_version, database, columns, rows, expect, "
                "expect_error)");
  EXPECT_EQ(messages[2], test_file +
                             ":8:22: test \"old server\": the cell of column \"relname\" "
                             "must be a value or null");
  EXPECT_EQ(messages[3], test_file +
                             ":7:21: test \"old server\": collector \"app_tables\" does not "
                             "run on server_version 130000");
}

TEST_F(CollectorTestFileTest, FindsTestFiles) {
  Write("app.yaml", kCollectors);
  Write("app.test.yaml", "tests: []\n");
  Write("other.yaml", kCollectors);
  Write("b.test.yml", "tests: []\n");
  Diagnostics errors;
  EXPECT_EQ(CollectorTestFiles(dir_.path(), errors),
            (std::vector<std::string>{Path("app.test.yaml"), Path("b.test.yml")}));
  EXPECT_EQ(CollectorTestFiles(Path("app.yaml"), errors),
            std::vector<std::string>{Path("app.test.yaml")});
  EXPECT_EQ(CollectorTestFiles(Path("app.test.yaml"), errors),
            std::vector<std::string>{Path("app.test.yaml")});
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(CollectorTestFiles(Path("other.yaml"), errors).empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(), Path("other.yaml") +
                                      ": no test file beside it; write its cases in " +
                                      Path("other.test.yaml"));
}

TEST(LineDiff, IgnoresTrailingWhitespaceAndKeepsContextShort) {
  EXPECT_EQ(LineDiff("a\nb  \n\n\n", "a\nb"), "");
  EXPECT_EQ(LineDiff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\n2\n3\n4\n5\n6\n7\n8\nnine\n10\n"),
            "--- expected\n+++ got\n@@ -6,5 +6,5 @@\n 6\n 7\n 8\n-9\n+nine\n 10\n");
}

}  // namespace
}  // namespace pgtally
