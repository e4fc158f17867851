#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace pgtally::testing {

// A child process with its stdout and stderr captured in files. The destructor kills it.
class Process {
 public:
  // Starts `argv` with the current environment plus `env` ("NAME=value").
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void Signal(int signal) const;
  // The exit code, or -1 if it did not exit within `limit` (or died of a signal).
  int Wait(std::chrono::milliseconds limit);
  std::string Stdout() const;
  std::string Stderr() const;
  // Polls stderr until it contains `text`; returns whether it did within `limit`.
  bool WaitForStderr(const std::string& text, std::chrono::milliseconds limit) const;

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string stdout_path_;
  std::string stderr_path_;
};

}  // namespace pgtally::testing
