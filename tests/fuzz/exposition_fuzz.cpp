// libFuzzer target: arbitrary bytes as the rows of a query result, through FamilyBuilder, which
// writes exposition lines itself. They must stay well formed: valid UTF-8, one line per sample, and
// no line that a label value's bytes could have broken. Two collectors read the same rows: one
// with labels, a scale and on_null; one with a histogram (its bounds and counts parsed from
// array text), a mapped value and a Go duration. Their families, with the self-metrics the
// exporter appends, must together be a valid exposition (exposition_check.h): every family once,
// no series twice, a histogram's buckets in order and ending in +Inf.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "exposition_build.h"
#include "exposition_check.h"
#include "pgtally/collect/exposition.h"
#include "pgtally/collect/family_builder.h"
#include "pgtally/collect/value_parser.h"
#include "pgtally/config/collector_loader.h"

namespace {

constexpr int kColumns = 4;  // a, b, v, c

// The fuzz input split into cells at '\0'; a cell that is exactly "\x01" is NULL.
class FuzzTable final : public pgtally::Table {
 public:
  explicit FuzzTable(std::string_view data) {
    std::size_t start = 0;
    while (start <= data.size()) {
      const auto end = std::min(data.find('\0', start), data.size());
      cells_.push_back(data.substr(start, end - start));
      start = end + 1;
    }
  }
  int rows() const override { return static_cast<int>(cells_.size() / kColumns); }
  int Column(const std::string& name) const override {
    // The histogram's four columns are the same cells under other names.
    static const std::vector<std::vector<std::string>> kNames = {
        {"a", "h"}, {"b", "h_bucket"}, {"v", "h_sum"}, {"c", "h_count"}};
    for (int i = 0; i < kColumns; ++i) {
      if (std::find(kNames[i].begin(), kNames[i].end(), name) != kNames[i].end()) return i;
    }
    return -1;
  }
  std::optional<std::string_view> Get(int row, int column) const override {
    const std::string_view cell = cells_[static_cast<std::size_t>(row * kColumns + column)];
    if (cell == "\x01") return std::nullopt;
    return cell;
  }

 private:
  std::vector<std::string_view> cells_;
};

const std::vector<pgtally::CollectorSpec>& Specs() {
  static const auto loaded = pgtally::ParseCollectorFile(
      "version: 1\ncollectors:\n  - name: fuzz\n    help: \"Fuzz \\\\ help\\nline.\"\n"
      "    query: SELECT 1\n    labels: [a, b]\n    max_series: 1000\n    values:\n"
      "      - {column: v, type: gauge, scale: 0.001}\n"
      "      - {column: c, type: counter, on_null: 0}\n"
      "  - name: fuzz2\n    help: Imported shapes.\n    query: SELECT 1\n    values:\n"
      "      - {column: h, type: histogram}\n"
      "      - {column: v, type: gauge, mapping: {on: 1, \"off\": 0}, on_null: nan}\n"
      "      - {column: c, type: gauge, parse: go_duration}\n",
      "fuzz.yaml");
  if (!loaded.ok()) __builtin_trap();
  return loaded.collectors;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const FuzzTable table(input);
  std::string exposition;
  for (const auto& spec : Specs()) {
    pgtally::FamilyBuilder builder(spec);
    if (builder.Add(table, {{"datname", std::string(input.substr(0, 8))}})) __builtin_trap();
    const std::size_t series = builder.series();
    std::string text;
    pgtally::AppendFamilies(builder.Take(), text);
    exposition += text;

    if (pgtally::SanitizeUtf8(text) != text) __builtin_trap();  // must already be valid UTF-8
    std::size_t samples = 0;
    std::size_t histograms = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line.starts_with('#')) continue;
      // A sample line starts with one of our metric names; anything else means a label value
      // broke out of its quotes or its line.
      const bool histogram_line = line.starts_with("fuzz2_h_bucket{") ||
                                  line.starts_with("fuzz2_h_sum{") ||
                                  line.starts_with("fuzz2_h_count{");
      if (!histogram_line && !line.starts_with("fuzz_v{") && !line.starts_with("fuzz_c_total{") &&
          !line.starts_with("fuzz2_v{") && !line.starts_with("fuzz2_c{")) {
        __builtin_trap();
      }
      // Each histogram ends with its _count line: count those, not its buckets.
      histograms += line.starts_with("fuzz2_h_count{") ? 1 : 0;
      samples += histogram_line ? 0 : 1;
    }
    if (samples + histograms > series) __builtin_trap();
  }
  pgtally::fuzz::AppendSelfMetrics(exposition);
  if (!pgtally::fuzz::ExpositionProblem(exposition).empty()) __builtin_trap();
  return 0;
}
