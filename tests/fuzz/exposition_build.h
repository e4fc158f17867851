#pragma once

// The exposition a scrape would write for a set of loaded collector specs, built from rows made
// up to fit each spec (two rows of every label and value column). Used to show that whatever
// the loader accepts makes a valid exposition (tests/fuzz/config_fuzz.cpp and a unit test
// against promtool).

#include <map>
#include <string>
#include <vector>

#include "pgtally/collect/exposition.h"
#include "pgtally/collect/family_builder.h"
#include "pgtally/config/collector_spec.h"

namespace pgtally::fuzz {

// Rows for one spec: labels "l0", "l1"; a histogram's bounds and counts "{1,2}", its sum 3 and
// count 2; a mapped value its first text; a Go duration "1s"; any other value 1.
class SpecTable final : public Table {
 public:
  explicit SpecTable(const CollectorSpec& spec) {
    for (const auto& label : spec.labels) Add(label.column, "");
    for (const auto& value : spec.values) {
      if (value.kind == MetricKind::kHistogram) {
        Add(value.column, "{1,2}");
        Add(value.column + "_bucket", "{1,2}");
        Add(value.column + "_sum", "3");
        Add(value.column + "_count", "2");
      } else if (!value.mapping.empty()) {
        Add(value.column, value.mapping.begin()->first);
      } else {
        Add(value.column, value.go_duration ? "1s" : "1");
      }
    }
    if (!spec.omitted_rows_column.empty()) Add(spec.omitted_rows_column, "0");
  }
  int rows() const override { return 2; }
  int Column(const std::string& name) const override {
    const auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  std::optional<std::string_view> Get(int row, int column) const override {
    const auto& text = cells_[static_cast<std::size_t>(column)];
    if (!text.empty()) return text;
    return row == 0 ? std::string_view("l0") : std::string_view("l1");  // a label
  }

 private:
  void Add(const std::string& column, std::string text) {
    if (index_.emplace(column, static_cast<int>(cells_.size())).second) {
      cells_.push_back(std::move(text));
    }
  }
  std::map<std::string, int> index_;
  std::vector<std::string> cells_;
};

// What the exporter appends after the collectors' families: pg_up and its own pgtally_* metrics,
// by the names src/collect/exporter.cpp and self_metrics.cpp write (values made up).
inline void AppendSelfMetrics(std::string& out) {
  static const char* const kGauges[] = {
      "pg_up",
      "pgtally_build_info",
      "pgtally_collector_duration_seconds",
      "pgtally_collector_rows_omitted",
      "pgtally_collector_series",
      "pgtally_collector_skipped",
      "pgtally_collector_success",
      "pgtally_config_last_reload_success_timestamp_seconds",
      "pgtally_config_last_reload_successful",
      "pgtally_scrape_duration_seconds",
  };
  for (const char* name : kGauges) {
    out += std::string("# HELP ") + name + " Self.\n# TYPE " + name + " gauge\n" + name + " 1\n";
  }
  for (const char* name : {"pgtally_collector_errors_total", "pgtally_samples_dropped_total"}) {
    out += std::string("# HELP ") + name + " Self.\n# TYPE " + name + " counter\n" + name + " 0\n";
  }
}

// One scrape's exposition on a server of `version` in recovery or not: every spec that runs
// there, then the self-metrics.
inline std::string BuildExposition(const std::vector<CollectorSpec>& specs, int version,
                                   bool in_recovery) {
  std::string out;
  for (const auto& spec : specs) {
    if (spec.QueryFor(version) == nullptr || !spec.RunsOn(in_recovery)) continue;
    FamilyBuilder builder(spec);
    std::vector<prometheus::ClientMetric::Label> extra_labels;
    if (spec.scope == Scope::kDatabase) extra_labels.push_back({"datname", "db"});
    if (!spec.target_label.empty()) extra_labels.push_back({spec.target_label, "host:5432"});
    if (builder.Add(SpecTable(spec), extra_labels)) continue;  // a column the rows lack
    AppendFamilies(builder.Take(), out);
  }
  AppendSelfMetrics(out);
  return out;
}

}  // namespace pgtally::fuzz
