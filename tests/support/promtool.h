#pragma once

#include <string>

namespace pgtally::testing {

// Runs `promtool check metrics` (the real Prometheus tool) on an exposition and returns what it
// printed, with its exit code on a last line when it failed: "" means valid and no lint warning.
std::string PromtoolCheckMetrics(const std::string& exposition);

}  // namespace pgtally::testing
