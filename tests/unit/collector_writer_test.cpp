// WriteCollectorFile is the loader's inverse: what it writes loads as the collectors it was given,
// for imported files and for every built-in collector.

#include "pgtally/config/collector_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

using ::testing::HasSubstr;

const std::string kSource = PGTALLY_SOURCE_DIR;

std::string AllErrors(const LoadedCollectors& loaded) {
  std::string all;
  for (const auto& error : loaded.errors) all += error.ToString() + "\n";
  return all;
}

// Equal doubles, where NaN equals NaN.
bool Same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }
bool Same(const std::optional<double>& a, const std::optional<double>& b) {
  return a.has_value() == b.has_value() && (!a || Same(*a, *b));
}

std::string Text(const std::optional<int>& bound) {
  return bound ? std::to_string(*bound) : "none";
}

// Every field but the source locations, which name the file each was read from.
void ExpectSameCollector(const CollectorSpec& a, const CollectorSpec& b) {
  SCOPED_TRACE("collector " + a.name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.help, b.help);
  EXPECT_EQ(a.scope, b.scope);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.target_type, b.target_type);
  EXPECT_EQ(Text(a.versions.min), Text(b.versions.min));
  EXPECT_EQ(Text(a.versions.max), Text(b.versions.max));
  EXPECT_EQ(a.timeout, b.timeout);
  EXPECT_EQ(a.optional, b.optional);
  EXPECT_EQ(a.cache_ttl, b.cache_ttl);
  EXPECT_EQ(a.max_series, b.max_series);
  EXPECT_EQ(a.omitted_rows_column, b.omitted_rows_column);
  EXPECT_EQ(a.target_label, b.target_label);
  EXPECT_EQ(a.legacy_names, b.legacy_names);
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  for (std::size_t i = 0; i < a.parameters.size(); ++i) {
    EXPECT_EQ(a.parameters[i].name, b.parameters[i].name);
    EXPECT_EQ(a.parameters[i].value, b.parameters[i].value);
  }
  ASSERT_EQ(a.queries.size(), b.queries.size());
  for (std::size_t i = 0; i < a.queries.size(); ++i) {
    SCOPED_TRACE("query " + std::to_string(i));
    EXPECT_EQ(a.queries[i].sql, b.queries[i].sql);
    EXPECT_EQ(Text(a.queries[i].versions.min), Text(b.queries[i].versions.min));
    EXPECT_EQ(Text(a.queries[i].versions.max), Text(b.queries[i].versions.max));
    EXPECT_EQ(a.queries[i].parameters, b.queries[i].parameters);
  }
  ASSERT_EQ(a.labels.size(), b.labels.size());
  for (std::size_t i = 0; i < a.labels.size(); ++i) {
    EXPECT_EQ(a.labels[i].column, b.labels[i].column);
    EXPECT_EQ(a.labels[i].name, b.labels[i].name);
  }
  ASSERT_EQ(a.values.size(), b.values.size());
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    const auto& x = a.values[i];
    const auto& y = b.values[i];
    SCOPED_TRACE("value " + x.column);
    EXPECT_EQ(x.column, y.column);
    EXPECT_EQ(x.metric_name, y.metric_name);
    EXPECT_EQ(x.help, y.help);
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_TRUE(Same(x.scale, y.scale)) << x.scale << " vs " << y.scale;
    EXPECT_TRUE(Same(x.null_value, y.null_value));
    EXPECT_EQ(x.go_duration, y.go_duration);
    ASSERT_EQ(x.mapping.size(), y.mapping.size());
    for (auto it = x.mapping.begin(), jt = y.mapping.begin(); it != x.mapping.end(); ++it, ++jt) {
      EXPECT_EQ(it->first, jt->first);
      EXPECT_TRUE(Same(it->second, jt->second)) << it->first;
    }
  }
}

