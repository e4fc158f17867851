#include "pgtally/http/collectors_page.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <vector>

#include "pgtally/log/logging.h"

namespace pgtally {
namespace {

// One collector as the page shows it, in either format.
struct Row {
  const CollectorSpec* spec = nullptr;
  const CollectorReport* report = nullptr;  // null: not run in the last scrape
  std::string_view state;                   // success, failed, skipped or not_run
  // Skipped: version, role or unavailable. Not run: no_scrape_yet, reloaded or down.
  std::string_view reason;
  std::optional<std::size_t> variant;  // the query the server's version picks, when known
};

std::vector<Row> Rows(const Exporter::CollectorsView& view) {
  std::vector<Row> rows;
  if (!view.collectors) return rows;
  const CollectorsReport* last = view.last.get();
  const int* version = last && last->server_version ? &*last->server_version : nullptr;
  for (std::size_t i = 0; i < view.collectors->size(); ++i) {
    const CollectorSpec& spec = (*view.collectors)[i];
    Row row;
    row.spec = &spec;
    if (version) {
      if (const QueryVariant* query = spec.QueryFor(*version)) {
        row.variant = static_cast<std::size_t>(query - spec.queries.data());
      }
    }
    // A scrape reports every collector, in order, once the server answered.
    if (last && i < last->reports.size() && last->reports[i].collector == spec.name) {
      row.report = &last->reports[i];
    }
    if (!row.report) {
      row.state = "not_run";
      row.reason = last ? "down" : view.reloaded ? "reloaded" : "no_scrape_yet";
    } else if (row.report->state == CollectorReport::State::kSuccess) {
      row.state = "success";
    } else if (row.report->state == CollectorReport::State::kFailed) {
      row.state = "failed";
    } else {
      row.state = "skipped";
      row.reason = row.report->skip_reason;
    }
    rows.push_back(row);
  }
  return rows;
}

// Whether the collector's queries ran (or were served from cache) in the last scrape, so its
// duration, rows and series mean something.
bool Ran(const Row& row) {
  return row.report && (row.state != "skipped" || row.reason == "unavailable");
}

std::string Timestamp(std::chrono::system_clock::time_point when) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(when)));
}

double Seconds(Millis duration) { return std::chrono::duration<double>(duration).count(); }

std::string JsonOptionalInt(const std::optional<int>& value) {
  return value ? std::to_string(*value) : "null";
}

// What the state column says, in words.
std::string_view StateText(const Row& row) {
  if (row.state != "not_run") return row.state;
  return row.reason == "down" ? "not run" : "not run yet";
}

