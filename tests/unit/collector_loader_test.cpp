#include "pgtally/config/collector_loader.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "../fuzz/exposition_build.h"
#include "../fuzz/exposition_check.h"
#include "pgtally/config/collector_writer.h"
#include "pgtally/config/query_safety.h"
#include "promtool.h"
#include "temp_dir.h"

namespace pgtally {
namespace {

using testing::PromtoolCheckMetrics;
using testing::TempDir;

using ::testing::HasSubstr;
using ::testing::Not;

// The single error a file produces, as "file:line:column: message".
std::string OnlyError(std::string_view yaml) {
  const auto loaded = ParseCollectorFile(yaml, "c.yaml");
  if (loaded.errors.size() != 1) {
    std::string all;
    for (const auto& e : loaded.errors) all += e.ToString() + "\n";
    ADD_FAILURE() << "expected exactly one error, got " << loaded.errors.size() << ":\n" << all;
    return all;
  }
  return loaded.errors.front().ToString();
}

constexpr std::string_view kValid = R"(version: 1
collectors:
  - name: app_queue
    help: Jobs in the queue.
    scope: database
    role: primary
    min_version: 130000
    max_version: 189999
    timeout: 2s
    optional: true
    cache_ttl: 30s
    max_series: 50
    query: SELECT queue, state, jobs, wait_ms FROM jobs
    labels:
      - queue
      - column: state
        name: job_state
    values:
      - column: jobs
        type: gauge
        help: Jobs by queue.
      - column: wait_ms
        type: counter
        name: app_queue_wait_seconds_total
        scale: 0.001
        on_null: 0
)";

TEST(CollectorLoader, ReadsEveryKey) {
  const auto loaded = ParseCollectorFile(kValid, "c.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  ASSERT_EQ(loaded.collectors.size(), 1u);
  const auto& spec = loaded.collectors[0];
  EXPECT_EQ(spec.name, "app_queue");
  EXPECT_EQ(spec.help, "Jobs in the queue.");
  EXPECT_EQ(spec.scope, Scope::kDatabase);
  EXPECT_EQ(spec.role, Role::kPrimary);
  EXPECT_EQ(spec.versions.min, 130000);
  EXPECT_EQ(spec.versions.max, 189999);
  EXPECT_EQ(spec.timeout, Millis(2000));
  EXPECT_TRUE(spec.optional);
  EXPECT_EQ(spec.cache_ttl, Millis(30000));
  EXPECT_EQ(spec.max_series, 50u);
  ASSERT_EQ(spec.queries.size(), 1u);
  EXPECT_EQ(spec.queries[0].sql, "SELECT queue, state, jobs, wait_ms FROM jobs");
  ASSERT_EQ(spec.labels.size(), 2u);
  EXPECT_EQ(spec.labels[0].column, "queue");
  EXPECT_EQ(spec.labels[0].name, "queue");
  EXPECT_EQ(spec.labels[1].column, "state");
  EXPECT_EQ(spec.labels[1].name, "job_state");
  ASSERT_EQ(spec.values.size(), 2u);
  EXPECT_EQ(spec.values[0].metric_name, "app_queue_jobs");
  EXPECT_EQ(spec.values[0].kind, MetricKind::kGauge);
  EXPECT_EQ(spec.values[0].help, "Jobs by queue.");
  EXPECT_FALSE(spec.values[0].null_value.has_value());
  EXPECT_EQ(spec.values[1].metric_name, "app_queue_wait_seconds_total");
  EXPECT_EQ(spec.values[1].kind, MetricKind::kCounter);
  EXPECT_EQ(spec.values[1].help, "Jobs in the queue.");  // falls back to the collector's
  EXPECT_DOUBLE_EQ(spec.values[1].scale, 0.001);
  EXPECT_EQ(spec.values[1].null_value, 0.0);
  EXPECT_EQ(spec.values[1].location.line, 22);
}

TEST(CollectorLoader, DefaultsAndCounterSuffix) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: pg_x
    help: X.
    query: SELECT 1 AS calls, 2 AS size
    values:
      - {column: calls, type: counter}
      - {column: size, type: gauge}
)",
                                         "c.yaml");
  ASSERT_TRUE(loaded.ok());
  const auto& spec = loaded.collectors[0];
  EXPECT_EQ(spec.scope, Scope::kServer);
  EXPECT_EQ(spec.role, Role::kAny);
  EXPECT_FALSE(spec.timeout.has_value());
  EXPECT_FALSE(spec.optional);
  EXPECT_EQ(spec.cache_ttl, Millis(0));
  EXPECT_EQ(spec.max_series, 10000u);
  EXPECT_EQ(spec.values[0].metric_name, "pg_x_calls_total");
  EXPECT_EQ(spec.values[1].metric_name, "pg_x_size");
}

TEST(CollectorLoader, VersionVariantsSelectByServerVersion) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: pg_s
    help: S.
    max_version: 189999
    queries:
      - max_version: 129999
        query: SELECT 1 AS v
      - min_version: 130000
        query: SELECT 2 AS v
    values: [{column: v, type: gauge}]
)",
                                         "c.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  const auto& spec = loaded.collectors[0];
  ASSERT_NE(spec.QueryFor(120000), nullptr);
  EXPECT_EQ(spec.QueryFor(120000)->sql, "SELECT 1 AS v");
  EXPECT_EQ(spec.QueryFor(150004)->sql, "SELECT 2 AS v");
  EXPECT_EQ(spec.QueryFor(190000), nullptr);  // the collector's own range excludes 19
}

TEST(CollectorLoader, RoleSelectsRecoveryState) {
  CollectorSpec spec;
  spec.role = Role::kPrimary;
  EXPECT_TRUE(spec.RunsOn(false));
  EXPECT_FALSE(spec.RunsOn(true));
  spec.role = Role::kStandby;
  EXPECT_FALSE(spec.RunsOn(false));
  EXPECT_TRUE(spec.RunsOn(true));
  spec.role = Role::kAny;
  EXPECT_TRUE(spec.RunsOn(true));
}

TEST(CollectorLoader, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - name: [unclosed\n"),
              HasSubstr("c.yaml:4:1: YAML syntax"));
}

