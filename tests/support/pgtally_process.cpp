#include "pgtally_process.h"

#include <gtest/gtest.h>

#include <csignal>

namespace pgtally::testing {

std::vector<std::string> PgtallyProcess::Argv(std::vector<std::string> flags) {
  flags.insert(flags.begin(), {PGTALLY_BINARY, "--web.listen-address=127.0.0.1:0"});
  return flags;
}

PgtallyProcess::PgtallyProcess(std::vector<std::string> flags, const std::vector<std::string>& env)
    : process_(Argv(std::move(flags)), env), url_(PgtallyUrl(process_)) {}

PgtallyProcess::~PgtallyProcess() {
  process_.Signal(SIGTERM);
  EXPECT_EQ(process_.Wait(std::chrono::seconds(15)), 0) << process_.Stderr();
}

int PgtallyProcess::port() const { return std::stoi(url_.substr(url_.rfind(':') + 1)); }

}  // namespace pgtally::testing
