#pragma once

#include <string>
#include <vector>

#include "process.h"

namespace pgtally::testing {

// The pgtally binary of this build, started for a test on a free loopback port (the flag
// --web.listen-address=127.0.0.1:0 comes first; `flags` follow). The destructor stops it with
// SIGTERM and expects a clean exit, as a test that leaves it running would.
class PgtallyProcess {
 public:
  PgtallyProcess(std::vector<std::string> flags, const std::vector<std::string>& env);
  ~PgtallyProcess();
  PgtallyProcess(const PgtallyProcess&) = delete;
  PgtallyProcess& operator=(const PgtallyProcess&) = delete;

  // http://127.0.0.1:PORT, or "" when it did not start: check with ASSERT_FALSE(url().empty()).
  const std::string& url() const { return url_; }
  int port() const;
  Process& process() { return process_; }
  std::string Stderr() const { return process_.Stderr(); }

 private:
  static std::vector<std::string> Argv(std::vector<std::string> flags);

  Process process_;
  std::string url_;
};

}  // namespace pgtally::testing
