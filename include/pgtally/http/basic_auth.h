#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace pgtally {

// HTTP basic authentication against bcrypt hashes (crypt(3) from the system's libcrypt, which
// knows $2a$, $2b$ and $2y$). Hash comparisons take constant time, and an unknown user costs the
// same bcrypt run as a known one, so timing tells nothing. A successful check is remembered (as a
// SHA-256 of user, password and hash, never the password itself), so Prometheus scraping every
// few seconds costs one bcrypt run, not one per scrape. Thread-safe.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);

  // Whether an Authorization header value ("Basic <base64 user:password>") names a user and
  // the right password. Null or malformed headers fail.
  bool Check(const char* authorization);

 private:
  bool Verify(const std::string& user, const std::string& password);

  std::map<std::string, std::string> users_;  // name -> bcrypt hash
  std::mutex mutex_;
  std::set<std::string> verified_;  // digests of successful checks
};

// Decodes standard base64 (RFC 4648, padded, no line breaks) into `out`; false on invalid input.
bool DecodeBase64(std::string_view text, std::string& out);

}  // namespace pgtally
