// docs/collector.schema.json describes the collector format for editors. These tests keep it in
// step with the loader, which is the authority: the same keys at every level, the same required
// keys, the same enum values and the same name and duration syntax. A key, value or rule added to
// one and not the other fails here. (tests/schema/validate_collectors.py checks the other way:
// that the schema accepts every shipped collector file and rejects typical mistakes.)

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/config/collector_loader.h"
#include "pgtally/config/duration.h"

namespace pgtally {
namespace {

using Keys = std::set<std::string>;

const YAML::Node& Schema() {
  // yaml-cpp reads JSON: it is YAML.
  static const YAML::Node schema = YAML::LoadFile(PGTALLY_SOURCE_DIR "/docs/collector.schema.json");
  return schema;
}

// Follows a local "$ref": "#/definitions/<name>".
YAML::Node Deref(const YAML::Node& node) {
  if (!node["$ref"]) return node;
  const std::string ref = node["$ref"].as<std::string>();
  const std::string prefix = "#/definitions/";
  EXPECT_EQ(ref.rfind(prefix, 0), 0u) << "unexpected $ref " << ref;
  return Schema()["definitions"][ref.substr(prefix.size())];
}

YAML::Node FileSchema() { return Schema(); }
YAML::Node CollectorSchema() { return Deref(Schema()["properties"]["collectors"]["items"]); }
YAML::Node QueryVariantSchema() {
  return Deref(CollectorSchema()["properties"]["queries"]["items"]);
}
YAML::Node ValueSchema() { return Deref(CollectorSchema()["properties"]["values"]["items"]); }
// The {column, name} form among a label's alternatives (the other is a plain string).
YAML::Node RenamedLabelSchema() {
  for (const auto& alternative :
       Deref(CollectorSchema()["properties"]["labels"]["items"])["anyOf"]) {
    const YAML::Node resolved = Deref(alternative);
    if (resolved["type"] && resolved["type"].as<std::string>() == "object") return resolved;
  }
  ADD_FAILURE() << "no object alternative under labels.items.anyOf";
  return YAML::Node();
}

Keys PropertyNames(const YAML::Node& object_schema) {
  Keys keys;
  for (const auto& entry : object_schema["properties"]) keys.insert(entry.first.as<std::string>());
  return keys;
}

Keys StringSet(const YAML::Node& sequence) {
  Keys values;
  for (const auto& item : sequence) values.insert(item.as<std::string>());
  return values;
}

template <typename Array>
Keys LoaderKeys(const Array& keys) {
  return Keys(keys.begin(), keys.end());
}

// A minimal valid collector file; tests change one thing in a copy.
YAML::Node MinimalFile() {
  return YAML::Load(
      "{version: 1, collectors: [{name: x, help: X., query: SELECT 1 AS v, values: [{column: v, "
      "type: gauge}]}]}");
}

Diagnostics LoadErrors(const YAML::Node& file) {
  return ParseCollectorFile(YAML::Dump(file), "c.yaml").errors;
}

std::string Describe(const Diagnostics& errors) {
  std::string text;
  for (const auto& error : errors) text += "\n  " + error.ToString();
  return text;
}

TEST(CollectorSchema, EveryLevelHasExactlyTheKeysTheLoaderAccepts) {
  struct Level {
    const char* what;
    YAML::Node schema;
    Keys loader;
  };
  const Level levels[] = {
      {"collector file (kCollectorFileKeys)", FileSchema(), LoaderKeys(kCollectorFileKeys)},
      {"collector (kCollectorKeys)", CollectorSchema(), LoaderKeys(kCollectorKeys)},
      {"query variant (kQueryVariantKeys)", QueryVariantSchema(), LoaderKeys(kQueryVariantKeys)},
      {"label map (kLabelKeys)", RenamedLabelSchema(), LoaderKeys(kLabelKeys)},
      {"value (kValueKeys)", ValueSchema(), LoaderKeys(kValueKeys)},
  };
  for (const auto& level : levels) {
    EXPECT_EQ(PropertyNames(level.schema), level.loader)
        << level.what
        << ": the loader (src/config/collector_loader.cpp) and docs/collector.schema.json accept "
           "different keys; add the key, with a description, to the schema's \"properties\" too";
    // Without this, editors would not flag a misspelt key.
    ASSERT_TRUE(level.schema["additionalProperties"]) << level.what;
    EXPECT_FALSE(level.schema["additionalProperties"].as<bool>()) << level.what;
    for (const auto& property : level.schema["properties"]) {
      EXPECT_TRUE(property.second["description"])
          << level.what << ": \"" << property.first << "\" has no description (editors show it)";
    }
  }
}

// The schema's "required" at each level are exactly the keys whose absence the loader rejects,
// among those of a minimal file (query and queries are a oneOf, not required).
TEST(CollectorSchema, RequiredKeysMatchTheLoader) {
  struct Level {
    const char* what;
    YAML::Node schema;
    std::function<YAML::Node(YAML::Node&)> at;  // the level's map within a file
    std::function<void(YAML::Node&)> prepare;   // makes the minimal file have this level
  };
  const Level levels[] = {
      {"collector file", FileSchema(), [](YAML::Node& f) { return f; }, [](YAML::Node&) {}},
      {"collector", CollectorSchema(), [](YAML::Node& f) { return f["collectors"][0]; },
       [](YAML::Node&) {}},
      {"query variant", QueryVariantSchema(),
       [](YAML::Node& f) { return f["collectors"][0]["queries"][0]; },
       [](YAML::Node& f) {
         f["collectors"][0].remove("query");
         f["collectors"][0]["queries"] = YAML::Load("[{query: SELECT 1 AS v}]");
       }},
      {"label map", RenamedLabelSchema(),
       [](YAML::Node& f) { return f["collectors"][0]["labels"][0]; },
       [](YAML::Node& f) { f["collectors"][0]["labels"] = YAML::Load("[{column: l}]"); }},
      {"value", ValueSchema(), [](YAML::Node& f) { return f["collectors"][0]["values"][0]; },
       [](YAML::Node&) {}},
  };
  for (const auto& level : levels) {
    YAML::Node minimal = MinimalFile();
    level.prepare(minimal);
    ASSERT_TRUE(LoadErrors(minimal).empty()) << level.what << Describe(LoadErrors(minimal));
    Keys present;
    for (const auto& entry : level.at(minimal)) present.insert(entry.first.as<std::string>());
    for (const auto& key : present) {
      YAML::Node without = YAML::Clone(minimal);
      level.at(without).remove(key);
      EXPECT_FALSE(LoadErrors(without).empty())
          << level.what << ": the loader accepts a file without \"" << key << "\"";
    }
    // A collector's query is not "required": a oneOf of query and queries is (checked below).
    if (std::string_view(level.what) == "collector") present.erase("query");
    EXPECT_EQ(StringSet(level.schema["required"]), present) << level.what;
  }
  // Exactly one of query and queries.
  const YAML::Node one_of = CollectorSchema()["oneOf"];
  ASSERT_TRUE(one_of.IsSequence());
  Keys alternatives;
  for (const auto& alternative : one_of) alternatives.merge(StringSet(alternative["required"]));
  EXPECT_EQ(alternatives, (Keys{"query", "queries"}));
}

// Every enum value in the schema loads, and among plausible other words the loader accepts only
// those: a value added to the loader (say, type: histogram) must be added to the schema.
TEST(CollectorSchema, EnumsMatchTheLoader) {
  struct Field {
    const char* key;
    YAML::Node schema;
    std::function<YAML::Node(YAML::Node&)> at;
  };
  const Field fields[] = {
      {"scope", CollectorSchema()["properties"]["scope"],
       [](YAML::Node& f) { return f["collectors"][0]; }},
      {"role", CollectorSchema()["properties"]["role"],
       [](YAML::Node& f) { return f["collectors"][0]; }},
      {"target_type", CollectorSchema()["properties"]["target_type"],
       [](YAML::Node& f) { return f["collectors"][0]; }},
      {"type", ValueSchema()["properties"]["type"],
       [](YAML::Node& f) { return f["collectors"][0]["values"][0]; }},
  };
  Keys candidates = {"histogram", "summary",  "untyped", "info",   "gaugehistogram",
                     "cluster",   "instance", "replica", "master", "leader",
                     "pgpool",    "mysql",    "any",     "Gauge",  "SERVER",
                     "none",      "all",      ""};
  for (const auto& field : fields) candidates.merge(StringSet(field.schema["enum"]));
  for (const auto& field : fields) {
    const Keys schema_values = StringSet(field.schema["enum"]);
    EXPECT_FALSE(schema_values.empty()) << field.key;
    for (const auto& candidate : candidates) {
      YAML::Node file = MinimalFile();
      field.at(file)[field.key] = candidate;
      const auto errors = LoadErrors(file);
      EXPECT_EQ(errors.empty(), schema_values.contains(candidate))
          << field.key << ": \"" << candidate << "\" is "
          << (errors.empty() ? "accepted by the loader but not in the schema's enum"
                             : "in the schema's enum but rejected by the loader:")
          << Describe(errors);
    }
  }
}

// The schema's regular expressions (ECMAScript, as std::regex's default) agree with the loader
// on metric names, label names and durations.
TEST(CollectorSchema, PatternsMatchTheLoader) {
  const YAML::Node definitions = Schema()["definitions"];
  const std::regex metric(definitions["metricName"]["pattern"].as<std::string>());
  const std::regex label(definitions["labelName"]["pattern"].as<std::string>());
  const std::vector<std::string> names = {
      "a",      "A",  "_",   "__",  "__a", "_a",  "_1", "a1",
      "a_b__c", "1a", "a:b", "a-b", "",    "a b", "ä",  "pg_stat_database_xact_commit_total"};
  for (const auto& name : names) {
    EXPECT_EQ(std::regex_match(name, metric), IsValidMetricName(name)) << "metric name " << name;
    EXPECT_EQ(std::regex_match(name, label), IsValidLabelName(name)) << "label name " << name;
  }

  std::string duration_pattern;
  for (const auto& alternative : definitions["duration"]["anyOf"]) {
    if (alternative["pattern"]) duration_pattern = alternative["pattern"].as<std::string>();
  }
  ASSERT_FALSE(duration_pattern.empty());
  const std::regex duration(duration_pattern);
  const std::vector<std::string> durations = {
      "5s",    "500ms", "2m",   "1h",   "1.5s", "5",     "0",    "0.25", ".5s", "5.s",
      "1e3ms", "1E+2",  "fast", "",     "5 s",  "-1s",   "+1s",  "s",    "ms",  "1d",
      "inf",   "nan",   "1e",   "5sec", "5S",   "1.2.3", "0x10", " 5s",  "5s ", "5mss"};
  for (const auto& text : durations) {
    EXPECT_EQ(std::regex_match(text, duration), ParseDuration(text).has_value())
        << "duration \"" << text << "\"";
  }
}

}  // namespace
}  // namespace pgtally
