#include "os_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgtally::testing {

std::runtime_error SystemError(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SystemError("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  socklen_t length = sizeof address;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved_errno = errno;
  close(fd);
  errno = saved_errno;
  if (!ok) throw SystemError("binding a free port on 127.0.0.1");
  return ntohs(address.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ReadTail(const std::string& path, std::size_t bytes) {
  const std::string all = ReadFile(path);
  return all.size() > bytes ? "..." + all.substr(all.size() - bytes) : all;
}

std::optional<std::pair<uid_t, gid_t>> ServerUserOwning(const std::string& dir) {
  if (geteuid() != 0) return std::nullopt;
  const passwd* user = getpwnam("postgres");
  if (user == nullptr) {
    throw std::runtime_error(
        "running as root, the test servers must run as the `postgres` system user, which does not "
        "exist; install postgresql-15 (scripts/install-deps.sh)");
  }
  if (chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) throw SystemError("chown " + dir);
  return std::make_pair(user->pw_uid, user->pw_gid);
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::optional<std::pair<uid_t, gid_t>>& as) {
  // Everything the child needs is prepared before fork(): the test process may have threads (an
  // exporter under test), so the child may only make async-signal-safe calls.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw SystemError("fork");
  if (pid == 0) {
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(125);
    close_range(3, ~0U, 0);
    // "/" because the server user may not be allowed into the caller's working directory.
    if (chdir("/") != 0) _exit(125);
    if (as && (setgroups(0, nullptr) != 0 || setgid(as->second) != 0 || setuid(as->first) != 0)) {
      _exit(126);
    }
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

}  // namespace pgtally::testing
