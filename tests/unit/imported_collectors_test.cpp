// Other exporters' collector files (postgres_exporter's custom queries, pg_exporter's collectors)
// read into CollectorSpecs, and the series those specs make from fixture rows.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "pgtally/collect/family_builder.h"
#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kExamples = std::string(PGTALLY_SOURCE_DIR) + "/tests/collectors";

const CollectorSpec& Find(const std::vector<CollectorSpec>& specs, std::string_view name) {
  for (const auto& spec : specs) {
    if (spec.name == name) return spec;
  }
  ADD_FAILURE() << "no collector " << name;
  static const CollectorSpec kNone;
  return kNone;
}

std::vector<std::string> Names(const std::vector<CollectorSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& spec : specs) names.push_back(spec.name);
  return names;
}

std::vector<std::string> MetricNames(const CollectorSpec& spec) {
  std::vector<std::string> names;
  for (const auto& value : spec.values) names.push_back(value.metric_name);
  return names;
}

std::vector<std::string> LabelNames(const CollectorSpec& spec) {
  std::vector<std::string> names;
  for (const auto& label : spec.labels) names.push_back(label.column + "->" + label.name);
  return names;
}

std::string AllErrors(const LoadedCollectors& loaded) {
  std::string all;
  for (const auto& error : loaded.errors) all += error.ToString() + "\n";
  return all;
}

// The errors of a file in `format`, one per line.
std::string Errors(std::string_view yaml, CollectorFormat format = CollectorFormat::kAuto) {
  return AllErrors(ParseCollectorFile(yaml, "x.yaml", format));
}

LoadedCollectors Load(const std::string& path, CollectorFormat format = CollectorFormat::kAuto) {
  auto loaded = LoadCollectors({path}, format);
  EXPECT_TRUE(loaded.ok()) << AllErrors(loaded);
  return loaded;
}

// --- postgres_exporter -------------------------------------------------------------------------

TEST(PostgresExporterImport, ExampleFile) {
  const auto loaded = Load(kExamples + "/postgres_exporter/queries.yaml");
  EXPECT_THAT(Names(loaded.collectors),
              ElementsAre("pg_app_worker", "pg_app_latency", "pg_app_hits"));

  const auto& worker = Find(loaded.collectors, "pg_app_worker");
  EXPECT_EQ(worker.target_label, "server");
  EXPECT_TRUE(worker.legacy_names);
  EXPECT_EQ(worker.help, "");
  EXPECT_EQ(worker.cache_ttl, Millis(30000));
  EXPECT_EQ(worker.scope, Scope::kServer);
  EXPECT_EQ(worker.role, Role::kAny);
  ASSERT_EQ(worker.queries.size(), 1u);
  EXPECT_FALSE(worker.queries[0].versions.min);
  EXPECT_FALSE(worker.queries[0].versions.max);
  EXPECT_THAT(LabelNames(worker), ElementsAre("queue->queue"));
  // DURATION adds _milliseconds, as postgres_exporter names it.
  EXPECT_THAT(MetricNames(worker),
              ElementsAre("pg_app_worker_state", "pg_app_worker_uptime_milliseconds",
                          "pg_app_worker_workers"));
  const auto& state = worker.values[0];
  EXPECT_EQ(state.kind, MetricKind::kGauge);
  EXPECT_EQ(state.help, "Worker state: 1 running, 0 paused");
  EXPECT_EQ(state.mapping, (std::map<std::string, double>{{"paused", 0}, {"running", 1}}));
  EXPECT_FALSE(state.go_duration);
  EXPECT_TRUE(worker.values[1].go_duration);
  EXPECT_TRUE(worker.values[1].mapping.empty());
  // A NULL is NaN, as postgres_exporter reports it.
  for (const auto& value : worker.values) {
    ASSERT_TRUE(value.null_value) << value.column;
    EXPECT_TRUE(std::isnan(*value.null_value)) << value.column;
    EXPECT_EQ(value.scale, 1.0);
  }
  EXPECT_EQ(state.location.line, 16);

  const auto& latency = Find(loaded.collectors, "pg_app_latency");
  EXPECT_EQ(latency.cache_ttl, Millis(0));
  ASSERT_EQ(latency.queries.size(), 1u);
  EXPECT_EQ(latency.queries[0].versions.min, 100000);
  EXPECT_EQ(latency.queries[0].versions.max, 989999);  // < 99.0.0
  ASSERT_EQ(latency.values.size(), 1u);
  EXPECT_EQ(latency.values[0].kind, MetricKind::kHistogram);
  EXPECT_EQ(latency.values[0].metric_name, "pg_app_latency_latency");
  EXPECT_FALSE(latency.values[0].null_value);

  // "||" gives one variant per alternative, with the same SQL.
  const auto& hits = Find(loaded.collectors, "pg_app_hits");
  ASSERT_EQ(hits.queries.size(), 2u);
  EXPECT_FALSE(hits.queries[0].versions.min);
  EXPECT_EQ(hits.queries[0].versions.max, 99999);
  EXPECT_EQ(hits.queries[1].versions.min, 140000);
  EXPECT_FALSE(hits.queries[1].versions.max);
  EXPECT_EQ(hits.queries[0].sql, hits.queries[1].sql);
  EXPECT_EQ(hits.QueryFor(150004), &hits.queries[1]);
  EXPECT_EQ(hits.QueryFor(130000), nullptr);
  EXPECT_EQ(hits.QueryFor(90624), &hits.queries[0]);
  // COUNTER keeps its name: no _total is added.
  EXPECT_THAT(MetricNames(hits), ElementsAre("pg_app_hits_hits"));
  EXPECT_EQ(hits.values[0].kind, MetricKind::kCounter);
}

