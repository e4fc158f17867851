#include "config/imported_collectors.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <span>
#include <string_view>

namespace pgtally {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Keys of one format and not the other, by which DetectFormat tells them apart.
constexpr std::string_view kPostgresExporterOnly[] = {"master", "cache_seconds", "runonserver"};
constexpr std::string_view kPgExporterOnly[] = {
    "name",  "desc", "ttl",      "timeout", "min_version",       "max_version",
    "fatal", "skip", "priority", "tags",    "predicate_queries",
};

bool HasAnyKey(const YAML::Node& map, std::span<const std::string_view> keys) {
  for (const auto& key : keys) {
    if (map[std::string(key)].IsDefined()) return true;
  }
  return false;
}

// One entry of a "metrics" list: a map with a single key, the column, and its settings.
struct ColumnEntry {
  std::string column;
  YAML::Node settings;
  YAML::Node at;
};

std::vector<ColumnEntry> ReadColumns(YamlReader& reader, const YAML::Node& node,
                                     const std::string& what) {
  std::vector<ColumnEntry> columns;
  const YAML::Node metrics = node["metrics"];
  if (!metrics.IsDefined() || metrics.IsNull()) {
    reader.Error(node, fmt::format("{}: missing required key \"metrics\"", what));
    return columns;
  }
  if (!reader.ExpectSequence(metrics, what + " \"metrics\"")) return columns;
  for (const auto& item : metrics) {
    if (!item.IsMap() || item.size() != 1) {
      reader.Error(item, fmt::format("{}: each entry of \"metrics\" must be a map with one key, "
                                     "the column name",
                                     what));
      continue;
    }
    const auto entry = *item.begin();
    const std::string column_what = fmt::format("{} column \"{}\"", what, entry.first.Scalar());
    if (!reader.ExpectMap(entry.second, column_what)) continue;
    columns.push_back({entry.first.Scalar(), entry.second, item});
  }
  return columns;
}

std::string UpperUsage(YamlReader& reader, const ColumnEntry& entry, const std::string& what) {
  auto usage = reader.GetString(entry.settings, "usage", what, true).value_or("");
  for (char& c : usage) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return usage;
}

// "9.6.1" or "15.4.0" (postgres_exporter's semantic form of a server version) as
// server_version_num: 90601, 150004.
std::optional<int> SemverToVersionNum(std::string_view text) {
  int parts[3] = {0, 0, 0};
  for (int i = 0; i < 3 && !text.empty(); ++i) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parts[i]);
    if (ec != std::errc() || parts[i] < 0 || parts[i] > 99) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    if (!text.empty()) {
      if (text.front() != '.' || i == 2) return std::nullopt;
      text.remove_prefix(1);
    }
  }
  // From PostgreSQL 10 on, "15.4" is 150004: the second number is the minor release.
  if (parts[0] >= 10) return parts[0] * 10000 + parts[1] + parts[2];
  return parts[0] * 10000 + parts[1] * 100 + parts[2];
}

