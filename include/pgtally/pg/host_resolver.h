#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pgtally/pg/deadline_calls.h"

namespace pgtally::pg {

// A host name's addresses as text ("10.0.0.7", "::1"), or an empty list with `error` set.
using ResolveFunction =
    std::function<std::vector<std::string>(const std::string& host, std::string& error)>;

// What to add to a connection string so that libpq need not look a host name up.
struct ResolvedHosts {
  // host, hostaddr and port lists of equal length, to pass after the user's parameters; empty
  // when there is nothing to resolve (no host name, a hostaddr given, a service file).
  std::vector<std::pair<std::string, std::string>> parameters;
  std::optional<std::string> error;  // no host could be resolved in time
};

// Resolves the host names of a connection string within a deadline. libpq looks names up inside
// PQconnectPoll, synchronously and with the system resolver's own timeouts, so a slow DNS server
// held a /probe with a 3 s budget for 10 s. Here each name is looked up through DeadlineCalls (at
// most `max_outstanding` lookups at once, late ones included), and libpq gets the addresses as
// `hostaddr` beside `host`, which stays for TLS verification and .pgpass.
//
// Handles key=value strings and postgresql:// URIs (PQconninfoParse), PGHOST/PGHOSTADDR/PGPORT
// when the string has none, comma-separated hosts (each name's addresses in turn, the hosts in
// their order, each with its port), IP literals and Unix-socket directories (no lookup). A host
// that does not resolve in time is left out, as libpq skips a host it cannot reach; only when
// none is left is it an error. A `service` is left to libpq (its file may name the host).
// Thread-safe.
class HostResolver {
 public:
  HostResolver(ResolveFunction resolve, int max_outstanding);

  ResolvedHosts Resolve(const std::string& conninfo,
                        std::chrono::steady_clock::time_point deadline);

  // getaddrinfo, eight lookups at once at most; shared by every connection.
  static HostResolver& System();

 private:
  ResolveFunction resolve_;
  DeadlineCalls lookups_;
};

// Whether `host` is written as an IPv4 or IPv6 address.
bool IsIpLiteral(const std::string& host);

}  // namespace pgtally::pg
