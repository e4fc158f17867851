#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// Small operating-system helpers shared by the test fixtures that start servers.
namespace pgtally::testing {

// A runtime_error of `what` followed by strerror(errno).
std::runtime_error SystemError(const std::string& what);

// A free ephemeral port on 127.0.0.1. Another process may take it before the caller binds it;
// callers that start a server on it retry on a fresh port when that happens.
int FreeLoopbackPort();

// The whole file, or "" when it cannot be read.
std::string ReadFile(const std::string& path);

// The last `bytes` of a file (prefixed with "..." when cut), or "" when it cannot be read: for
// failure messages that quote a server log.
std::string ReadTail(const std::string& path, std::size_t bytes = 4000);

// The uid and gid to run a server as. PostgreSQL and PgBouncer refuse to run as root, so when the
// tests run as root that is the `postgres` system user, and it is given `dir`; otherwise nullopt
// (run as ourselves). Throws when running as root and there is no `postgres` user.
std::optional<std::pair<uid_t, gid_t>> ServerUserOwning(const std::string& dir);

// Starts argv (looked up in PATH) with stdin from /dev/null and stdout and stderr appended to
// `log`, in "/", as `as` when given, with no file descriptors of ours beyond 0-2 (a server lives
// on after the test's sockets close). Returns its pid. Exit codes 125 and 126 mean the child could
// not be set up, 127 that argv[0] could not be executed.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::optional<std::pair<uid_t, gid_t>>& as);

}  // namespace pgtally::testing