// postgres_exporter's runonserver: semantic version ranges such as ">=10.0.0 <13.0.0", with
// "||" between alternatives. Each alternative is one version range.
std::optional<std::vector<VersionRange>> ParseRunOnServer(std::string_view text,
                                                          std::string& error) {
  std::vector<VersionRange> ranges;
  while (true) {
    const auto bar = text.find("||");
    std::string_view alternative = text.substr(0, bar);
    VersionRange range;
    while (true) {
      const auto start = alternative.find_first_not_of(' ');
      if (start == std::string_view::npos) break;
      alternative.remove_prefix(start);
      // The operator, then the version; postgres_exporter's semver library allows spaces
      // between the two (">= 10.0.0").
      const auto op_end = std::min(alternative.find_first_not_of("<>=!"), alternative.size());
      const std::string_view op = alternative.substr(0, op_end);
      alternative.remove_prefix(op_end);
      alternative.remove_prefix(std::min(alternative.find_first_not_of(' '), alternative.size()));
      const auto end = std::min(alternative.find(' '), alternative.size());
      const std::string_view version_text = alternative.substr(0, end);
      alternative.remove_prefix(end);
      const auto version = version_text.empty() ? std::nullopt : SemverToVersionNum(version_text);
      if (!version) {
        error =
            fmt::format("\"{}{}\" is not a version comparison such as >=10.0.0", op, version_text);
        return std::nullopt;
      }
      const auto raise = [&](int min) { range.min = std::max(range.min.value_or(min), min); };
      const auto lower = [&](int max) { range.max = std::min(range.max.value_or(max), max); };
      if (op == ">=") {
        raise(*version);
      } else if (op == ">") {
        raise(*version + 1);
      } else if (op == "<=") {
        lower(*version);
      } else if (op == "<") {
        lower(*version - 1);
      } else if (op.empty() || op == "=" || op == "==") {
        raise(*version);
        lower(*version);
      } else {
        error = fmt::format("the comparison \"{}\" is not supported; use >=, >, <=, < or =", op);
        return std::nullopt;
      }
    }
    // Either would make a collector file that pgtally's own loader rejects (convert's output).
    if (range.min && range.max && *range.min > *range.max) {
      error = "an alternative matches no version";
      return std::nullopt;
    }
    for (const auto& earlier : ranges) {
      if (earlier.Overlaps(range)) {
        error = "alternatives separated by || overlap; make each cover its own versions";
        return std::nullopt;
      }
    }
    ranges.push_back(range);
    if (bar == std::string_view::npos) return ranges;
    text.remove_prefix(bar + 2);
  }
}

// A collector that exports nothing is a mistake, whatever the format allows.
void RequireValues(YamlReader& reader, const YAML::Node& node, const std::string& what,
                   std::string_view usages, const CollectorSpec& spec) {
  if (spec.values.empty()) {
    reader.Error(node,
                 fmt::format("{}: no column has usage {}, so it exports nothing", what, usages));
  }
}

void CheckName(YamlReader& reader, const YAML::Node& at, const std::string& name,
               const std::string& what) {
  if (!IsValidMetricName(name)) {
    reader.Error(at, fmt::format("{}: \"{}\" is not a valid metric name (letters, digits and _, "
                                 "not starting with a digit)",
                                 what, name));
  }
}

void AddLabel(YamlReader& reader, const ColumnEntry& entry, std::string name,
              const std::string& what, CollectorSpec& spec) {
  if (!IsValidLabelName(name)) {
    reader.Error(entry.at, fmt::format("{}: \"{}\" is not a valid label name", what, name));
    return;
  }
  // Two columns renamed alike would give every series the label twice.
  if (std::ranges::find(spec.labels, name, &LabelSpec::name) != spec.labels.end()) {
    reader.Error(entry.at, fmt::format("{}: label \"{}\" is named twice", what, name));
    return;
  }
  spec.labels.push_back({entry.column, std::move(name)});
}

