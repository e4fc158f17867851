#include "pgtally/cli/collector_test_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "config/yaml_reader.h"
#include "pgtally/collect/exposition.h"
#include "pgtally/collect/family_builder.h"
#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTestSuffixes[] = {".test.yaml", ".test.yml"};

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool IsTestFile(std::string_view path) {
  return std::any_of(std::begin(kTestSuffixes), std::end(kTestSuffixes),
                     [&](std::string_view suffix) { return EndsWith(path, suffix); });
}

// X.test.yaml -> X.yaml; "" when `path` is not a test file's.
std::string CollectorFileOf(const std::string& path) {
  for (const std::string_view suffix : kTestSuffixes) {
    if (EndsWith(path, suffix)) {
      return path.substr(0, path.size() - suffix.size()) + std::string(suffix.substr(5));
    }
  }
  return "";
}

// X.yaml -> X.test.yaml; "" when `path` is not a YAML file's.
std::string TestFileOf(const std::string& path) {
  for (const std::string_view suffix : {".yaml", ".yml"}) {
    if (EndsWith(path, suffix)) {
      return path.substr(0, path.size() - suffix.size()) + ".test" + std::string(suffix);
    }
  }
  return "";
}

// Reads the `rows` of a case: a list of maps from column to a scalar cell or null.
void ReadRows(YamlReader& reader, const YAML::Node& rows, bool fixed_columns,
              CollectorTestCase& test) {
  if (!rows.IsDefined() || rows.IsNull()) return;
  if (!reader.ExpectSequence(rows, fmt::format("test \"{}\": rows", test.name))) return;
  for (const auto& row : rows) {
    if (!reader.ExpectMap(row, fmt::format("test \"{}\": a row", test.name))) continue;
    std::vector<std::optional<std::string>> cells(test.columns.size());
    for (const auto& entry : row) {
      const auto column = entry.first.as<std::string>("");
      auto at = std::find(test.columns.begin(), test.columns.end(), column);
      if (at == test.columns.end()) {
        if (fixed_columns) {
          reader.Error(entry.first, fmt::format("test \"{}\": column \"{}\" is not in `columns`",
                                                test.name, column));
          continue;
        }
        test.columns.push_back(column);
        for (auto& earlier : test.rows) earlier.emplace_back();
        cells.emplace_back();
        at = test.columns.end() - 1;
      }
      const auto index = static_cast<std::size_t>(at - test.columns.begin());
      if (entry.second.IsNull()) continue;  // NULL
      if (!entry.second.IsScalar()) {
        reader.Error(entry.second,
                     fmt::format("test \"{}\": the cell of column \"{}\" must be a value or null",
                                 test.name, column));
        continue;
      }
      cells[index] = entry.second.Scalar();
    }
    test.rows.push_back(std::move(cells));
  }
}

const CollectorSpec* FindCollector(const std::vector<CollectorSpec>& collectors,
                                   const std::string& name) {
  const auto it = std::find_if(collectors.begin(), collectors.end(),
                               [&](const CollectorSpec& spec) { return spec.name == name; });
  return it == collectors.end() ? nullptr : &*it;
}

