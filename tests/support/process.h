#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace pgtally::testing {

// A child process with its stdout and stderr captured in files. The destructor kills it.
class Process {
 public:
  // Starts `argv` (argv[0] looked up in PATH when it has no slash) with the current environment
  // plus `env` ("NAME=value").
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void Signal(int signal) const;
  pid_t pid() const { return pid_; }
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

// Polls `condition` every 50 ms until it holds; returns whether it did within `limit`.
bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit);

// http://127.0.0.1:PORT of a running pgtally, read from its start-up log line (it must listen on
// 127.0.0.1); "" when that line does not come within 10 s.
std::string PgtallyUrl(const Process& pgtally);

}  // namespace pgtally::testing
