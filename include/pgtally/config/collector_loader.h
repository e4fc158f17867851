#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/config/collector_spec.h"
#include "pgtally/config/diagnostic.h"

namespace pgtally {

// The keys the loader accepts at each level of a collector file: the file itself, a collector, a
// variant under "queries", a {column, name} label, a value. docs/collector.schema.json must list
// exactly these (tests/unit/collector_schema_test.cpp checks), so a key added here fails that
// test until the schema, which editors use to flag typos, knows it too.
inline constexpr auto kCollectorFileKeys =
    std::to_array<std::string_view>({"version", "collectors"});
inline constexpr auto kCollectorKeys = std::to_array<std::string_view>(
    {"name", "help", "query", "queries", "scope", "role", "min_version", "max_version", "timeout",
     "optional", "cache_ttl", "max_series", "labels", "values", "parameters", "omitted_rows_column",
     "target_type", "target_label", "legacy_names", "allow_unsafe"});
inline constexpr auto kQueryVariantKeys =
    std::to_array<std::string_view>({"query", "min_version", "max_version"});
inline constexpr auto kLabelKeys = std::to_array<std::string_view>({"column", "name"});
inline constexpr auto kValueKeys = std::to_array<std::string_view>(
    {"column", "type", "name", "help", "scale", "on_null", "mapping", "parse"});

// Collectors read from one or more files, with every problem found on the way. Loading never
// stops at the first error, so a user sees all of them at once.
struct LoadedCollectors {
  std::vector<CollectorSpec> collectors;
  Diagnostics errors;

  bool ok() const { return errors.empty(); }
};

// The formats a collector file can be in: pgtally's own (docs/collectors.md), or another
// exporter's, read so that its users keep their files and series (docs/importing.md). kAuto
// tells them apart by their keys.
enum class CollectorFormat { kAuto, kPgtally, kPostgresExporter, kPgExporter };

// Parses one collector file's text. `filename` is used in diagnostics only.
LoadedCollectors ParseCollectorFile(std::string_view text, const std::string& filename,
                                    CollectorFormat format = CollectorFormat::kAuto);

// The collector files `paths` name, in loading order: a file as it is, a directory's *.yaml and
// *.yml files in name order, except hidden ones and *.test.yaml (fixtures for `pgtally test`).
// Paths that cannot be read add to `errors`.
std::vector<std::string> CollectorFiles(const std::vector<std::string>& paths, Diagnostics& errors);

// Loads every path in order: a file, or a directory whose *.yaml / *.yml files are read in name
// order. Checks names across all files (collectors and metrics must be unique).
LoadedCollectors LoadCollectors(const std::vector<std::string>& paths,
                                CollectorFormat format = CollectorFormat::kAuto);

// Sets the parameters named in `overrides` on every collector that declares them. An override
// that no collector declares is an error (most likely a typo).
Diagnostics ApplyParameterOverrides(std::vector<CollectorSpec>& collectors,
                                    const std::vector<ParameterOverride>& overrides);

// Sets the cache TTL of each collector named in `overrides` (0 turns caching off). A name that
// is not a loaded collector is an error.
Diagnostics ApplyCacheTtlOverrides(std::vector<CollectorSpec>& collectors,
                                   const std::vector<CacheTtlOverride>& overrides);

// Appends an error for every collector name that is defined twice, and every metric name that
// two values could both write on the same server (of two variants of a query for different
// versions or roles, as pg_exporter files have, only one ever runs): the same family twice, or a
// family named like a histogram's series (x_bucket, x_sum, x_count beside a histogram x). With
// the checks of each file alone (no pg_up or pgtally_* name, no "le" label beside a histogram),
// the exposition is valid by construction, across files.
// Only clashes that involve collectors from index `from` on are reported (the ones before were
// checked already).
void CheckUniqueNames(const std::vector<CollectorSpec>& collectors, Diagnostics& errors,
                      std::size_t from = 0);

// Prometheus naming rules. Metric names may not contain ':' (reserved for recording rules).
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);

}  // namespace pgtally