void ReadCase(YamlReader& reader, const YAML::Node& node, CollectorTestFile& file,
              bool check_collectors) {
  if (!reader.ExpectMap(node, "a test")) return;
  CollectorTestCase test;
  test.location = reader.Where(node);
  test.name = reader.GetString(node, "name", "a test", true).value_or("");
  const std::string what = fmt::format("test \"{}\"", test.name);
  reader.CheckKeys(node,
                   {"name", "collector", "server_version", "database", "columns", "rows", "expect",
                    "expect_error"},
                   what);
  test.collector = reader.GetString(node, "collector", what, true).value_or("");
  test.server_version = reader.GetIntBetween(node, "server_version", what, 0, 99999999);
  if (auto database = reader.GetString(node, "database", what)) test.database = *database;
  const auto columns = reader.GetStringList(node, "columns", what);
  if (columns) test.columns = *columns;
  ReadRows(reader, node["rows"], columns.has_value(), test);
  test.expect = reader.GetString(node, "expect", what);
  test.expect_error = reader.GetString(node, "expect_error", what);
  if (test.expect.has_value() == test.expect_error.has_value()) {
    reader.Error(node, fmt::format("{}: give either `expect` (the exposition text the rows make) "
                                   "or `expect_error` (the mapping error)",
                                   what));
  }

  if (check_collectors && !test.collector.empty()) {
    const CollectorSpec* spec = FindCollector(file.collectors, test.collector);
    if (!spec) {
      std::string names;
      for (const auto& collector : file.collectors) {
        names += fmt::format("{}{}", names.empty() ? "" : ", ", collector.name);
      }
      reader.Error(node["collector"],
                   fmt::format("{}: no collector \"{}\" in {} (it has: {})", what, test.collector,
                               fmt::join(file.collector_files, ", "), names));
    } else if (test.server_version && !spec->QueryFor(*test.server_version)) {
      reader.Error(node["server_version"],
                   fmt::format("{}: collector \"{}\" does not run on server_version {}", what,
                               test.collector, *test.server_version));
    }
  }
  file.cases.push_back(std::move(test));
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.pop_back();
    }
    lines.push_back(std::move(line));
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

}  // namespace

CollectorTestFile LoadCollectorTestFile(const std::string& path, Diagnostics& errors) {
  CollectorTestFile file;
  file.path = path;
  const std::size_t errors_before = errors.size();
  const auto text = ReadConfigFile(path, errors);
  if (!text) return file;
  YamlReader reader(path, errors);
  const auto root = reader.Parse(*text);
  if (!root || !reader.ExpectMap(*root, "a collector test file")) return file;
  reader.CheckKeys(*root, {"collectors", "tests"}, "a collector test file");

  const fs::path directory = fs::path(path).parent_path();
  if (auto named = reader.GetStringList(*root, "collectors", "a collector test file")) {
    for (const auto& name : *named) {
      file.collector_files.push_back(
          fs::path(name).is_absolute() || directory.empty() ? name : (directory / name).string());
    }
  } else if (const std::string sibling = CollectorFileOf(path); !sibling.empty()) {
    file.collector_files.push_back(sibling);
  } else {
    reader.Error(*root,
                 "name the collector files the tests are for under `collectors`, or name this file "
                 "X.test.yaml beside the collector file X.yaml");
  }
  auto loaded = LoadCollectors(file.collector_files);
  errors.insert(errors.end(), loaded.errors.begin(), loaded.errors.end());
  file.collectors = std::move(loaded.collectors);
  // Cases are still read when a collector file is broken, so their own mistakes show too; only
  // their collector names cannot be checked then.
  const bool check_collectors = loaded.ok();

  const YAML::Node tests = (*root)["tests"];
  if (!tests.IsDefined() || tests.IsNull()) {
    reader.Error(*root, "a collector test file needs `tests`, a list of cases");
  } else if (reader.ExpectSequence(tests, "tests")) {
    for (const auto& node : tests) ReadCase(reader, node, file, check_collectors);
  }
  if (errors.size() > errors_before) file.cases.clear();  // never run half-understood cases
  return file;
}

std::vector<std::string> CollectorTestFiles(const std::string& argument, Diagnostics& errors) {
  std::error_code error;
  const auto status = fs::status(argument, error);
  if (error || !fs::exists(status)) {
    errors.push_back({{argument, 0, 0}, "no such file or directory"});
    return {};
  }
  std::vector<std::string> files;
  if (fs::is_directory(status)) {
    for (const auto& entry : fs::directory_iterator(argument, error)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with('.') && IsTestFile(name)) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      errors.push_back(
          {{argument, 0, 0}, "no collector test files (*.test.yaml) in the directory"});
    }
    return files;
  }
  if (IsTestFile(argument)) return {argument};
  const std::string sibling = TestFileOf(argument);
  if (sibling.empty()) {
    errors.push_back(
        {{argument, 0, 0}, "not a collector file (*.yaml) or a collector test file (*.test.yaml)"});
  } else if (!fs::exists(sibling, error)) {
    errors.push_back(
        {{argument, 0, 0}, fmt::format("no test file beside it; write its cases in {}", sibling)});
  } else {
    files.push_back(sibling);
  }
  return files;
}

