// pgtally check: the config and collector files as start-up reads them, and with a database, each
// collector's query as the server sees it, prepared but never run.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>

#include "pgtally/cli/check.h"
#include "pgtally/cli/commands.h"
#include "pgtally/cli/exporter_setup.h"
#include "pgtally/collect/target.h"
#include "pgtally/log/logging.h"
#include "pgtally/pg/connection.h"
#include "pgtally/pg/dsn.h"

namespace pgtally {
namespace {

using pg::Clock;

constexpr std::string_view kProbeSql =
    "SELECT current_setting('server_version_num')::int, pg_is_in_recovery(), "
    "current_setting('server_version')";
constexpr std::string_view kPgBouncerProbeSql = "SHOW VERSION";
// The client waits this much longer than statement_timeout before it gives up on the server.
constexpr Millis kClientGrace{500};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "pgtally check: %s; see --help\n", message.c_str());
  return 2;
}

// Whether `sql` is a SHOW command: the only kind check runs on PgBouncer's admin console, which
// cannot prepare a statement without running it.
bool IsShowCommand(std::string_view sql) {
  const auto start = sql.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || sql.size() - start < 5) return false;
  std::string word(sql.substr(start, 5));
  for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return word == "show " || word == "show\n" || word == "show\t";
}

// Checks every collector against the server `setup.target` names, on one connection.
class DatabaseCheck {
 public:
  DatabaseCheck(const ExporterSetup& setup, std::vector<Finding>& findings)
      : target_(setup.target),
        type_(TargetTypeOf(target_.dsn)),
        conn_(pg::ConnectOptions{target_.dsn, "", target_.connect_timeout, nullptr}),
        findings_(findings) {}

  // Connects and reads what the server is; false (with an error finding) when it cannot.
  bool Start(CheckSummary& summary) {
    if (!target_.password_file.empty()) {
      pg::Error error;
      password_ = pg::ReadPasswordFile(target_.password_file, error);
      if (!password_) return Fail(error.message);
      AddSecret(*password_);
    }
    if (!Connect()) return false;
    const bool bouncer = type_ == TargetType::kPgBouncer;
    auto probe = conn_.Exec(bouncer ? kPgBouncerProbeSql : kProbeSql,
                            Clock::now() + target_.connect_timeout);
    if (!probe.ok() || probe.rows->rows() < 1) {
      return Fail(fmt::format("cannot read the server's version from {}: {}", DisplayName(),
                              probe.ok() ? "no rows" : probe.error.message));
    }
    const std::string version_text(probe.rows->Get(0, bouncer ? 0 : 2));
    if (bouncer) {
      version_ = PgBouncerVersionNum(version_text);
      summary.server = version_text;
    } else {
      version_ = std::atoi(std::string(probe.rows->Get(0, 0)).c_str());
      in_recovery_ = probe.rows->Get(0, 1) == "t";
      // "15.4 (Debian 15.4-1.pgdg120+1)": the version is the first word.
      summary.server = "PostgreSQL " + version_text.substr(0, version_text.find(' '));
    }
    summary.server_version = version_;
    return true;
  }

  // Adds the findings for one collector. False when the connection is lost for good.
  bool Check(const CollectorSpec& spec) {
    const auto note = [&](std::string message) {
      findings_.push_back({spec.location, Severity::kNote, spec.name, std::move(message)});
    };
    if (spec.target_type != type_) {
      note(spec.target_type == TargetType::kPgBouncer
               ? "not checked: a target_type: pgbouncer collector needs a DSN with "
                 "dbname=pgbouncer (PgBouncer's admin console)"
               : "not checked: a PostgreSQL collector, and the DSN is PgBouncer's admin console "
                 "(dbname=pgbouncer)");
      return true;
    }
    const QueryVariant* query = spec.QueryFor(version_);
    if (!query) {
      note(fmt::format(
          "no variant for server version {}: the exporter skips it here (reason=\"version\")",
          version_));
      return true;
    }
    if (!spec.RunsOn(in_recovery_)) {
      // Its query is checked all the same: preparing it works on either kind of server.
      note(fmt::format("role: {}: the exporter skips it on this server, which is {}",
                       ToString(spec.role), in_recovery_ ? "a standby" : "a primary"));
    }
    if (type_ == TargetType::kPgBouncer && !IsShowCommand(query->sql)) {
      note("not checked: on PgBouncer's admin console check runs only SHOW commands");
      return true;
    }

    const Millis timeout = spec.timeout.value_or(target_.default_timeout);
    const auto deadline = Clock::now() + timeout + kClientGrace;
    // The admin console cannot prepare without running; a SHOW command only reads.
    auto outcome = type_ == TargetType::kPgBouncer ? conn_.Exec(query->sql, deadline)
                                                   : conn_.Describe(query->sql, deadline);
    if (!outcome.ok()) return Failed(spec, *query, outcome.error, timeout);

    std::vector<ResultColumn> columns;
    for (int i = 0; i < outcome.rows->columns(); ++i) {
      columns.push_back(TypeOf(outcome.rows->ColumnType(i)));
      columns.back().name = outcome.rows->ColumnName(i);
    }
    auto found = CheckColumns(spec, columns);
    findings_.insert(findings_.end(), found.begin(), found.end());
    return true;
  }

 private:
  std::string DisplayName() const { return pg::RedactDsn(target_.dsn); }

  bool Fail(std::string message) {
    findings_.push_back({{}, Severity::kError, "", std::move(message)});
    return false;
  }

