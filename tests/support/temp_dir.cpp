#include "temp_dir.h"

#include <stdlib.h>

#include <fstream>
#include <stdexcept>

#include "os_util.h"

namespace pgtally::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "pgtally-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw SystemError("mkdtemp " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& name, std::string_view text) const {
  const auto file = path_ / name;
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("could not write " + file.string());
  return file.string();
}

}  // namespace pgtally::testing
