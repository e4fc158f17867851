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
                         {},
                         0});
  }
}

std::optional<std::string> FamilyBuilder::Begin(
    const Table& table, std::vector<prometheus::ClientMetric::Label> extra_labels) {
  label_columns_.clear();
  value_columns_.clear();
  std::string missing;
  const auto find = [&](const std::string& column, std::vector<int>& into) {
    into.push_back(table.Column(column));
    if (into.back() < 0) missing += fmt::format("{}\"{}\"", missing.empty() ? "" : ", ", column);
  };
  for (const auto& label : spec_.labels) find(label.column, label_columns_);
  for (const auto& value : spec_.values) find(value.column, value_columns_);
  if (!missing.empty()) return fmt::format("the result has no column {}", missing);

  // Extra labels come from the database too (datname from pg_database, in a SQL_ASCII cluster
  // any bytes at all): the fuzzer found one breaking the exposition's UTF-8.
  for (auto& label : extra_labels) label.value = SanitizeUtf8(label.value);
  labels_ = std::move(extra_labels);
  extra_labels_ = labels_.size();
  for (const auto& label : spec_.labels) labels_.push_back({label.name, ""});
  return std::nullopt;
}

void FamilyBuilder::AddRow(const Table& table, int row) {
  // The key is every label value joined by a byte that valid UTF-8 never contains.
  key_.clear();
  for (std::size_t i = 0; i < spec_.labels.size(); ++i) {
    labels_[extra_labels_ + i].value = SanitizeUtf8(table.Get(row, label_columns_[i]).value_or(""));
  }
  for (const auto& label : labels_) key_.append(label.value).push_back('\xff');
  label_text_.clear();
  // Once full, keys are no longer remembered, so a flood of rows cannot grow the set; a repeat
  // of such a row counts as over the limit rather than as a duplicate.
  const bool full = series_ >= spec_.max_series;
  if (full ? seen_.contains(key_) : !seen_.insert(key_).second) {
    drops_.duplicate += spec_.values.size();
    return;
  }
  for (std::size_t i = 0; i < spec_.values.size(); ++i) {
    const auto& value_spec = spec_.values[i];
    std::optional<double> number;
    if (const auto cell = table.Get(row, value_columns_[i])) {
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
    if (label_text_.empty() && !labels_.empty()) {
      for (std::size_t l = 0; l < labels_.size(); ++l) {
        if (l > 0) label_text_ += ',';
        label_text_ += labels_[l].name;
        label_text_ += "=\"";
        AppendLabelValue(labels_[l].value, label_text_);
        label_text_ += '"';
      }
    }
    auto& family = families_[i];
    family.samples += family.name;
    if (!labels_.empty()) {
      family.samples += '{';
      family.samples += label_text_;
      family.samples += '}';
    }
    family.samples += ' ';
    AppendSampleValue(*number * value_spec.scale, family.samples);
    family.samples += '\n';
    ++family.count;
    ++series_;
  }
}

std::optional<std::string> FamilyBuilder::Add(
    const Table& table, std::vector<prometheus::ClientMetric::Label> extra_labels) {
  if (auto error = Begin(table, std::move(extra_labels))) return error;
  for (int row = 0; row < table.rows(); ++row) AddRow(table, row);
  return std::nullopt;
}

std::vector<FamilyText> FamilyBuilder::Take() {
  std::vector<FamilyText> families;
  for (auto& family : families_) {
    if (family.count == 0) continue;
    // Grown by doubling, the lines may hold half again their size; they are kept until the
    // scrape is sent, so give the slack back (a 5,000-table scrape: 1.5 MB of 4.6).
    family.samples.shrink_to_fit();
    families.push_back(std::move(family));
  }
  families_.clear();
  return families;
}

}  // namespace pgtally
