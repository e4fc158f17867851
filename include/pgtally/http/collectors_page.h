#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "pgtally/collect/exporter.h"
#include "pgtally/config/collector_spec.h"

namespace pgtally {

// The /collectors page: every collector loaded for the main target, where it was defined, the
// query variant the server's version picks, and how it did in the last scrape (state, why it
// was skipped or failed, duration, rows, series, cache). Drawn from an Exporter::CollectorsView
// alone, so showing it never runs a query. Error messages come already masked from the reports
// (CollectorReport::error); everything from files or the database is escaped here.

// The page as HTML: one table row per collector.
std::string CollectorsHtml(const Exporter::CollectorsView& view, std::string_view target);
// The page as a JSON object for machines; docs/authoring.md lists its fields.
std::string CollectorsJson(const Exporter::CollectorsView& view, std::string_view target);

// "variant 2 of 3 (min_version 150000)": the spec's query `index` (0-based) and its range.
std::string VariantText(const CollectorSpec& spec, std::size_t index);

// `text` safe in HTML text and in quoted attribute values: < > & " ' become entities.
std::string HtmlEscape(std::string_view text);

}  // namespace pgtally
