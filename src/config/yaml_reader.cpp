#include "config/yaml_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pgtally {

SourceLocation YamlReader::Where(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return {file_, 0, 0};
  return {file_, mark.line + 1, mark.column + 1};
}

void YamlReader::Error(const YAML::Node& at, std::string message) {
  errors_.push_back({Where(at), std::move(message)});
}

std::optional<YAML::Node> YamlReader::Parse(std::string_view text) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    errors_.push_back({{file_, e.mark.line + 1, e.mark.column + 1}, "YAML syntax: " + e.msg});
    return std::nullopt;
  }
}

bool YamlReader::ExpectMap(const YAML::Node& node, std::string_view what) {
  if (node.IsMap()) return true;
  Error(node, fmt::format("{} must be a map of keys", what));
  return false;
}

bool YamlReader::ExpectSequence(const YAML::Node& node, std::string_view what) {
  if (node.IsSequence()) return true;
  Error(node, fmt::format("{} must be a list", what));
  return false;
}

void YamlReader::CheckKeys(const YAML::Node& map, std::span<const std::string_view> allowed,
                           std::string_view what) {
  for (const auto& entry : map) {
    const auto key = entry.first.as<std::string>("");
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string expected;
    for (const auto& name : allowed) {
      expected += fmt::format("{}{}", expected.empty() ? "" : ", ", name);
    }
    Error(entry.first,
          fmt::format("{}: unknown key \"{}\" (expected one of: {})", what, key, expected));
  }
}

std::optional<YAML::Node> YamlReader::Scalar(const YAML::Node& map, const char* key,
                                             std::string_view what, bool required) {
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) {
    if (required) Error(map, fmt::format("{}: missing required key \"{}\"", what, key));
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    Error(node, fmt::format("{}: \"{}\" must be a single value, not a list or map", what, key));
    return std::nullopt;
  }
  return node;
}

std::optional<std::string> YamlReader::GetString(const YAML::Node& map, const char* key,
                                                 std::string_view what, bool required) {
  auto node = Scalar(map, key, what, required);
  if (!node) return std::nullopt;
  return node->Scalar();
}

std::optional<bool> YamlReader::GetBool(const YAML::Node& map, const char* key,
                                        std::string_view what) {
  auto node = Scalar(map, key, what, false);
  if (!node) return std::nullopt;
  bool value = false;
  if (YAML::convert<bool>::decode(*node, value)) return value;
  Error(*node,
        fmt::format("{}: \"{}\" must be true or false, not \"{}\"", what, key, node->Scalar()));
  return std::nullopt;
}

std::optional<long long> YamlReader::GetInt(const YAML::Node& map, const char* key,
                                            std::string_view what) {
  auto node = Scalar(map, key, what, false);
  if (!node) return std::nullopt;
  long long value = 0;
  if (YAML::convert<long long>::decode(*node, value)) return value;
  Error(*node,
        fmt::format("{}: \"{}\" must be a whole number, not \"{}\"", what, key, node->Scalar()));
  return std::nullopt;
}

std::optional<int> YamlReader::GetIntBetween(const YAML::Node& map, const char* key,
                                             std::string_view what, int min, int max) {
  const auto value = GetInt(map, key, what);
  if (!value) return std::nullopt;
  if (*value >= min && *value <= max) return static_cast<int>(*value);
  Error(map[key], fmt::format("{}: \"{}\" must be between {} and {}", what, key, min, max));
  return std::nullopt;
}

std::optional<double> YamlReader::GetNumber(const YAML::Node& map, const char* key,
                                            std::string_view what) {
  auto node = Scalar(map, key, what, false);
  if (!node) return std::nullopt;
  double value = 0;
  if (YAML::convert<double>::decode(*node, value) && std::isfinite(value)) return value;
  Error(*node,
        fmt::format("{}: \"{}\" must be a finite number, not \"{}\"", what, key, node->Scalar()));
  return std::nullopt;
}

std::optional<Millis> YamlReader::GetDuration(const YAML::Node& map, const char* key,
                                              std::string_view what) {
  auto node = Scalar(map, key, what, false);
  if (!node) return std::nullopt;
  if (auto value = ParseDuration(node->Scalar())) return value;
  Error(*node, fmt::format("{}: \"{}\" must be a duration such as 500ms, 5s or 2m, not \"{}\"",
                           what, key, node->Scalar()));
  return std::nullopt;
}

std::optional<std::vector<YamlReader::Setting>> YamlReader::GetScalarMap(const YAML::Node& map,
                                                                         const char* key,
                                                                         std::string_view what) {
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (!ExpectMap(node, fmt::format("{} \"{}\"", what, key))) return std::nullopt;
  std::vector<Setting> settings;
  for (const auto& entry : node) {
    if (!entry.second.IsScalar()) {
      Error(entry.second, fmt::format("{}: \"{}\" in \"{}\" must be a single value", what,
                                      entry.first.Scalar(), key));
      continue;
    }
    settings.push_back({entry.first.Scalar(), entry.second.Scalar(), Where(entry.first)});
  }
  return settings;
}

std::optional<std::vector<std::string>> YamlReader::GetStringList(const YAML::Node& map,
                                                                  const char* key,
                                                                  std::string_view what) {
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (node.IsScalar()) return std::vector<std::string>{node.Scalar()};
  if (!node.IsSequence()) {
    Error(node, fmt::format("{}: \"{}\" must be a string or a list of strings", what, key));
    return std::nullopt;
  }
  std::vector<std::string> values;
  for (const auto& item : node) {
    if (!item.IsScalar()) {
      Error(item, fmt::format("{}: every item of \"{}\" must be a string", what, key));
      return std::nullopt;
    }
    values.push_back(item.Scalar());
  }
  return values;
}

}  // namespace pgtally