  // Connects, again after the connection broke, with the session's timeouts set.
  bool Connect() {
    const auto deadline = Clock::now() + target_.connect_timeout;
    if (auto error = conn_.Connect(deadline, password_)) {
      return Fail(fmt::format("cannot connect to {}: {}", DisplayName(), error->message));
    }
    if (type_ == TargetType::kPgBouncer) return true;  // the admin console has no settings
    // Preparing takes locks on the tables a query reads: never wait long for one.
    const auto timeouts =
        conn_.Exec(fmt::format("SET statement_timeout = {}; SET lock_timeout = {}",
                               target_.default_timeout.count(), target_.lock_timeout.count()),
                   deadline);
    if (!timeouts.ok()) return Fail("cannot set statement_timeout: " + timeouts.error.message);
    return true;
  }

  // Reports a query the server refused, or gave no answer to in time.
  bool Failed(const CollectorSpec& spec, const QueryVariant& query, const pg::Error& error,
              Millis timeout) {
    Finding finding{spec.location, Severity::kError, spec.name, ""};
    switch (error.kind) {
      case pg::Error::Kind::kTimeout:
        finding.message = fmt::format("no answer within {} ms while preparing the query: {}",
                                      timeout.count(), error.message);
        break;
      case pg::Error::Kind::kConnection:
        finding.message = "the connection broke while preparing the query: " + error.message;
        break;
      case pg::Error::Kind::kSql: {
        const std::string what = error.primary.empty() ? error.message : error.primary;
        if (error.sqlstate == "55P03") {
          // lock_not_available: nothing wrong with the query, another session is in the way.
          finding.severity = Severity::kWarning;
          finding.message = fmt::format(
              "not checked: {} (another session held a lock on a table it reads for longer than "
              "lock_timeout, {} ms)",
              what, target_.lock_timeout.count());
          break;
        }
        if (spec.optional && IsUnavailableError(error.sqlstate)) {
          finding.severity = Severity::kNote;
          finding.message = fmt::format(
              "skipped: {} (an optional collector: the exporter skips it on this server, "
              "reason=\"unavailable\")",
              what);
          break;
        }
        // At the place in the file the server points to when the SQL is written there verbatim
        // (a `|` block, or one line), else at the query with the position inside it.
        finding.message = "the server rejects the query: " + what;
        if (query.source.start.line > 0) finding.where = query.source.start;
        if (const auto at = PositionInQuery(query.sql, error.position); !at.empty()) {
          if (query.source.verbatim) {
            finding.where = query.Locate(error.position);
          } else {
            finding.message += fmt::format(" (at {} of the query)", at);
          }
        }
        if (!error.hint.empty()) finding.message += "; hint: " + error.hint;
        if (spec.optional) {
          finding.message += " (the exporter would skip this optional collector without a word)";
        }
        break;
      }
    }
    findings_.push_back(std::move(finding));
    if (conn_.connected()) return true;
    return Connect();
  }

  // The type's name and category: built in, else from pg_type (once per type).
  ResultColumn TypeOf(Oid type) {
    if (auto builtin = BuiltinType(type)) return *builtin;
    if (auto it = looked_up_.find(type); it != looked_up_.end()) return it->second;
    ResultColumn column{"", type, "", 0};
    if (type_ == TargetType::kPostgres) {
      const auto outcome = conn_.Exec(
          fmt::format("SELECT format_type(oid, NULL), typcategory FROM pg_type WHERE oid = {}",
                      type),
          Clock::now() + target_.connect_timeout);
      if (outcome.ok() && outcome.rows->rows() == 1) {
        column.type_name = outcome.rows->Get(0, 0);
        column.category = outcome.rows->Get(0, 1).empty() ? 0 : outcome.rows->Get(0, 1).front();
      }
    }
    looked_up_[type] = column;
    return column;
  }

  const TargetOptions& target_;
  TargetType type_;
  pg::Connection conn_;
  std::vector<Finding>& findings_;
  std::optional<std::string> password_;
  int version_ = 0;
  bool in_recovery_ = false;
  std::map<Oid, ResultColumn> looked_up_;
};

}  // namespace

int RunCheckCommand(const Flags& flags) {
  const std::string format = flags.format.value_or("text");
  if (format != "text" && format != "json") {
    return UsageError(fmt::format("--format must be text or json, not \"{}\"", format));
  }
  if (!flags.arguments.empty()) {
    return UsageError(
        fmt::format("unexpected argument \"{}\": name collector files with "
                    "--collectors.path",
                    flags.arguments.front()));
  }
  // Warnings (such as an unknown collector to disable) go to stderr, never into the findings.
  SetupLogging("warn", LogFormat::kLogfmt);

  ExporterSetup setup;
  const auto errors = LoadSetup(flags, ReadEnvironment(), setup);
  std::vector<Finding> findings = FindingsFromLoadErrors(errors);
  CheckSummary summary;
  summary.collectors = setup.collectors.size();

  // LoadSetup fills in the target only once the configuration itself is sound. Collectors with
  // load errors are left out: their errors say what to fix first.
  if (!setup.target.dsn.empty()) {
    std::vector<std::string> broken;
    for (const auto& finding : findings) broken.push_back(finding.collector);
    summary.database_attempted = true;
    DatabaseCheck check(setup, findings);
    if (check.Start(summary)) {
      for (const auto& spec : setup.collectors) {
        if (std::find(broken.begin(), broken.end(), spec.name) != broken.end()) continue;
        if (!check.Check(spec)) break;
      }
    }
  }

  // By file and place, so that a file's problems read together, in order.
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) <
           std::tie(b.where.file, b.where.line, b.where.column);
  });
  bool failed = false;
  for (auto& finding : findings) {
    finding.message = ScrubSecrets(finding.message);
    failed = failed || finding.severity == Severity::kError;
  }
  const std::string out = format == "json" ? FormatFindingsJson(findings, summary)
                                           : FormatFindingsText(findings, summary);
  std::fputs(out.c_str(), stdout);
  return failed ? 1 : 0;
}

}  // namespace pgtally
