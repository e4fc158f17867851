#include "pgtally/collect/family_builder.h"

#include <fmt/format.h>

#include "pgtally/collect/value_parser.h"

namespace pgtally {

FamilyBuilder::FamilyBuilder(const CollectorSpec& spec) : spec_(spec) {
  families_.reserve(spec.values.size());
  for (const auto& value : spec.values) {
    families_.push_back({value.metric_name,
                         EscapeHelp(value.help),
                         value.kind == MetricKind::kCounter ? prometheus::MetricType::Counter
                                                            : prometheus::MetricType::Gauge,
                         {}});
  }
}

std::optional<std::string> FamilyBuilder::Add(
    const Table& table, const std::vector<prometheus::ClientMetric::Label>& extra_labels) {
  std::vector<int> label_columns;
  std::vector<int> value_columns;
  std::string missing;
  for (const auto& label : spec_.labels) {
    label_columns.push_back(table.Column(label.column));
    if (label_columns.back() < 0) {
      missing += fmt::format("{}\"{}\"", missing.empty() ? "" : ", ", label.column);
    }
  }
  for (const auto& value : spec_.values) {
    value_columns.push_back(table.Column(value.column));
    if (value_columns.back() < 0) {
      missing += fmt::format("{}\"{}\"", missing.empty() ? "" : ", ", value.column);
    }
  }
  if (!missing.empty()) return fmt::format("the result has no column {}", missing);

  std::vector<prometheus::ClientMetric::Label> labels = extra_labels;
  // Extra labels come from the database too (datname from pg_database, in a SQL_ASCII cluster
  // any bytes at all): the fuzzer found one breaking the exposition's UTF-8.
  for (auto& label : labels) label.value = SanitizeUtf8(label.value);
  labels.resize(extra_labels.size() + spec_.labels.size());
  std::string key;
  for (int row = 0; row < table.rows(); ++row) {
    // The key is every label value joined by a byte that valid UTF-8 never contains.
    key.clear();
    for (std::size_t i = 0; i < spec_.labels.size(); ++i) {
      auto& label = labels[extra_labels.size() + i];
      label.name = spec_.labels[i].name;
      label.value = SanitizeUtf8(table.Get(row, label_columns[i]).value_or(""));
    }
    for (const auto& label : labels) key.append(label.value).push_back('\xff');
    if (!seen_.insert(key).second) {
      drops_.duplicate += spec_.values.size();
      continue;
    }
    for (std::size_t i = 0; i < spec_.values.size(); ++i) {
      const auto& value_spec = spec_.values[i];
      std::optional<double> number;
      if (const auto cell = table.Get(row, value_columns[i])) {
        number = ParsePgNumber(*cell);
        if (!number) {
          ++drops_.invalid_value;
          continue;
        }
      } else if (value_spec.null_value) {
        number = *value_spec.null_value;
      } else {
        continue;  // NULL: no sample, by design
      }
      if (series_ >= spec_.max_series) {
        ++drops_.limit;
        continue;
      }
      prometheus::ClientMetric metric;
      metric.label = labels;
      const double scaled = *number * value_spec.scale;
      if (value_spec.kind == MetricKind::kCounter) {
        metric.counter.value = scaled;
      } else {
        metric.gauge.value = scaled;
      }
      families_[i].metric.push_back(std::move(metric));
      ++series_;
    }
  }
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> FamilyBuilder::Take() {
  std::vector<prometheus::MetricFamily> families;
  for (auto& family : families_) {
    if (!family.metric.empty()) families.push_back(std::move(family));
  }
  families_.clear();
  return families;
}

}  // namespace pgtally