TEST(CollectorLoader, UnknownKey) {
  EXPECT_EQ(OnlyError(R"(version: 1
collectors:
  - name: x
    help: X.
    querry: SELECT 1 AS v
    query: SELECT 1 AS v
    values: [{column: v, type: gauge}]
)"),
            "c.yaml:5:5: collector \"x\": unknown key \"querry\" (expected one of: name, help, "
            "query, queries, "
            "scope, role, min_version, max_version, timeout, optional, cache_ttl, max_series, "
            "labels, values, parameters, omitted_rows_column, target_type, target_label, "
            "legacy_names, allow_unsafe)");
}

TEST(CollectorLoader, PlaceholdersBecomeBindParameters) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: t
    help: T.
    parameters: {table_limit: 1000, table_exclude: ""}
    omitted_rows_column: omitted
    query: >-
      SELECT relname, n, '{{1,2},{3,4}}'::int[] AS arr, 0 AS omitted FROM x
      WHERE ({{ table_exclude }} = '' OR relname !~ {{table_exclude}}) LIMIT {{table_limit}}::int
    labels: [relname]
    values: [{column: n, type: gauge}]
)",
                                         "c.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  const auto& spec = loaded.collectors.at(0);
  const auto& query = spec.queries.at(0);
  EXPECT_EQ(query.sql,
            "SELECT relname, n, '{{1,2},{3,4}}'::int[] AS arr, 0 AS omitted FROM x WHERE ($1 = '' "
            "OR relname !~ $1) LIMIT $2::int");
  EXPECT_THAT(query.parameters, ::testing::ElementsAre("table_exclude", "table_limit"));
  EXPECT_THAT(spec.Arguments(query), ::testing::ElementsAre("", "1000"));
  EXPECT_EQ(spec.omitted_rows_column, "omitted");

  auto collectors = loaded.collectors;
  EXPECT_TRUE(ApplyParameterOverrides(collectors, {{"table_limit", "5", {}}}).empty());
  EXPECT_THAT(collectors[0].Arguments(query), ::testing::ElementsAre("", "5"));
  const auto errors = ApplyParameterOverrides(collectors, {{"tabel_limit", "5", {"p.yaml", 3, 5}}});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(),
            "p.yaml:3:5: parameter \"tabel_limit\" is not declared by any loaded collector");
}

// PostgreSQL's position of `needle` in `sql`: from 1, in characters.
int PositionOf(const std::string& sql, std::string_view needle) {
  const auto at = sql.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  int characters = 1;
  for (std::size_t i = 0; i < at; ++i) {
    if ((static_cast<unsigned char>(sql[i]) & 0xC0) != 0x80) ++characters;
  }
  return characters;
}

// A position in a query's SQL, as the server reports one, is found in the file: exactly for a
// literal block (placeholders and non-ASCII text included) and for a query on one line; at the
// query for folded text, whose lines are not in the file as the server sees them.
TEST(CollectorLoader, QueryPositionsMapToTheFile) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: block
    help: B.
    parameters: {limit: 10}
    query: |
      SELECT relname AS "naïve", n

        FROM x LIMIT {{ limit }} OFSET 1
    values: [{column: n, type: gauge}]
  - name: plain
    help: P.
    query: SELECT 1 AS n FORM y
    values: [{column: n, type: gauge}]
  - name: quoted
    help: Q.
    query: "SELECT 1 AS n FORM y"
    values: [{column: n, type: gauge}]
  - name: folded
    help: F.
    query: >-
      SELECT 1 AS n
      FORM y
    values: [{column: n, type: gauge}]
)",
                                         "c.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  const auto at = [&](std::size_t collector, std::string_view needle) {
    const auto& query = loaded.collectors.at(collector).queries.at(0);
    return query.Locate(PositionOf(query.sql, needle)).ToString();
  };
  EXPECT_EQ(at(0, "SELECT"), "c.yaml:7:7");
  EXPECT_EQ(at(0, ", n"), "c.yaml:7:32");    // ï is one character
  EXPECT_EQ(at(0, "OFSET"), "c.yaml:9:34");  // after {{ limit }}, not $1
  EXPECT_EQ(at(1, "FORM"), "c.yaml:13:26");
  EXPECT_EQ(at(2, "FORM"), "c.yaml:17:27");
  EXPECT_FALSE(loaded.collectors[3].queries[0].source.verbatim);
  EXPECT_EQ(at(3, "FORM"), "c.yaml:21:12");
  // Beyond the end of the SQL is nowhere in it: the start.
  const auto& block = loaded.collectors[0].queries[0];
  EXPECT_EQ(block.Locate(1000).ToString(), "c.yaml:7:7");

  // Windows line ends are still lines; an explicit indentation indicator is not followed, and
  // points at the query.
  const auto crlf = ParseCollectorFile(
      "version: 1\r\ncollectors:\r\n  - name: t\r\n    help: T.\r\n    query: |\r\n"
      "      SELECT 1 AS n\r\n      FORM y\r\n    values: [{column: n, type: gauge}]\r\n",
      "w.yaml");
  ASSERT_TRUE(crlf.ok()) << crlf.errors.front().ToString();
  const auto& windows = crlf.collectors[0].queries[0];
  EXPECT_EQ(windows.Locate(PositionOf(windows.sql, "FORM")).ToString(), "w.yaml:7:7");
  const auto indicated = ParseCollectorFile(
      "version: 1\ncollectors:\n  - name: t\n    help: T.\n    query: |2\n"
      "        SELECT 1 AS n\n    values: [{column: n, type: gauge}]\n",
      "i.yaml");
  ASSERT_TRUE(indicated.ok()) << indicated.errors.front().ToString();
  const auto& explicit_indent = indicated.collectors[0].queries[0];
  EXPECT_FALSE(explicit_indent.source.verbatim);
  EXPECT_EQ(explicit_indent.Locate(PositionOf(explicit_indent.sql, "AS")).ToString(),
            "i.yaml:5:12");
}

