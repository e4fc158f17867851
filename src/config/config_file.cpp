#include "pgtally/config/config_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace pgtally {

std::optional<std::string> ReadConfigFile(const std::string& path, Diagnostics& errors) {
  const auto fail = [&](std::string message) {
    errors.push_back({{path, 0, 0}, std::move(message)});
    return std::nullopt;
  };
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error) return fail("cannot read the file: " + error.message());
  if (!std::filesystem::is_regular_file(status)) return fail("not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(fmt::format("cannot read the file: {}", std::strerror(errno)));
  // Read in chunks and stop past the limit: a file that grows while read is refused too.
  std::string text;
  char chunk[65536];
  while (text.size() <= kMaxConfigFileBytes && in.read(chunk, sizeof chunk).gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) return fail("cannot read the file");
  if (text.size() > kMaxConfigFileBytes) {
    return fail(fmt::format("the file is larger than {} MiB; is it really a configuration file?",
                            kMaxConfigFileBytes >> 20));
  }
  return text;
}

}  // namespace pgtally