TEST(PostgresExporterImport, RunOnServerComparisons) {
  const auto ranges = [](const std::string& runonserver) {
    const auto loaded =
        ParseCollectorFile("pg_q:\n  query: SELECT 1 AS v\n  runonserver: \"" + runonserver +
                               "\"\n  metrics:\n    - v: {usage: GAUGE}\n",
                           "x.yaml", CollectorFormat::kPostgresExporter);
    EXPECT_TRUE(loaded.ok()) << AllErrors(loaded);
    std::vector<std::string> out;
    for (const auto& query : loaded.collectors.at(0).queries) {
      out.push_back(
          fmt::format("{}..{}", query.versions.min.value_or(-1), query.versions.max.value_or(-1)));
    }
    return out;
  };
  EXPECT_THAT(ranges(">=9.6.0"), ElementsAre("90600..-1"));
  EXPECT_THAT(ranges(">9.6.0 <=13.2.0"), ElementsAre("90601..130002"));
  EXPECT_THAT(ranges("=12.0.0"), ElementsAre("120000..120000"));
  EXPECT_THAT(ranges(">=10.0.0 <13.0.0 || >=15.0.0"), ElementsAre("100000..129999", "150000..-1"));
  EXPECT_THAT(ranges("<10.0.0 || >=14.0.0"), ElementsAre("-1..99999", "140000..-1"));
  // As postgres_exporter's semver library reads them: spaces after the operator.
  EXPECT_THAT(ranges(">= 10.0.0  <  13.0.0"), ElementsAre("100000..129999"));
}

TEST(PostgresExporterImport, Errors) {
  // Unknown usage, at the usage value.
  EXPECT_EQ(Errors(R"(pg_q:
  query: SELECT 1 AS v
  metrics:
    - v:
        usage: "GAUGEE"
)",
                   CollectorFormat::kPostgresExporter),
            "x.yaml:5:16: metric namespace \"pg_q\" column \"v\": usage must be LABEL, COUNTER, "
            "GAUGE, HISTOGRAM, MAPPEDMETRIC, DURATION or DISCARD, not \"GAUGEE\"\n"
            "x.yaml:2:3: metric namespace \"pg_q\": no column has usage COUNTER, GAUGE, "
            "HISTOGRAM, MAPPEDMETRIC or DURATION, so it exports nothing\n");
  // Unknown keys at both levels.
  EXPECT_THAT(Errors(R"(pg_q:
  query: SELECT 1 AS v
  cache_secs: 5
  metrics:
    - v: {usage: GAUGE, descripton: x}
)",
                     CollectorFormat::kPostgresExporter),
              AllOf(HasSubstr("x.yaml:3:3: metric namespace \"pg_q\": unknown key \"cache_secs\""),
                    HasSubstr("x.yaml:5:25: metric namespace \"pg_q\" column \"v\": unknown key "
                              "\"descripton\"")));
  // No metrics at all.
  EXPECT_EQ(Errors("pg_q:\n  query: SELECT 1\n", CollectorFormat::kPostgresExporter),
            "x.yaml:2:3: metric namespace \"pg_q\": missing required key \"metrics\"\n"
            "x.yaml:2:3: metric namespace \"pg_q\": no column has usage COUNTER, GAUGE, "
            "HISTOGRAM, MAPPEDMETRIC or DURATION, so it exports nothing\n");
  // MAPPEDMETRIC without a mapping; a bad runonserver.
  EXPECT_THAT(Errors(R"(pg_q:
  query: SELECT 1 AS v, 2 AS w
  runonserver: "!=10.0.0"
  metrics:
    - v: {usage: MAPPEDMETRIC}
    - w: {usage: GAUGE}
)",
                     CollectorFormat::kPostgresExporter),
              AllOf(HasSubstr("x.yaml:3:16: metric namespace \"pg_q\": runonserver: the "
                              "comparison \"!=\" is not supported"),
                    HasSubstr("x.yaml:5:7: metric namespace \"pg_q\" column \"v\": MAPPEDMETRIC "
                              "needs a non-empty \"mapping\"")));
  EXPECT_THAT(Errors("pg_q:\n  query: SELECT 1 AS v\n  runonserver: \">=10.0.0 <ten\"\n  "
                     "metrics:\n    - v: {usage: GAUGE}\n",
                     CollectorFormat::kPostgresExporter),
              HasSubstr("x.yaml:3:16: metric namespace \"pg_q\": runonserver: \"<ten\" is not a "
                        "version comparison such as >=10.0.0"));
  EXPECT_THAT(Errors("pg_q:\n  query: SELECT 1 AS v\n  runonserver: \">=\"\n  "
                     "metrics:\n    - v: {usage: GAUGE}\n",
                     CollectorFormat::kPostgresExporter),
              HasSubstr("runonserver: \">=\" is not a version comparison"));
  // Ranges pgtally's own format would reject, so convert could not write them.
  for (const char* runonserver : {">=13.0.0 <10.0.0", ">=10.0.0 || >=12.0.0"}) {
    EXPECT_THAT(Errors(std::string("pg_q:\n  query: SELECT 1 AS v\n  runonserver: \"") +
                           runonserver + "\"\n  metrics:\n    - v: {usage: GAUGE}\n",
                       CollectorFormat::kPostgresExporter),
                HasSubstr("x.yaml:3:16: metric namespace \"pg_q\": runonserver: "))
        << runonserver;
  }
  // A LABEL column named like the label every series gets.
  EXPECT_EQ(Errors("pg_q:\n  query: SELECT 1 AS v, 'a' AS server\n  metrics:\n    - v: {usage: "
                   "GAUGE}\n    - server: {usage: LABEL}\n",
                   CollectorFormat::kPostgresExporter),
            "x.yaml:5:7: metric namespace \"pg_q\" column \"server\": a LABEL column cannot be "
            "named \"server\", the label every series gets; rename the column in the query\n");
  // A namespace that is no metric name.
  EXPECT_THAT(Errors("pg-q:\n  query: SELECT 1 AS v\n  metrics:\n    - v: {usage: GAUGE}\n",
                     CollectorFormat::kPostgresExporter),
              HasSubstr("x.yaml:2:3: metric namespace \"pg-q\": \"pg-q\" is not a valid metric "
                        "name"));
}

