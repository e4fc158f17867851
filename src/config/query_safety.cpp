#include "pgtally/config/query_safety.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <tuple>

namespace pgtally {
namespace {

struct Denied {
  std::string_view pattern;  // a name, or a name with one '*' standing for any text
  std::string_view reason;
};

// Functions no monitoring query calls (docs/security.md explains each group).
constexpr auto kDeniedFunctions = std::to_array<Denied>({
    {"dblink*", "opens a connection of its own, whose writes commit whatever the transaction"},
    {"pg_terminate_backend", "ends another session"},
    {"pg_cancel_backend", "cancels another session's query"},
    {"pg_advisory_*", "takes or releases an advisory lock; a session lock outlives the scrape"},
    {"pg_try_advisory_*", "takes an advisory lock; a session lock outlives the scrape"},
    {"pg_stat_statements_reset", "throws away the statistics others read"},
    {"pg_stat_reset*", "throws away the statistics others read"},
    {"pg_switch_wal", "forces a switch to a new WAL segment"},
    {"pg_switch_xlog", "forces a switch to a new WAL segment"},
    {"pg_reload_conf", "makes the server reread its configuration"},
    {"pg_rotate_logfile*", "rotates the server's log file"},
    {"pg_promote", "promotes a standby to primary"},
    {"pg_wal_replay_pause", "pauses a standby's replay"},
    {"pg_wal_replay_resume", "resumes a standby's replay"},
    {"pg_xlog_replay_pause", "pauses a standby's replay"},
    {"pg_xlog_replay_resume", "resumes a standby's replay"},
    {"pg_create_restore_point", "writes a restore point to WAL"},
    {"pg_backup_start", "starts a backup"},
    {"pg_backup_stop", "stops a backup"},
    {"pg_start_backup", "starts a backup"},
    {"pg_stop_backup", "stops a backup"},
    {"pg_create_*_replication_slot", "creates a replication slot, which keeps WAL until dropped"},
    {"pg_copy_*_replication_slot", "creates a replication slot, which keeps WAL until dropped"},
    {"pg_drop_replication_slot", "drops a replication slot"},
    {"pg_replication_slot_advance", "moves a replication slot on"},
    {"pg_logical_slot_get_*", "consumes a logical slot's changes"},
    {"pg_replication_origin_*", "creates, drops or moves a replication origin"},
    {"pg_logical_emit_message", "writes a message to WAL"},
    {"lo_import", "reads a server file into the database"},
    {"lo_export", "writes a server file"},
    {"lo_unlink", "deletes a large object"},
    {"pg_file_*", "writes, renames or removes a server file (adminpack)"},
    {"pg_logdir_ls", "lists the server's log directory (adminpack)"},
    {"pg_read_file", "reads any server file: its content would leave through the metrics"},
    {"pg_read_binary_file", "reads any server file: its content would leave through the metrics"},
    {"pg_ls_dir", "lists any server directory: it would leave through the metrics"},
    {"set_config", "changes a setting, for the whole session unless local"},
    {"pg_log_backend_memory_contexts", "writes a backend's memory contexts to the server log"},
    {"pg_import_system_collations", "creates collations"},
    {"pg_notify", "sends a notification to listening sessions"},
});

// Statements a collector's query may be.
constexpr auto kReadStatements =
    std::to_array<std::string_view>({"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"});

// Statements that are something else, by their first keyword. The read-only transaction refuses
// many of them anyway; the ones it does not are why this list exists.
constexpr auto kDeniedStatements = std::to_array<Denied>({
    {"COPY", "writes a server file or runs a program on the server (TO PROGRAM)"},
    {"DO", "runs procedural code, which can do anything a function can"},
    {"LOCK", "takes a table lock that blocks the application until the transaction ends"},
    {"CHECKPOINT", "forces a checkpoint: a burst of I/O on the whole server"},
    {"VACUUM", "is maintenance, not monitoring"},
    {"ANALYZE", "is maintenance, not monitoring"},
    {"CLUSTER", "rewrites a table"},
    {"REINDEX", "rebuilds indexes"},
    {"REFRESH", "recomputes a materialized view"},
    {"CALL", "runs a procedure, which can commit"},
    {"SET", "changes a setting the session keeps"},
    {"RESET", "changes a setting the session keeps"},
    {"LOAD", "loads a shared library into the server"},
    {"LISTEN", "subscribes the session to notifications"},
    {"UNLISTEN", "changes the session's subscriptions"},
    {"NOTIFY", "sends a notification to listening sessions"},
    {"DISCARD", "throws away the session's state, prepared statements included"},
    {"PREPARE", "leaves a prepared statement in the session"},
    {"EXECUTE", "runs a prepared statement, whatever it is"},
    {"DEALLOCATE", "drops the session's prepared statements"},
    {"DECLARE", "opens a cursor"},
    {"FETCH", "reads a cursor"},
    {"MOVE", "moves a cursor"},
    {"CLOSE", "closes a cursor"},
    {"EXPLAIN ANALYZE", "runs the statement it explains"},
    {"INSERT", "writes"},
    {"UPDATE", "writes"},
    {"DELETE", "writes"},
    {"MERGE", "writes"},
    {"TRUNCATE", "writes"},
    {"CREATE", "changes the schema"},
    {"ALTER", "changes the schema or the server's configuration"},
    {"DROP", "changes the schema"},
    {"COMMENT", "changes the schema"},
    {"SECURITY", "changes the schema"},
    {"IMPORT", "changes the schema"},
    {"GRANT", "changes privileges"},
    {"REVOKE", "changes privileges"},
    {"REASSIGN", "changes ownership"},
    {"BEGIN", "controls the transaction pgtally runs the query in"},
    {"START", "controls the transaction pgtally runs the query in"},
    {"COMMIT", "controls the transaction pgtally runs the query in"},
    {"END", "controls the transaction pgtally runs the query in"},
    {"ROLLBACK", "controls the transaction pgtally runs the query in"},
    {"ABORT", "controls the transaction pgtally runs the query in"},
    {"SAVEPOINT", "controls the transaction pgtally runs the query in"},
    {"RELEASE", "controls the transaction pgtally runs the query in"},
});

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool Matches(std::string_view pattern, std::string_view name) {
  const auto star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == name;
  const auto prefix = pattern.substr(0, star);
  const auto suffix = pattern.substr(star + 1);
  return name.size() >= prefix.size() + suffix.size() && name.starts_with(prefix) &&
         name.ends_with(suffix);
}

const Denied* DeniedFunction(std::string_view name) {
  const auto it = std::ranges::find_if(kDeniedFunctions,
                                       [&](const Denied& d) { return Matches(d.pattern, name); });
  return it == kDeniedFunctions.end() ? nullptr : &*it;
}

const Denied* DeniedStatement(std::string_view keyword) {
  const auto it = std::ranges::find(kDeniedStatements, keyword, &Denied::pattern);
  return it == kDeniedStatements.end() ? nullptr : &*it;
}

// PostgreSQL's identifier characters; bytes of multi-byte UTF-8 characters count as letters.
bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return IsIdentStart(c) || std::isdigit(c) || c == '$'; }

struct Token {
  // kEscapedName: U&"..." with Unicode escapes, whose name the list cannot read.
  enum Kind { kWord, kQuotedName, kEscapedName, kSymbol } kind;
  std::string text;  // a word in lower case, a quoted name's content, or the symbol
  std::size_t offset;
};

// The end of the string literal whose opening quote is at `at`. `backslash_escapes`: as an E''
// string, or any string when standard_conforming_strings is off.
std::size_t SkipString(std::string_view sql, std::size_t at, bool backslash_escapes) {
  for (std::size_t i = at + 1; i < sql.size(); ++i) {
    if (backslash_escapes && sql[i] == '\\') {
      ++i;
    } else if (sql[i] == '\'') {
      if (i + 1 < sql.size() && sql[i + 1] == '\'') {
        ++i;
      } else {
        return i + 1;
      }
    }
  }
  return sql.size();
}

std::size_t SkipBlockComment(std::string_view sql, std::size_t at) {
  int depth = 0;
  for (std::size_t i = at; i + 1 < sql.size(); ++i) {
    if (sql[i] == '/' && sql[i + 1] == '*') {
      ++depth;
      ++i;
    } else if (sql[i] == '*' && sql[i + 1] == '/') {
      ++i;
      if (--depth == 0) return i + 1;
    }
  }
  return sql.size();
}

// The end of the dollar-quoted text starting at `at`, or npos when the '$' there opens none
// ($1 is a parameter).
std::size_t SkipDollarQuote(std::string_view sql, std::size_t at) {
  std::size_t end = at + 1;
  if (end < sql.size() && !IsIdentStart(static_cast<unsigned char>(sql[end])) && sql[end] != '$') {
    return std::string_view::npos;
  }
  while (end < sql.size() && sql[end] != '$' && IsIdentChar(static_cast<unsigned char>(sql[end]))) {
    ++end;
  }
  if (end >= sql.size() || sql[end] != '$') return std::string_view::npos;
  const auto tag = sql.substr(at, end - at + 1);
  const auto close = sql.find(tag, end + 1);
  return close == std::string_view::npos ? sql.size() : close + tag.size();
}

bool IsSymbolToken(const Token& token, char symbol) {
  return token.kind == Token::kSymbol && token.text.size() == 1 && token.text[0] == symbol;
}

std::vector<Token> Tokenize(std::string_view sql, bool backslash_escapes) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < sql.size()) {
    const auto c = static_cast<unsigned char>(sql[i]);
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (std::isspace(c)) {
      ++i;
    } else if (c == '-' && next == '-') {
      i = std::min(sql.find('\n', i), sql.size());
    } else if (c == '/' && next == '*') {
      i = SkipBlockComment(sql, i);
    } else if (c == '\'') {
      // E'...' is one token in PostgreSQL's lexer: the E directly before the quote.
      const bool extended = !tokens.empty() && tokens.back().kind == Token::kWord &&
                            tokens.back().text == "e" && tokens.back().offset + 1 == i;
      i = SkipString(sql, i, backslash_escapes || extended);
    } else if (c == '"') {
      const bool escaped = tokens.size() >= 2 && IsSymbolToken(tokens.back(), '&') &&
                           tokens.back().offset + 1 == i && tokens[tokens.size() - 2].text == "u" &&
                           tokens[tokens.size() - 2].offset + 2 == i;
      Token token{escaped ? Token::kEscapedName : Token::kQuotedName, "", i};
      for (++i; i < sql.size(); ++i) {
        if (sql[i] != '"') {
          token.text += sql[i];
        } else if (i + 1 < sql.size() && sql[i + 1] == '"') {
          token.text += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      }
      token.text = Lower(token.text);
      tokens.push_back(std::move(token));
    } else if (c == '$' && SkipDollarQuote(sql, i) != std::string_view::npos) {
      i = SkipDollarQuote(sql, i);
    } else if (IsIdentStart(c)) {
      const auto start = i;
      while (i < sql.size() && IsIdentChar(static_cast<unsigned char>(sql[i]))) ++i;
      tokens.push_back({Token::kWord, Lower(sql.substr(start, i - start)), start});
    } else if (std::isdigit(c) || c == '$') {
      // A number or a parameter ($1): never a name.
      const auto start = i++;
      while (i < sql.size() &&
             (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '.' || sql[i] == '_')) {
        ++i;
      }
      tokens.push_back({Token::kSymbol, "0", start});
    } else {
      tokens.push_back({Token::kSymbol, std::string(1, sql[i]), i});
      ++i;
    }
  }
  return tokens;
}

