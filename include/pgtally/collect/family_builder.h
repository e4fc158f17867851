#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "pgtally/collect/exposition.h"
#include "pgtally/config/collector_spec.h"

namespace pgtally {

// A query result as the builder sees it: rows of text cells, addressed by column name.
class Table {
 public:
  virtual ~Table() = default;
  virtual int rows() const = 0;
  // The column's index, or -1 when there is none.
  virtual int Column(const std::string& name) const = 0;
  // The cell's text, or nullopt for NULL.
  virtual std::optional<std::string_view> Get(int row, int column) const = 0;
};

// A query result held in memory: `pgtally test`'s fixture rows, and tests'. nullopt cells are
// NULL; every row has one cell per column.
class MemoryTable final : public Table {
 public:
  MemoryTable(std::vector<std::string> columns,
              std::vector<std::vector<std::optional<std::string>>> rows)
      : columns_(std::move(columns)), rows_(std::move(rows)) {}
  int rows() const override { return static_cast<int>(rows_.size()); }
  int Column(const std::string& name) const override {
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      if (columns_[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
  std::optional<std::string_view> Get(int row, int column) const override {
    const auto& cell = rows_[static_cast<std::size_t>(row)][static_cast<std::size_t>(column)];
    if (!cell) return std::nullopt;
    return std::string_view(*cell);
  }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

// Samples a builder left out, by reason. They are counted, never fatal.
struct DropCounts {
  std::size_t duplicate = 0;      // a row repeated another row's label values
  std::size_t invalid_value = 0;  // a value cell that is not a number
  std::size_t limit = 0;          // past the collector's max_series
  std::size_t too_large = 0;      // a label value, or all of a series' labels, over the bounds

  std::size_t total() const { return duplicate + invalid_value + limit + too_large; }
};

// The bounds on what one series' labels may hold, in bytes as the server sent them. A label
// value this long is not a name but a document (a 50 MB value cost 423 MB at the peak and 65 MB
// kept after); its row is dropped and counted as too_large. 8 KiB is eight times the query text
// pg_stat_statements keeps by default (track_activity_query_size, 1 KiB), so ordinary collectors
// never meet it.
inline constexpr std::size_t kMaxLabelValueBytes = 8 * 1024;
inline constexpr std::size_t kMaxSeriesLabelBytes = 32 * 1024;

// Turns the rows of one collector into metric families, one per value column, in the order of
// the spec. Rows from several databases can be added in turn (each with its own extra labels);
// a repeated label set is dropped and counted rather than emitted twice. Memory stays in
// proportion to max_series however many rows come: past the limit rows are only counted, and a
// row whose labels exceed kMaxLabelValueBytes or kMaxSeriesLabelBytes is only counted.
class FamilyBuilder {
 public:
  explicit FamilyBuilder(const CollectorSpec& spec);

  // Starts the rows of one result, whose columns `table` has. `extra_labels` (such as datname)
  // come first on every series. Returns an error message when a declared column is missing;
  // AddRow must not be called then.
  std::optional<std::string> Begin(const Table& table,
                                   std::vector<prometheus::ClientMetric::Label> extra_labels);
  // Adds one row of a table with the columns Begin saw: rows can be streamed one at a time.
  void AddRow(const Table& table, int row);
  // Begin, then every row of `table`.
  std::optional<std::string> Add(const Table& table,
                                 std::vector<prometheus::ClientMetric::Label> extra_labels);

  const DropCounts& drops() const { return drops_; }
  std::size_t series() const { return series_; }
  // The families built so far, their samples as exposition lines; families without samples are
  // left out.
  std::vector<FamilyText> Take();

 private:
  const CollectorSpec& spec_;
  // Set by Begin: the columns of the spec's labels and values, and the label set being filled,
  // extra labels first.
  std::vector<int> label_columns_;
  std::vector<int> value_columns_;
  // For each histogram value, in order: its _bucket, _sum and _count columns.
  std::vector<std::array<int, 3>> histogram_columns_;
  std::vector<prometheus::ClientMetric::Label> labels_;
  std::size_t extra_labels_ = 0;
  std::string key_;
  std::string label_text_;  // the row's labels as written between the braces
  std::vector<FamilyText> families_;
  std::unordered_set<std::string> seen_;
  DropCounts drops_;
  std::size_t series_ = 0;

  // The value of one cell as `value` reads it; nullopt when it gives no sample (a NULL without
  // on_null, or text that is not a number, which is counted).
  std::optional<double> ReadValue(const ValueSpec& value, std::optional<std::string_view> cell);
  // Writes "name{labels} " for the row being added, with `extra` (such as le="1") last.
  void AppendSeries(std::string& out, std::string_view name, std::string_view extra = {});
  // Adds the lines of the histogram in spec value `value` (whose _bucket, _sum and _count are
  // `columns`) for one row; false when the cells do not make a histogram.
  bool AppendHistogram(const Table& table, int row, std::size_t value,
                       const std::array<int, 3>& columns);
};

}  // namespace pgtally
