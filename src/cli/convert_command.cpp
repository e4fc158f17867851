// pgtally convert: other exporters' collector files, printed in pgtally's format.

#include <fmt/format.h>

#include <cstdio>

#include "pgtally/cli/commands.h"
#include "pgtally/config/collector_loader.h"
#include "pgtally/config/collector_writer.h"
#include "pgtally/config/config_file.h"

namespace pgtally {
namespace {

void Load(const std::string& path, CollectorFormat format, LoadedCollectors& into) {
  const auto text = ReadConfigFile(path, into.errors);
  if (!text) return;
  auto loaded = ParseCollectorFile(*text, path, format);
  std::move(loaded.collectors.begin(), loaded.collectors.end(),
            std::back_inserter(into.collectors));
  into.errors.insert(into.errors.end(), loaded.errors.begin(), loaded.errors.end());
}

}  // namespace

int RunConvertCommand(const Flags& flags) {
  if (flags.arguments.empty() && flags.extend_query_paths.empty()) {
    std::fputs(
        "usage: pgtally convert FILE... (postgres_exporter or pg_exporter collector files, told "
        "apart by their keys; --extend.query-path FILE reads FILE as postgres_exporter's)\n",
        stderr);
    return 2;
  }
  LoadedCollectors loaded;
  for (const auto& path : flags.arguments) Load(path, CollectorFormat::kAuto, loaded);
  for (const auto& path : flags.extend_query_paths) {
    Load(path, CollectorFormat::kPostgresExporter, loaded);
  }
  CheckUniqueNames(loaded.collectors, loaded.errors);
  for (const auto& error : loaded.errors) {
    std::fprintf(stderr, "%s\n", error.ToString().c_str());
  }
  if (!loaded.ok()) {
    std::fprintf(stderr, "pgtally: %zu problem(s); nothing converted\n", loaded.errors.size());
    return 1;
  }
  const std::string text = WriteCollectorFile(loaded.collectors);
  // What is printed must load as it was read; anything else is a bug here, not in the input.
  if (const auto reread = ParseCollectorFile(text, "converted"); !reread.ok()) {
    for (const auto& error : reread.errors) {
      std::fprintf(stderr, "pgtally: internal error: %s\n", error.ToString().c_str());
    }
    return 1;
  }
  std::fputs(text.c_str(), stdout);
  std::fprintf(stderr, "pgtally: converted %zu collector(s)\n", loaded.collectors.size());
  return 0;
}

}  // namespace pgtally