bool IsSymbol(const std::vector<Token>& tokens, std::size_t k, char symbol) {
  return k < tokens.size() && tokens[k].kind == Token::kSymbol && tokens[k].text.size() == 1 &&
         tokens[k].text[0] == symbol;
}

bool IsWord(const std::vector<Token>& tokens, std::size_t k, std::string_view word) {
  return k < tokens.size() && tokens[k].kind == Token::kWord && tokens[k].text == word;
}

// EXPLAIN ANALYZE, or EXPLAIN (..., ANALYZE ...), from the token after EXPLAIN.
bool ExplainAnalyzes(const std::vector<Token>& tokens, std::size_t k) {
  const auto analyze = [&](std::size_t at) {
    return IsWord(tokens, at, "analyze") || IsWord(tokens, at, "analyse");
  };
  if (analyze(k)) return true;
  if (!IsSymbol(tokens, k, '(')) return false;
  for (++k; k < tokens.size() && !IsSymbol(tokens, k, ')'); ++k) {
    if (analyze(k)) return true;
  }
  return false;
}

// The first keyword of each statement.
void FindStatements(const std::vector<Token>& tokens, std::vector<UnsafeUse>& uses) {
  bool at_start = true;
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    if (IsSymbol(tokens, k, ';')) {
      at_start = true;
      continue;
    }
    if (!at_start || IsSymbol(tokens, k, '(')) continue;
    at_start = false;
    const auto& token = tokens[k];
    const std::string keyword = Upper(token.text);
    if (token.kind == Token::kWord &&
        std::ranges::find(kReadStatements, keyword) != kReadStatements.end()) {
      if (keyword == "EXPLAIN" && ExplainAnalyzes(tokens, k + 1)) {
        uses.push_back({.name = "EXPLAIN ANALYZE",
                        .offset = token.offset,
                        .reason = std::string(DeniedStatement("EXPLAIN ANALYZE")->reason),
                        .statement = true});
      }
      continue;
    }
    const Denied* denied = token.kind == Token::kWord ? DeniedStatement(keyword) : nullptr;
    if (denied) {
      uses.push_back({.name = keyword,
                      .offset = token.offset,
                      .reason = std::string(denied->reason),
                      .statement = true});
    } else {
      uses.push_back({.name = token.kind == Token::kWord ? keyword : token.text,
                      .offset = token.offset,
                      .reason = "is not a statement a collector can run: a query is one SELECT, "
                                "WITH, VALUES, TABLE, SHOW or EXPLAIN",
                      .statement = true,
                      .allowable = false});
    }
  }
}

