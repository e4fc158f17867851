#include "pgtally/http/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>

namespace pgtally {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// The q-value of a coding's parameters ("q=0.5"); 1 when absent, 0 when malformed.
double QValue(std::string_view parameters) {
  while (!parameters.empty()) {
    const auto semicolon = std::min(parameters.find(';'), parameters.size());
    const auto parameter = Trim(parameters.substr(0, semicolon));
    parameters.remove_prefix(std::min(semicolon + 1, parameters.size()));
    if (parameter.size() >= 2 && (parameter[0] == 'q' || parameter[0] == 'Q') &&
        parameter[1] == '=') {
      const std::string value(parameter.substr(2));
      char* end = nullptr;
      const double q = std::strtod(value.c_str(), &end);
      return end == value.c_str() + value.size() && q >= 0 ? q : 0;
    }
  }
  return 1;
}

}  // namespace

bool AcceptsGzip(const char* accept_encoding) {
  if (!accept_encoding) return false;
  std::string_view header = accept_encoding;
  while (!header.empty()) {
    const auto comma = std::min(header.find(','), header.size());
    const auto element = header.substr(0, comma);
    header.remove_prefix(std::min(comma + 1, header.size()));
    const auto semicolon = std::min(element.find(';'), element.size());
    const auto coding = Trim(element.substr(0, semicolon));
    if (EqualsIgnoringCase(coding, "gzip") || coding == "*") {
      return QValue(element.substr(std::min(semicolon + 1, element.size()))) > 0;
    }
  }
  return false;
}

std::optional<std::string> Gzip(std::string_view text) {
  return Gzip(std::vector<std::string>{std::string(text)});
}

std::optional<std::string> Gzip(const std::vector<std::string>& parts) {
  z_stream stream{};
  // 15 window bits, +16 for a gzip header and trailer instead of zlib's.
  if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return std::nullopt;
  }
  // Grown in steps rather than sized for the worst case up front: the exposition compresses
  // about 20 times, so a buffer the size of the input would be mostly unused memory.
  constexpr std::size_t kStep = 64 * 1024;
  std::string out;
  std::size_t produced = 0;
  // Runs deflate until it has taken all its input (Z_NO_FLUSH) or ended the stream (Z_FINISH).
  const auto run = [&](int flush) {
    while (true) {
      if (produced == out.size()) out.resize(out.size() + kStep);
      stream.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      stream.avail_out = static_cast<uInt>(out.size() - produced);
      const int result = deflate(&stream, flush);
      produced = out.size() - stream.avail_out;
      if (result == Z_STREAM_END) return true;
      if (result != Z_OK && result != Z_BUF_ERROR) return false;
      if (stream.avail_out > 0) {
        // Room left over: deflate took everything it could. Only the end is missing for Z_FINISH.
        return flush == Z_NO_FLUSH && stream.avail_in == 0;
      }
    }
  };
  bool ok = true;
  for (const auto& part : parts) {
    if (part.size() > std::numeric_limits<uInt>::max()) {
      ok = false;
      break;
    }
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    stream.avail_in = static_cast<uInt>(part.size());
    if (!(ok = run(Z_NO_FLUSH))) break;
  }
  if (ok) {
    stream.avail_in = 0;
    ok = run(Z_FINISH);
  }
  deflateEnd(&stream);
  if (!ok) return std::nullopt;
  out.resize(produced);
  out.shrink_to_fit();
  return out;
}

}  // namespace pgtally