TEST(CollectorLoader, CacheTtlOverrides) {
  auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - {name: sizes, help: S., cache_ttl: 5m, query: "SELECT 1 AS v", values: [{column: v, type: gauge}]}
  - {name: other, help: O., query: "SELECT 1 AS w", values: [{column: w, type: gauge}]}
)",
                                   "c.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  auto& collectors = loaded.collectors;
  EXPECT_TRUE(
      ApplyCacheTtlOverrides(collectors, {{"sizes", Millis(0), {}}, {"other", Millis(60000), {}}})
          .empty());
  EXPECT_EQ(collectors[0].cache_ttl, Millis(0));
  EXPECT_EQ(collectors[1].cache_ttl, Millis(60000));
  const auto errors = ApplyCacheTtlOverrides(collectors, {{"sizez", Millis(1), {"p.yaml", 4, 3}}});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(), "p.yaml:4:3: cache_ttl: no collector is named \"sizez\"");
}

TEST(CollectorLoader, UndeclaredPlaceholder) {
  EXPECT_EQ(OnlyError(R"(version: 1
collectors:
  - name: t
    help: T.
    query: SELECT 1 AS v LIMIT {{limit}}
    values: [{column: v, type: gauge}]
)"),
            "c.yaml:5:12: collector \"t\": the query uses {{limit}}, which is not declared under "
            "\"parameters\"");
}

TEST(CollectorLoader, OmittedRowsColumnIsNeitherLabelNorValue) {
  EXPECT_THAT(OnlyError(R"(version: 1
collectors:
  - name: t
    help: T.
    omitted_rows_column: v
    query: SELECT 1 AS v
    values: [{column: v, type: gauge}]
)"),
              HasSubstr("c.yaml:7:14: collector \"t\" value \"v\": column \"v\" is also the "
                        "omitted_rows_column"));
}

TEST(CollectorLoader, PgBouncerCollectors) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: pgbouncer_pools
    help: P.
    target_type: pgbouncer
    query: SHOW POOLS
    labels: [database]
    values: [{column: cl_active, type: gauge}]
)",
                                         "c.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  EXPECT_EQ(loaded.collectors.at(0).target_type, TargetType::kPgBouncer);
  EXPECT_THAT(OnlyError(R"(version: 1
collectors:
  - name: b
    help: B.
    target_type: pgbouncer
    scope: database
    query: SHOW POOLS
    values: [{column: cl_active, type: gauge}]
)"),
              HasSubstr("c.yaml:3:5: collector \"b\": a target_type: pgbouncer collector cannot"));
  EXPECT_THAT(OnlyError(R"(version: 1
collectors:
  - {name: b, help: B., target_type: pgpool, query: SHOW POOLS, values: [{column: v, type: gauge}]}
)"),
              HasSubstr("target_type must be postgres or pgbouncer, not \"pgpool\""));
}

TEST(CollectorLoader, UnknownValueKey) {
  EXPECT_THAT(OnlyError(R"(version: 1
collectors:
  - {name: x, help: X., query: SELECT 1 AS v, values: [{column: v, type: gauge, unit: ms}]}
)"),
              HasSubstr("c.yaml:3:81: collector \"x\" value \"v\": unknown key \"unit\""));
}

TEST(CollectorLoader, MissingRequiredKeys) {
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, query: SELECT 1 AS v, values: "
                        "[{column: v, type: gauge}]}\n"),
              HasSubstr("c.yaml:3:5: collector \"x\": missing required key \"help\""));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1 AS v}\n"),
              HasSubstr("missing required key \"values\""));
  EXPECT_THAT(
      OnlyError(
          "version: 1\ncollectors:\n  - {name: x, help: X., values: [{column: v, type: gauge}]}\n"),
      HasSubstr("give exactly one of \"query\" or \"queries\""));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v}]}\n"),
              HasSubstr("collector \"x\" value \"v\": missing required key \"type\""));
  EXPECT_THAT(OnlyError("collectors: []\n"), HasSubstr("missing required key \"version\""));
}

TEST(CollectorLoader, WrongTypes) {
  EXPECT_EQ(
      OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., timeout: fast, query: SELECT 1, "
                "values: [{column: v, type: gauge}]}\n"),
      "c.yaml:3:34: collector \"x\": \"timeout\" must be a duration such as 500ms, 5s or 2m, not "
      "\"fast\"");
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: summary}]}\n"),
              HasSubstr("type must be gauge, counter or histogram, not \"summary\""));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., optional: maybe, query: "
                        "SELECT 1, values: [{column: v, type: gauge}]}\n"),
              HasSubstr("\"optional\" must be true or false, not \"maybe\""));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., min_version: fifteen, "
                        "query: SELECT 1, values: [{column: v, type: gauge}]}\n"),
              HasSubstr("\"min_version\" must be a whole number"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., scope: cluster, query: "
                        "SELECT 1, values: [{column: v, type: gauge}]}\n"),
              HasSubstr("scope must be server or database, not \"cluster\""));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., role: leader, query: "
                        "SELECT 1, values: [{column: v, type: gauge}]}\n"),
              HasSubstr("role must be any, primary or standby"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: [SELECT 1], "
                        "values: [{column: v, type: gauge}]}\n"),
              HasSubstr("\"query\" must be a single value"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, scale: lots}]}\n"),
              HasSubstr("\"scale\" must be a finite number"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, on_null: zero}]}\n"),
              HasSubstr("on_null must be skip, nan or a number"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., max_series: 0, query: "
                        "SELECT 1, values: [{column: v, type: gauge}]}\n"),
              HasSubstr("max_series must be at least 1"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors: {name: x}\n"),
              HasSubstr("\"collectors\" must be a list"));
  EXPECT_THAT(OnlyError("version: 2\ncollectors: []\n"), HasSubstr("version 2 is not supported"));
}

TEST(CollectorLoader, InvalidNames) {
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, name: 'my-metric'}]}\n"),
              HasSubstr("\"my-metric\" is not a valid metric name"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, name: 'job:rate'}]}\n"),
              HasSubstr("\"job:rate\" is not a valid metric name"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, labels: "
                        "[{column: a, name: 'bad label'}], values: [{column: v, type: gauge}]}\n"),
              HasSubstr("\"bad label\" is not a valid label name"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, labels: "
                        "[__meta], values: [{column: v, type: gauge}]}\n"),
              HasSubstr("\"__meta\" is not a valid label name"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: 9lives, help: X., query: SELECT 1, "
                        "values: [{column: v, type: gauge, name: ok_name}]}\n"),
              HasSubstr("the name must be letters, digits and _"));
}

