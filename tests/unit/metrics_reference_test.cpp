// docs/metrics.md is generated from queries/, so the reference cannot drift from what pgtally
// exports. After changing a collector, regenerate it with:
//   build/bin/pgtally docs --no-collectors.builtin --collectors.path queries > docs/metrics.md
// (or PGTALLY_UPDATE_DOCS=1 build/bin/unit_tests --gtest_filter='MetricsReference.*').

#include "pgtally/cli/metrics_reference.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

TEST(MetricsReference, DocsMatchTheBuiltinCollectors) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  ASSERT_TRUE(loaded.ok());
  const std::string path = PGTALLY_SOURCE_DIR "/docs/metrics.md";
  const std::string generated = MetricsReference(loaded.collectors);
  if (std::getenv("PGTALLY_UPDATE_DOCS")) std::ofstream(path) << generated;
  std::ifstream in(path);
  std::stringstream current;
  current << in.rdbuf();
  EXPECT_EQ(current.str(), generated)
      << "docs/metrics.md is out of date; run build/bin/pgtally docs --no-collectors.builtin "
         "--collectors.path queries > docs/metrics.md";
}

TEST(MetricsReference, DescribesSomeoneElsesCollectors) {
  const auto loaded = ParseCollectorFile(R"(version: 1
collectors:
  - name: app_jobs
    help: Jobs by state.
    scope: database
    parameters: {job_limit: 10}
    query: SELECT state, count(*) AS jobs FROM app.jobs GROUP BY 1 LIMIT {{job_limit}}
    labels: [state]
    values:
      - {column: jobs, type: gauge, help: "Jobs | by state."}
)",
                                         "/srv/pgtally/jobs.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().ToString();
  const std::string doc = MetricsReference(loaded.collectors);
  EXPECT_EQ(doc.rfind("# Metrics\n", 0), 0u) << doc;
  EXPECT_NE(doc.find("| `job_limit` | `10` | `app_jobs` |"), std::string::npos) << doc;
  EXPECT_NE(doc.find("Jobs by state. (scope database; /srv/pgtally/jobs.yaml.)"), std::string::npos)
      << doc;
  EXPECT_NE(doc.find("| `app_jobs_jobs` | gauge | `datname`, `state` | Jobs \\| by state. |"),
            std::string::npos)
      << doc;
  EXPECT_NE(doc.find("1 metrics from 1 collectors (1 of them on PostgreSQL 15)"), std::string::npos)
      << doc;
}

}  // namespace
}  // namespace pgtally
