// pgtally test FILE...: runs the cases of collector test files (X.test.yaml beside X.yaml)
// through the real mapping code, without a database, and compares the exposition text.

#include <fmt/format.h>

#include <cstdio>

#include "pgtally/cli/collector_test_file.h"
#include "pgtally/cli/commands.h"

namespace pgtally {
namespace {

void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

std::string Indented(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out += "    " + text.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

// Why a case failed, under its FAIL line.
std::string Explain(const CollectorTestCase& test, const CollectorTestResult& result) {
  std::string text;
  if (test.expect_error) {
    text = result.error ? fmt::format("expected an error containing \"{}\", got: {}\n",
                                      *test.expect_error, *result.error)
                        : fmt::format(
                              "expected an error containing \"{}\"; the rows mapped "
                              "without one, to:\n{}",
                              *test.expect_error, result.output);
  } else if (result.error) {
    text = fmt::format("the mapping failed: {}\n", *result.error);
  } else {
    text = LineDiff(*test.expect, result.output);
  }
  if (!result.dropped.empty()) text += fmt::format("samples left out: {}\n", result.dropped);
  return Indented(text);
}

}  // namespace

int RunTestCommand(const Flags& flags) {
  if (flags.format) {
    std::fprintf(stderr, "pgtally %s: --format is for pgtally check only\n", flags.command.c_str());
    return 2;
  }
  if (flags.arguments.empty()) {
    std::fprintf(stderr,
                 "usage: pgtally test FILE...  (collector test files X.test.yaml, collector files "
                 "X.yaml with a test file beside them, or directories)\n");
    return 2;
  }
  Diagnostics errors;
  std::vector<std::string> files;
  for (const auto& argument : flags.arguments) {
    for (auto& file : CollectorTestFiles(argument, errors)) files.push_back(std::move(file));
  }
  std::size_t problems = 0;
  const auto report = [&problems](const Diagnostics& found) {
    for (const auto& error : found) Print(fmt::format("ERROR {}\n", error.ToString()));
    problems += found.size();
  };
  report(errors);
  std::size_t passed = 0;
  std::size_t failed = 0;
  for (const auto& path : files) {
    Diagnostics file_errors;
    const CollectorTestFile file = LoadCollectorTestFile(path, file_errors);
    report(file_errors);
    for (const auto& test : file.cases) {
      // Cases are only left when every collector they name was found (see LoadCollectorTestFile).
      const CollectorSpec* spec = nullptr;
      for (const auto& collector : file.collectors) {
        if (collector.name == test.collector) spec = &collector;
      }
      if (!spec) continue;
      const CollectorTestResult result = RunCollectorTest(*spec, test);
      if (result.passed) {
        ++passed;
        Print(fmt::format("ok   {}: {}\n", path, test.name));
      } else {
        ++failed;
        Print(fmt::format("FAIL {}: {}\n{}", test.location.ToString(), test.name,
                          Explain(test, result)));
      }
    }
  }
  Print(fmt::format("{} passed, {} failed{} ({} test file{})\n", passed, failed,
                    problems == 0 ? "" : fmt::format(", {} problem(s) in test files", problems),
                    files.size(), files.size() == 1 ? "" : "s"));
  return failed == 0 && problems == 0 ? 0 : 1;
}

}  // namespace pgtally
