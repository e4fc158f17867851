#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgtally {

// What in a collector's query cannot be monitoring: the deny-list of docs/security.md
// ("What a collector cannot do to its database"). A collector runs in a read-only transaction,
// which stops INSERT, UPDATE, DDL and nextval, but not a session advisory lock, a terminated
// backend, a dblink write, a COPY to a program or a reset of statistics; the loader refuses a
// query that calls any of these unless the collector names each under `allow_unsafe`.
//
// The query is read as PostgreSQL's lexer reads it, without parsing: string literals (with E''
// escapes), dollar-quoted text, comments (nested /* */ too) and the contents of quoted
// identifiers never match. A call is a name, optionally schema-qualified or double-quoted,
// followed by "("; a statement is named by its first keyword (after parentheses), for each
// statement the text holds.

// One use of something denied.
struct UnsafeUse {
  // As `allow_unsafe` names it: a function in lower case ("pg_advisory_lock"), a statement by its
  // keyword in upper case ("COPY", "EXPLAIN ANALYZE").
  std::string name;
  std::size_t offset = 0;  // in bytes, into the query, of the name
  std::string reason;      // why it cannot be monitoring, for the error message
  bool statement = false;  // a statement's keyword, not a function call
  // A statement no collector may be (anything but SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN and
  // the statements the deny-list names): allow_unsafe cannot allow it.
  bool allowable = true;
};

// Every use of something denied in `sql`, in the order written.
std::vector<UnsafeUse> FindUnsafeUses(std::string_view sql);

// `name` as allow_unsafe holds it (functions lower case, statements upper case), or "" when the
// deny-list has no such function or statement.
std::string NormalizeUnsafeName(std::string_view name);

}  // namespace pgtally
