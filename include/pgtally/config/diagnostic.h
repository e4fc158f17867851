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

// Where a multi-line value, such as a query, is in its file.
struct TextPlacement {
  SourceLocation start;  // of the value's first character, or of its node when not verbatim
  // Whether the value's lines are in the file exactly as written: line k at line start.line+k-1,
  // the first from start.column and the others from `indent_column`. True for a literal block
  // (`|`) and for a value on one line; false for folded, multi-line plain or escaped text.
  bool verbatim = false;
  int indent_column = 0;
};

// One problem found while loading configuration, reported as "file:line:column: message".
struct Diagnostic {
  SourceLocation where;
  std::string message;

  std::string ToString() const;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace pgtally
