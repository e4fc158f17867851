#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace pgtally::testing {

// A fresh directory under /tmp, removed with everything in it by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `text` to `name` (a path relative to the directory; parents are created). Returns the
  // file's path.
  std::string Write(const std::string& name, std::string_view text) const;
  std::string path() const { return path_.string(); }
  // The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace pgtally::testing
