// libFuzzer target: arbitrary bytes as the rows of a query result, through FamilyBuilder, which
// writes exposition lines itself. They must stay well formed: valid UTF-8, one line per sample, and
// no line that a label value's bytes could have broken.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

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
    static const std::vector<std::string> kNames = {"a", "b", "v", "c"};
    for (int i = 0; i < kColumns; ++i) {
      if (kNames[i] == name) return i;
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

const pgtally::CollectorSpec& Spec() {
  static const auto loaded = pgtally::ParseCollectorFile(
      "version: 1\ncollectors:\n  - name: fuzz\n    help: \"Fuzz \\\\ help\\nline.\"\n"
      "    query: SELECT 1\n    labels: [a, b]\n    max_series: 1000\n    values:\n"
      "      - {column: v, type: gauge, scale: 0.001}\n"
      "      - {column: c, type: counter, on_null: 0}\n",
      "fuzz.yaml");
  if (!loaded.ok()) __builtin_trap();
  return loaded.collectors.front();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  pgtally::FamilyBuilder builder(Spec());
  const FuzzTable table(input);
  if (builder.Add(table, {{"datname", std::string(input.substr(0, 8))}})) __builtin_trap();
  const std::size_t series = builder.series();
  std::string text;
  pgtally::AppendFamilies(builder.Take(), text);

  if (pgtally::SanitizeUtf8(text) != text) __builtin_trap();  // must already be valid UTF-8
  std::size_t samples = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.starts_with('#')) continue;
    // A sample line starts with one of our metric names; anything else means a label value
    // broke out of its quotes or its line.
    if (!line.starts_with("fuzz_v{") && !line.starts_with("fuzz_c_total{") &&
        !line.starts_with("fuzz_c{")) {
      __builtin_trap();
    }
    ++samples;
  }
  if (samples > series) __builtin_trap();
  return 0;
}
