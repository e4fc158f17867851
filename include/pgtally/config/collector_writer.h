#pragma once

#include <string>
#include <vector>

#include "pgtally/config/collector_spec.h"

namespace pgtally {

// Writes collectors as a collector file in pgtally's format (version 1), the inverse of the
// loader: loading the text gives the same collectors back. Settings at their defaults are left
// out. This is how `pgtally convert` turns other exporters' files into pgtally's.
std::string WriteCollectorFile(const std::vector<CollectorSpec>& collectors);

}  // namespace pgtally
