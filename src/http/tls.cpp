#include "http/tls.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <filesystem>
#include <mutex>
#include <vector>

namespace pgtally {
namespace {

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

int Version(const std::string& name) {
  if (name == "TLS10") return TLS1_VERSION;
  if (name == "TLS11") return TLS1_1_VERSION;
  if (name == "TLS13") return TLS1_3_VERSION;
  if (name == "TLS12") return TLS1_2_VERSION;
  return 0;  // no limit
}

// Accepts any client certificate: for RequestClientCert and RequireAnyClientCert, which ask for
// one without verifying it.
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

// Runs during every handshake: uses the certificate and key as they are on disk now. If they
// cannot be read (say, half-way through a rotation), the pair loaded at start-up serves.
int UseCurrentCertificate(SSL* ssl, void* arg) {
  const auto* files = static_cast<const TlsConfig*>(arg);
  if (SSL_use_certificate_chain_file(ssl, files->cert_file.c_str()) == 1 &&
      SSL_use_PrivateKey_file(ssl, files->key_file.c_str(), SSL_FILETYPE_PEM) == 1 &&
      SSL_check_private_key(ssl) == 1) {
    return 1;
  }
  ERR_clear_error();
  SSL_certs_clear(ssl);
  SSL_use_certificate(ssl, SSL_CTX_get0_certificate(SSL_get_SSL_CTX(ssl)));
  SSL_use_PrivateKey(ssl, SSL_CTX_get0_privatekey(SSL_get_SSL_CTX(ssl)));
  return 1;
}

std::vector<std::string> CompatDirs() {
  namespace fs = std::filesystem;
  std::vector<std::string> dirs;
  std::error_code error;
  const auto exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) dirs.push_back((exe.parent_path().parent_path() / "lib/pgtally").string());
  dirs.emplace_back("/usr/local/lib/pgtally");
  dirs.emplace_back("/usr/lib/pgtally");
  return dirs;
}

}  // namespace

std::optional<std::string> LoadOpenSslCompat() {
  static std::once_flag once;
  static std::optional<std::string> result;
  std::call_once(once, [] {
    for (const auto& dir : CompatDirs()) {
      if (!std::filesystem::exists(dir + "/libssl.so")) continue;
      // libcrypto first: libssl's lookups need it. RTLD_GLOBAL keeps both loaded for good.
      for (const char* name : {"/libcrypto.so", "/libssl.so"}) {
        if (!dlopen((dir + name).c_str(), RTLD_NOW | RTLD_GLOBAL)) {
          result = fmt::format("cannot load {}{}: {}", dir, name, dlerror());
          return;
        }
      }
      return;
    }
    result =
        "TLS needs pgtally's OpenSSL compatibility libraries (lib/pgtally/libssl.so), "
        "installed with the binary; none found";
  });
  return result;
}

SSL_CTX* NewServerContext(const TlsConfig& config, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = OpenSslError();
    return nullptr;
  }
  const auto fail = [&](std::string message) {
    error = std::move(message);
    SSL_CTX_free(ctx);
    return nullptr;
  };
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    return fail(fmt::format("cannot use cert_file {}: {}", config.cert_file, OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(fmt::format("cannot use key_file {}: {}", config.key_file, OpenSslError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail(
        fmt::format("key_file {} does not match cert_file {}", config.key_file, config.cert_file));
  }
  if (const int min = Version(config.min_version);
      min && !SSL_CTX_set_min_proto_version(ctx, min)) {
    return fail("cannot set min_version " + config.min_version);
  }
  if (const int max = Version(config.max_version);
      max && !SSL_CTX_set_max_proto_version(ctx, max)) {
    return fail("cannot set max_version " + config.max_version);
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

  if (!config.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, config.client_ca_file.c_str(), nullptr) != 1) {
      return fail(
          fmt::format("cannot use client_ca_file {}: {}", config.client_ca_file, OpenSslError()));
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  }
  switch (config.client_auth) {
    case ClientAuth::kNone:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequest:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptAnyCertificate);
      break;
    case ClientAuth::kRequireAny:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         AcceptAnyCertificate);
      break;
    case ClientAuth::kVerifyIfGiven:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::kRequireAndVerify:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  SSL_CTX_set_cert_cb(ctx, UseCurrentCertificate, const_cast<TlsConfig*>(&config));
  return ctx;
}

}  // namespace pgtally
