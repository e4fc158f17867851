#include "promtool.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace pgtally::testing {

std::string PromtoolCheckMetrics(const std::string& exposition) {
  const auto path =
      std::filesystem::temp_directory_path() / ("pgtally-metrics-" + std::to_string(getpid()));
  std::ofstream(path) << exposition;
  const std::string command = "promtool check metrics < " + path.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("could not run: " + command);
  std::string output;
  char buffer[4096];
  while (const size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  std::filesystem::remove(path);
  if (status != 0) output += "\n(promtool exit status " + std::to_string(status) + ")";
  return output;
}

}  // namespace pgtally::testing
