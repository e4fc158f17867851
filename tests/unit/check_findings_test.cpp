// pgtally check's logic that needs no database: load errors as findings, result columns against
// a collector, positions in a query, and the text and JSON output.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "pgtally/cli/check.h"
#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr Oid kInt4 = 23;
constexpr Oid kInt8 = 20;
constexpr Oid kText = 25;
constexpr Oid kJson = 114;
constexpr Oid kName = 19;
constexpr Oid kFloat8 = 701;

CollectorSpec Spec(std::string_view yaml) {
  const auto loaded = ParseCollectorFile(yaml, "c.yaml");
  EXPECT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.collectors.size(), 1u);
  return loaded.collectors.empty() ? CollectorSpec{} : loaded.collectors.front();
}

ResultColumn Column(std::string name, Oid type) {
  auto column = BuiltinType(type).value_or(ResultColumn{});
  column.name = std::move(name);
  column.type = type;
  return column;
}

// Each finding as "line:column severity message", for compact expectations.
std::vector<std::string> Summarize(const std::vector<Finding>& findings) {
  std::vector<std::string> lines;
  for (const auto& f : findings) {
    lines.push_back(
        fmt::format("{}:{} {} {}", f.where.line, f.where.column, ToString(f.severity), f.message));
  }
  return lines;
}

constexpr std::string_view kQueue = R"(version: 1
collectors:
  - name: app_queue
    help: Jobs.
    query: SELECT queue, jobs, oldest FROM app.jobs
    omitted_rows_column: omitted
    labels: [queue]
    values:
      - {column: jobs, type: gauge}
      - {column: oldest, type: gauge}
)";

TEST(CheckColumns, AResultThatFitsHasNoFindings) {
  const auto spec = Spec(kQueue);
  EXPECT_THAT(CheckColumns(spec, {Column("queue", kText), Column("jobs", kInt8),
                                  Column("oldest", kFloat8), Column("omitted", kInt4)}),
              IsEmpty());
}

TEST(CheckColumns, MissingColumnsAreErrorsAtTheirValue) {
  const auto spec = Spec(kQueue);
  EXPECT_THAT(
      Summarize(CheckColumns(spec, {Column("queue", kName), Column("jobs", kInt8)})),
      ElementsAre(
          "10:9 error value column \"oldest\" is not in the query's result (it returns queue, "
          "jobs)",
          "3:5 error omitted_rows_column \"omitted\" is not in the query's result (it returns "
          "queue, jobs)"));
  EXPECT_THAT(Summarize(CheckColumns(spec, {})),
              ::testing::Contains(
                  "3:5 error label column \"queue\" is not in the query's result (it returns no "
                  "columns)"));
}

TEST(CheckColumns, ValuesMustBeNumbersLabelsShouldBeText) {
  const auto spec = Spec(kQueue);
  const auto findings = CheckColumns(spec, {Column("queue", kInt4), Column("jobs", kText),
                                            Column("oldest", kJson), Column("omitted", kInt4)});
  EXPECT_THAT(
      Summarize(findings),
      ElementsAre("3:5 warning label column \"queue\" has type integer: numbers work as labels, "
                  "but a number usually belongs in a value column, and every distinct one makes "
                  "another series",
                  "9:9 error value column \"jobs\" has type text, which pgtally does not read as "
                  "a number; cast it in the query (for example jobs::float8)",
                  "10:9 error value column \"oldest\" has type json, which pgtally does not read "
                  "as a number; cast it in the query (for example oldest::float8)"));
  EXPECT_THAT(findings, ::testing::Each(Field(&Finding::collector, "app_queue")));
}

TEST(CheckColumns, UnusedColumnsAreNotes) {
  const auto spec = Spec(kQueue);
  EXPECT_THAT(Summarize(CheckColumns(
                  spec, {Column("queue", kText), Column("jobs", kInt8), Column("oldest", kFloat8),
                         Column("omitted", kInt4), Column("extra", kText)})),
              ElementsAre("3:5 note column \"extra\" is neither a label nor a value and is "
                          "ignored"));
  EXPECT_THAT(Summarize(CheckColumns(
                  spec, {Column("queue", kText), Column("jobs", kInt8), Column("oldest", kFloat8),
                         Column("omitted", kInt4), Column("a", kText), Column("b", kInt4)})),
              ElementsAre("3:5 note columns \"a\", \"b\" are neither labels nor values and are "
                          "ignored"));
}

