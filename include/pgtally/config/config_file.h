#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "pgtally/config/diagnostic.h"

namespace pgtally {

// Configuration files larger than this are refused: they are mistakes (a log, a binary, a
// device), and reading them whole would cost that much memory. The built-in collectors total
// about 100 KB.
inline constexpr std::size_t kMaxConfigFileBytes = 16 << 20;

// The text of the configuration file at `path`. Nullopt, with the reason added to `errors`,
// when it cannot be read, is not a regular file, or is larger than kMaxConfigFileBytes.
std::optional<std::string> ReadConfigFile(const std::string& path, Diagnostics& errors);

}  // namespace pgtally
