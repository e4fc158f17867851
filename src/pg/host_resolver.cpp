#include "pgtally/pg/host_resolver.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstdlib>
#include <map>
#include <memory>

namespace pgtally::pg {
namespace {

// A name with more addresses than this is tried on its first ones only.
constexpr std::size_t kMaxAddressesPerHost = 8;

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    items.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += ',';
    text += items[i];
  }
  return text;
}

// The connection parameters that decide where to connect, as libpq would take them: from the
// string, else from the environment.
std::map<std::string, std::string> WhereToConnect(const std::string& conninfo) {
  std::map<std::string, std::string> found;
  struct Deleter {
    void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
  };
  // A string that is neither key=value nor a URI is a database name: nothing in it says where.
  if (conninfo.find('=') != std::string::npos || conninfo.starts_with("postgres")) {
    std::unique_ptr<PQconninfoOption, Deleter> options(PQconninfoParse(conninfo.c_str(), nullptr));
    if (!options) return {{"unparsable", "1"}};
    for (const auto* option = options.get(); option->keyword; ++option) {
      if (option->val && *option->val) found[option->keyword] = option->val;
    }
  }
  for (const auto& [key, variable] : {std::pair{"host", "PGHOST"},
                                      {"hostaddr", "PGHOSTADDR"},
                                      {"port", "PGPORT"},
                                      {"service", "PGSERVICE"}}) {
    if (found.contains(key)) continue;
    if (const char* value = std::getenv(variable); value && *value) found[key] = value;
  }
  return found;
}

std::vector<std::string> GetAddrInfo(const std::string& host, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int status = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (status != 0) {
    error = fmt::format("could not translate host name \"{}\" to address: {}", host,
                        gai_strerror(status));
    return {};
  }
  std::vector<std::string> addresses;
  for (const addrinfo* entry = list; entry; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (entry->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(entry->ai_addr)->sin_addr;
    } else if (entry->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(entry->ai_addr)->sin6_addr;
    }
    if (!raw || !inet_ntop(entry->ai_family, raw, text, sizeof text)) continue;
    addresses.emplace_back(text);
  }
  freeaddrinfo(list);
  if (addresses.empty()) error = fmt::format("host name \"{}\" has no address", host);
  return addresses;
}

}  // namespace

bool IsIpLiteral(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

HostResolver::HostResolver(ResolveFunction resolve, int max_outstanding)
    : resolve_(std::move(resolve)), lookups_(max_outstanding) {}

HostResolver& HostResolver::System() {
  static HostResolver resolver(GetAddrInfo, 8);
  return resolver;
}

ResolvedHosts HostResolver::Resolve(const std::string& conninfo,
                                    std::chrono::steady_clock::time_point deadline) {
  const auto where = WhereToConnect(conninfo);
  const auto value = [&](const char* key) {
    const auto it = where.find(key);
    return it == where.end() ? std::string() : it->second;
  };
  // An unparsable string is libpq's to report; a hostaddr needs no lookup; a service file may
  // name the host.
  if (where.contains("unparsable") || !value("hostaddr").empty() || !value("service").empty() ||
      value("host").empty()) {
    return {};
  }
  const auto hosts = SplitList(value("host"));
  const auto ports = SplitList(value("port"));
  if (ports.size() != 1 && ports.size() != hosts.size()) return {};  // libpq says why

  std::vector<std::string> names, addresses, host_ports;
  std::vector<std::string> errors;
  bool looked_up = false;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string& host = hosts[i];
    const std::string& port = ports.size() == 1 ? ports[0] : ports[i];
    const auto add = [&](const std::string& address) {
      names.push_back(host);
      addresses.push_back(address);
      host_ports.push_back(port);
    };
    // A directory (or an abstract socket, "@name") is a Unix socket: no address.
    if (host.empty() || host.starts_with('/') || host.starts_with('@')) {
      add("");
    } else if (IsIpLiteral(host)) {
      add(host);
    } else {
      looked_up = true;
      const auto lookup = lookups_.Run<std::pair<std::vector<std::string>, std::string>>(
          [resolve = resolve_, host] {
            std::string error;
            auto found = resolve(host, error);
            return std::pair{std::move(found), std::move(error)};
          },
          deadline);
      switch (lookup.status) {
        case DeadlineCalls::Status::kLate:
          errors.push_back(fmt::format(
              "timed out resolving host name \"{}\" within the connect deadline", host));
          continue;
        case DeadlineCalls::Status::kBusy:
          errors.push_back(fmt::format(
              "cannot resolve host name \"{}\": {} earlier lookups have not ended (a slow DNS "
              "server?)",
              host, lookups_.max_outstanding()));
          continue;
        case DeadlineCalls::Status::kDone:
          break;
      }
      const auto& [found, error] = *lookup.value;
      if (found.empty()) errors.push_back(error);
      for (std::size_t a = 0; a < found.size() && a < kMaxAddressesPerHost; ++a) add(found[a]);
    }
  }
  if (!looked_up) return {};
  if (names.empty()) {
    std::string message = errors.empty() ? "no host could be resolved" : errors[0];
    for (std::size_t e = 1; e < errors.size(); ++e) message += "; " + errors[e];
    return {{}, std::move(message)};
  }
  ResolvedHosts resolved;
  resolved.parameters = {{"host", JoinList(names)}, {"hostaddr", JoinList(addresses)}};
  if (!value("port").empty()) resolved.parameters.emplace_back("port", JoinList(host_ports));
  return resolved;
}

}  // namespace pgtally::pg
