#include "config/yaml_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

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
  text_ = text;
  try {
    return YAML::Load(text_);
  } catch (const YAML::Exception& e) {
    errors_.push_back({{file_, e.mark.line + 1, e.mark.column + 1}, "YAML syntax: " + e.msg});
    return std::nullopt;
  }
}

namespace {

// The first `limit` lines of `text` without their line breaks ("\r\n" or "\n").
std::vector<std::string_view> SplitLines(std::string_view text,
                                         std::size_t limit = std::string_view::npos) {
  std::vector<std::string_view> lines;
  while (!text.empty() && lines.size() < limit) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

bool IsBlank(std::string_view line) { return line.find_first_not_of(' ') == line.npos; }

}  // namespace

TextPlacement YamlReader::PlacementOf(const YAML::Node& scalar) const {
  if (!scalar.IsDefined()) return {};
  TextPlacement placement{Where(scalar)};
  const YAML::Mark mark = scalar.Mark();
  if (mark.is_null() || !scalar.IsScalar() || static_cast<std::size_t>(mark.pos) >= text_.size()) {
    return placement;
  }
  const std::string& value = scalar.Scalar();
  const std::string_view source(text_);
  const auto pos = static_cast<std::size_t>(mark.pos);
  const char first = source[pos];
  if (first != '|') {
    // On one line, plain or quoted: verbatim when the file holds exactly the value there.
    const std::size_t quote = (first == '"' || first == '\'') ? 1 : 0;
    if (value.find('\n') == std::string::npos &&
        source.substr(pos + quote, value.size()) == value) {
      placement.start.column += static_cast<int>(quote);
      placement.verbatim = true;
      placement.indent_column = placement.start.column;
    }
    return placement;
  }
  // A literal block: `|` and an optional chomping indicator end their line (an explicit
  // indentation digit is rare and left out); the value's lines follow, each after the block's
  // indentation. Checked line by line, so anything unexpected just leaves it not verbatim.
  const auto header_end = source.find('\n', pos);
  if (header_end == source.npos) return placement;
  std::string_view header = source.substr(pos + 1, header_end - pos - 1);
  if (header.starts_with('+') || header.starts_with('-')) header.remove_prefix(1);
  header.remove_prefix(std::min(header.find_first_not_of(" \r"), header.size()));
  if (!header.empty() && !header.starts_with('#')) return placement;
  auto value_lines = SplitLines(value);
  while (!value_lines.empty() && value_lines.back().empty()) value_lines.pop_back();
  // Only as many lines of the file as the block has: a file of many blocks stays linear.
  const auto file_lines = SplitLines(source.substr(header_end + 1), value_lines.size());
  std::optional<std::size_t> indent;
  for (std::size_t i = 0; i < value_lines.size(); ++i) {
    if (i >= file_lines.size()) return placement;
    const std::string_view written = file_lines[i];
    if (value_lines[i].empty()) {
      if (!IsBlank(written)) return placement;
      continue;
    }
    if (!indent) {
      if (!written.ends_with(value_lines[i])) return placement;
      indent = written.size() - value_lines[i].size();
    }
    if (written.size() != *indent + value_lines[i].size() || !IsBlank(written.substr(0, *indent)) ||
        !written.ends_with(value_lines[i])) {
      return placement;
    }
  }
  if (!indent) return placement;
  placement.start = {file_, mark.line + 2, static_cast<int>(*indent) + 1};
  placement.verbatim = true;
  placement.indent_column = placement.start.column;
  return placement;
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