// --- pg_exporter -------------------------------------------------------------------------------

TEST(PgExporterImport, ExampleFiles) {
  const auto loaded = Load(kExamples + "/pg_exporter");
  // app_billing (a custom tag) and app_disabled (skip: true) are not loaded.
  EXPECT_THAT(Names(loaded.collectors),
              ElementsAre("app_queue_primary", "app_queue_standby", "app_txn_new", "app_txn_old",
                          "app_statements"));

  const auto& primary = Find(loaded.collectors, "app_queue_primary");
  EXPECT_EQ(primary.role, Role::kPrimary);
  EXPECT_EQ(primary.scope, Scope::kServer);
  EXPECT_FALSE(primary.optional);
  EXPECT_TRUE(primary.legacy_names);
  EXPECT_EQ(primary.target_label, "");
  EXPECT_EQ(primary.help, "Jobs waiting in the application's queues.");
  EXPECT_EQ(primary.cache_ttl, Millis(10000));
  EXPECT_EQ(primary.timeout, Millis(500));
  ASSERT_EQ(primary.queries.size(), 1u);
  EXPECT_EQ(primary.queries[0].versions.min, 100000);
  EXPECT_FALSE(primary.queries[0].versions.max);
  EXPECT_THAT(LabelNames(primary), ElementsAre("queue->queue", "state->job_state"));
  EXPECT_THAT(MetricNames(primary),
              ElementsAre("app_queue_jobs", "app_queue_wait_seconds", "app_queue_lag_s"));
  EXPECT_EQ(primary.values[0].help, "Jobs in the queue");
  EXPECT_EQ(primary.values[1].column, "wait_us");
  EXPECT_EQ(primary.values[1].scale, 1e-6);
  EXPECT_TRUE(std::isnan(primary.values[0].null_value.value_or(0)));
  EXPECT_EQ(primary.values[2].null_value, 0.0);  // default: 0

  const auto& standby = Find(loaded.collectors, "app_queue_standby");
  EXPECT_EQ(standby.role, Role::kStandby);
  EXPECT_FALSE(standby.timeout);
  EXPECT_EQ(MetricNames(standby), MetricNames(primary));
  EXPECT_FALSE(standby.RunsOn(false));
  EXPECT_TRUE(standby.RunsOn(true));

  // max_version is exclusive: app_txn_old stops at 149999, where app_txn_new does not run yet.
  const auto& txn_new = Find(loaded.collectors, "app_txn_new");
  const auto& txn_old = Find(loaded.collectors, "app_txn_old");
  EXPECT_EQ(txn_new.queries[0].versions.min, 150000);
  EXPECT_FALSE(txn_old.queries[0].versions.min);
  EXPECT_EQ(txn_old.queries[0].versions.max, 149999);
  EXPECT_EQ(txn_new.QueryFor(150000), &txn_new.queries[0]);
  EXPECT_EQ(txn_old.QueryFor(150000), nullptr);
  EXPECT_EQ(txn_old.QueryFor(149999), &txn_old.queries[0]);
  EXPECT_THAT(MetricNames(txn_new), ElementsAre("app_txn_commits", "app_txn_rollbacks"));
  EXPECT_EQ(txn_new.values[0].kind, MetricKind::kCounter);
  EXPECT_EQ(txn_new.role, Role::kAny);

  const auto& statements = Find(loaded.collectors, "app_statements");
  EXPECT_TRUE(statements.optional);  // extension:pg_stat_statements
  EXPECT_EQ(statements.role, Role::kAny);
}