TEST(CollectorLoader, NamingConventions) {
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: counter, name: x_calls}]}\n"),
              HasSubstr("counter \"x_calls\" must have a name ending in _total"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, name: x_total}]}\n"),
              HasSubstr("gauge \"x_total\" must not end in _total"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, name: pgtally_x}]}\n"),
              HasSubstr("reserved for pgtally's own metrics"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, values: "
                        "[{column: v, type: gauge, name: pg_up}]}\n"),
              HasSubstr("reserved for pgtally's own metrics"));
}

TEST(CollectorLoader, LabelProblems) {
  EXPECT_EQ(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, labels: "
                      "[v], values: [{column: v, type: gauge}]}\n"),
            "c.yaml:3:64: collector \"x\" value \"v\": column \"v\" is also a label");
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, labels: "
                        "[a, {column: b, name: a}], values: [{column: v, type: gauge}]}\n"),
              HasSubstr("label \"a\" is named twice"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., scope: database, query: "
                        "SELECT 1, labels: [datname], values: [{column: v, type: gauge}]}\n"),
              HasSubstr("label \"datname\" is added by pgtally"));
  // On a server-scoped collector datname is an ordinary label.
  EXPECT_TRUE(ParseCollectorFile("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT "
                                 "1, labels: [datname], values: [{column: v, type: gauge}]}\n",
                                 "c.yaml")
                  .ok());
}

TEST(CollectorLoader, VersionRangeProblems) {
  EXPECT_THAT(
      OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., min_version: 150000, "
                "max_version: 140000, query: SELECT 1, values: [{column: v, type: gauge}]}\n"),
      HasSubstr("min_version 150000 is above max_version 140000"));
  EXPECT_THAT(
      OnlyError(R"(version: 1
collectors:
  - name: x
    help: X.
    queries:
      - {min_version: 130000, query: SELECT 1 AS v}
      - {min_version: 140000, query: SELECT 2 AS v}
    values: [{column: v, type: gauge}]
)"),
      HasSubstr(
          "c.yaml:7:9: collector \"x\" query variant: version range overlaps an earlier variant"));
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1, "
                        "queries: [], values: [{column: v, type: gauge}]}\n"),
              HasSubstr("give exactly one of"));
}

TEST(CollectorLoader, DuplicateNamesWithinAFile) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - {name: a, help: A., query: SELECT 1, values: [{column: v, type: gauge, name: shared_metric}]}
  - {name: a, help: B., query: SELECT 1, values: [{column: w, type: gauge, name: shared_metric}]}
)",
                                         "c.yaml");
  ASSERT_EQ(loaded.errors.size(), 2u);
  EXPECT_EQ(loaded.errors[0].ToString(),
            "c.yaml:4:5: collector \"a\" is already defined at c.yaml:3:5");
  EXPECT_EQ(loaded.errors[1].ToString(),
            "c.yaml:4:51: metric \"shared_metric\" is already defined at c.yaml:3:51");
}

TEST(CollectorLoader, ReportsEveryErrorAtOnce) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - {name: a, help: A., timeout: soon, query: SELECT 1, values: [{column: v, type: gauge}]}
  - {name: b, help: B., query: SELECT 1, values: [{column: w, type: meter}]}
  - {name: c, help: C., qeury: x, query: SELECT 1, values: [{column: w, type: gauge}]}
)",
                                         "c.yaml");
  EXPECT_EQ(loaded.errors.size(), 3u);
}

TEST(CollectorLoader, DuplicateMetricAcrossFiles) {
  TempDir dir;
  dir.Write("a.yaml",
            "version: 1\ncollectors:\n  - {name: a, help: A., query: SELECT 1, values: [{column: "
            "v, type: gauge, name: m}]}\n");
  dir.Write("b.yml",
            "version: 1\ncollectors:\n  - {name: b, help: B., query: SELECT 1, values: [{column: "
            "v, type: gauge, name: m}]}\n");
  dir.Write("notes.txt", "not a collector file");
  const auto loaded = LoadCollectors({dir.path()});
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].ToString(), dir.path() +
                                             "/b.yml:3:51: metric \"m\" is already defined at " +
                                             dir.path() + "/a.yaml:3:51");
  EXPECT_EQ(loaded.collectors.size(), 2u);
}

TEST(CollectorLoader, DirectoriesSkipHiddenEntries) {
  // How Kubernetes mounts a ConfigMap: the real files sit in a hidden timestamped directory that
  // the hidden ..data link points at, and each visible name links through ..data.
  TempDir dir;
  dir.Write("..2026_11_23_07_00_00.1/app.yaml",
            "version: 1\ncollectors:\n  - {name: app, help: A., query: SELECT 1 AS v, values: "
            "[{column: v, type: gauge}]}\n");
  std::filesystem::create_directory_symlink("..2026_11_23_07_00_00.1", dir / "..data");
  std::filesystem::create_symlink("..data/app.yaml", dir / "app.yaml");
  dir.Write(".app.yaml.swp.yaml", "not: [valid");
  const auto loaded = LoadCollectors({dir.path()});
  EXPECT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  ASSERT_EQ(loaded.collectors.size(), 1u);
  EXPECT_EQ(loaded.collectors[0].name, "app");
}

TEST(CollectorLoader, MissingPath) {
  const auto loaded = LoadCollectors({"/nonexistent/pgtally"});
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].ToString(), "/nonexistent/pgtally: no such file or directory");
}