// Writes `collectors`, loads the text again and compares.
void ExpectRoundTrip(const std::vector<CollectorSpec>& collectors) {
  ASSERT_FALSE(collectors.empty());
  const std::string text = WriteCollectorFile(collectors);
  const auto reread = ParseCollectorFile(text, "written.yaml", CollectorFormat::kPgtally);
  ASSERT_TRUE(reread.ok()) << AllErrors(reread) << text;
  ASSERT_EQ(reread.collectors.size(), collectors.size()) << text;
  for (std::size_t i = 0; i < collectors.size(); ++i) {
    ExpectSameCollector(collectors[i], reread.collectors[i]);
  }
  // Writing what was read gives the same text again.
  EXPECT_EQ(WriteCollectorFile(reread.collectors), text);
}

TEST(CollectorWriter, ImportedPostgresExporterFile) {
  const auto loaded = LoadCollectors({kSource + "/tests/collectors/postgres_exporter"},
                                     CollectorFormat::kPostgresExporter);
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  ExpectRoundTrip(loaded.collectors);
}

TEST(CollectorWriter, ImportedPgExporterFiles) {
  const auto loaded = LoadCollectors({kSource + "/tests/collectors/pg_exporter"});
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  ExpectRoundTrip(loaded.collectors);
}

TEST(CollectorWriter, EveryBuiltinCollector) {
  const auto loaded = LoadCollectors({kSource + "/queries"});
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  ASSERT_GT(loaded.collectors.size(), 20u);
  ExpectRoundTrip(loaded.collectors);
}

TEST(CollectorWriter, AwkwardValues) {
  // Queries a block scalar cannot hold as they are, numbers that are not plain decimals, NaN in a
  // mapping, keys that YAML would read as other types.
  const auto loaded = ParseCollectorFile(R"(pg_q:
  query: "  SELECT 1 AS v, 'on' AS s, 2 AS d"
  cache_seconds: 90
  metrics:
    - v: {usage: COUNTER, description: "Hits: #1"}
    - s: {usage: MAPPEDMETRIC, mapping: {"on": 1, "null": .nan, "1.5": -2.5e-9, "": 3}}
    - d: {usage: DURATION}
pg_r:
  query: "SELECT 1 AS v\n\n"
  runonserver: "<=9.6.24 || >10.1.0 <11.0.0"
  metrics:
    - v: {usage: GAUGE}
)",
                                         "awkward.yaml", CollectorFormat::kPostgresExporter);
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  ExpectRoundTrip(loaded.collectors);

  CollectorSpec spec;
  spec.name = "t";
  spec.help = "Tabs\tand \"quotes\" and a colon: here.";
  QueryVariant query;
  query.sql = "SELECT 1 AS v -- trailing space ";
  spec.queries.push_back(query);
  spec.values.push_back({});
  spec.values[0].column = "v";
  spec.values[0].metric_name = "t_v";
  spec.values[0].help = spec.help;
  spec.values[0].scale = 1.0 / 3;
  spec.values[0].null_value = -0.0;
  ExpectRoundTrip({spec});
}

TEST(CollectorWriter, LeavesDefaultsOut) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: t
    help: T.
    query: SELECT 1 AS v
    values: [{column: v, type: gauge}]
)",
                                         "t.yaml");
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  EXPECT_EQ(WriteCollectorFile(loaded.collectors), R"(version: 1
collectors:
  - name: t
    help: T.
    query: SELECT 1 AS v
    values:
      - column: v
        type: gauge
        name: t_v
)");
}

TEST(CollectorWriter, ImportedSettingsAreSpelledOut) {
  const auto loaded =
      LoadCollectors({kSource + "/tests/collectors/postgres_exporter/queries.yaml"});
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  const std::string text = WriteCollectorFile(loaded.collectors);
  EXPECT_THAT(text, HasSubstr("    target_label: server\n    legacy_names: true\n"));
  EXPECT_THAT(text, HasSubstr("    cache_ttl: 30s\n"));
  EXPECT_THAT(text, HasSubstr("        name: pg_app_worker_uptime_milliseconds\n"));
  EXPECT_THAT(text, HasSubstr("        parse: go_duration\n"));
  EXPECT_THAT(text, HasSubstr("        on_null: nan\n"));
  EXPECT_THAT(text, HasSubstr("      - min_version: 100000\n        max_version: 989999\n"));
}

}  // namespace
}  // namespace pgtally