TEST(PgExporterImport, TheSameMetricInBranchesThatRunTogetherClashes) {
  // Without the roles, both branches run on every server.
  EXPECT_THAT(Errors(R"(a:
  name: app
  query: SELECT 1 AS v
  metrics: [{v: {usage: GAUGE}}]
b:
  name: app
  query: SELECT 2 AS v
  min_version: 140000
  metrics: [{v: {usage: GAUGE}}]
)"),
              HasSubstr("x.yaml:9:13: metric \"app_v\" is already defined at x.yaml:4:13"));
  // max_version 140000 is exclusive, so these two never meet.
  EXPECT_EQ(Errors(R"(a:
  name: app
  query: SELECT 1 AS v
  max_version: 140000
  metrics: [{v: {usage: GAUGE}}]
b:
  name: app
  query: SELECT 2 AS v
  min_version: 140000
  metrics: [{v: {usage: GAUGE}}]
)"),
            "");
}

TEST(PgExporterImport, Tags) {
  const auto spec = [](const std::string& tags) -> std::optional<CollectorSpec> {
    const auto loaded =
        ParseCollectorFile("b:\n  name: t\n  query: SELECT 1 AS v\n  tags: " + tags +
                               "\n  metrics: [{v: {usage: GAUGE}}]\n",
                           "x.yaml", CollectorFormat::kPgExporter);
    EXPECT_TRUE(loaded.ok()) << AllErrors(loaded);
    if (loaded.collectors.empty()) return std::nullopt;
    return loaded.collectors.front();
  };
  EXPECT_EQ(spec("[cluster]")->role, Role::kAny);
  EXPECT_EQ(spec("[primary]")->role, Role::kPrimary);
  EXPECT_EQ(spec("[master]")->role, Role::kPrimary);
  EXPECT_EQ(spec("[standby]")->role, Role::kStandby);
  EXPECT_EQ(spec("[replica]")->role, Role::kStandby);
  EXPECT_TRUE(spec("[\"extension:pg_wait_sampling\"]")->optional);
  EXPECT_TRUE(spec("[\"schema:monitor\"]")->optional);
  const auto plain = spec("[\"not:bulky\", \"dbname:app\", \"username:monitor\"]");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->optional);
  EXPECT_EQ(plain->role, Role::kAny);
  // A tag of one's own: pg_exporter runs the branch only when started with --tag=<it>.
  EXPECT_FALSE(spec("[cluster, nightly]"));
  EXPECT_FALSE(spec("nightly"));
}

TEST(PgExporterImport, TimesAndVersions) {
  const auto loaded = ParseCollectorFile(R"(b:
  name: t
  query: SELECT 1 AS v
  ttl: 1.5
  timeout: 0.1
  min_version: 0
  max_version: 0
  metrics: [{v: {usage: GAUGE, scale: "1e-3", default: "-1"}}]
c:
  name: u
  query: SELECT 1 AS v
  ttl: 0
  timeout: 0
  metrics: [{v: {usage: counter}}]
)",
                                         "x.yaml", CollectorFormat::kPgExporter);
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  const auto& b = loaded.collectors.at(0);
  EXPECT_EQ(b.cache_ttl, Millis(1500));
  EXPECT_EQ(b.timeout, Millis(100));
  EXPECT_FALSE(b.queries[0].versions.min);  // 0 is unbounded
  EXPECT_FALSE(b.queries[0].versions.max);
  EXPECT_EQ(b.values[0].scale, 1e-3);
  EXPECT_EQ(b.values[0].null_value, -1.0);
  const auto& c = loaded.collectors.at(1);
  EXPECT_EQ(c.cache_ttl, Millis(0));
  EXPECT_FALSE(c.timeout);  // 0 turns pg_exporter's off: pgtally's default applies
  EXPECT_EQ(c.values[0].kind, MetricKind::kCounter);  // usage in any case
  EXPECT_EQ(c.values[0].metric_name, "u_v");
}

