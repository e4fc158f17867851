#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "pgtally/collect/exporter.h"

namespace pgtally::testing {

// An Exporter for `dsn` running the collectors in `yaml` (a collector file's text), plus the
// built-in set when `builtin` is true. Fails the test on invalid collectors.
std::unique_ptr<Exporter> MakeExporter(const std::string& dsn, std::string_view yaml,
                                       bool builtin = false, TargetOptions options = {});

// One scrape's exposition with a generous budget.
std::string ScrapeBody(Exporter& exporter, Millis budget = Millis(20000));

}  // namespace pgtally::testing
