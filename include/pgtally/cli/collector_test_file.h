#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pgtally/config/collector_spec.h"
#include "pgtally/config/diagnostic.h"

namespace pgtally {

// Test files for collectors (`pgtally test`): X.test.yaml beside the collector file X.yaml holds
// cases, each the result rows of one collector's query and the exposition text they must turn
// into. The rows go through the FamilyBuilder that scrapes use, so labels, values, scale,
// null_value, max_series and duplicate handling apply exactly as they do against a database.
// The format is in docs/authoring.md ("pgtally test").

// One case: rows of one collector's query and what must come of them.
struct CollectorTestCase {
  std::string name;
  SourceLocation location;  // of the case in the test file
  std::string collector;
  std::optional<int> server_version;  // checked against the collector's versions when set
  std::string database = "postgres";  // the datname label of scope: database collectors
  // The result's columns: the test's `columns`, else every key of the rows in order of first use.
  std::vector<std::string> columns;
  // Cells by column index; nullopt is NULL.
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::optional<std::string> expect;        // the exposition text
  std::optional<std::string> expect_error;  // or: the mapping error's text (a substring)
};

// A parsed test file with the collectors its cases refer to.
struct CollectorTestFile {
  std::string path;
  std::vector<std::string> collector_files;  // `collectors`, else X.yaml beside X.test.yaml
  std::vector<CollectorSpec> collectors;
  std::vector<CollectorTestCase> cases;
};

// Reads a test file and its collector files. Every problem in either (bad YAML, an unknown key
// or collector, a version the collector does not run on) goes to `errors` with its place.
CollectorTestFile LoadCollectorTestFile(const std::string& path, Diagnostics& errors);

// The test files `argument` names: a test file itself, the X.test.yaml beside a collector file
// X.yaml, or every *.test.yaml of a directory (in name order). Adds an error when there are none.
std::vector<std::string> CollectorTestFiles(const std::string& argument, Diagnostics& errors);

// What running one case gave.
struct CollectorTestResult {
  bool passed = false;
  std::string output;                // the exposition text the rows made
  std::optional<std::string> error;  // the mapping error, if there was one
  std::string dropped;               // samples left out and why ("2 duplicate"), empty when none
};

// Runs `test` through the mapping of `spec` (the case's collector).
CollectorTestResult RunCollectorTest(const CollectorSpec& spec, const CollectorTestCase& test);

// `expected` and `got` compared line by line, as a unified diff with three lines of context
// ("-" expected, "+" got); empty when they are equal. Trailing whitespace on lines and trailing
// empty lines are not differences.
std::string LineDiff(const std::string& expected, const std::string& got);

}  // namespace pgtally
