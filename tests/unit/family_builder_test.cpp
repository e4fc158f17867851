#include "pgtally/collect/family_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "pgtally/collect/value_parser.h"
#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

using ::testing::HasSubstr;

CollectorSpec Spec(std::string_view yaml) {
  auto loaded = ParseCollectorFile(yaml, "test.yaml");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].ToString());
  return loaded.collectors.at(0);
}

std::string Serialize(const std::vector<FamilyText>& families) {
  std::string out;
  AppendFamilies(families, out);
  return out;
}

const CollectorSpec kSpec = Spec(R"(version: 1
collectors:
  - name: pg_t
    help: Test.
    max_series: 5
    query: SELECT 1
    labels: [name, {column: kind, name: type}]
    values:
      - {column: size_kb, type: gauge, name: pg_t_size_bytes, scale: 1024, help: "Size\nin \\ bytes."}
      - {column: reads, type: counter}
      - {column: ratio, type: gauge, on_null: -1}
)");

TEST(FamilyBuilder, RowsBecomeLabelledSamples) {
  FamilyBuilder builder(kSpec);
  MemoryTable table(
      {"name", "kind", "size_kb", "reads", "ratio"},
      {{"a", "table", "2", "10", "0.5"}, {"b", std::nullopt, "1.5", std::nullopt, std::nullopt}});
  ASSERT_FALSE(builder.Add(table, {{"datname", "shop"}}).has_value());
  EXPECT_EQ(builder.series(), 5u);
  EXPECT_EQ(builder.drops().total(), 0u);
  EXPECT_EQ(Serialize(builder.Take()),
            "# HELP pg_t_size_bytes Size\\nin \\\\ bytes.\n"
            "# TYPE pg_t_size_bytes gauge\n"
            "pg_t_size_bytes{datname=\"shop\",name=\"a\",type=\"table\"} 2048\n"
            "pg_t_size_bytes{datname=\"shop\",name=\"b\",type=\"\"} 1536\n"
            "# HELP pg_t_reads_total Test.\n"
            "# TYPE pg_t_reads_total counter\n"
            "pg_t_reads_total{datname=\"shop\",name=\"a\",type=\"table\"} 10\n"
            "# HELP pg_t_ratio Test.\n"
            "# TYPE pg_t_ratio gauge\n"
            "pg_t_ratio{datname=\"shop\",name=\"a\",type=\"table\"} 0.5\n"
            "pg_t_ratio{datname=\"shop\",name=\"b\",type=\"\"} -1\n");
}

TEST(FamilyBuilder, LabelValuesAreEscapedAndMadeValidUtf8) {
  FamilyBuilder builder(kSpec);
  MemoryTable table(
      {"name", "kind", "size_kb", "reads", "ratio"},
      {{"quote\" back\\slash\nline", "caf\xC3\xA9 \xFF", "1", std::nullopt, std::nullopt}});
  ASSERT_FALSE(builder.Add(table, {}).has_value());
  EXPECT_THAT(Serialize(builder.Take()),
              HasSubstr("pg_t_size_bytes{name=\"quote\\\" "
                        "back\\\\slash\\nline\",type=\"caf\xC3\xA9 \xEF\xBF\xBD\"} 1024\n"));
}

TEST(FamilyBuilder, ExtraLabelsAreMadeValidUtf8Too) {
  // Found by tests/fuzz/exposition_fuzz.cpp: a datname from a SQL_ASCII cluster.
  FamilyBuilder builder(kSpec);
  MemoryTable table({"name", "kind", "size_kb", "reads", "ratio"},
                    {{"a", "table", "1", std::nullopt, std::nullopt}});
  ASSERT_FALSE(builder.Add(table, {{"datname", "sh\x88op"}}).has_value());
  EXPECT_THAT(Serialize(builder.Take()),
              HasSubstr("pg_t_size_bytes{datname=\"sh\xEF\xBF\xBDop\",name=\"a\",type=\"table\"}"));
}

TEST(FamilyBuilder, DuplicateRowsAreDroppedAndCounted) {
  FamilyBuilder builder(kSpec);
  MemoryTable table({"name", "kind", "size_kb", "reads", "ratio"},
                    {{"a", "t", "1", "1", "1"}, {"a", "t", "2", "2", "2"}});
  ASSERT_FALSE(builder.Add(table, {}).has_value());
  EXPECT_EQ(builder.drops().duplicate, 3u);
  EXPECT_EQ(builder.series(), 3u);
  EXPECT_THAT(Serialize(builder.Take()),
              HasSubstr("pg_t_size_bytes{name=\"a\",type=\"t\"} 1024\n"));
}

