#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "pgtally/config/diagnostic.h"

namespace pgtally {

// How the server treats client certificates; the names are the exporter-toolkit's.
enum class ClientAuth {
  kNone,              // NoClientCert
  kRequest,           // RequestClientCert: asked for, not verified
  kRequireAny,        // RequireAnyClientCert: required, not verified
  kVerifyIfGiven,     // VerifyClientCertIfGiven
  kRequireAndVerify,  // RequireAndVerifyClientCert
};

struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  ClientAuth client_auth = ClientAuth::kNone;
  std::string min_version = "TLS12";  // TLS10 .. TLS13
  std::string max_version;            // empty: the newest the library has

  bool operator==(const TlsConfig&) const = default;
};

// The web config file, in the shape of the Prometheus exporter-toolkit's --web.config.file, so
// existing files work unchanged: tls_server_config and basic_auth_users (user -> bcrypt hash).
struct WebConfig {
  std::optional<TlsConfig> tls;
  std::map<std::string, std::string> basic_auth_users;
};

// Reads a web config file. Relative file names in it are relative to the file. Returns every
// problem found, located; keys exporter-toolkit has but pgtally does not implement are errors
// too, so that nothing a user relies on is silently ignored.
Diagnostics LoadWebConfigFile(const std::string& path, WebConfig& config);
Diagnostics ParseWebConfig(std::string_view text, const std::string& filename, WebConfig& config);

}  // namespace pgtally