TEST(PgExporterImport, Errors) {
  EXPECT_THAT(
      Errors(R"(b:
  name: t
  query: SELECT 1 AS v, 2 AS w
  predicate_queries:
    - name: has table
      predicate_query: SELECT true
  metrics:
    - v: {usage: GAUGE}
    - w: {usage: HISTOGRAM}
)",
             CollectorFormat::kPgExporter),
      AllOf(HasSubstr("x.yaml:5:5: query branch \"b\": predicate_queries are not supported; put "
                      "the condition in the query itself (a WHERE clause), or mark the branch "
                      "skip: true"),
            HasSubstr("x.yaml:9:18: query branch \"b\" column \"w\": usage must be LABEL, "
                      "COUNTER, GAUGE or DISCARD, not \"HISTOGRAM\"")));
  // As the message says, skip: true is a way out.
  EXPECT_EQ(Errors(R"(b:
  name: t
  query: SELECT 1 AS v
  skip: true
  predicate_queries: [{name: p, predicate_query: SELECT true}]
  metrics: [{v: {usage: GAUGE}}]
)",
                   CollectorFormat::kPgExporter),
            "");
  EXPECT_THAT(Errors(R"(b:
  name: t
  query: SELECT 1 AS v
  min_versoin: 100000
  metrics: [{v: {usage: GAUGE, renamed: x}}]
)",
                     CollectorFormat::kPgExporter),
              AllOf(HasSubstr("x.yaml:4:3: query branch \"b\": unknown key \"min_versoin\""),
                    HasSubstr("x.yaml:5:32: query branch \"b\" column \"v\": unknown key "
                              "\"renamed\"")));
  EXPECT_EQ(Errors("b:\n  name: t\n  query: SELECT 1 AS v\n  min_version: 150000\n  "
                   "max_version: 150000\n  metrics: [{v: {usage: GAUGE}}]\n",
                   CollectorFormat::kPgExporter),
            "x.yaml:5:16: query branch \"b\": max_version 150000 is not above min_version 150000 "
            "(max_version is exclusive)\n");
  EXPECT_EQ(Errors("b:\n  name: t\n  query: SELECT 1\n", CollectorFormat::kPgExporter),
            "x.yaml:2:3: query branch \"b\": missing required key \"metrics\"\n"
            "x.yaml:2:3: query branch \"b\": no column has usage COUNTER or GAUGE, so it exports "
            "nothing\n");
  EXPECT_EQ(Errors("b:\n  name: t\n  query: SELECT 1 AS v\n  metrics: [{v: {scale: 2}}]\n",
                   CollectorFormat::kPgExporter),
            "x.yaml:4:17: query branch \"b\" column \"v\": missing required key \"usage\"\n"
            "x.yaml:2:3: query branch \"b\": no column has usage COUNTER or GAUGE, so it exports "
            "nothing\n");
  EXPECT_THAT(Errors("b:\n  name: t\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: GAUGE, "
                     "scale: 0}}]\n",
                     CollectorFormat::kPgExporter),
              HasSubstr("query branch \"b\" column \"v\": scale must not be 0"));
  EXPECT_EQ(Errors(R"(b:
  name: t
  query: SELECT 'a' AS x, 'b' AS y, 1 AS v
  metrics:
    - x: {usage: LABEL, rename: kind}
    - y: {usage: LABEL, rename: kind}
    - v: {usage: GAUGE}
)",
                   CollectorFormat::kPgExporter),
            "x.yaml:6:7: query branch \"b\" column \"y\": label \"kind\" is named twice\n");
  EXPECT_THAT(Errors("b:\n  name: t\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: LABEL, "
                     "rename: \"a-b\"}}, {w: {usage: GAUGE}}]\n",
                     CollectorFormat::kPgExporter),
              HasSubstr("query branch \"b\" column \"v\": \"a-b\" is not a valid label name"));
}

// --- format detection --------------------------------------------------------------------------

// The format a file is read in, told by what its specs look like.
std::string Detected(std::string_view yaml) {
  const auto loaded = ParseCollectorFile(yaml, "x.yaml");
  EXPECT_TRUE(loaded.ok()) << AllErrors(loaded);
  if (loaded.collectors.empty()) return "nothing";
  const auto& spec = loaded.collectors.front();
  if (!spec.legacy_names) return "pgtally";
  return spec.target_label == "server" ? "postgres_exporter" : "pg_exporter";
}

