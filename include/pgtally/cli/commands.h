#pragma once

#include <string_view>

#include "pgtally/cli/options.h"

namespace pgtally {

// pgtally's subcommands, for people writing collectors: pgtally COMMAND [flags] [arguments].
// Each reads the same config file, collector paths and environment as the exporter, writes its
// results to standard output and problems to standard error, and returns the process's exit
// code: 0 when all is well, 1 when it found problems, 2 when it was called wrongly.
//
//   check           validate the config and collector files, and with a database, each query
//   run-collector   run one collector once and print its series with the time taken
//   convert         rewrite postgres_exporter or pg_exporter collector files in pgtally's format
//   test            run collectors on the fixture rows of test files, compare with expectations
//   docs            print the metrics reference (docs/metrics.md) of the loaded collectors

// Whether `word` names a subcommand.
bool IsCommand(std::string_view word);

// Runs the subcommand flags.command names.
int RunCommand(const Flags& flags);

int RunCheckCommand(const Flags& flags);
int RunCollectorCommand(const Flags& flags);
int RunConvertCommand(const Flags& flags);
int RunTestCommand(const Flags& flags);
int RunDocsCommand(const Flags& flags);

}  // namespace pgtally
