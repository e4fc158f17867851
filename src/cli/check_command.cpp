#include <cstdio>

#include "pgtally/cli/commands.h"

namespace pgtally {

int RunCheckCommand(const Flags& flags) {
  std::fprintf(stderr, "pgtally: %s is not implemented yet\n", flags.command.c_str());
  return 2;
}

}  // namespace pgtally
