#pragma once

#include <string>
#include <vector>

namespace pgtally::testing {

struct HttpResponse {
  long status = 0;  // 0: no response (connection refused, timeout)
  std::string content_type;
  std::string body;
  double seconds = 0;  // total time of the request
};

// A blocking GET over loopback with a 30 s deadline; `headers` are "Name: value" lines.
HttpResponse HttpGet(const std::string& url, const std::vector<std::string>& headers = {});

// The value of the sample whose name and labels are exactly `series` (e.g. `pg_up` or
// `pgtally_collector_success{collector="x"}`), or NaN when the exposition has no such line.
double SampleValue(const std::string& exposition, const std::string& series);

// Lines of the exposition that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& exposition,
                                           const std::string& prefix);

}  // namespace pgtally::testing