TEST(CollectorLoader, LargeFilesLoadAndHugeOnesAreRefused) {
  TempDir dir;
  // 4,000 collectors in 3 MB: a big generated file, still a configuration. Queries in `|`
  // blocks, whose place in the file is found by reading only their own lines.
  std::string big = "version: 1\ncollectors:\n";
  for (int i = 0; i < 4000; ++i) {
    big += fmt::format(
        "  - name: c{0}\n    help: Collector {0}. {1}\n    query: |\n      SELECT 1 AS v -- {1}\n"
        "    values: [{{column: v, type: gauge}}]\n",
        i, std::string(300, 'x'));
  }
  ASSERT_GT(big.size(), 2u << 20);
  const auto path = dir.Write("big.yaml", big);
  const auto loaded = LoadCollectors({path});
  EXPECT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  ASSERT_EQ(loaded.collectors.size(), 4000u);
  const auto& last = loaded.collectors.back().queries.at(0);
  EXPECT_TRUE(last.source.verbatim);
  EXPECT_EQ(last.source.start.ToString(), path + ":" + std::to_string(2 + 3999 * 5 + 4) + ":7");

  // Past 16 MiB it is a mistake (a log, a dump): refused with the reason, without reading it all.
  const auto huge = dir.Write("huge.yaml", "# " + std::string(17u << 20, 'x') + "\n");
  auto refused = LoadCollectors({huge});
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_EQ(refused.errors[0].ToString(),
            huge + ": the file is larger than 16 MiB; is it really a configuration file?");

  // A device never ends: it is not read at all.
  refused = LoadCollectors({"/dev/zero"});
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_EQ(refused.errors[0].ToString(), "/dev/zero: not a regular file");
}

TEST(CollectorLoader, NulBytesAndInvalidUtf8AreErrorsNotCrashes) {
  TempDir dir;
  const auto nul = dir.Write(
      "nul.yaml", std::string("version: 1\ncollectors:\n  - name: a\0b\n    help: H.\n", 46));
  auto loaded = LoadCollectors({nul});
  EXPECT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.errors.front().ToString(), HasSubstr(nul + ":"));
  const auto latin1 = dir.Write("latin1.yaml",
                                "version: 1\ncollectors:\n  - {name: caf\xe9, help: H., query: "
                                "SELECT 1 AS v, values: [{column: v, type: gauge}]}\n");
  loaded = LoadCollectors({latin1});
  EXPECT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.errors.front().ToString(), HasSubstr(latin1 + ":"));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The built-in collectors ship valid; a broken edit fails here before it fails a deployment.
TEST(CollectorLoader, BuiltinCollectorsLoad) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
  EXPECT_GE(loaded.collectors.size(), 5u);
}

// The complete example in docs/collectors.md is real: it loads as written.
TEST(CollectorLoader, DocumentedExampleLoads) {
  const std::string doc = ReadFile(PGTALLY_SOURCE_DIR "/docs/collectors.md");
  const std::regex block("```yaml\n([\\s\\S]*?)```");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(doc, match, block));
  const auto loaded = ParseCollectorFile(match[1].str(), "docs/collectors.md");
  for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
  ASSERT_EQ(loaded.collectors.size(), 1u);
  EXPECT_EQ(loaded.collectors[0].values[1].metric_name, "app_queue_oldest_wait_seconds");
}

// --- What a collector cannot do to its database (docs/security.md) ---

// A collector file with one collector running `sql` (one line, at line 5 column 12), allowing
// `allow` when not empty.
std::string OneQuery(std::string_view sql, std::string_view allow = "") {
  std::string yaml = "version: 1\ncollectors:\n  - name: x\n    help: X.\n    query: ";
  yaml += sql;
  yaml += "\n    values: [{column: v, type: gauge}]\n";
  if (!allow.empty()) yaml += fmt::format("    allow_unsafe: {}\n", allow);
  return yaml;
}

std::vector<std::string> UnsafeNames(std::string_view sql) {
  std::vector<std::string> names;
  for (const auto& use : FindUnsafeUses(sql)) names.push_back(use.name);
  return names;
}

TEST(QuerySafety, EveryDeniedFunctionIsRefusedAtLoad) {
  // Each reproduction of issue 16 first, then the rest of the list.
  for (const std::string name : {"pg_advisory_lock",
                                 "pg_terminate_backend",
                                 "dblink_exec",
                                 "pg_stat_statements_reset",
                                 "pg_switch_wal",
                                 "pg_reload_conf",
                                 "dblink",
                                 "dblink_connect",
                                 "pg_cancel_backend",
                                 "pg_advisory_lock_shared",
                                 "pg_advisory_xact_lock",
                                 "pg_advisory_xact_lock_shared",
                                 "pg_try_advisory_lock",
                                 "pg_try_advisory_xact_lock",
                                 "pg_advisory_unlock",
                                 "pg_advisory_unlock_all",
                                 "pg_stat_reset",
                                 "pg_stat_reset_shared",
                                 "pg_stat_reset_single_table_counters",
                                 "pg_switch_xlog",
                                 "pg_rotate_logfile",
                                 "pg_promote",
                                 "pg_wal_replay_pause",
                                 "pg_wal_replay_resume",
                                 "pg_create_restore_point",
                                 "pg_backup_start",
                                 "pg_backup_stop",
                                 "pg_start_backup",
                                 "pg_stop_backup",
                                 "pg_create_physical_replication_slot",
                                 "pg_create_logical_replication_slot",
                                 "pg_copy_logical_replication_slot",
                                 "pg_drop_replication_slot",
                                 "pg_replication_slot_advance",
                                 "pg_logical_slot_get_changes",
                                 "pg_replication_origin_create",
                                 "pg_logical_emit_message",
                                 "lo_import",
                                 "lo_export",
                                 "lo_unlink",
                                 "pg_file_write",
                                 "pg_file_unlink",
                                 "pg_logdir_ls",
                                 "pg_read_file",
                                 "pg_read_binary_file",
                                 "pg_ls_dir",
                                 "set_config",
                                 "pg_log_backend_memory_contexts",
                                 "pg_import_system_collations",
                                 "pg_notify"}) {
    const std::string sql = "SELECT 1 AS v FROM " + name + "(1)";
    EXPECT_EQ(UnsafeNames(sql), std::vector<std::string>{name});
    const auto error = OnlyError(OneQuery(sql));
    EXPECT_THAT(error, HasSubstr("c.yaml:5:31: collector \"x\": " + name + "() ")) << name;
    EXPECT_THAT(error, HasSubstr("add allow_unsafe: [" + name + "]")) << name;
    EXPECT_TRUE(ParseCollectorFile(OneQuery(sql, "[" + name + "]"), "c.yaml").ok()) << name;
  }
}

