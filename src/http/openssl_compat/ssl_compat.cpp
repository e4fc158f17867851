// Part of the OpenSSL compatibility shim for Debian 12's CivetWeb 1.15 (see src/http/tls.cpp and
// docs/security.md). CivetWeb loads OpenSSL at run time with dlopen("libssl.so") and looks up
// the OpenSSL 1.1 function names; OpenSSL 3 turned SSL_get_peer_certificate into a macro, so
// the lookup fails and TLS handshakes crash. This library's soname is "libssl.so": once pgtally
// has loaded it, CivetWeb's dlopen returns it, and its lookups find the real functions through
// its dependency on libssl.so.3, plus this one.
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

extern "C" {
__attribute__((visibility("default"))) X509* SSL_get_peer_certificate(const SSL* ssl);
X509* SSL_get_peer_certificate(const SSL* ssl) { return SSL_get1_peer_certificate(ssl); }
}
