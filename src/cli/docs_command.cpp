// pgtally docs: the metrics reference (docs/metrics.md's format) of the collectors the config
// and flags load, so that users get the same reference for their own collectors.

#include <cstdio>

#include "pgtally/cli/commands.h"
#include "pgtally/cli/exporter_setup.h"
#include "pgtally/cli/metrics_reference.h"
#include "pgtally/log/logging.h"

namespace pgtally {

int RunDocsCommand(const Flags& flags) {
  if (flags.format) {
    std::fprintf(stderr, "pgtally %s: --format is for pgtally check only\n", flags.command.c_str());
    return 2;
  }
  if (!flags.arguments.empty()) {
    std::fprintf(stderr,
                 "pgtally docs: unexpected argument \"%s\"; name collector files with "
                 "--collectors.path\n",
                 flags.arguments.front().c_str());
    return 2;
  }
  // Warnings while loading (an unknown --collectors.disable) go to stderr, never into the text.
  SetupLogging("info", LogFormat::kLogfmt);
  ExporterSetup setup;
  if (const auto errors = LoadSetup(flags, ReadEnvironment(), setup); !errors.empty()) {
    for (const auto& error : errors) std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "pgtally docs: %zu problem(s) in the configuration\n", errors.size());
    return 1;
  }
  const std::string reference = MetricsReference(setup.collectors);
  std::fwrite(reference.data(), 1, reference.size(), stdout);
  return 0;
}

}  // namespace pgtally
