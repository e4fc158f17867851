#pragma once

#include <openssl/ssl.h>

#include <optional>
#include <string>

#include "pgtally/config/web_config.h"

namespace pgtally {

// Makes CivetWeb's run-time loading of OpenSSL work with Debian 12's OpenSSL 3, by loading
// pgtally's compatibility libraries (lib/pgtally/libssl.so and libcrypto.so next to the binary's
// bin/, or under /usr/local or /usr) before CivetWeb looks for them. Idempotent. Returns an error
// message when they cannot be loaded.
std::optional<std::string> LoadOpenSslCompat();

// A server context from `config`: certificate chain and key (read again at every handshake, so
// a rotated certificate is used without a restart), client certificate policy, protocol
// versions. Nullptr with `error` set when the files or settings are unusable. `config` must
// outlive the context.
SSL_CTX* NewServerContext(const TlsConfig& config, std::string& error);

}  // namespace pgtally