TEST(CheckColumns, TypesOutsideTheBuiltinTableUseTheirCategory) {
  const auto spec = Spec(kQueue);
  // citext is a string (category S): fine as a label. An unknown type gets no warning.
  EXPECT_THAT(
      CheckColumns(spec, {ResultColumn{"queue", 99999, "citext", 'S'}, Column("jobs", kInt8),
                          Column("oldest", kFloat8), Column("omitted", kInt4)}),
      IsEmpty());
  EXPECT_THAT(Summarize(CheckColumns(
                  spec, {ResultColumn{"queue", 99998, "text[]", 'A'}, Column("jobs", kInt8),
                         Column("oldest", kFloat8), Column("omitted", kInt4)})),
              ElementsAre(HasSubstr("label column \"queue\" has type text[]: its text form")));
}

TEST(CheckNumericTypes, AgreeWithWhatTheScrapeReads) {
  // Dates and timestamps read as Unix seconds.
  for (const Oid type : {16u, 20u, 21u, 23u, 26u, 28u, 700u, 701u, 1700u, 1082u, 1114u, 1184u}) {
    EXPECT_TRUE(IsNumericType(type)) << type;
  }
  // money prints "$1.00", regclass a name, text anything, interval "00:01:00".
  for (const Oid type : {25u, 790u, 2205u, 1186u, 3220u}) EXPECT_FALSE(IsNumericType(type)) << type;
}

// Imported shapes: a histogram's four columns, and values read as text (a mapping, a duration).
TEST(CheckColumns, HistogramsAndTextValues) {
  const auto spec = Spec(R"(version: 1
collectors:
  - name: app_waits
    help: Waits.
    query: SELECT 1
    legacy_names: true
    values:
      - {column: w, type: histogram}
      - {column: state, type: gauge, mapping: {idle: 0, active: 1}}
      - {column: age, type: gauge, parse: go_duration}
)");
  const ResultColumn array{"w", 1007, "integer[]", 'A'};
  const ResultColumn bucket{"w_bucket", 1016, "bigint[]", 'A'};
  EXPECT_THAT(CheckColumns(spec, {array, bucket, Column("w_sum", kFloat8), Column("w_count", kInt8),
                                  Column("state", kText), Column("age", kText)}),
              IsEmpty());
  EXPECT_THAT(Summarize(CheckColumns(spec, {Column("w", kInt4), bucket, Column("w_sum", kFloat8),
                                            Column("state", kText), Column("age", kText)})),
              ElementsAre(HasSubstr("histogram column \"w\" has type integer; it must be an array"),
                          HasSubstr("histogram column \"w_count\" is not in the query's result")));
}

TEST(CheckUnavailable, MissingObjectsAndPrivilegesButNotMistakes) {
  EXPECT_TRUE(IsUnavailableError("42P01"));
  EXPECT_TRUE(IsUnavailableError("42883"));
  EXPECT_TRUE(IsUnavailableError("3F000"));
  EXPECT_TRUE(IsUnavailableError("42501"));
  EXPECT_FALSE(IsUnavailableError("42601"));  // syntax_error
  EXPECT_FALSE(IsUnavailableError("42703"));  // undefined_column: most likely a typo
  EXPECT_FALSE(IsUnavailableError(""));
}

TEST(CheckPosition, LinesAndCharactersNotBytes) {
  EXPECT_EQ(PositionInQuery("SELECT 1\nFORM x", 10), "line 2, column 1");
  EXPECT_EQ(PositionInQuery("SELECT 'ä' x", 12), "line 1, column 12");
  EXPECT_EQ(PositionInQuery("SELECT 1", 0), "");
  EXPECT_EQ(PositionInQuery("SELECT 1", 9), "line 1, column 9");  // the end of input
  EXPECT_EQ(PositionInQuery("SELECT 1", 10), "");
}

