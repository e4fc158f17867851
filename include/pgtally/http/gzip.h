#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgtally {

// Whether an Accept-Encoding header value accepts gzip: a "gzip" (or "*") coding whose q-value
// is not 0. Null (no header) does not.
bool AcceptsGzip(const char* accept_encoding);

// `text` as a gzip stream (RFC 1952) at zlib's fastest level: exposition text shrinks about
// tenfold even so, for a fraction of the cost of the default level. Nullopt if zlib fails.
std::optional<std::string> Gzip(std::string_view text);
// The same for the concatenation of `parts`.
std::optional<std::string> Gzip(const std::vector<std::string>& parts);

}  // namespace pgtally
