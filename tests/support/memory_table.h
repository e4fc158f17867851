#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/collect/family_builder.h"

namespace pgtally::testing {

// An in-memory query result for FamilyBuilder tests; std::nullopt cells are NULL.
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

}  // namespace pgtally::testing
