#pragma once

#include <yaml-cpp/yaml.h>

#include <vector>

#include "config/yaml_reader.h"
#include "pgtally/config/collector_loader.h"
#include "pgtally/config/collector_spec.h"

namespace pgtally {

// Collector files written for other exporters, read into the same CollectorSpecs as pgtally's
// own, so that their users bring the files unchanged and keep their series (docs/importing.md).
// Both formats are a map from a name to a query with its columns; they differ in a few keys.

// The format of a parsed collector file: pgtally's has "version" and "collectors" at the top;
// one of the others is told apart by the keys only it has (postgres_exporter when neither's
// appear, as it adds no keys to what the two share).
CollectorFormat DetectFormat(const YAML::Node& root);

// postgres_exporter's custom queries file (--extend.query-path): each metric namespace becomes
// a collector of that name, exporting <namespace>_<column> with a "server" label, as
// postgres_exporter does.
void ReadPostgresExporterFile(YamlReader& reader, const YAML::Node& root,
                              std::vector<CollectorSpec>& into);

// pg_exporter's collector file: each branch becomes a collector named after the branch,
// exporting <name>_<column or rename>.
void ReadPgExporterFile(YamlReader& reader, const YAML::Node& root,
                        std::vector<CollectorSpec>& into);

}  // namespace pgtally
