#include "pgtally/config/web_config.h"

#include <fmt/format.h>

#include <filesystem>

#include "config/yaml_reader.h"

namespace pgtally {
namespace {

std::optional<ClientAuth> ParseClientAuth(std::string_view text) {
  if (text == "" || text == "NoClientCert") return ClientAuth::kNone;
  if (text == "RequestClientCert") return ClientAuth::kRequest;
  if (text == "RequireAnyClientCert") return ClientAuth::kRequireAny;
  if (text == "VerifyClientCertIfGiven") return ClientAuth::kVerifyIfGiven;
  if (text == "RequireAndVerifyClientCert") return ClientAuth::kRequireAndVerify;
  return std::nullopt;
}

bool IsTlsVersion(std::string_view text) {
  return text == "TLS10" || text == "TLS11" || text == "TLS12" || text == "TLS13";
}

// A bcrypt hash as crypt(3) writes it: $2a$, $2b$ or $2y$, a two-digit cost, 53 more characters.
bool IsBcryptHash(std::string_view hash) {
  return hash.size() == 60 && hash[0] == '$' && hash[1] == '2' &&
         (hash[2] == 'a' || hash[2] == 'b' || hash[2] == 'y') && hash[3] == '$' &&
         std::isdigit(static_cast<unsigned char>(hash[4])) &&
         std::isdigit(static_cast<unsigned char>(hash[5])) && hash[6] == '$';
}

}  // namespace

Diagnostics ParseWebConfig(std::string_view text, const std::string& filename, WebConfig& config) {
  Diagnostics errors;
  YamlReader reader(filename, errors);
  const auto root = reader.Parse(text);
  if (!root || root->IsNull()) return errors;
  if (!reader.ExpectMap(*root, "the web config file")) return errors;
  reader.CheckKeys(*root, {"tls_server_config", "basic_auth_users"}, "web config file");

  const auto base = std::filesystem::path(filename).parent_path();
  const auto resolve = [&](const std::string& path) {
    return path.empty() || std::filesystem::path(path).is_absolute()
               ? path
               : (base / path).lexically_normal().string();
  };

  if (const YAML::Node tls = (*root)["tls_server_config"]; tls.IsDefined() && !tls.IsNull()) {
    const std::string what = "tls_server_config";
    if (reader.ExpectMap(tls, what)) {
      reader.CheckKeys(tls,
                       {"cert_file", "key_file", "client_ca_file", "client_auth_type",
                        "min_version", "max_version"},
                       what);
      TlsConfig parsed;
      parsed.cert_file = resolve(reader.GetString(tls, "cert_file", what, true).value_or(""));
      parsed.key_file = resolve(reader.GetString(tls, "key_file", what, true).value_or(""));
      parsed.client_ca_file = resolve(reader.GetString(tls, "client_ca_file", what).value_or(""));
      if (auto type = reader.GetString(tls, "client_auth_type", what)) {
        if (auto client_auth = ParseClientAuth(*type)) {
          parsed.client_auth = *client_auth;
        } else {
          reader.Error(tls["client_auth_type"],
                       fmt::format("tls_server_config: client_auth_type \"{}\" is not one of "
                                   "NoClientCert, RequestClientCert, RequireAnyClientCert, "
                                   "VerifyClientCertIfGiven, RequireAndVerifyClientCert",
                                   *type));
        }
      }
      const bool verifies = parsed.client_auth == ClientAuth::kVerifyIfGiven ||
                            parsed.client_auth == ClientAuth::kRequireAndVerify;
      if (verifies && parsed.client_ca_file.empty()) {
        reader.Error(tls, "tls_server_config: client_auth_type " +
                              reader.GetString(tls, "client_auth_type", what).value_or("") +
                              " needs client_ca_file");
      }
      for (const char* key : {"min_version", "max_version"}) {
        if (auto version = reader.GetString(tls, key, what)) {
          if (IsTlsVersion(*version)) {
            (std::string_view(key) == "min_version" ? parsed.min_version : parsed.max_version) =
                *version;
          } else {
            reader.Error(tls[key], fmt::format("tls_server_config: {} must be TLS10, TLS11, TLS12 "
                                               "or TLS13, not \"{}\"",
                                               key, *version));
          }
        }
      }
      config.tls = std::move(parsed);
    }
  }

  if (auto users = reader.GetScalarMap(*root, "basic_auth_users", "web config file")) {
    for (auto& user : *users) {
      if (user.name.find(':') != std::string::npos) {
        errors.push_back({user.location, fmt::format("basic_auth_users: user name \"{}\" may not "
                                                     "contain ':'",
                                                     user.name)});
      } else if (!IsBcryptHash(user.value)) {
        errors.push_back({user.location, fmt::format("basic_auth_users: the password of \"{}\" "
                                                     "must be a bcrypt hash ($2y$..., as htpasswd "
                                                     "-nBC 10 writes it), not plain text",
                                                     user.name)});
      } else {
        config.basic_auth_users[user.name] = user.value;
      }
    }
  }
  return errors;
}

Diagnostics LoadWebConfigFile(const std::string& path, WebConfig& config) {
  Diagnostics errors;
  const auto text = ReadConfigFile(path, errors);
  return text ? ParseWebConfig(*text, path, config) : errors;
}

}  // namespace pgtally
