#include "pgtally/log/logging.h"

#include <fmt/chrono.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <vector>

namespace pgtally {
namespace {

std::mutex secrets_mutex;
std::vector<std::string>& Secrets() {
  static std::vector<std::string> secrets;
  return secrets;
}

struct Field {
  std::string key;
  std::string value;
};

// Splits `key=value key="quoted value"` pairs; text that is not a pair ends the parse.
std::vector<Field> ParseFields(std::string_view text) {
  std::vector<Field> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const auto eq = text.find('=', i);
    if (eq == std::string_view::npos || eq == i ||
        text.substr(i, eq - i).find(' ') != std::string_view::npos) {
      break;
    }
    Field field{std::string(text.substr(i, eq - i)), {}};
    i = eq + 1;
    if (i < text.size() && text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          ++i;
          field.value.push_back(text[i] == 'n' ? '\n' : text[i]);
        } else {
          field.value.push_back(text[i]);
        }
      }
      ++i;
    } else {
      const auto end = std::min(text.find(' ', i), text.size());
      field.value = text.substr(i, end - i);
      i = end;
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

}  // namespace

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

namespace {

// The names --log.level accepts, so a level reads the same in flags and in logs.
std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto time = std::chrono::time_point_cast<std::chrono::milliseconds>(msg.time);
    const auto millis = time.time_since_epoch().count() % 1000;
    const std::string timestamp =
        fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z",
                    fmt::gmtime(std::chrono::system_clock::to_time_t(time)), millis);
    const std::string line = FormatLogLine(
        timestamp, LevelName(msg.level),
        ScrubSecrets(std::string_view(msg.payload.data(), msg.payload.size())), format_);
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  LogFormat format_;
};

}  // namespace

void AddSecret(std::string secret) {
  if (secret.empty()) return;
  std::lock_guard lock(secrets_mutex);
  Secrets().push_back(std::move(secret));
}

std::string ScrubSecrets(std::string_view text) {
  std::string out(text);
  std::lock_guard lock(secrets_mutex);
  for (const auto& secret : Secrets()) {
    for (auto at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 5)) {
      out.replace(at, secret.size(), "xxxxx");
    }
  }
  return out;
}

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string FormatLogLine(std::string_view timestamp, std::string_view level,
                          std::string_view message, LogFormat format) {
  // "what happened: k=v ..." splits into the message and its fields; anything else is all message.
  std::string_view what = message;
  std::vector<Field> fields;
  if (const auto colon = message.find(": "); colon != std::string_view::npos) {
    auto parsed = ParseFields(message.substr(colon + 2));
    if (!parsed.empty()) {
      what = message.substr(0, colon);
      fields = std::move(parsed);
    }
  }
  std::string line;
  if (format == LogFormat::kJson) {
    line = fmt::format("{{\"ts\":{},\"level\":{},\"msg\":{}", JsonString(timestamp),
                       JsonString(level), JsonString(what));
    for (const auto& field : fields) {
      line += fmt::format(",{}:{}", JsonString(field.key), JsonString(field.value));
    }
    return line + "}";
  }
  line = fmt::format("ts={} level={} msg={}", timestamp, level, Quoted(what));
  for (const auto& field : fields) {
    const bool plain =
        !field.value.empty() && field.value.find_first_of(" \"=\\\n") == std::string::npos;
    line += fmt::format(" {}={}", field.key, plain ? field.value : Quoted(field.value));
  }
  return line;
}

namespace {

std::optional<spdlog::level::level_enum> ParseLevel(std::string_view level, std::string& error) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    error = fmt::format("unknown log level \"{}\" (use debug, info, warn or error)", level);
    return std::nullopt;
  }
  return parsed;
}

}  // namespace

std::optional<std::string> SetupLogging(std::string_view level, LogFormat format) {
  std::string error;
  const auto parsed = ParseLevel(level, error);
  if (!parsed) return error;
  auto logger = std::make_shared<spdlog::logger>("pgtally",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<LineFormatter>(format));
  logger->set_level(*parsed);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return std::nullopt;
}

std::optional<std::string> SetLogLevel(std::string_view level) {
  std::string error;
  const auto parsed = ParseLevel(level, error);
  if (!parsed) return error;
  spdlog::default_logger_raw()->set_level(*parsed);
  return std::nullopt;
}

}  // namespace pgtally
