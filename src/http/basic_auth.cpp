#include "pgtally/http/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace pgtally {
namespace {

// Verified against when the user is unknown, so that an unknown user takes as long as a known
// one with a wrong password. (bcrypt of a random string at cost 10.)
constexpr const char* kDummyHash = "$2b$10$3yCXuGHl40HwoB.OgaWhM.l18Xz6HDGpc9UMBaepPdY/FbnaROYHW";

// At most this many successful checks are remembered; then the memory starts over.
constexpr std::size_t kMaxRemembered = 1024;

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Sha256(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace

bool DecodeBase64(std::string_view text, std::string& out) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out.clear();
  if (text.size() % 4 != 0) return false;
  unsigned bits = 0;
  int count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=') {
      // Padding only at the end, at most two.
      if (i + 2 < text.size() || text.find_first_not_of('=', i) != std::string_view::npos) {
        return false;
      }
      break;
    }
    const auto index = kAlphabet.find(c);
    if (index == std::string_view::npos) return false;
    bits = (bits << 6) | static_cast<unsigned>(index);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return true;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

bool BasicAuth::Verify(const std::string& user, const std::string& password) {
  const auto it = users_.find(user);
  const std::string& hash = it == users_.end() ? std::string(kDummyHash) : it->second;
  const std::string key = Sha256(user + '\0' + password + '\0' + hash);
  {
    std::lock_guard lock(mutex_);
    if (verified_.contains(key)) return true;
  }
  auto data = std::make_unique<crypt_data>();  // ~32 KB: not on the stack
  const char* result = crypt_r(password.c_str(), hash.c_str(), data.get());
  const bool ok = it != users_.end() && result != nullptr && result[0] != '*' &&
                  ConstantTimeEqual(result, hash);
  if (ok) {
    std::lock_guard lock(mutex_);
    if (verified_.size() >= kMaxRemembered) verified_.clear();
    verified_.insert(key);
  }
  return ok;
}

bool BasicAuth::Check(const char* authorization) {
  if (authorization == nullptr) return false;
  std::string_view header(authorization);
  constexpr std::string_view kScheme = "Basic ";
  if (header.size() <= kScheme.size() || header.substr(0, kScheme.size()) != kScheme) return false;
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  std::string credentials;
  if (!DecodeBase64(header, credentials)) return false;
  const auto colon = credentials.find(':');
  if (colon == std::string::npos) return false;
  return Verify(credentials.substr(0, colon), credentials.substr(colon + 1));
}

}  // namespace pgtally