TEST(QuerySafety, EveryStatementButAReadIsRefusedAtLoad) {
  for (const std::string keyword :
       {"COPY",    "DO",      "LOCK",    "CHECKPOINT", "VACUUM",   "ANALYZE",  "CALL",    "SET",
        "RESET",   "LOAD",    "LISTEN",  "UNLISTEN",   "NOTIFY",   "DISCARD",  "CLUSTER", "REINDEX",
        "REFRESH", "PREPARE", "EXECUTE", "DEALLOCATE", "DECLARE",  "FETCH",    "MOVE",    "CLOSE",
        "INSERT",  "UPDATE",  "DELETE",  "MERGE",      "TRUNCATE", "CREATE",   "ALTER",   "DROP",
        "GRANT",   "REVOKE",  "BEGIN",   "COMMIT",     "ROLLBACK", "SAVEPOINT"}) {
    const std::string sql = "\"" + keyword + " x\"";
    EXPECT_EQ(UnsafeNames(keyword + " x"), std::vector<std::string>{keyword});
    const auto error = OnlyError(OneQuery(sql));
    EXPECT_THAT(error, HasSubstr("c.yaml:5:13: collector \"x\": " + keyword + " ")) << keyword;
    EXPECT_THAT(error, HasSubstr("allow_unsafe: [" + keyword + "]")) << keyword;
  }
  EXPECT_EQ(UnsafeNames("EXPLAIN ANALYZE SELECT 1"), std::vector<std::string>{"EXPLAIN ANALYZE"});
  EXPECT_EQ(UnsafeNames("explain (format json, analyse) SELECT 1"),
            std::vector<std::string>{"EXPLAIN ANALYZE"});
  // A word that is no statement at all cannot be allowed.
  EXPECT_EQ(OnlyError(OneQuery("FROBNICATE x")),
            "c.yaml:5:12: collector \"x\": FROBNICATE is not a statement a collector can run: a "
            "query is one SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN");
  const auto loaded = ParseCollectorFile(OneQuery("FROBNICATE x", "[FROBNICATE]"), "c.yaml");
  ASSERT_EQ(loaded.errors.size(), 2u);
  EXPECT_THAT(loaded.errors[0].ToString(),
              HasSubstr("\"FROBNICATE\" is not a denied function or statement"));
}

TEST(QuerySafety, ReadsAreAllowed) {
  for (const char* sql :
       {"SELECT 1 AS v", "  (SELECT 1 AS v)", "WITH a AS (SELECT 1 AS v) SELECT v FROM a",
        "VALUES (1)", "TABLE pg_stat_database", "SHOW work_mem", "SHOW POOLS", "EXPLAIN SELECT 1",
        "EXPLAIN (FORMAT JSON) SELECT 1", "-- why\n/* note */ SELECT 1;",
        // Monitoring functions granted to pg_monitor, and pg_sleep (bounded by the timeout).
        "SELECT count(*) FROM pg_ls_waldir()", "SELECT pg_ls_archive_statusdir()",
        "SELECT pg_sleep(0.1)", "SELECT pg_stat_file('postmaster.pid')",
        "SELECT current_setting('work_mem')", "SELECT pg_wal_lsn_diff($1, '0/0')"}) {
    EXPECT_THAT(UnsafeNames(sql), ::testing::IsEmpty()) << sql;
  }
}

TEST(QuerySafety, BypassesAreCaught) {
  for (const char* sql :
       {"SELECT PG_ADVISORY_LOCK(1)", "SELECT Pg_Advisory_Lock (1)",
        "SELECT pg_catalog.pg_advisory_lock(1)", "SELECT pg_catalog . pg_advisory_lock(1)",
        "SELECT \"pg_advisory_lock\"(1)", "SELECT \"pg_catalog\".\"pg_advisory_lock\"(1)",
        "SELECT pg_advisory_lock/* c */(1)", "SELECT pg_advisory_lock -- c\n (1)",
        "WITH l AS (SELECT pg_advisory_lock(1) AS v) SELECT v FROM l",
        "SELECT (SELECT 1 FROM pg_advisory_lock(1)) AS v",
        "SELECT 1 FROM t WHERE EXISTS (SELECT pg_advisory_lock(id))",
        "SELECT 'a' || pg_advisory_lock(1)::text"}) {
    EXPECT_EQ(UnsafeNames(sql), std::vector<std::string>{"pg_advisory_lock"}) << sql;
  }
  // With standard_conforming_strings off a backslash escapes a quote in any string: a call
  // that looks quoted with the setting on runs with it off.
  EXPECT_EQ(UnsafeNames(R"(SELECT '\'', pg_advisory_lock(1), '\'')"),
            std::vector<std::string>{"pg_advisory_lock"});
  // A statement after the first, and one behind parentheses or comments.
  EXPECT_EQ(UnsafeNames("SELECT 1; CHECKPOINT"), std::vector<std::string>{"CHECKPOINT"});
  EXPECT_EQ(UnsafeNames("SELECT 1 ;; COPY t TO PROGRAM 'x'"), std::vector<std::string>{"COPY"});
  EXPECT_EQ(UnsafeNames("/* a */ -- b\n((DO $$ BEGIN END $$))"), std::vector<std::string>{"DO"});
  EXPECT_EQ(UnsafeNames("copy t to '/tmp/x'"), std::vector<std::string>{"COPY"});
  // A name spelt with Unicode escapes cannot be read, so it cannot be called.
  EXPECT_THAT(OnlyError(OneQuery(R"('SELECT U&"pg\005fadvisory_lock"(1) AS v')")),
              HasSubstr("written with Unicode escapes"));
  EXPECT_EQ(UnsafeNames(R"(SELECT U&"!0070g_promote" UESCAPE '!' ())"),
            std::vector<std::string>{R"(U&"!0070g_promote")"});
  EXPECT_THAT(UnsafeNames(R"(SELECT 1 AS U&"\0076")"), ::testing::IsEmpty());
}

