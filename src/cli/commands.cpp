#include "pgtally/cli/commands.h"

#include <array>
#include <cstdio>

namespace pgtally {
namespace {

struct Command {
  std::string_view name;
  int (*run)(const Flags&);
};

constexpr std::array kCommands{
    Command{"check", RunCheckCommand},     Command{"run-collector", RunCollectorCommand},
    Command{"convert", RunConvertCommand}, Command{"test", RunTestCommand},
    Command{"docs", RunDocsCommand},
};

}  // namespace

bool IsCommand(std::string_view word) {
  for (const auto& command : kCommands) {
    if (command.name == word) return true;
  }
  return false;
}

int RunCommand(const Flags& flags) {
  for (const auto& command : kCommands) {
    if (command.name == flags.command) return command.run(flags);
  }
  std::fprintf(stderr, "pgtally: unknown command \"%s\"; see --help\n", flags.command.c_str());
  return 2;
}

}  // namespace pgtally