// Why a collector was skipped, failed or did not run, in words; already HTML-escaped.
std::string ReasonHtml(const Row& row, const CollectorsReport* last) {
  const CollectorReport* report = row.report;
  std::string error;
  if (report && report->error_class) {
    // Preformatted: PostgreSQL's LINE and caret lines point at the error by column.
    error =
        fmt::format("{}: <pre>{}</pre>", ToString(*report->error_class), HtmlEscape(report->error));
  }
  if (row.reason == "no_scrape_yet") return "no scrape yet";
  if (row.reason == "reloaded") return "the configuration was reloaded since the last scrape";
  if (row.reason == "down") return "the server was not reached in the last scrape";
  if (row.reason == "version") {
    return fmt::format("version: no query for server version {}",
                       last ? JsonOptionalInt(last->server_version) : "?");
  }
  if (row.reason == "role") {
    return fmt::format("role: runs on a {} only; the server {} in recovery",
                       ToString(row.spec->role), last && last->in_recovery ? "is" : "is not");
  }
  if (row.reason == "unavailable") return "unavailable: " + error;
  return error;  // failed, or succeeded on some databases and was unavailable on others
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string VariantText(const CollectorSpec& spec, std::size_t index) {
  const auto& range = spec.queries.at(index).versions;
  return fmt::format("variant {} of {} ({})", index + 1, spec.queries.size(), ToString(range));
}

std::string CollectorsJson(const Exporter::CollectorsView& view, std::string_view target) {
  const CollectorsReport* last = view.last.get();
  std::string out = fmt::format("{{\"target\":{},\"last_scrape\":", JsonString(target));
  if (last) {
    out += fmt::format(R"({{"finished":{},"up":{},"server_version":{},"in_recovery":{}}})",
                       JsonString(Timestamp(last->finished)), last->up,
                       JsonOptionalInt(last->server_version), last->in_recovery);
  } else {
    out += "null";
  }
  out += ",\"collectors\":[";
  bool first = true;
  for (const Row& row : Rows(view)) {
    const CollectorSpec& spec = *row.spec;
    const CollectorReport* report = row.report;
    if (!first) out += ',';
    first = false;
    out +=
        fmt::format(R"({{"name":{},"help":{},"scope":{},"role":{},"target_type":{},"location":{},)"
                    R"("variants":{},"variant":)",
                    JsonString(spec.name), JsonString(spec.help), JsonString(ToString(spec.scope)),
                    JsonString(ToString(spec.role)), JsonString(ToString(spec.target_type)),
                    JsonString(spec.location.ToString()), spec.queries.size());
    if (row.variant) {
      const auto& range = spec.queries[*row.variant].versions;
      out += fmt::format(R"({{"index":{},"min_version":{},"max_version":{},"description":{}}})",
                         *row.variant + 1, JsonOptionalInt(range.min), JsonOptionalInt(range.max),
                         JsonString(VariantText(spec, *row.variant)));
    } else {
      out += "null";
    }
    out += fmt::format(
        R"(,"state":{},"reason":{},"error_class":{},"error":{},)", JsonString(row.state),
        row.reason.empty() ? "null" : JsonString(row.reason),
        report && report->error_class ? JsonString(ToString(*report->error_class)) : "null",
        report && report->error_class ? JsonString(report->error) : "null");
    if (Ran(row)) {
      out += fmt::format(R"("duration_seconds":{},"rows":{},"series":{},"rows_omitted":{},)",
                         report->duration_seconds, report->rows, report->series,
                         report->rows_omitted && std::isfinite(*report->rows_omitted)
                             ? fmt::format("{}", *report->rows_omitted)
                             : "null");
    } else {
      out += R"("duration_seconds":null,"rows":null,"series":null,"rows_omitted":null,)";
    }
    out += fmt::format(R"("cache_ttl_seconds":{},"cached":{}}})", Seconds(spec.cache_ttl),
                       Ran(row) ? fmt::format("{}", report->cached) : "null");
  }
  out += "]}\n";
  return out;
}

std::string CollectorsHtml(const Exporter::CollectorsView& view, std::string_view target) {
  const CollectorsReport* last = view.last.get();
  std::string scrape;
  if (!last) {
    scrape = view.reloaded ? "The configuration was reloaded; its collectors have not run yet."
                           : "No scrape yet: the collectors have not run yet.";
  } else if (!last->up) {
    scrape = fmt::format("Last scrape {}: the server was not reached.", Timestamp(last->finished));
  } else {
    scrape = fmt::format("Last scrape {}: server version {}, {}.", Timestamp(last->finished),
                         JsonOptionalInt(last->server_version),
                         last->in_recovery ? "in recovery (standby)" : "not in recovery (primary)");
  }
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pgtally collectors</title>\n"
      "<style>table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:2px 6px;"
      "text-align:left;vertical-align:top}}pre{{margin:0;white-space:pre-wrap}}</style></"
      "head><body>\n"
      "<h1>Collectors</h1>\n<p>Target: <code>{}</code>. {} This page never runs a query; "
      "<a href=\"/collectors?format=json\">as JSON</a>, <a href=\"/\">home</a>.</p>\n"
      "<table>\n<tr><th>Collector</th><th>Scope</th><th>Role</th><th>Target type</th>"
      "<th>Source</th><th>Query</th><th>State</th><th>Why</th><th>Duration</th><th>Rows</th>"
      "<th>Series</th><th>Cache</th></tr>\n",
      HtmlEscape(target), scrape);
  for (const Row& row : Rows(view)) {
    const CollectorSpec& spec = *row.spec;
    std::string query;
    if (row.variant) {
      query = fmt::format("{}<details><summary>SQL</summary><pre>{}</pre></details>",
                          VariantText(spec, *row.variant),
                          // A query may hold a password, say in a dblink connection string.
                          HtmlEscape(ScrubSecrets(spec.queries[*row.variant].sql)));
    } else {
      query = fmt::format("{} variant{}", spec.queries.size(), spec.queries.size() == 1 ? "" : "s");
    }
    std::string cache = "none";
    if (spec.cache_ttl.count() > 0) {
      cache = fmt::format("{}s{}", Seconds(spec.cache_ttl),
                          Ran(row) && row.report->cached ? ", from cache" : "");
    }
    std::string duration, rows, series;
    if (Ran(row)) {
      duration = fmt::format("{:.1f} ms", row.report->duration_seconds * 1000);
      rows = std::to_string(row.report->rows);
      series = std::to_string(row.report->series);
    }
    out += fmt::format(
        "<tr class=\"{}\"><td><b>{}</b><br>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        row.state, HtmlEscape(spec.name), HtmlEscape(spec.help), ToString(spec.scope),
        ToString(spec.role), ToString(spec.target_type), HtmlEscape(spec.location.ToString()),
        query, StateText(row), ReasonHtml(row, last), duration, rows, series, cache);
  }
  out += "</table>\n</body></html>\n";
  return out;
}

}  // namespace pgtally