TEST(QuerySafety, NamesOnlyInTextColumnsOrCommentsDoNotTrip) {
  for (const char* sql :
       {"SELECT last_analyze, last_autoanalyze, vacuum_count, analyze_count FROM "
        "pg_stat_user_tables",
        "SELECT 'pg_advisory_lock(1)' AS v", "SELECT E'it\\'s pg_advisory_lock(1)' AS v",
        "SELECT $$ pg_terminate_backend(1) $$ AS v", "SELECT $q$ dblink_exec('x') $q$ AS v",
        "SELECT 1 AS v -- pg_reload_conf()",
        "SELECT 1 AS v /* pg_switch_wal() /* nested */ pg_promote() */",
        "SELECT 1 AS \"pg_advisory_lock(1)\"", "SELECT 1 AS \"COPY\"",
        "SELECT pg_stat_reset AS v FROM t", "SELECT s.dblink FROM s",
        "SELECT count(*) FILTER (WHERE query LIKE 'COPY%') FROM pg_stat_activity",
        "SELECT 1 AS copy, 2 AS \"do\"", "SELECT $1::int AS v"}) {
    EXPECT_THAT(UnsafeNames(sql), ::testing::IsEmpty()) << sql;
  }
}

TEST(QuerySafety, TheErrorNamesThePlaceOfTheCallInTheFile) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: x
    help: X.
    query: |
      SELECT 1 AS v
      FROM pg_stat_activity, pg_catalog.pg_terminate_backend(42)
    values: [{column: v, type: gauge}]
)",
                                         "c.yaml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].ToString(),
            "c.yaml:7:41: collector \"x\": pg_terminate_backend() ends another session, which is "
            "not monitoring; remove it; if the collector really must, add allow_unsafe: "
            "[pg_terminate_backend] (docs/security.md: the risk is yours)");
}

TEST(QuerySafety, AllowUnsafeAllowsExactlyWhatItNames) {
  const std::string two = "SELECT pg_advisory_lock(1), pg_advisory_unlock(1) AS v";
  // Allowing one leaves the other refused.
  EXPECT_THAT(OnlyError(OneQuery(two, "[pg_advisory_lock]")),
              HasSubstr("pg_advisory_unlock() takes or releases"));
  EXPECT_TRUE(
      ParseCollectorFile(OneQuery(two, "[pg_advisory_lock, pg_advisory_unlock]"), "c.yaml").ok());
  // Named in any case; a single name needs no list.
  const auto loaded =
      ParseCollectorFile(OneQuery(two, "[PG_ADVISORY_LOCK, Pg_Advisory_Unlock]"), "c.yaml");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.collectors[0].allow_unsafe,
            (std::vector<std::string>{"pg_advisory_lock", "pg_advisory_unlock"}));
  EXPECT_TRUE(ParseCollectorFile(OneQuery("\"copy t to program 'true'\"", "copy"), "c.yaml").ok());
  // A name the query does not use, or that is not denied, is a mistake.
  EXPECT_EQ(OnlyError(OneQuery("SELECT 1 AS v", "[dblink_exec]")),
            "c.yaml:7:19: collector \"x\": allow_unsafe: the query does not use dblink_exec; "
            "remove it");
  EXPECT_THAT(OnlyError(OneQuery("SELECT 1 AS v", "[pg_sleep]")),
              HasSubstr("allow_unsafe: \"pg_sleep\" is not a denied function or statement"));
  // A name only in a string is not a use.
  EXPECT_THAT(OnlyError(OneQuery("SELECT 'pg_promote()' AS v", "[pg_promote]")),
              HasSubstr("does not use pg_promote"));
}

TEST(QuerySafety, AllowUnsafeIsWrittenBack) {
  const auto loaded = ParseCollectorFile(
      OneQuery("SELECT pg_advisory_lock(1) AS v", "[pg_advisory_lock]"), "c.yaml");
  ASSERT_TRUE(loaded.ok());
  const std::string written = WriteCollectorFile(loaded.collectors);
  EXPECT_THAT(written, HasSubstr("allow_unsafe: [pg_advisory_lock]"));
  const auto reread = ParseCollectorFile(written, "w.yaml");
  ASSERT_TRUE(reread.ok()) << reread.errors.front().ToString();
  EXPECT_EQ(reread.collectors[0].allow_unsafe, std::vector<std::string>{"pg_advisory_lock"});
}

// --- The exposition is valid by construction ---

TEST(ExpositionNames, PgtallysOwnNamesAreReserved) {
  for (const char* name : {"pg_up", "pgtally_scrape_duration_seconds", "pgtally_build_info",
                           "pgtally_collector_success", "pgtally_anything"}) {
    EXPECT_THAT(OnlyError(fmt::format("version: 1\ncollectors:\n  - {{name: x, help: X., query: "
                                      "SELECT 1 AS v, values: [{{column: v, type: gauge, name: "
                                      "{}}}]}}\n",
                                      name)),
                HasSubstr(fmt::format("c.yaml:3:56: collector \"x\": metric name \"{}\" is "
                                      "reserved for pgtally's own metrics",
                                      name)));
  }
  // A histogram "pgtally" would write pgtally_bucket, pgtally_sum and pgtally_count.
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: x, help: X., query: SELECT 1 AS v, "
                        "values: [{column: v, type: histogram, name: pgtally}]}\n"),
              HasSubstr("\"pgtally_bucket\" is reserved"));
}

TEST(ExpositionNames, AHistogramsSeriesNamesAreTakenAcrossFiles) {
  TempDir dir;
  dir.Write("a.yaml",
            "version: 1\ncollectors:\n  - {name: a, help: A., query: SELECT 1, values: [{column: "
            "v, type: histogram, name: x}]}\n");
  dir.Write("b.yaml",
            "version: 1\ncollectors:\n  - {name: b, help: B., query: SELECT 1, values: [{column: "
            "v, type: gauge, name: x_count}, {column: w, type: gauge, name: x_sum}]}\n");
  const auto loaded = LoadCollectors({dir.path()});
  ASSERT_EQ(loaded.errors.size(), 2u);
  EXPECT_EQ(loaded.errors[0].ToString(),
            dir.path() +
                "/b.yaml:3:51: metric \"x_count\" clashes with histogram \"x\" (its "
                "series x_count) defined at " +
                dir.path() +
                "/a.yaml:3:51: a histogram x writes x_bucket, x_sum and x_count, which no other "
                "metric may be named; rename one");
  EXPECT_THAT(loaded.errors[1].ToString(), HasSubstr("metric \"x_sum\" clashes with histogram"));
  // The other way round, and within one collector.
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: c, help: C., query: SELECT 1, "
                        "values: [{column: v, type: gauge, name: y_bucket}, {column: w, type: "
                        "histogram, name: y}]}\n"),
              HasSubstr("histogram \"y\" (its series y_bucket) clashes with metric \"y_bucket\""));
}

