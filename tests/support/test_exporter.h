#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/collect/exporter.h"

namespace pgtally::testing {

// An Exporter for `dsn` running the collectors in `yaml` (a collector file's text), plus the
// built-in set when `builtin` is true, with `parameters` overriding collector parameters as the
// config file's collectors.parameters does. Fails the test on invalid collectors.
std::unique_ptr<Exporter> MakeExporter(const std::string& dsn, std::string_view yaml,
                                       bool builtin = false, TargetOptions options = {},
                                       const std::vector<ParameterOverride>& parameters = {});

// One scrape's exposition with a generous budget.
std::string ScrapeBody(Exporter& exporter, Millis budget = Millis(20000));

}  // namespace pgtally::testing
