#include "pg_client.h"

#include <stdexcept>

namespace pgtally::testing {

Conn Connect(const std::string& dsn) {
  Conn conn(PQconnectdb(dsn.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("connecting to " + dsn + ": " + PQerrorMessage(conn.get()));
  }
  return conn;
}

}  // namespace pgtally::testing