TEST(ImportDetectFormat, TellsTheFormatsApart) {
  EXPECT_EQ(Detected("version: 1\ncollectors:\n  - name: t\n    help: T.\n    query: SELECT 1 AS "
                     "v\n    values: [{column: v, type: gauge}]\n"),
            "pgtally");
  // Only the keys both have: postgres_exporter, whose format adds none.
  EXPECT_EQ(Detected("q:\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: GAUGE}}]\n"),
            "postgres_exporter");
  for (const char* key : {"master: true", "cache_seconds: 5", "runonserver: \">=10.0.0\""}) {
    EXPECT_EQ(Detected(std::string("q:\n  query: SELECT 1 AS v\n  ") + key +
                       "\n  metrics: [{v: {usage: GAUGE}}]\n"),
              "postgres_exporter")
        << key;
  }
  EXPECT_EQ(Detected("q:\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: MAPPEDMETRIC, "
                     "mapping: {a: 1}}}]\n"),
            "postgres_exporter");
  for (const char* key :
       {"name: q", "desc: Q.", "ttl: 10", "timeout: 1", "min_version: 100000",
        "max_version: 200000", "fatal: true", "priority: 1", "tags: [cluster]", "skip: false"}) {
    EXPECT_EQ(Detected(std::string("q:\n  query: SELECT 1 AS v\n  ") + key +
                       "\n  metrics: [{v: {usage: GAUGE}}]\n"),
              "pg_exporter")
        << key;
  }
  for (const char* setting : {"rename: w", "scale: 2", "default: 0"}) {
    EXPECT_EQ(Detected(std::string("q:\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: GAUGE, ") +
                       setting + "}}]\n"),
              "pg_exporter")
        << setting;
  }
  // A file mixing both: a key only postgres_exporter has decides, and the other's keys are
  // then unknown.
  EXPECT_THAT(Errors("q:\n  query: SELECT 1 AS v\n  ttl: 5\n  metrics: [{v: {usage: GAUGE}}]\n"
                     "r:\n  query: SELECT 1 AS w\n  master: true\n  metrics: [{w: {usage: "
                     "GAUGE}}]\n"),
              HasSubstr("x.yaml:3:3: metric namespace \"q\": unknown key \"ttl\""));
  // A file in pgtally's format with a typo is still read as pgtally's and says what is wrong.
  EXPECT_THAT(Errors("version: 1\ncollectorz: []\n"), HasSubstr("unknown key \"collectorz\""));
  // "metrics" as a map, not a list: an error with its line, not an exception while detecting
  // the format (found by the config fuzzer).
  EXPECT_THAT(Errors("q:\n  query: SELECT 1 AS v\n  metrics: {v: {usage: GAUGE}}\n"),
              HasSubstr("x.yaml:3:12: metric namespace \"q\" \"metrics\""));
  // An entry without "metrics" at all (here a web config read as a collector file).
  EXPECT_THAT(Errors("tls_server_config:\n  cert_file: a.pem\n"),
              HasSubstr("x.yaml:2:3: metric namespace \"tls_server_config\": missing required "
                        "key \"metrics\""));
  // Forcing the format: a pg_exporter-looking file read as postgres_exporter's.
  EXPECT_THAT(Errors("q:\n  name: q\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: GAUGE}}]\n",
                     CollectorFormat::kPostgresExporter),
              HasSubstr("x.yaml:2:3: metric namespace \"q\": unknown key \"name\""));
}

// --- series from imported specs ----------------------------------------------------------------

// "name type" then each sample line, for every family built from `table`.
std::vector<std::string> Build(const CollectorSpec& spec, const Table& table,
                               DropCounts* drops = nullptr) {
  FamilyBuilder builder(spec);
  std::vector<prometheus::ClientMetric::Label> extra;
  if (!spec.target_label.empty()) extra.push_back({spec.target_label, "db:5432"});
  const auto error = builder.Add(table, extra);
  EXPECT_FALSE(error) << *error;
  if (drops) *drops = builder.drops();
  std::vector<std::string> lines;
  for (const auto& family : builder.Take()) {
    lines.push_back(family.name + " " +
                    (family.type == prometheus::MetricType::Counter     ? "counter"
                     : family.type == prometheus::MetricType::Histogram ? "histogram"
                                                                        : "gauge"));
    std::string_view samples = family.samples;
    while (!samples.empty()) {
      const auto end = samples.find('\n');
      lines.emplace_back(samples.substr(0, end));
      samples.remove_prefix(std::min(end + 1, samples.size()));
    }
  }
  return lines;
}

TEST(ImportedSeries, PostgresExporterMappingDurationAndNull) {
  const auto loaded = Load(kExamples + "/postgres_exporter/queries.yaml");
  const MemoryTable table({"queue", "state", "uptime", "workers"},
                          {{"mail", "running", "1m30s", "5"},
                           {"sms", "paused", "-1", std::nullopt},
                           {"push", "exploded", "1h2m3.5s", "2"},
                           {"fax", "running", "250ms", "1"}});
  DropCounts drops;
  EXPECT_THAT(
      Build(Find(loaded.collectors, "pg_app_worker"), table, &drops),
      ElementsAre("pg_app_worker_state gauge",
                  "pg_app_worker_state{server=\"db:5432\",queue=\"mail\"} 1",
                  "pg_app_worker_state{server=\"db:5432\",queue=\"sms\"} 0",
                  // Text the mapping does not have is NaN, as postgres_exporter reports it.
                  "pg_app_worker_state{server=\"db:5432\",queue=\"push\"} Nan",
                  "pg_app_worker_state{server=\"db:5432\",queue=\"fax\"} 1",
                  "pg_app_worker_uptime_milliseconds gauge",
                  "pg_app_worker_uptime_milliseconds{server=\"db:5432\",queue=\"mail\"} 90000",
                  // -1 is postgres_exporter's "no duration".
                  "pg_app_worker_uptime_milliseconds{server=\"db:5432\",queue=\"sms\"} Nan",
                  "pg_app_worker_uptime_milliseconds{server=\"db:5432\",queue=\"push\"} 3723500",
                  "pg_app_worker_uptime_milliseconds{server=\"db:5432\",queue=\"fax\"} 250",
                  "pg_app_worker_workers gauge",
                  "pg_app_worker_workers{server=\"db:5432\",queue=\"mail\"} 5",
                  "pg_app_worker_workers{server=\"db:5432\",queue=\"sms\"} Nan",
                  "pg_app_worker_workers{server=\"db:5432\",queue=\"push\"} 2",
                  "pg_app_worker_workers{server=\"db:5432\",queue=\"fax\"} 1"));
  EXPECT_EQ(drops.total(), 0u);
}