void FindCalls(const std::vector<Token>& tokens, std::vector<UnsafeUse>& uses) {
  for (std::size_t k = 0; k + 1 < tokens.size(); ++k) {
    if (tokens[k].kind == Token::kEscapedName &&
        (IsSymbol(tokens, k + 1, '(') ||
         (IsWord(tokens, k + 1, "uescape") && IsSymbol(tokens, k + 2, '(')))) {
      uses.push_back({.name = "U&\"" + tokens[k].text + "\"",
                      .offset = tokens[k].offset,
                      .reason = "is a function name written with Unicode escapes, which the "
                                "deny-list cannot read; write the name plainly",
                      .allowable = false});
      continue;
    }
    if (tokens[k].kind == Token::kSymbol || !IsSymbol(tokens, k + 1, '(')) continue;
    if (const Denied* denied = DeniedFunction(tokens[k].text)) {
      uses.push_back({.name = tokens[k].text,
                      .offset = tokens[k].offset,
                      .reason = std::string(denied->reason)});
    }
  }
}

}  // namespace

std::vector<UnsafeUse> FindUnsafeUses(std::string_view sql) {
  std::vector<UnsafeUse> uses;
  // Read both as standard_conforming_strings on (the default) and off, where a backslash escapes
  // a quote in any string: what either reading calls is denied, so a server's setting cannot
  // hide a call inside what looked like a string.
  for (const bool backslash_escapes : {false, true}) {
    const auto tokens = Tokenize(sql, backslash_escapes);
    FindStatements(tokens, uses);
    FindCalls(tokens, uses);
  }
  std::ranges::sort(uses, [](const UnsafeUse& a, const UnsafeUse& b) {
    return std::tie(a.offset, a.name) < std::tie(b.offset, b.name);
  });
  const auto same = [](const UnsafeUse& a, const UnsafeUse& b) {
    return a.offset == b.offset && a.name == b.name;
  };
  uses.erase(std::unique(uses.begin(), uses.end(), same), uses.end());
  return uses;
}

std::string NormalizeUnsafeName(std::string_view name) {
  const std::string upper = Upper(name);
  if (DeniedStatement(upper)) return upper;
  const std::string lower = Lower(name);
  return DeniedFunction(lower) ? lower : std::string();
}

}  // namespace pgtally
