#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>

// A plain libpq connection for tests that drive sessions by hand (hold a lock, wait on a pool).
namespace pgtally::testing {

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;

// Connects or throws std::runtime_error with libpq's message.
Conn Connect(const std::string& dsn);

}  // namespace pgtally::testing
