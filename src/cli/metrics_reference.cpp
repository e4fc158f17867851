#include "pgtally/cli/metrics_reference.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

namespace pgtally {
namespace {

constexpr std::string_view kBuiltinDir = "queries/";

std::string Cell(std::string_view text) {
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

std::string CodeList(const std::set<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += fmt::format("{}`{}`", text.empty() ? "" : ", ", item);
  return text;
}

// The collector's file from its queries/ directory on, else as it was loaded.
std::string FileName(const CollectorSpec& spec) {
  const auto& file = spec.location.file;
  const auto at = file.rfind(kBuiltinDir);
  return at == std::string::npos ? file : file.substr(at);
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
  return CodeList(names);
}

// Every parameter the collectors declare, with its defaults and users.
std::string Parameters(const std::vector<CollectorSpec>& collectors) {
  std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> parameters;
  for (const auto& spec : collectors) {
    for (const auto& parameter : spec.parameters) {
      parameters[parameter.name].first.insert(parameter.value);
      parameters[parameter.name].second.insert(spec.name);
    }
  }
  if (parameters.empty()) return "";
  std::string doc =
      "\n## Parameters\n\nSet in the config file under `collectors.parameters` (see "
      "[collectors.md](collectors.md#parameters)).\n\n| parameter | default | used by |\n"
      "|---|---|---|\n";
  for (const auto& [name, uses] : parameters) {
    doc += fmt::format("| `{}` | {} | {} |\n", name, CodeList(uses.first), CodeList(uses.second));
  }
  return doc;
}

std::string Notes(const CollectorSpec& spec) {
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
  return notes;
}

}  // namespace

std::string MetricsReference(const std::vector<CollectorSpec>& collectors) {
  // The built-in set keeps docs/metrics.md's heading; any other set is someone's own.
  const bool builtin =
      !collectors.empty() &&
      std::all_of(collectors.begin(), collectors.end(), [](const CollectorSpec& spec) {
        return spec.location.file.find(kBuiltinDir) != std::string::npos;
      });
  std::string doc =
      builtin ? "# Built-in metrics\n\n"
                "Generated from `queries/` by `pgtally docs` (a unit test keeps it current); do "
                "not edit by hand.\n"
              : "# Metrics\n\n"
                "Generated from the collector files by `pgtally docs`.\n";
  doc += "Collectors with `scope: database` add a `datname` label to every series.\n";
  std::size_t metrics = 0;
  std::size_t on_15 = 0;
  doc += Parameters(collectors);
  for (const auto& spec : collectors) {
    std::string labels = spec.scope == Scope::kDatabase ? "`datname`" : "";
    for (const auto& label : spec.labels) {
      labels += fmt::format("{}`{}`", labels.empty() ? "" : ", ", label.name);
    }
    const std::string sources = Sources(spec);
    doc += fmt::format(
        "\n## {}\n\n{} ({}; {}.){}\n\n| metric | type | labels | help |\n|---|---|---|---|\n",
        spec.name, Cell(spec.help), Notes(spec), FileName(spec),
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

}  // namespace pgtally
