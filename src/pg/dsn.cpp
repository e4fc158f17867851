#include "pgtally/pg/dsn.h"

#include <libpq-fe.h>

#include <cctype>
#include <memory>

namespace pgtally::pg {
namespace {

constexpr std::string_view kMask = "xxxxx";

struct ConninfoDeleter {
  void operator()(PQconninfoOption* options) const noexcept { PQconninfoFree(options); }
};
using ConninfoPtr = std::unique_ptr<PQconninfoOption, ConninfoDeleter>;

struct FreeDeleter {
  void operator()(char* text) const noexcept { PQfreemem(text); }
};

bool IsUri(std::string_view dsn) {
  return dsn.starts_with("postgresql://") || dsn.starts_with("postgres://");
}

// postgresql://user:secret@host/db?password=secret&sslmode=require
std::string RedactUri(std::string_view uri) {
  std::string out;
  const auto scheme_end = uri.find("://") + 3;
  out.append(uri.substr(0, scheme_end));
  std::string_view rest = uri.substr(scheme_end);
  const auto authority_end = std::min(rest.find('/'), rest.find('?'));
  const std::string_view authority = rest.substr(0, authority_end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      out.append(userinfo.substr(0, colon + 1)).append(kMask).append(authority.substr(at));
    } else {
      out.append(authority);
    }
  } else {
    out.append(authority);
  }
  rest.remove_prefix(authority.size());
  const auto query_start = rest.find('?');
  out.append(rest.substr(0, query_start));
  if (query_start == std::string_view::npos) return out;
  std::string_view query = rest.substr(query_start + 1);
  out.push_back('?');
  while (true) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.starts_with("password=")) {
      out.append("password=").append(kMask);
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    out.push_back('&');
    query.remove_prefix(amp + 1);
  }
  return out;
}

// host=db password='it''s secret' user=app, following libpq's quoting rules.
std::string RedactKeywordValue(std::string_view dsn) {
  std::string out;
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) {
      out.push_back(dsn[i++]);
    }
  };
  while (true) {
    skip_space();
    if (i >= dsn.size()) break;
    const std::size_t key_start = i;
    while (i < dsn.size() && dsn[i] != '=' && !std::isspace(static_cast<unsigned char>(dsn[i]))) {
      ++i;
    }
    const std::string_view key = dsn.substr(key_start, i - key_start);
    out.append(key);
    skip_space();
    if (i < dsn.size() && dsn[i] == '=') out.push_back(dsn[i++]);
    skip_space();
    const std::size_t value_start = i;
    if (i < dsn.size() && dsn[i] == '\'') {
      for (++i; i < dsn.size() && dsn[i] != '\''; ++i) {
        if (dsn[i] == '\\') ++i;
      }
      ++i;  // the closing quote
    } else {
      for (; i < dsn.size() && !std::isspace(static_cast<unsigned char>(dsn[i])); ++i) {
        if (dsn[i] == '\\') ++i;
      }
    }
    i = std::min(i, dsn.size());
    out.append(key == "password" ? kMask : dsn.substr(value_start, i - value_start));
  }
  return out;
}

ConninfoPtr Parse(std::string_view dsn, std::string* error) {
  char* message = nullptr;
  ConninfoPtr options(PQconninfoParse(std::string(dsn).c_str(), &message));
  std::unique_ptr<char, FreeDeleter> owned(message);
  if (!options && error) *error = message ? message : "invalid connection string";
  return options;
}

}  // namespace

std::string RedactDsn(std::string_view dsn) {
  if (!Parse(dsn, nullptr)) return "<invalid connection string>";
  return IsUri(dsn) ? RedactUri(dsn) : RedactKeywordValue(dsn);
}

std::optional<std::string> DsnValue(std::string_view dsn, std::string_view keyword) {
  const auto options = Parse(dsn, nullptr);
  if (!options) return std::nullopt;
  for (const auto* option = options.get(); option->keyword; ++option) {
    if (std::string_view(option->keyword) == keyword && option->val && *option->val) {
      return std::string(option->val);
    }
  }
  return std::nullopt;
}

std::optional<std::string> DsnError(std::string_view dsn) {
  std::string error;
  if (Parse(dsn, &error)) return std::nullopt;
  while (!error.empty() && std::isspace(static_cast<unsigned char>(error.back()))) error.pop_back();
  // libpq quotes the part of the string it stumbled on, which may be (part of) a password. Keep
  // quoted text only when it is a connection keyword, which is what makes the message useful.
  const ConninfoPtr defaults(PQconndefaults());
  const auto is_keyword = [&](std::string_view word) {
    for (const auto* option = defaults.get(); option && option->keyword; ++option) {
      if (word == option->keyword) return true;
    }
    return false;
  };
  std::string scrubbed;
  for (std::size_t i = 0; i < error.size();) {
    const auto open = error.find('"', i);
    const auto close = open == std::string::npos ? open : error.find('"', open + 1);
    if (close == std::string::npos) {
      scrubbed.append(error, i);
      break;
    }
    const std::string_view quoted(error.data() + open + 1, close - open - 1);
    scrubbed.append(error, i, open + 1 - i)
        .append(is_keyword(quoted) ? quoted : kMask)
        .push_back('"');
    i = close + 1;
  }
  return scrubbed;
}

}  // namespace pgtally::pg
