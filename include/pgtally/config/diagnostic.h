#pragma once

#include <string>
#include <vector>

namespace pgtally {

// A place in a configuration file. Lines and columns are 1-based; 0 means unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:column", leaving out the parts that are unknown.
  std::string ToString() const;
};

// One problem found while loading configuration, reported as "file:line:column: message".
struct Diagnostic {
  SourceLocation where;
  std::string message;

  std::string ToString() const;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace pgtally
