#pragma once

#include <string>
#include <vector>

#include "pgtally/config/collector_spec.h"

namespace pgtally {

// The metrics reference of `collectors` in Markdown: the parameters they declare, then each
// collector with its notes (scope, role, versions, cache), the catalog views and functions it
// reads, and a table of its metrics. docs/metrics.md is this text for the built-in collectors
// (`pgtally docs --no-collectors.builtin --collectors.path queries`), byte for byte; a test
// keeps the two equal. Collector files under a `queries/` directory are named from there on,
// so the text does not depend on where the tree was checked out.
std::string MetricsReference(const std::vector<CollectorSpec>& collectors);

}  // namespace pgtally
