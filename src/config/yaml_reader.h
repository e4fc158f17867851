#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/config/config_file.h"
#include "pgtally/config/diagnostic.h"
#include "pgtally/config/duration.h"

namespace pgtally {

// Typed access to a parsed YAML document that records a located diagnostic for every missing
// key, wrong type or unknown key instead of throwing, so a loader can report all problems of a
// file in one pass. `what` arguments name the thing being read ("collector \"x\"") for messages.
class YamlReader {
 public:
  YamlReader(std::string file, Diagnostics& errors) : file_(std::move(file)), errors_(errors) {}

  SourceLocation Where(const YAML::Node& node) const;
  void Error(const YAML::Node& at, std::string message);

  // Parses `text`; on a syntax error records it and returns nullopt.
  std::optional<YAML::Node> Parse(std::string_view text);

  bool ExpectMap(const YAML::Node& node, std::string_view what);
  bool ExpectSequence(const YAML::Node& node, std::string_view what);
  // Records an error for every key of `map` that is not in `allowed`.
  void CheckKeys(const YAML::Node& map, std::span<const std::string_view> allowed,
                 std::string_view what);
  void CheckKeys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                 std::string_view what) {
    CheckKeys(map, std::span(allowed.begin(), allowed.size()), what);
  }

  // Each Get* returns nullopt both when the key is absent (an error if `required`) and when its
  // value has the wrong type (always an error).
  std::optional<std::string> GetString(const YAML::Node& map, const char* key,
                                       std::string_view what, bool required = false);
  std::optional<bool> GetBool(const YAML::Node& map, const char* key, std::string_view what);
  std::optional<long long> GetInt(const YAML::Node& map, const char* key, std::string_view what);
  // A whole number from `min` to `max`.
  std::optional<int> GetIntBetween(const YAML::Node& map, const char* key, std::string_view what,
                                   int min, int max);
  std::optional<double> GetNumber(const YAML::Node& map, const char* key, std::string_view what);
  std::optional<Millis> GetDuration(const YAML::Node& map, const char* key, std::string_view what);
  // A map from names to single values (kept as written), each with its location; nullopt when
  // absent or not such a map.
  struct Setting {
    std::string name;
    std::string value;
    SourceLocation location;
  };
  std::optional<std::vector<Setting>> GetScalarMap(const YAML::Node& map, const char* key,
                                                   std::string_view what);
  // A string or a list of strings.
  std::optional<std::vector<std::string>> GetStringList(const YAML::Node& map, const char* key,
                                                        std::string_view what);

  // Where the text of `scalar`, a node of the document Parse read, is written in the file.
  TextPlacement PlacementOf(const YAML::Node& scalar) const;

 private:
  // The scalar under `key`, or nullopt (with an error if it exists but is not a scalar).
  std::optional<YAML::Node> Scalar(const YAML::Node& map, const char* key, std::string_view what,
                                   bool required);

  std::string file_;
  Diagnostics& errors_;
  std::string text_;  // the document Parse read
};

}  // namespace pgtally