TEST(ImportedSeries, PostgresExporterHistogram) {
  const auto loaded = Load(kExamples + "/postgres_exporter/queries.yaml");
  const auto& spec = Find(loaded.collectors, "pg_app_latency");
  const MemoryTable table(
      {"endpoint", "latency", "latency_bucket", "latency_sum", "latency_count"},
      {{"api", "{0.1,0.5,1}", "{3,7,9}", "4.25", "10"}, {"web", "{}", "{}", "0", "0"}});
  EXPECT_THAT(Build(spec, table),
              ElementsAre("pg_app_latency_latency histogram",
                          "pg_app_latency_latency_bucket{server=\"db:5432\",endpoint=\"api\","
                          "le=\"0.1\"} 3",
                          "pg_app_latency_latency_bucket{server=\"db:5432\",endpoint=\"api\","
                          "le=\"0.5\"} 7",
                          "pg_app_latency_latency_bucket{server=\"db:5432\",endpoint=\"api\","
                          "le=\"1\"} 9",
                          "pg_app_latency_latency_bucket{server=\"db:5432\",endpoint=\"api\","
                          "le=\"+Inf\"} 10",
                          "pg_app_latency_latency_sum{server=\"db:5432\",endpoint=\"api\"} 4.25",
                          "pg_app_latency_latency_count{server=\"db:5432\",endpoint=\"api\"} 10",
                          "pg_app_latency_latency_bucket{server=\"db:5432\",endpoint=\"web\","
                          "le=\"+Inf\"} 0",
                          "pg_app_latency_latency_sum{server=\"db:5432\",endpoint=\"web\"} 0",
                          "pg_app_latency_latency_count{server=\"db:5432\",endpoint=\"web\"} 0"));

  // Rows that do not make a histogram leave nothing of it and are counted.
  const MemoryTable bad({"endpoint", "latency", "latency_bucket", "latency_sum", "latency_count"},
                        {{"a", "{0.1,0.5}", "{3}", "1", "3"},
                         {"b", "{0.1}", "{3}", std::nullopt, "3"},
                         {"c", "{0.1,x}", "{3,4}", "1", "4"},
                         {"d", "{0.1}", "{NULL}", "1", "4"}});
  DropCounts drops;
  EXPECT_THAT(Build(spec, bad, &drops), IsEmpty());
  EXPECT_EQ(drops.invalid_value, 4u);

  // A missing _bucket column is named.
  FamilyBuilder builder(spec);
  const MemoryTable missing({"endpoint", "latency", "latency_sum", "latency_count"}, {});
  EXPECT_EQ(builder.Begin(missing, {}), "the result has no column \"latency_bucket\"");
}

TEST(ImportedSeries, PgExporterRenameScaleDefault) {
  const auto loaded = Load(kExamples + "/pg_exporter");
  const MemoryTable table({"queue", "state", "jobs", "wait_us", "lag_s", "note"},
                          {{"mail", "ready", "3", "1500000", std::nullopt, "a"},
                           {"sms", "done", std::nullopt, "250000", "2.5", "b"}});
  EXPECT_THAT(
      Build(Find(loaded.collectors, "app_queue_primary"), table),
      ElementsAre("app_queue_jobs gauge", "app_queue_jobs{queue=\"mail\",job_state=\"ready\"} 3",
                  "app_queue_jobs{queue=\"sms\",job_state=\"done\"} Nan",
                  "app_queue_wait_seconds gauge",
                  "app_queue_wait_seconds{queue=\"mail\",job_state=\"ready\"} 1.5",
                  "app_queue_wait_seconds{queue=\"sms\",job_state=\"done\"} 0.25",
                  "app_queue_lag_s gauge", "app_queue_lag_s{queue=\"mail\",job_state=\"ready\"} 0",
                  "app_queue_lag_s{queue=\"sms\",job_state=\"done\"} 2.5"));
  // A counter keeps its name and its type.
  const MemoryTable txn({"commits", "rollbacks"}, {{"42", "7"}});
  EXPECT_THAT(Build(Find(loaded.collectors, "app_txn_new"), txn),
              ElementsAre("app_txn_commits counter", "app_txn_commits 42",
                          "app_txn_rollbacks counter", "app_txn_rollbacks 7"));
}