TEST(ExpositionNames, OneFamilyOnceWhateverItsTypeUnlessNeverTogether) {
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n"
                        "  - {name: a, help: A., query: SELECT 1, values: [{column: v, type: "
                        "gauge, name: m}]}\n"
                        "  - {name: b, help: B., query: SELECT 1, legacy_names: true, values: "
                        "[{column: v, type: counter, name: m}]}\n"),
              HasSubstr("metric \"m\" is already defined at c.yaml:3:"));
  // Variants for different versions never write into one exposition.
  EXPECT_TRUE(
      ParseCollectorFile("version: 1\ncollectors:\n"
                         "  - {name: a, help: A., max_version: 139999, query: SELECT 1, values: "
                         "[{column: v, type: histogram, name: m}]}\n"
                         "  - {name: b, help: B., min_version: 140000, query: SELECT 1, values: "
                         "[{column: v, type: gauge, name: m_count}]}\n",
                         "c.yaml")
          .ok());
}

TEST(ExpositionNames, AHistogramsCollectorHasNoLeLabel) {
  EXPECT_THAT(OnlyError("version: 1\ncollectors:\n  - {name: h, help: H., query: SELECT 1, "
                        "labels: [le], values: [{column: v, type: histogram}]}\n"),
              HasSubstr("histogram \"h_v\" gives its buckets the label \"le\""));
}

// Specs the loader accepts, as close to the rules' edges as they get: names next to the reserved
// ones and to a histogram's series, a label "le" on a gauge, legacy names, one metric name with
// two types in collectors that never run on the same server, label values that need escaping.
constexpr const char* kEdgeSpecs = R"(version: 1
collectors:
  - name: edge
    help: "Help with \\ and\nnewline."
    query: SELECT 1
    labels: [{column: q, name: quote}]
    target_label: server
    values:
      - {column: up, type: gauge, name: pg_upx}
      - {column: p, type: gauge, name: pgtally}
      - {column: h, type: histogram, name: lat}
      - {column: t, type: counter, name: lat_total}
      - {column: b, type: gauge, name: lat_buckets}
      - {column: s, type: gauge, name: lat_summary}
  - name: le
    help: A gauge may have a label le.
    query: SELECT 1
    labels: [le]
    values: [{column: v, type: gauge}]
  - name: old
    help: O.
    max_version: 139999
    role: primary
    scope: database
    legacy_names: true
    query: SELECT 1
    values:
      - {column: v, type: counter, name: shared}
      - {column: w, type: histogram, name: shared_h}
  - name: new
    help: N.
    min_version: 140000
    query: SELECT 1
    values:
      - {column: v, type: gauge, name: shared}
      - {column: w, type: gauge, name: shared_h_count}
)";

TEST(ExpositionNames, WhatLoadsIsAValidExpositionForPromtool) {
  const auto loaded = ParseCollectorFile(kEdgeSpecs, "edge.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  for (const auto& [version, in_recovery] :
       std::vector<std::pair<int, bool>>{{130000, false}, {130000, true}, {170000, false}}) {
    const auto text = fuzz::BuildExposition(loaded.collectors, version, in_recovery);
    EXPECT_EQ(fuzz::ExpositionProblem(text), "") << text;
    // promtool's lint may still say that a legacy counter lacks _total; it must parse it all.
    const auto promtool = PromtoolCheckMetrics(text);
    EXPECT_THAT(promtool, Not(HasSubstr("error"))) << text;
    EXPECT_THAT(promtool, Not(HasSubstr("exit status 1"))) << text;
  }
}

// What the loader refuses, built anyway: promtool and the in-process check both object, so the
// rules are the exposition's own, not stricter.
TEST(ExpositionNames, WhatTheLoaderRefusesPromtoolRejects) {
  for (const char* values : {
           "[{column: h, type: histogram, name: x}, {column: c, type: gauge, name: x_count}]",
           "[{column: c, type: gauge, name: x_sum}, {column: h, type: histogram, name: x}]",
           "[{column: u, type: gauge, name: pg_up}]",
           "[{column: u, type: gauge, name: pgtally_scrape_duration_seconds}]",
       }) {
    SCOPED_TRACE(values);
    const std::string yaml = fmt::format(
        "version: 1\ncollectors:\n  - {{name: c, help: C., query: SELECT 1, values: {}}}\n",
        values);
    auto loaded = ParseCollectorFile(yaml, "c.yaml");
    EXPECT_FALSE(loaded.ok());
    // The same specs as the loader read them, errors aside.
    const auto text = fuzz::BuildExposition(loaded.collectors, 170000, false);
    EXPECT_NE(fuzz::ExpositionProblem(text), "") << text;
    // Mostly a parse error; a gauge x_sum before the histogram x only draws a lint warning from
    // promtool, but Prometheus would then get the series x_sum twice.
    EXPECT_THAT(PromtoolCheckMetrics(text), Not(::testing::IsEmpty())) << text;
  }
}

TEST(ExpositionCheck, KnowsTheFormatsRules) {
  const auto problem = [](std::string_view text) { return fuzz::ExpositionProblem(text); };
  EXPECT_EQ(problem("# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} NaN\n"), "");
  EXPECT_NE(problem("a 1\na 2\n"), "");                             // a series twice
  EXPECT_NE(problem("a 1\nb 1\na 2\n"), "");                        // a family twice
  EXPECT_NE(problem("a{x=\"1\",x=\"2\"} 1\n"), "");                 // a label twice
  EXPECT_NE(problem("a{x=\"1} 1\n"), "");                           // unterminated
  EXPECT_NE(problem("1a 1\n"), "");                                 // a name
  EXPECT_NE(problem("a one\n"), "");                                // a value
  EXPECT_NE(problem("# TYPE a gauge\n# TYPE a gauge\na 1\n"), "");  // TYPE twice
  EXPECT_NE(problem("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n"), "");  // no +Inf
  EXPECT_NE(problem("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"), "");
  EXPECT_EQ(problem("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                    "h_sum 1\nh_count 2\n"),
            "");
  EXPECT_NE(problem("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
                    "# TYPE h_count gauge\nh_count 1\n"),
            "");
}

}  // namespace
}  // namespace pgtally