std::optional<CollectorSpec> ReadPostgresExporterMetric(YamlReader& reader, const std::string& ns,
                                                        const YAML::Node& node) {
  const std::string what = fmt::format("metric namespace \"{}\"", ns);
  if (!reader.ExpectMap(node, what)) return std::nullopt;
  reader.CheckKeys(node, {"query", "metrics", "master", "cache_seconds", "runonserver"}, what);
  CollectorSpec spec;
  spec.name = ns;
  spec.location = reader.Where(node);
  spec.target_label = "server";
  spec.legacy_names = true;
  CheckName(reader, node, ns, what);
  reader.GetBool(node, "master", what);  // checked, not used: pgtally reads the DSN's database
  if (auto seconds = reader.GetInt(node, "cache_seconds", what)) {
    spec.cache_ttl = Millis(std::max<long long>(*seconds, 0) * 1000);
  }
  const auto sql = reader.GetString(node, "query", what, true);
  std::vector<VersionRange> ranges{VersionRange{}};
  if (auto runonserver = reader.GetString(node, "runonserver", what)) {
    std::string error;
    if (auto parsed = ParseRunOnServer(*runonserver, error)) {
      ranges = std::move(*parsed);
    } else {
      reader.Error(node["runonserver"], fmt::format("{}: runonserver: {}", what, error));
    }
  }
  if (sql) {
    for (const auto& range : ranges) {
      spec.queries.push_back({*sql, range, {}, reader.PlacementOf(node["query"]), {}});
    }
  }

  for (const auto& entry : ReadColumns(reader, node, what)) {
    const std::string column_what = fmt::format("{} column \"{}\"", what, entry.column);
    reader.CheckKeys(entry.settings, {"usage", "description", "mapping"}, column_what);
    const std::string usage = UpperUsage(reader, entry, column_what);
    ValueSpec value;
    value.column = entry.column;
    value.metric_name = ns + "_" + entry.column;
    value.help = reader.GetString(entry.settings, "description", column_what).value_or("");
    value.null_value = kNaN;  // postgres_exporter reports a NULL as NaN
    value.location = reader.Where(entry.at);
    if (usage == "LABEL" && entry.column == spec.target_label) {
      // postgres_exporter adds it to every series; a second one would repeat the label.
      reader.Error(entry.at, fmt::format("{}: a LABEL column cannot be named \"{}\", the label "
                                         "every series gets; rename the column in the query",
                                         column_what, spec.target_label));
      continue;
    } else if (usage == "LABEL") {
      AddLabel(reader, entry, entry.column, column_what, spec);
      continue;
    } else if (usage == "DISCARD") {
      continue;
    } else if (usage == "COUNTER") {
      value.kind = MetricKind::kCounter;
    } else if (usage == "GAUGE") {
      value.kind = MetricKind::kGauge;
    } else if (usage == "HISTOGRAM") {
      value.kind = MetricKind::kHistogram;
    } else if (usage == "DURATION") {
      value.metric_name += "_milliseconds";
      value.go_duration = true;
    } else if (usage == "MAPPEDMETRIC") {
      const auto mapping = reader.GetScalarMap(entry.settings, "mapping", column_what);
      for (const auto& setting : mapping.value_or(std::vector<YamlReader::Setting>{})) {
        double number = 0;
        if (YAML::convert<double>::decode(YAML::Node(setting.value), number)) {
          value.mapping[setting.name] = number;
        } else {
          reader.Error(
              entry.settings["mapping"],
              fmt::format("{}: mapping: \"{}\" must map to a number", column_what, setting.name));
        }
      }
      if (value.mapping.empty()) {
        reader.Error(entry.at,
                     fmt::format("{}: MAPPEDMETRIC needs a non-empty \"mapping\"", column_what));
        continue;
      }
    } else {
      if (!usage.empty()) {
        reader.Error(entry.settings["usage"],
                     fmt::format("{}: usage must be LABEL, COUNTER, GAUGE, HISTOGRAM, "
                                 "MAPPEDMETRIC, DURATION or DISCARD, not \"{}\"",
                                 column_what, usage));
      }
      continue;
    }
    if (value.kind == MetricKind::kHistogram) value.null_value.reset();
    CheckName(reader, entry.at, value.metric_name, column_what);
    spec.values.push_back(std::move(value));
  }
  RequireValues(reader, node, what, "COUNTER, GAUGE, HISTOGRAM, MAPPEDMETRIC or DURATION", spec);
  return spec;
}