TEST(ImportedSeries, PgExporterDefaultIsScaled) {
  const auto loaded = ParseCollectorFile(
      "b:\n  name: t\n  query: SELECT 1 AS v\n  metrics: [{v: {usage: GAUGE, scale: 0.001, "
      "default: -1}}]\n",
      "x.yaml", CollectorFormat::kPgExporter);
  ASSERT_TRUE(loaded.ok()) << AllErrors(loaded);
  const MemoryTable table({"v"}, {{std::nullopt}});
  EXPECT_THAT(Build(loaded.collectors.at(0), table), ElementsAre("t_v gauge", "t_v -0.001"));
}

TEST(ImportedSeries, TimestampsAreUnixSeconds) {
  const auto loaded = Load(kExamples + "/postgres_exporter/clash.yaml");
  const MemoryTable table({"start_time_seconds"}, {{"2026-11-23 17:55:17.25+00"}});
  EXPECT_THAT(Build(loaded.collectors.at(0), table),
              ElementsAre("pg_postmaster_start_time_seconds gauge",
                          "pg_postmaster_start_time_seconds{server=\"db:5432\"} 1795456517.25"));
}

TEST(ImportedCollectors, DeniedCallsAreRefusedWithTheWayOut) {
  // postgres_exporter's format has no allow_unsafe: the way out is pgtally's format.
  const auto postgres_exporter = ParseCollectorFile(
      "pg_locked:\n  query: |\n    SELECT 1 AS v FROM pg_advisory_lock(7)\n  master: true\n"
      "  metrics:\n    - v: {usage: GAUGE, description: V.}\n",
      "pe.yaml", CollectorFormat::kPostgresExporter);
  ASSERT_EQ(postgres_exporter.errors.size(), 1u);
  EXPECT_EQ(postgres_exporter.errors[0].ToString(),
            "pe.yaml:3:24: collector \"pg_locked\": pg_advisory_lock() takes or releases an "
            "advisory lock; a session lock outlives the scrape, which is not monitoring; remove "
            "it; if the collector really must, write it in pgtally's format (docs/importing.md) "
            "with allow_unsafe: [pg_advisory_lock]");
  // Each runonserver range is a variant of the same text: reported once.
  const auto ranges = ParseCollectorFile(
      "pg_x:\n  query: \"SELECT 1 AS v FROM dblink_exec('x')\"\n  runonserver: \">=10.0.0 "
      "<13.0.0 || >=14.0.0\"\n  metrics:\n    - v: {usage: GAUGE, description: V.}\n",
      "pe.yaml", CollectorFormat::kPostgresExporter);
  ASSERT_EQ(ranges.errors.size(), 1u);
  EXPECT_THAT(ranges.errors[0].ToString(),
              HasSubstr("pe.yaml:2:30: collector \"pg_x\": dblink_exec()"));
  const auto pg_exporter = ParseCollectorFile(
      "b:\n  name: t\n  query: COPY t TO PROGRAM 'rm -rf /'\n  metrics:\n"
      "    - v: {usage: GAUGE, scale: 1}\n",
      "px.yaml", CollectorFormat::kPgExporter);
  ASSERT_EQ(pg_exporter.errors.size(), 1u);
  EXPECT_THAT(pg_exporter.errors[0].ToString(), HasSubstr("px.yaml:3:10: collector \"b\": COPY "));
}

TEST(ImportedCollectors, ASpoofedPgUpIsRefused) {
  // Namespace "pg" and column "up": a second pg_up beside pgtally's own.
  const auto loaded = ParseCollectorFile(
      "pg:\n  query: SELECT 1 AS up\n  metrics:\n    - up: {usage: GAUGE, description: Up.}\n",
      "pe.yaml", CollectorFormat::kPostgresExporter);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].ToString(),
            "pe.yaml:4:7: collector \"pg\": metric name \"pg_up\" is reserved for pgtally's own "
            "metrics (pg_up and every pgtally_*); choose another name");
  // And pg_exporter's rename to it.
  EXPECT_THAT(AllErrors(ParseCollectorFile("pg:\n  name: pg\n  query: SELECT 1 AS v\n  metrics:\n"
                                           "    - v: {usage: GAUGE, rename: up}\n",
                                           "px.yaml", CollectorFormat::kPgExporter)),
              HasSubstr("metric name \"pg_up\" is reserved"));
}

TEST(ImportedCollectors, AHistogramsSeriesClashWithAnotherColumn) {
  // postgres_exporter's HISTOGRAM "latency" writes pg_q_latency_count; a GAUGE of that name too.
  EXPECT_THAT(AllErrors(ParseCollectorFile("pg_q:\n  query: SELECT 1\n  metrics:\n"
                                           "    - latency: {usage: HISTOGRAM, description: L.}\n"
                                           "    - latency_count: {usage: GAUGE, description: C.}\n",
                                           "pe.yaml", CollectorFormat::kPostgresExporter)),
              HasSubstr("metric \"pg_q_latency_count\" clashes with histogram \"pg_q_latency\""));
}

}  // namespace
}  // namespace pgtally