// Issue 16: a 50 MB label value was copied into the key, the label text and every family's
// lines. A value over kMaxLabelValueBytes, or labels over kMaxSeriesLabelBytes together, drop
// the row, counted as too_large, before any of it is copied.
TEST(FamilyBuilder, OversizedLabelsDropTheRowAsTooLarge) {
  FamilyBuilder builder(kSpec);
  const std::string at_bound(kMaxLabelValueBytes, 'q');
  const std::string over(kMaxLabelValueBytes + 1, 'q');
  MemoryTable table({"name", "kind", "size_kb", "reads", "ratio"},
                    {{at_bound, "t", "1", "1", "1"},
                     {over, "t", "1", "1", "1"},
                     {"b", std::string(50 << 20, 'x'), "1", "1", "1"}});
  ASSERT_FALSE(builder.Add(table, {}).has_value());
  EXPECT_EQ(builder.series(), 3u);  // the first row's three values
  EXPECT_EQ(builder.drops().too_large, 6u);
  const std::string text = Serialize(builder.Take());
  EXPECT_THAT(text, HasSubstr("name=\"" + at_bound + "\""));
  EXPECT_LT(text.size(), 4 * kMaxLabelValueBytes);

  // Each value within its bound, but together past the series' bound (an extra label counts).
  FamilyBuilder together(kSpec);
  const std::string big(kMaxLabelValueBytes, 'v');
  MemoryTable rows({"name", "kind", "size_kb", "reads", "ratio"}, {{big, big, "1", "1", "1"}});
  ASSERT_FALSE(together.Add(rows, {{"a", big}, {"b", big}, {"c", big}}).has_value());
  EXPECT_EQ(together.drops().too_large, 3u);
  EXPECT_EQ(together.series(), 0u);
}

TEST(FamilyBuilder, SameLabelsInAnotherDatabaseAreNotDuplicates) {
  FamilyBuilder builder(kSpec);
  MemoryTable table({"name", "kind", "size_kb", "reads", "ratio"},
                    {{"a", "t", "1", std::nullopt, std::nullopt}});
  ASSERT_FALSE(builder.Add(table, {{"datname", "one"}}).has_value());
  ASSERT_FALSE(builder.Add(table, {{"datname", "two"}}).has_value());
  EXPECT_EQ(builder.drops().duplicate, 0u);
  EXPECT_EQ(builder.series(), 4u);  // size and ratio (NULL → -1) in each database
}

TEST(FamilyBuilder, InvalidValuesAreSkippedAndCounted) {
  FamilyBuilder builder(kSpec);
  MemoryTable table({"name", "kind", "size_kb", "reads", "ratio"},
                    {{"a", "t", "12 kB", "abc", "0.1"}});
  ASSERT_FALSE(builder.Add(table, {}).has_value());
  EXPECT_EQ(builder.drops().invalid_value, 2u);
  EXPECT_EQ(builder.series(), 1u);
}

TEST(FamilyBuilder, SeriesLimitDropsTheRest) {
  FamilyBuilder builder(kSpec);  // max_series: 5
  MemoryTable table(
      {"name", "kind", "size_kb", "reads", "ratio"},
      {{"a", "t", "1", "1", "1"}, {"b", "t", "1", "1", "1"}, {"c", "t", "1", "1", "1"}});
  ASSERT_FALSE(builder.Add(table, {}).has_value());
  EXPECT_EQ(builder.series(), 5u);
  EXPECT_EQ(builder.drops().limit, 4u);
}

TEST(FamilyBuilder, StreamedRowsMatchAWholeTable) {
  const std::vector<std::string> columns = {"name", "kind", "size_kb", "reads", "ratio"};
  const std::vector<std::vector<std::optional<std::string>>> rows = {
      {"a", "t", "1", "1", "1"}, {"a", "t", "1", "1", "1"}, {"b", "t", "2", "2", std::nullopt}};
  FamilyBuilder whole(kSpec);
  ASSERT_FALSE(whole.Add(MemoryTable(columns, rows), {{"datname", "d"}}).has_value());
  FamilyBuilder streamed(kSpec);
  ASSERT_FALSE(streamed.Begin(MemoryTable(columns, {}), {{"datname", "d"}}).has_value());
  for (const auto& row : rows) streamed.AddRow(MemoryTable(columns, {row}), 0);
  EXPECT_EQ(streamed.series(), whole.series());
  EXPECT_EQ(streamed.drops().duplicate, 3u);
  EXPECT_EQ(streamed.drops().limit, whole.drops().limit);
  EXPECT_EQ(Serialize(streamed.Take()), Serialize(whole.Take()));
}

TEST(FamilyBuilder, PastTheLimitRowsAreOnlyCounted) {
  FamilyBuilder builder(kSpec);  // max_series: 5, three values per row
  // Rows c repeat, but past the limit keys are no longer remembered: both count as the limit.
  MemoryTable table({"name", "kind", "size_kb", "reads", "ratio"}, {{"a", "t", "1", "1", "1"},
                                                                    {"b", "t", "1", "1", "1"},
                                                                    {"a", "t", "1", "1", "1"},
                                                                    {"c", "t", "1", "1", "1"},
                                                                    {"c", "t", "1", "1", "1"}});
  ASSERT_FALSE(builder.Add(table, {}).has_value());
  EXPECT_EQ(builder.series(), 5u);
  EXPECT_EQ(builder.drops().duplicate, 3u);  // the second a, seen before the limit
  EXPECT_EQ(builder.drops().limit, 1u + 3u + 3u);
}

