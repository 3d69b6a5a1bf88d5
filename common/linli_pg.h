//  linli_pg: one PostgreSQL connection with reconnect, transactions, and the
//  per-service ordered migrations applied under an advisory lock.
//
//  A service owns one schema; its connections set search_path to that schema
//  (then public) and statement_timeout, so SQL names tables without a schema.
#ifndef LINLI_PG_H
#define LINLI_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct linli_pg_t linli_pg_t;

//  New handle for dsn; schema is the service's schema (search_path), may be
//  NULL. Connects lazily: never fails because the server is down. Caller owns.
linli_pg_t *linli_pg_new(const char *dsn, const char *schema, int statement_timeout_ms);

//  Destroy; accepts NULL and nulls the caller's pointer.
void linli_pg_destroy(linli_pg_t **self_p);

//  The live connection, reconnecting if it is gone; NULL when the server
//  cannot be reached (logged, rate-limited). Borrowed.
PGconn *linli_pg_conn(linli_pg_t *self);

//  Run sql with text parameters (params[i] NULL is SQL NULL). Returns the
//  result when its status is COMMAND_OK/TUPLES_OK/COPY_IN, else NULL after
//  logging the error. Outside a transaction a broken connection is
//  reconnected and the statement retried once. Caller PQclears the result.
PGresult *linli_pg_exec(linli_pg_t *self, const char *sql, int nparams, const char *const *params);

//  Like linli_pg_exec, but a failure's SQLSTATE (e.g. "23505") is copied to
//  sqlstate (6 bytes) so callers can tell a unique violation from an outage;
//  "" when the connection itself failed.
PGresult *linli_pg_exec_state(linli_pg_t *self, const char *sql, int nparams,
                              const char *const *params, char sqlstate[6]);

//  Run a statement expected to return no rows; 0 or -1.
int linli_pg_command(linli_pg_t *self, const char *sql, int nparams, const char *const *params);

//  Transactions: 0 or -1. After a failed statement inside a transaction the
//  caller rolls back. in_tx tells whether one is open.
int linli_pg_begin(linli_pg_t *self);
int linli_pg_commit(linli_pg_t *self);
int linli_pg_rollback(linli_pg_t *self);
bool linli_pg_in_tx(const linli_pg_t *self);

//  Apply every dir/NNN_name.sql not yet applied, in order, each in its own
//  transaction, recording it in <schema>.schema_migrations; concurrent
//  starters serialise on a pg_advisory_lock keyed by the schema name. Creates
//  the schema if needed. 0 or -1 (logged with the file name).
int linli_pg_migrate(linli_pg_t *self, const char *dir);

//  How many times the handle has connected: a change means a new session,
//  so session state (advisory locks, SET values) was lost. 0 before the first.
uint64_t linli_pg_generation(const linli_pg_t *self);

//  Milliseconds since the Unix epoch (the clock every service stamps with).
int64_t linli_now_ms(void);

//  ids[0..n) as one PostgreSQL array literal, "{1,2,3}", for a $k::bigint[]
//  parameter. Caller frees; NULL when out of memory.
char *linli_pg_int64_array(const int64_t *ids, size_t n);

#endif
