// docs/metrics.md is generated from queries/, so the reference cannot drift from what pgtally
// exports. After changing a collector, regenerate it with:
//   PGTALLY_UPDATE_DOCS=1 build/bin/unit_tests --gtest_filter='MetricsReference.*'

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

std::string Cell(std::string text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string Reference(const std::vector<CollectorSpec>& collectors) {
  std::string doc =
      "# Built-in metrics\n\n"
      "Generated from `queries/` by `tests/unit/metrics_reference_test.cpp`; do not edit by hand.\n"
      "Collectors with `scope: database` add a `datname` label to every series.\n";
  std::size_t metrics = 0;
  for (const auto& spec : collectors) {
    std::string labels = spec.scope == Scope::kDatabase ? "`datname`" : "";
    for (const auto& label : spec.labels) {
      labels += fmt::format("{}`{}`", labels.empty() ? "" : ", ", label.name);
    }
    std::string notes = fmt::format("scope {}", ToString(spec.scope));
    if (spec.role != Role::kAny) notes += fmt::format(", {} only", ToString(spec.role));
    if (spec.optional) notes += ", optional";
    if (spec.cache_ttl.count() > 0)
      notes += fmt::format(", cached {}", FormatDuration(spec.cache_ttl));
    if (spec.versions.min) notes += fmt::format(", PostgreSQL {}+", *spec.versions.min / 10000);
    doc += fmt::format(
        "\n## {}\n\n{} ({}; {}.)\n\n| metric | type | labels | help |\n|---|---|---|---|\n",
        spec.name, Cell(spec.help), notes,
        spec.location.file.substr(spec.location.file.rfind("queries/")));
    for (const auto& value : spec.values) {
      doc += fmt::format("| `{}` | {} | {} | {} |\n", value.metric_name, ToString(value.kind),
                         labels, Cell(value.help));
      ++metrics;
    }
  }
  doc += fmt::format(
      "\n{} metrics from {} collectors, plus pgtally's own `pg_up` and `pgtally_*` "
      "metrics (see README).\n",
      metrics, collectors.size());
  return doc;
}

TEST(MetricsReference, DocsMatchTheBuiltinCollectors) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  ASSERT_TRUE(loaded.ok());
  const std::string path = PGTALLY_SOURCE_DIR "/docs/metrics.md";
  const std::string generated = Reference(loaded.collectors);
  if (std::getenv("PGTALLY_UPDATE_DOCS")) std::ofstream(path) << generated;
  std::ifstream in(path);
  std::stringstream current;
  current << in.rdbuf();
  EXPECT_EQ(current.str(), generated)
      << "docs/metrics.md is out of date; run PGTALLY_UPDATE_DOCS=1 build/bin/unit_tests "
         "--gtest_filter='MetricsReference.*'";
}

}  // namespace
}  // namespace pgtally