TEST(CheckLoadErrors, KeepTheTextAndFindThePlace) {
  const auto findings = FindingsFromLoadErrors({
      "dir/c.yaml:7:5: collector \"x\": unknown key \"lables\" (expected one of: name)",
      "c.yaml:3: something",
      "dir/d.yaml: cannot read the file: No such file or directory",
      "command line: --scrape.timeout must be a duration such as 10s, not \"x\"",
  });
  ASSERT_EQ(findings.size(), 4u);
  EXPECT_EQ(findings[0].where.ToString(), "dir/c.yaml:7:5");
  EXPECT_EQ(findings[0].collector, "x");
  EXPECT_EQ(findings[0].message, "collector \"x\": unknown key \"lables\" (expected one of: name)");
  EXPECT_EQ(findings[1].where.ToString(), "c.yaml:3");
  EXPECT_EQ(findings[2].where.file, "dir/d.yaml");
  EXPECT_EQ(findings[2].message, "cannot read the file: No such file or directory");
  EXPECT_EQ(findings[3].where.file, "");
  EXPECT_THAT(findings[3].message, HasSubstr("command line: --scrape.timeout"));
  for (const auto& finding : findings) EXPECT_EQ(finding.severity, Severity::kError);
}

TEST(CheckOutput, TextOneLinePerFindingThenTheSummary) {
  const std::vector<Finding> findings = {
      {{"c.yaml", 3, 5}, Severity::kError, "x", "the server rejects the query: oops"},
      {{"c.yaml", 9, 5}, Severity::kError, "y", "collector \"y\": bad"},
      {{}, Severity::kWarning, "", "no place"},
  };
  EXPECT_EQ(FormatFindingsText(findings, {12, "PostgreSQL 15.4", 150004}),
            "c.yaml:3:5: error: collector \"x\": the server rejects the query: oops\n"
            "c.yaml:9:5: error: collector \"y\": bad\n"
            "warning: no place\n"
            "checked 12 collectors against PostgreSQL 15.4: 2 errors, 1 warning, 0 notes\n");
  EXPECT_EQ(FormatFindingsText({}, {1, "", 0}),
            "checked 1 collector without a database (give --dsn to check the queries too): 0 "
            "errors, 0 warnings, 0 notes\n");
}

TEST(CheckOutput, JsonParsesAndEscapes) {
  const std::vector<Finding> findings = {
      {{"dir/c \"q\".yaml", 3, 5}, Severity::kNote, "x", "a \"quoted\"\nline\\ and\ttab"},
      {{}, Severity::kError, "", "no place"},
  };
  const auto doc = YAML::Load(FormatFindingsJson(findings, {2, "PostgreSQL 15.4", 150004}));
  ASSERT_EQ(doc["findings"].size(), 2u);
  const auto first = doc["findings"][0];
  EXPECT_EQ(first["file"].as<std::string>(), "dir/c \"q\".yaml");
  EXPECT_EQ(first["line"].as<int>(), 3);
  EXPECT_EQ(first["column"].as<int>(), 5);
  EXPECT_EQ(first["severity"].as<std::string>(), "note");
  EXPECT_EQ(first["collector"].as<std::string>(), "x");
  EXPECT_EQ(first["message"].as<std::string>(), "a \"quoted\"\nline\\ and\ttab");
  EXPECT_TRUE(doc["findings"][1]["file"].IsNull());
  EXPECT_TRUE(doc["findings"][1]["collector"].IsNull());
  EXPECT_EQ(doc["summary"]["collectors"].as<int>(), 2);
  EXPECT_EQ(doc["summary"]["server"].as<std::string>(), "PostgreSQL 15.4");
  EXPECT_EQ(doc["summary"]["server_version"].as<int>(), 150004);
  EXPECT_EQ(doc["summary"]["errors"].as<int>(), 1);
  EXPECT_EQ(doc["summary"]["notes"].as<int>(), 1);
  EXPECT_EQ(YAML::Load(FormatFindingsJson({}, {0, "", 0}))["findings"].size(), 0u);
}

}  // namespace
}  // namespace pgtally
