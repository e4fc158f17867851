#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <thread>

#include "os_util.h"

namespace pgtally::testing {
namespace {}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  static int counter = 0;
  const std::string base =
      "/tmp/pgtally-proc-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  stdout_path_ = base + ".out";
  stderr_path_ = base + ".err";
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int out = open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& entry : env) putenv(const_cast<char*>(entry.c_str()));
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (!exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unlink(stdout_path_.c_str());
  unlink(stderr_path_.c_str());
}

void Process::Signal(int signal) const { kill(pid_, signal); }

int Process::Wait(std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string Process::Stdout() const { return ReadFile(stdout_path_); }
std::string Process::Stderr() const { return ReadFile(stderr_path_); }

bool Process::WaitForStderr(const std::string& text, std::chrono::milliseconds limit) const {
  return Eventually([&] { return Stderr().find(text) != std::string::npos; }, limit);
}

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string PgtallyUrl(const Process& pgtally) {
  if (!pgtally.WaitForStderr("pgtally started", std::chrono::seconds(10))) return "";
  std::smatch match;
  const std::string log = pgtally.Stderr();
  if (!std::regex_search(log, match, std::regex("ports\"?[=:]\"?([0-9]+)"))) return "";
  return "http://127.0.0.1:" + match[1].str();
}

}  // namespace pgtally::testing
