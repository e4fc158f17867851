// Part of the OpenSSL compatibility shim (see ssl_compat.cpp): a library with the soname
// "libcrypto.so" and nothing but a dependency on libcrypto.so.3, so that CivetWeb's
// dlopen("libcrypto.so") works without the -dev package's symlink and finds OpenSSL 3.
extern "C" {
__attribute__((visibility("default"))) int pgtally_crypto_compat = 1;
}