CollectorTestResult RunCollectorTest(const CollectorSpec& spec, const CollectorTestCase& test) {
  CollectorTestResult result;
  const MemoryTable table(test.columns, test.rows);
  FamilyBuilder builder(spec);
  std::vector<prometheus::ClientMetric::Label> extra_labels;
  if (spec.scope == Scope::kDatabase) extra_labels.push_back({"datname", test.database});
  result.error = builder.Add(table, std::move(extra_labels));
  // As a scrape does (see Target::Run): a limit column the result lacks fails the collector.
  if (!result.error && !spec.omitted_rows_column.empty() &&
      table.Column(spec.omitted_rows_column) < 0) {
    result.error =
        fmt::format("omitted_rows_column \"{}\" is not in the result", spec.omitted_rows_column);
  }
  if (!result.error) AppendFamilies(builder.Take(), result.output);
  const auto& drops = builder.drops();
  for (const auto& [count, reason] : {std::pair{drops.duplicate, "duplicate"},
                                      {drops.invalid_value, "not a number"},
                                      {drops.limit, "over max_series"},
                                      {drops.too_large, "labels too large"}}) {
    if (count > 0) {
      result.dropped += fmt::format("{}{} {}", result.dropped.empty() ? "" : ", ", count, reason);
    }
  }
  if (test.expect_error) {
    result.passed = result.error && result.error->find(*test.expect_error) != std::string::npos;
  } else {
    result.passed = !result.error && LineDiff(test.expect.value_or(""), result.output).empty();
  }
  return result;
}

std::string LineDiff(const std::string& expected, const std::string& got) {
  const auto a = SplitLines(expected);
  const auto b = SplitLines(got);
  if (a == b) return "";
  // Longest common subsequence, then a walk that emits each line as kept, removed or added.
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> lcs(n + 1, std::vector<std::size_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  struct Line {
    char op;                     // ' ', '-' or '+'
    std::size_t a_line, b_line;  // 0-based position in each text when the line is reached
  };
  std::vector<Line> ops;
  std::size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({' ', i++, j++});
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push_back({'-', i++, j});
    } else {
      ops.push_back({'+', i, j++});
    }
  }
  // Hunks: changed lines with up to three unchanged lines around them.
  constexpr std::size_t kContext = 3;
  std::string diff = "--- expected\n+++ got\n";
  std::size_t k = 0;
  while (k < ops.size()) {
    if (ops[k].op == ' ') {
      ++k;
      continue;
    }
    const std::size_t begin = k >= kContext ? k - kContext : 0;
    // The hunk goes on over changes less than two contexts apart.
    std::size_t last = k;
    for (std::size_t t = k + 1; t < ops.size() && t - last <= 2 * kContext; ++t) {
      if (ops[t].op != ' ') last = t;
    }
    const std::size_t end = std::min(ops.size(), last + 1 + kContext);
    std::size_t a_count = 0, b_count = 0;
    for (std::size_t t = begin; t < end; ++t) {
      if (ops[t].op != '+') ++a_count;
      if (ops[t].op != '-') ++b_count;
    }
    // As diff -u numbers them: an empty side starts at the line before the hunk.
    diff += fmt::format("@@ -{},{} +{},{} @@\n", ops[begin].a_line + (a_count > 0 ? 1 : 0), a_count,
                        ops[begin].b_line + (b_count > 0 ? 1 : 0), b_count);
    for (std::size_t t = begin; t < end; ++t) {
      const auto& line = ops[t].op == '+' ? b[ops[t].b_line] : a[ops[t].a_line];
      diff += fmt::format("{}{}\n", ops[t].op, line);
    }
    k = end;
  }
  return diff;
}

}  // namespace pgtally