TEST(FamilyBuilder, MissingColumnsAreAMappingError) {
  FamilyBuilder builder(kSpec);
  MemoryTable table({"name", "size_kb", "ratio"}, {{"a", "1", "1"}});
  const auto error = builder.Add(table, {});
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(*error, "the result has no column \"kind\", \"reads\"");
  EXPECT_TRUE(builder.Take().empty());
}

TEST(ValueParser, PostgresTextForms) {
  EXPECT_EQ(ParsePgNumber("42"), 42.0);
  EXPECT_EQ(ParsePgNumber("-7"), -7.0);
  EXPECT_EQ(ParsePgNumber("9223372036854775807"), 9223372036854775807.0);
  EXPECT_EQ(ParsePgNumber("1234.5678"), 1234.5678);
  EXPECT_EQ(ParsePgNumber("1e+20"), 1e20);
  EXPECT_EQ(ParsePgNumber(".5"), 0.5);
  EXPECT_TRUE(std::isnan(*ParsePgNumber("NaN")));
  EXPECT_EQ(ParsePgNumber("Infinity"), INFINITY);
  EXPECT_EQ(ParsePgNumber("-Infinity"), -INFINITY);
  EXPECT_EQ(ParsePgNumber("t"), 1.0);
  EXPECT_EQ(ParsePgNumber("f"), 0.0);
  EXPECT_EQ(ParsePgNumber("true"), 1.0);
  EXPECT_EQ(ParsePgNumber("false"), 0.0);
}

TEST(ValueParser, RejectsNonNumbers) {
  for (const char* text :
       {"", " 1", "1 ", "abc", "12 kB", "1,5", "0x10", "inf", "nan", "+1", "2026-13-01",
        "2026-01-01 1:00:00", "2026-01-01T00:00:00", "{1,2}", "Infinity days"}) {
    EXPECT_FALSE(ParsePgNumber(text).has_value()) << text;
  }
}

// Dates and timestamps as DateStyle ISO prints them become Unix seconds, as postgres_exporter
// turns timestamp columns into numbers.
TEST(ValueParser, TimestampsAreUnixSeconds) {
  EXPECT_EQ(ParsePgNumber("1970-01-01"), 0.0);
  EXPECT_EQ(ParsePgNumber("2026-11-23"), 1795392000.0);
  EXPECT_EQ(ParsePgNumber("2026-11-23 17:19:22"), 1795454362.0);  // without time zone: UTC
  EXPECT_EQ(ParsePgNumber("2026-11-23 17:19:22+00"), 1795454362.0);
  EXPECT_EQ(ParsePgNumber("2026-11-23 19:19:22+02"), 1795454362.0);
  EXPECT_EQ(ParsePgNumber("2026-11-23 12:49:22-04:30"), 1795454362.0);
  EXPECT_DOUBLE_EQ(*ParsePgNumber("2026-11-23 17:19:22.25+00"), 1795454362.25);
  EXPECT_EQ(ParsePgNumber("1969-12-31 23:59:59+00"), -1.0);
  EXPECT_EQ(ParsePgNumber("infinity"), INFINITY);
  EXPECT_EQ(ParsePgNumber("-infinity"), -INFINITY);
}

TEST(ValueParser, GoDurationsInMilliseconds) {
  EXPECT_EQ(ParseGoDuration("0"), 0.0);
  EXPECT_EQ(ParseGoDuration("300ms"), 300.0);
  EXPECT_EQ(ParseGoDuration("1.5s"), 1500.0);
  EXPECT_EQ(ParseGoDuration("1h2m3s"), 3723000.0);
  EXPECT_EQ(ParseGoDuration("-2m"), -120000.0);
  EXPECT_EQ(ParseGoDuration("1500us"), 1.5);
  EXPECT_EQ(ParseGoDuration("2\u00b5s"), 0.002);
  for (const char* text : {"", "1", "1x", "s", "1h-2m", "00:00:01", "--1s"}) {
    EXPECT_FALSE(ParseGoDuration(text).has_value()) << text;
  }
}

TEST(ValueParser, Arrays) {
  using Elements = std::vector<std::optional<std::string>>;
  EXPECT_EQ(ParsePgArray("{}"), Elements{});
  EXPECT_EQ(ParsePgArray("{1,2.5,300}"), (Elements{"1", "2.5", "300"}));
  EXPECT_EQ(ParsePgArray("{1,NULL,\"NULL\"}"), (Elements{"1", std::nullopt, "NULL"}));
  EXPECT_EQ(ParsePgArray("{\"a,b\",\"c\\\"d\"}"), (Elements{"a,b", "c\"d"}));
  for (const char* text : {"", "1,2", "{1,2", "{{1,2},{3,4}}", "{\"a}"}) {
    EXPECT_FALSE(ParsePgArray(text).has_value()) << text;
  }
}

TEST(ValueParser, SanitizeUtf8) {
  EXPECT_EQ(SanitizeUtf8("plain"), "plain");
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xC3"), "\xEF\xBF\xBD");                                  // truncated
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(ValueParser, EscapeHelp) { EXPECT_EQ(EscapeHelp("a\\b\nc \"d\""), "a\\\\b\\nc \"d\""); }

}  // namespace
}  // namespace pgtally
