// docs/metrics.md is generated from queries/, so the reference cannot drift from what pgtally
// exports. After changing a collector, regenerate it with:
//   PGTALLY_UPDATE_DOCS=1 build/bin/unit_tests --gtest_filter='MetricsReference.*'

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
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

// The catalog views and functions a collector reads: every pg_* name after FROM or JOIN, and
// every pg_* function called, over all its variants.
std::string Sources(const CollectorSpec& spec) {
  static const std::regex kSource(R"((?:FROM|JOIN)\s+(?:pg_catalog\.)?(pg_\w+)|(pg_\w+)\s*\()",
                                  std::regex::icase);
  std::set<std::string> names;
  for (const auto& query : spec.queries) {
    for (std::sregex_iterator it(query.sql.begin(), query.sql.end(), kSource), end; it != end;
         ++it) {
      names.insert((*it)[1].matched ? (*it)[1].str() : (*it)[2].str() + "()");
    }
  }
  std::string text;
  for (const auto& name : names) text += fmt::format("{}`{}`", text.empty() ? "" : ", ", name);
  return text;
}

// Every parameter the built-in collectors declare, with its default and users.
std::string Parameters(const std::vector<CollectorSpec>& collectors) {
  std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> parameters;
  for (const auto& spec : collectors) {
    for (const auto& parameter : spec.parameters) {
      parameters[parameter.name].first.insert(parameter.value);
      parameters[parameter.name].second.insert(spec.name);
    }
  }
  std::string doc =
      "\n## Parameters\n\nSet in the config file under `collectors.parameters` (see "
      "[collectors.md](collectors.md#parameters)).\n\n| parameter | default | used by |\n"
      "|---|---|---|\n";
  const auto join = [](const std::set<std::string>& items) {
    std::string text;
    for (const auto& item : items) text += fmt::format("{}`{}`", text.empty() ? "" : ", ", item);
    return text;
  };
  for (const auto& [name, uses] : parameters) {
    doc += fmt::format("| `{}` | {} | {} |\n", name, join(uses.first), join(uses.second));
  }
  return doc;
}

std::string Reference(const std::vector<CollectorSpec>& collectors) {
  std::string doc =
      "# Built-in metrics\n\n"
      "Generated from `queries/` by `tests/unit/metrics_reference_test.cpp`; do not edit by hand.\n"
      "Collectors with `scope: database` add a `datname` label to every series.\n";
  std::size_t metrics = 0;
  std::size_t on_15 = 0;
  doc += Parameters(collectors);
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
    if (spec.target_type == TargetType::kPgBouncer) notes += ", PgBouncer admin console";
    if (spec.versions.min && spec.target_type == TargetType::kPostgres) {
      notes += fmt::format(", PostgreSQL {}+", *spec.versions.min / 10000);
    }
    if (spec.versions.max && spec.target_type == TargetType::kPostgres) {
      notes += fmt::format(", up to PostgreSQL {}", *spec.versions.max / 10000);
    }
    const std::string sources = Sources(spec);
    doc += fmt::format(
        "\n## {}\n\n{} ({}; {}.){}\n\n| metric | type | labels | help |\n|---|---|---|---|\n",
        spec.name, Cell(spec.help), notes,
        spec.location.file.substr(spec.location.file.rfind("queries/")),
        sources.empty() ? "" : "\n\nSource: " + sources + ".");
    const bool runs_on_15 =
        spec.target_type == TargetType::kPostgres && spec.QueryFor(150000) != nullptr;
    for (const auto& value : spec.values) {
      doc += fmt::format("| `{}` | {} | {} | {} |\n", value.metric_name, ToString(value.kind),
                         labels, Cell(value.help));
      ++metrics;
      if (runs_on_15) ++on_15;
    }
  }
  doc += fmt::format(
      "\n{} metrics from {} collectors ({} of them on PostgreSQL 15), plus pgtally's own "
      "`pg_up`, `pgbouncer_up` and `pgtally_*` metrics (see README).\n",
      metrics, collectors.size(), on_15);
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
