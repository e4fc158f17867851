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
// those: a value added to the loader (say, type: summary) must be added to the schema.
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
      {"parse", ValueSchema()["properties"]["parse"],
       [](YAML::Node& f) { return f["collectors"][0]["values"][0]; }},
  };
  Keys candidates = {"histogram",    "summary",  "untyped",  "info",     "gaugehistogram",
                     "Histogram",    "cluster",  "instance", "replica",  "master",
                     "leader",       "pgpool",   "mysql",    "any",      "Gauge",
                     "SERVER",       "duration", "DURATION", "Duration", "go-duration",
                     "mappedmetric", "text",     "none",     "all",      ""};
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

// NaN as the schema spells it (on_null: nan, a mapping to nan) loads, and near misses that the
// loader rejects are not among those spellings.
TEST(CollectorSchema, NanSpellingsMatchTheLoader) {
  const Keys spellings = StringSet(Schema()["definitions"]["nan"]["enum"]);
  ASSERT_TRUE(spellings.contains("nan"));
  Keys candidates = {"nan",  "NaN",  ".nan",  ".NaN", ".NAN", "NAN",  "Nan",  "nAn",
                     ".Nan", "-nan", "nan()", "none", "null", "NaN ", "..nan"};
  candidates.insert(spellings.begin(), spellings.end());
  for (const auto& candidate : candidates) {
    YAML::Node on_null = MinimalFile();
    on_null["collectors"][0]["values"][0]["on_null"] = candidate;
    YAML::Node mapping = MinimalFile();
    mapping["collectors"][0]["values"][0]["mapping"]["idle"] = candidate;
    for (const auto& [key, file] : {std::pair{"on_null", on_null}, std::pair{"mapping", mapping}}) {
      const auto errors = LoadErrors(file);
      EXPECT_EQ(errors.empty(), spellings.contains(candidate))
          << key << ": \"" << candidate << "\" is "
          << (errors.empty() ? "accepted by the loader but not in the schema's definitions/nan"
                             : "in the schema's definitions/nan but rejected by the loader:")
          << Describe(errors);
    }
  }
}

// The schema forbids on a histogram exactly the keys whose use the loader rejects there.
TEST(CollectorSchema, HistogramRestrictionsMatchTheLoader) {
  const YAML::Node rule = ValueSchema();
  ASSERT_TRUE(rule["if"]["properties"]["type"]) << "no if/then rule on the value's type";
  EXPECT_EQ(rule["if"]["properties"]["type"]["const"].as<std::string>(), "histogram");
  EXPECT_EQ(PropertyNames(rule["then"]), (Keys{"mapping", "parse"}));

  const auto histogram_with = [](const char* key, const char* yaml) {
    YAML::Node file = MinimalFile();
    file["collectors"][0]["values"][0]["type"] = "histogram";
    if (key) file["collectors"][0]["values"][0][key] = YAML::Load(yaml);
    return LoadErrors(file);
  };
  EXPECT_TRUE(histogram_with(nullptr, "").empty()) << Describe(histogram_with(nullptr, ""));
  EXPECT_FALSE(histogram_with("mapping", "{idle: 1}").empty());
  EXPECT_FALSE(histogram_with("parse", "go_duration").empty());
  // What the schema allows there, the loader accepts too.
  EXPECT_EQ(rule["then"]["properties"]["parse"]["const"].as<std::string>(), "number");
  EXPECT_TRUE(histogram_with("parse", "number").empty())
      << Describe(histogram_with("parse", "number"));
  EXPECT_EQ(rule["then"]["properties"]["mapping"]["maxProperties"].as<int>(), 0);
  EXPECT_TRUE(histogram_with("mapping", "{}").empty()) << Describe(histogram_with("mapping", "{}"));
}

// legacy_names: true turns off the _total naming rules in the loader; in the schema those rules
// (definitions/currentNames) apply to a collector's values only when legacy_names is not true.
TEST(CollectorSchema, LegacyNamesTurnOffTheNamingRules) {
  for (const auto& [type, name] : {std::pair{"counter", "x_v"}, std::pair{"gauge", "x_v_total"}}) {
    YAML::Node file = MinimalFile();
    file["collectors"][0]["values"][0]["type"] = type;
    file["collectors"][0]["values"][0]["name"] = name;
    EXPECT_FALSE(LoadErrors(file).empty()) << type << " " << name;
    file["collectors"][0]["legacy_names"] = true;
    EXPECT_TRUE(LoadErrors(file).empty()) << type << " " << name << Describe(LoadErrors(file));
  }

  EXPECT_FALSE(ValueSchema()["allOf"]) << "naming rules on the value apply despite legacy_names";
  ASSERT_TRUE(Schema()["definitions"]["currentNames"]["allOf"].IsSequence());
  int applied = 0;
  for (const auto& rule : CollectorSchema()["allOf"]) {
    const YAML::Node properties = rule["then"]["properties"];
    if (!properties["values"]) continue;
    const YAML::Node items = properties["values"]["items"];
    if (!items || items["$ref"].as<std::string>("") != "#/definitions/currentNames") continue;
    ++applied;
    const YAML::Node condition = rule["if"]["not"];
    EXPECT_EQ(StringSet(condition["required"]), Keys{"legacy_names"});
    EXPECT_TRUE(condition["properties"]["legacy_names"]["const"].as<bool>());
  }
  EXPECT_EQ(applied, 1) << "definitions/currentNames should apply, unless legacy_names, once";
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