// pg_exporter's tags: the ones it runs a query by when started without --tag.
// Returns false when such an exporter would not load the query at all.
bool ApplyPgExporterTags(YamlReader& reader, const YAML::Node& node, const std::string& what,
                         CollectorSpec& spec) {
  const auto tags = reader.GetStringList(node, "tags", what);
  bool loaded = true;
  for (const auto& tag : tags.value_or(std::vector<std::string>{})) {
    if (tag == "cluster") {
      spec.scope = Scope::kServer;
    } else if (tag == "primary" || tag == "master") {
      spec.role = Role::kPrimary;
    } else if (tag == "standby" || tag == "replica") {
      spec.role = Role::kStandby;
    } else if (tag.starts_with("extension:") || tag.starts_with("schema:")) {
      // Only where the extension or schema exists: a query that fails for want of it is
      // skipped instead of counted as a failure.
      spec.optional = true;
    } else if (tag.starts_with("not:") || tag.starts_with("dbname:") ||
               tag.starts_with("username:")) {
      // not:X runs unless started with tag X, which pgtally has no way to be; the query runs
      // on the DSN's database as whichever user it names.
    } else {
      loaded = false;  // runs only when pg_exporter is started with --tag=<tag>
    }
  }
  return loaded;
}

std::optional<CollectorSpec> ReadPgExporterBranch(YamlReader& reader, const std::string& branch,
                                                  const YAML::Node& node) {
  const std::string what = fmt::format("query branch \"{}\"", branch);
  if (!reader.ExpectMap(node, what)) return std::nullopt;
  reader.CheckKeys(node,
                   {"name", "desc", "query", "ttl", "timeout", "min_version", "max_version",
                    "fatal", "skip", "priority", "tags", "metrics", "predicate_queries"},
                   what);
  // Skipped first: the error below suggests skip: true as the way out.
  if (reader.GetBool(node, "skip", what).value_or(false)) return std::nullopt;
  if (node["predicate_queries"].IsDefined()) {
    reader.Error(node["predicate_queries"],
                 fmt::format("{}: predicate_queries are not supported; put the condition in the "
                             "query itself (a WHERE clause), or mark the branch skip: true",
                             what));
  }
  CollectorSpec spec;
  spec.name = branch;
  spec.location = reader.Where(node);
  spec.legacy_names = true;
  CheckName(reader, node, branch, what);
  if (!ApplyPgExporterTags(reader, node, what, spec)) return std::nullopt;
  const std::string prefix = reader.GetString(node, "name", what).value_or(branch);
  CheckName(reader, node["name"].IsDefined() ? node["name"] : node, prefix, what);
  spec.help = reader.GetString(node, "desc", what).value_or("");
  reader.GetBool(node, "fatal", what);    // pgtally's pg_up says only whether it connected
  reader.GetInt(node, "priority", what);  // collectors run in file order
  if (auto ttl = reader.GetNumber(node, "ttl", what); ttl && *ttl > 0) {
    spec.cache_ttl = Millis(static_cast<long long>(std::llround(*ttl * 1000)));
  }
  // 0 or a negative timeout switches pg_exporter's off; pgtally's default applies then.
  if (auto timeout = reader.GetNumber(node, "timeout", what); timeout && *timeout > 0) {
    spec.timeout = Millis(std::max<long long>(1, std::llround(*timeout * 1000)));
  }
  // pg_exporter's max_version is exclusive, pgtally's inclusive; 0 means unbounded in both.
  VersionRange range;
  if (auto min = reader.GetInt(node, "min_version", what); min && *min > 0) {
    range.min = static_cast<int>(*min);
  }
  if (auto max = reader.GetInt(node, "max_version", what); max && *max > 0) {
    range.max = static_cast<int>(*max) - 1;
  }
  if (range.min && range.max && *range.min > *range.max) {
    reader.Error(node["max_version"],
                 fmt::format("{}: max_version {} is not above min_version {} (max_version is "
                             "exclusive)",
                             what, *range.max + 1, *range.min));
  }
  if (auto sql = reader.GetString(node, "query", what, true)) {
    spec.queries.push_back({*sql, range, {}, reader.PlacementOf(node["query"]), {}});
  }

  for (const auto& entry : ReadColumns(reader, node, what)) {
    const std::string column_what = fmt::format("{} column \"{}\"", what, entry.column);
    reader.CheckKeys(entry.settings,
                     {"usage", "description", "rename", "scale", "default", "name", "bucket"},
                     column_what);
    const std::string usage = UpperUsage(reader, entry, column_what);
    const std::string name =
        reader.GetString(entry.settings, "rename", column_what).value_or(entry.column);
    ValueSpec value;
    value.column = entry.column;
    value.metric_name = prefix + "_" + name;
    value.help = reader.GetString(entry.settings, "description", column_what).value_or(spec.help);
    value.null_value = kNaN;
    value.location = reader.Where(entry.at);
    if (usage == "LABEL") {
      AddLabel(reader, entry, name, column_what, spec);
      continue;
    } else if (usage == "DISCARD") {
      continue;
    } else if (usage == "COUNTER") {
      value.kind = MetricKind::kCounter;
    } else if (usage == "GAUGE") {
      value.kind = MetricKind::kGauge;
    } else {
      if (!usage.empty()) {  // a missing usage was reported already
        reader.Error(entry.settings["usage"],
                     fmt::format("{}: usage must be LABEL, COUNTER, GAUGE or DISCARD, not \"{}\"",
                                 column_what, usage));
      }
      continue;
    }
    // Both may be written as strings in pg_exporter files ("1e-6").
    if (auto scale = reader.GetNumber(entry.settings, "scale", column_what)) {
      if (*scale == 0) {
        reader.Error(entry.settings["scale"], fmt::format("{}: scale must not be 0", column_what));
      } else {
        value.scale = *scale;
      }
    }
    if (auto fallback = reader.GetNumber(entry.settings, "default", column_what)) {
      value.null_value = *fallback;
    }
    CheckName(reader, entry.at, value.metric_name, column_what);
    spec.values.push_back(std::move(value));
  }
  RequireValues(reader, node, what, "COUNTER or GAUGE", spec);
  return spec;
}

}  // namespace

