#include "pgtally/collect/family_builder.h"

#include <fmt/format.h>

#include <limits>

#include "pgtally/collect/value_parser.h"

namespace pgtally {

FamilyBuilder::FamilyBuilder(const CollectorSpec& spec) : spec_(spec) {
  families_.reserve(spec.values.size());
  for (const auto& value : spec.values) {
    const auto type = value.kind == MetricKind::kCounter     ? prometheus::MetricType::Counter
                      : value.kind == MetricKind::kHistogram ? prometheus::MetricType::Histogram
                                                             : prometheus::MetricType::Gauge;
    families_.push_back({value.metric_name, EscapeHelp(value.help), type, {}, 0});
  }
}

std::optional<std::string> FamilyBuilder::Begin(
    const Table& table, std::vector<prometheus::ClientMetric::Label> extra_labels) {
  label_columns_.clear();
  value_columns_.clear();
  histogram_columns_.clear();
  std::string missing;
  const auto find = [&](const std::string& column, std::vector<int>& into) {
    into.push_back(table.Column(column));
    if (into.back() < 0) missing += fmt::format("{}\"{}\"", missing.empty() ? "" : ", ", column);
  };
  for (const auto& label : spec_.labels) find(label.column, label_columns_);
  for (const auto& value : spec_.values) {
    find(value.column, value_columns_);
    if (value.kind != MetricKind::kHistogram) continue;
    std::vector<int> parts;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) find(value.column + suffix, parts);
    histogram_columns_.push_back({parts[0], parts[1], parts[2]});
  }
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
  // Measured before anything is copied: a row over the bounds costs nothing more.
  std::size_t label_bytes = 0;
  for (std::size_t i = 0; i < extra_labels_; ++i) label_bytes += labels_[i].value.size();
  for (std::size_t i = 0; i < spec_.labels.size(); ++i) {
    const std::size_t size = table.Get(row, label_columns_[i]).value_or("").size();
    label_bytes += size;
    if (size > kMaxLabelValueBytes || label_bytes > kMaxSeriesLabelBytes) {
      drops_.too_large += spec_.values.size();
      return;
    }
  }
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
  std::size_t histogram = 0;
  for (std::size_t i = 0; i < spec_.values.size(); ++i) {
    const auto& value_spec = spec_.values[i];
    auto& family = families_[i];
    if (value_spec.kind == MetricKind::kHistogram) {
      if (series_ >= spec_.max_series) {
        ++drops_.limit;
      } else if (AppendHistogram(table, row, i, histogram_columns_[histogram])) {
        ++family.count;
        ++series_;
      } else {
        ++drops_.invalid_value;
      }
      ++histogram;
      continue;
    }
    const auto number = ReadValue(value_spec, table.Get(row, value_columns_[i]));
    if (!number) continue;
    if (series_ >= spec_.max_series) {
      ++drops_.limit;
      continue;
    }
    AppendSeries(family.samples, family.name);
    AppendSampleValue(*number * value_spec.scale, family.samples);
    family.samples += '\n';
    ++family.count;
    ++series_;
  }
}

std::optional<double> FamilyBuilder::ReadValue(const ValueSpec& value,
                                               std::optional<std::string_view> cell) {
  if (!cell) return value.null_value;  // unset: no sample, by design
  std::optional<double> number;
  if (!value.mapping.empty()) {
    const auto it = value.mapping.find(std::string(*cell));
    number = it != value.mapping.end() ? it->second : std::numeric_limits<double>::quiet_NaN();
  } else if (value.go_duration) {
    // postgres_exporter's DURATION: -1 stands for "none".
    number = *cell == "-1" ? std::numeric_limits<double>::quiet_NaN() : ParseGoDuration(*cell);
  } else {
    number = ParsePgNumber(*cell);
  }
  if (!number) ++drops_.invalid_value;
  return number;
}

void FamilyBuilder::AppendSeries(std::string& out, std::string_view name, std::string_view extra) {
  if (label_text_.empty() && !labels_.empty()) {
    for (std::size_t l = 0; l < labels_.size(); ++l) {
      if (l > 0) label_text_ += ',';
      label_text_ += labels_[l].name;
      label_text_ += "=\"";
      AppendLabelValue(labels_[l].value, label_text_);
      label_text_ += '"';
    }
  }
  out += name;
  if (!labels_.empty() || !extra.empty()) {
    out += '{';
    out += label_text_;
    if (!extra.empty()) {
      if (!labels_.empty()) out += ',';
      out += extra;
    }
    out += '}';
  }
  out += ' ';
}

bool FamilyBuilder::AppendHistogram(const Table& table, int row, std::size_t value,
                                    const std::array<int, 3>& columns) {
  auto& family = families_[value];
  const auto bounds_cell = table.Get(row, value_columns_[value]);
  const auto counts_cell = table.Get(row, columns[0]);
  const auto sum_cell = table.Get(row, columns[1]);
  const auto count_cell = table.Get(row, columns[2]);
  if (!bounds_cell || !counts_cell || !sum_cell || !count_cell) return false;
  const auto bounds = ParsePgArray(*bounds_cell);
  const auto counts = ParsePgArray(*counts_cell);
  const auto sum = ParsePgNumber(*sum_cell);
  const auto count = ParsePgNumber(*count_cell);
  if (!bounds || !counts || bounds->size() != counts->size() || !sum || !count) return false;
  // Written in full before any of it goes into the family, so a bad element leaves nothing.
  std::string lines;
  const std::string bucket = family.name + "_bucket";
  for (std::size_t b = 0; b < bounds->size(); ++b) {
    const auto le = (*bounds)[b] ? ParsePgNumber(*(*bounds)[b]) : std::nullopt;
    const auto n = (*counts)[b] ? ParsePgNumber(*(*counts)[b]) : std::nullopt;
    if (!le || !n) return false;
    std::string extra = "le=\"";
    AppendSampleValue(*le, extra);
    extra += '"';
    AppendSeries(lines, bucket, extra);
    AppendSampleValue(*n, lines);
    lines += '\n';
  }
  AppendSeries(lines, bucket, "le=\"+Inf\"");
  AppendSampleValue(*count, lines);
  lines += '\n';
  AppendSeries(lines, family.name + "_sum");
  AppendSampleValue(*sum, lines);
  lines += '\n';
  AppendSeries(lines, family.name + "_count");
  AppendSampleValue(*count, lines);
  lines += '\n';
  family.samples += lines;
  return true;
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