CollectorFormat DetectFormat(const YAML::Node& root) {
  if (!root.IsMap() || root["collectors"].IsDefined() || root["version"].IsDefined()) {
    return CollectorFormat::kPgtally;
  }
  bool pg_exporter = false;
  for (const auto& entry : root) {
    if (!entry.second.IsMap()) continue;
    if (HasAnyKey(entry.second, kPostgresExporterOnly)) return CollectorFormat::kPostgresExporter;
    pg_exporter = pg_exporter || HasAnyKey(entry.second, kPgExporterOnly);
    // Iterating a map yields pairs, not nodes: "metrics" must be a list before its items are
    // looked at (the reader reports the wrong shape later, with the file's line). A missing key
    // is an invalid node, whose Is*() other than IsDefined() throw.
    const YAML::Node metrics = entry.second["metrics"];
    if (!metrics.IsDefined() || !metrics.IsSequence()) continue;
    for (const auto& column : metrics) {
      if (!column.IsMap() || column.size() != 1) continue;
      const YAML::Node settings = column.begin()->second;
      if (!settings.IsMap()) continue;
      if (settings["mapping"].IsDefined()) return CollectorFormat::kPostgresExporter;
      pg_exporter = pg_exporter || settings["rename"].IsDefined() ||
                    settings["scale"].IsDefined() || settings["default"].IsDefined();
    }
  }
  return pg_exporter ? CollectorFormat::kPgExporter : CollectorFormat::kPostgresExporter;
}

void ReadPostgresExporterFile(YamlReader& reader, const YAML::Node& root,
                              std::vector<CollectorSpec>& into) {
  for (const auto& entry : root) {
    if (auto spec = ReadPostgresExporterMetric(reader, entry.first.Scalar(), entry.second)) {
      into.push_back(std::move(*spec));
    }
  }
}

void ReadPgExporterFile(YamlReader& reader, const YAML::Node& root,
                        std::vector<CollectorSpec>& into) {
  for (const auto& entry : root) {
    if (auto spec = ReadPgExporterBranch(reader, entry.first.Scalar(), entry.second)) {
      into.push_back(std::move(*spec));
    }
  }
}

}  // namespace pgtally
