//  linli_pg: one PostgreSQL connection with lazy connect, rate-limited
//  reconnect, transactions and ordered migrations under an advisory lock.
#include "linli_pg.h"
#include "linli_log.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Fewest milliseconds between two connection attempts after a failure.
#define S_RECONNECT_MS 250
//  Longest schema name PostgreSQL keeps (NAMEDATALEN - 1).
#define S_SCHEMA_MAX 63

//  A statement prepared on one connection (open addressing by SQL hash).
//  Parsing and planning every statement again costs more than running many
//  of them, so each distinct SQL text is prepared once per connection.
#define S_PREPARED_MAX 256
typedef struct {
    char *sql;           //  owned copy; NULL: free slot
    uint64_t hash;       //  FNV-1a of sql
    uint64_t generation; //  the connection it was prepared on
    bool failed;         //  preparing failed: always run it unprepared
} s_prepared_t;

struct linli_pg_t {
    char *dsn;                             //  owned; never logged (may hold a password)
    char schema[S_SCHEMA_MAX + 1];         //  validated [a-z_][a-z0-9_]*, "" when none
    int statement_timeout_ms;              //  set on every new connection; 0 = none
    PGconn *conn;                          //  owned; NULL until the first use
    bool in_tx;                            //  a BEGIN of ours is open
    bool failing;                          //  in a failure burst: already logged
    int64_t next_attempt_ms;               //  monotonic time before which we do not retry
    uint64_t generation;                   //  bumped on every successful connect
    s_prepared_t prepared[S_PREPARED_MAX]; //  statements prepared on the connection
};

int64_t
linli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  True when name is a plain lower-case identifier we may splice into SQL.
static bool
s_schema_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > S_SCHEMA_MAX)
        return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

//  The last line of a libpq error message, without its newline, into buf.
static const char *
s_errmsg(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg ? msg : "");
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return buf;
}

//  NOTICEs (e.g. "already exists, skipping") go to the JSON log, not raw stderr.
static void
s_notice(void *arg, const char *message)
{
    (void)arg;
    char buf[512];
    linli_debug("pg notice: %s", s_errmsg(message, buf, sizeof buf));
}

linli_pg_t *
linli_pg_new(const char *dsn, const char *schema, int statement_timeout_ms)
{
    if (!dsn)
        return NULL;
    if (schema && !s_schema_valid(schema)) {
        linli_error("pg: schema name must match [a-z_][a-z0-9_]* (at most 63 bytes)");
        return NULL;
    }
    linli_pg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dsn = strdup(dsn);
    if (!self->dsn) {
        free(self);
        return NULL;
    }
    if (schema)
        snprintf(self->schema, sizeof self->schema, "%s", schema);
    self->statement_timeout_ms = statement_timeout_ms > 0 ? statement_timeout_ms : 0;
    return self;
}

void
linli_pg_destroy(linli_pg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_pg_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    for (size_t i = 0; i < S_PREPARED_MAX; i++)
        free(self->prepared[i].sql);
    free(self->dsn);
    free(self);
    *self_p = NULL;
}

//  Set search_path and statement_timeout on a fresh connection. 0 or -1.
static int
s_session_setup(linli_pg_t *self, PGconn *conn)
{
    char timeout[32], path[S_SCHEMA_MAX + 16];
    snprintf(timeout, sizeof timeout, "%d", self->statement_timeout_ms);
    //  A parameter, and the schema was validated at new(): nothing to quote.
    if (*self->schema)
        snprintf(path, sizeof path, "%s, public", self->schema);
    else
        snprintf(path, sizeof path, "public");
    const char *params[] = {timeout, path};
    PGresult *res = PQexecParams(conn,
                                 "SELECT set_config('statement_timeout', $1, false), "
                                 "set_config('search_path', $2, false)",
                                 2, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc && !self->failing) {
        char buf[512];
        linli_error("pg: session setup failed: %s",
                    s_errmsg(PQerrorMessage(conn), buf, sizeof buf));
    }
    PQclear(res);
    return rc;
}

//  Drop a broken connection; an open transaction died with it.
static void
s_drop(linli_pg_t *self)
{
    if (self->conn) {
        PQfinish(self->conn);
        self->conn = NULL;
    }
}

PGconn *
linli_pg_conn(linli_pg_t *self)
{
    if (!self)
        return NULL;
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return self->conn;
    //  Inside a transaction a new connection would run the rest of it in
    //  autocommit: the caller must roll back first.
    if (self->in_tx)
        return NULL;
    s_drop(self);
    int64_t now = zclock_mono();
    if (now < self->next_attempt_ms)
        return NULL;
    //  connect_timeout first: a value in the DSN (expanded after it) wins.
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *values[] = {"5", "linli", self->dsn, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn, s_notice, NULL);
        if (s_session_setup(self, conn) == 0) {
            if (self->failing)
                linli_info("pg: connected again");
            self->failing = false;
            self->conn = conn;
            self->generation++;
            return conn;
        }
    } else if (!self->failing) {
        char buf[512];
        linli_error("pg: cannot connect: %s",
                    s_errmsg(conn ? PQerrorMessage(conn) : "out of memory", buf, sizeof buf));
    }
    self->failing = true;
    self->next_attempt_ms = now + S_RECONNECT_MS;
    if (conn)
        PQfinish(conn);
    return NULL;
}

//  Log a failed statement: class 23 (constraints) is a normal outcome the
//  caller branches on, the rest is an error. Never logs parameter values.
static void
s_log_failure(PGconn *conn, const PGresult *res, const char *sql)
{
    char buf[512], stmt[96];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    //  The start of the statement says which one failed without its data.
    snprintf(stmt, sizeof stmt, "%s", sql);
    for (char *p = stmt; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    linli_log_level_t level = state && !strncmp(state, "23", 2) ? LINLI_LOG_INFO : LINLI_LOG_ERROR;
    linli_log_ctx(level, NULL, NULL, "pg: %s [%s] in \"%s\"", s_errmsg(msg, buf, sizeof buf),
                  state ? state : "conn", stmt);
}

//  Run sql on conn as a statement prepared on this connection, preparing it
//  on first use; unprepared when the cache is full or preparing failed (the
//  plain run then reports the error as usual).
static PGresult *
s_run(linli_pg_t *self, PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = sql; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    s_prepared_t *slot = NULL;
    size_t i = (size_t)(h % S_PREPARED_MAX);
    for (size_t probe = 0; probe < S_PREPARED_MAX; probe++, i = (i + 1) % S_PREPARED_MAX) {
        s_prepared_t *p = &self->prepared[i];
        if (!p->sql || (p->hash == h && !strcmp(p->sql, sql))) {
            slot = p;
            break;
        }
    }
    if (!slot || (slot->sql && slot->failed))
        return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    char name[24];
    snprintf(name, sizeof name, "l%zu", (size_t)(slot - self->prepared));
    if (!slot->sql || slot->generation != self->generation) {
        if (!slot->sql) {
            slot->sql = strdup(sql);
            if (!slot->sql)
                return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
            slot->hash = h;
        }
        PGresult *prep = PQprepare(conn, name, sql, nparams, NULL);
        bool ok = PQresultStatus(prep) == PGRES_COMMAND_OK;
        PQclear(prep);
        if (!ok) {
            //  A bad statement, or one that cannot be prepared: run it plainly
            //  from now on (an aborted transaction also lands here: the plain
            //  run then reports that).
            slot->failed = PQstatus(conn) == CONNECTION_OK && !self->in_tx;
            return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        }
        slot->generation = self->generation;
    }
    PGresult *res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && !strcmp(state, "0A000") && !self->in_tx) {
        //  "cached plan must not change result type" after a schema change:
        //  prepare it again next time.
        slot->generation = 0;
        char dealloc[48];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
        PQclear(PQexec(conn, dealloc));
    }
    return res;
}

PGresult *
linli_pg_exec_state(linli_pg_t *self, const char *sql, int nparams, const char *const *params,
                    char sqlstate[6])
{
    if (sqlstate)
        sqlstate[0] = '\0';
    if (!self || !sql)
        return NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *conn = linli_pg_conn(self);
        if (!conn)
            return NULL;
        PGresult *res = s_run(self, conn, sql, nparams, params);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)
            return res;
        bool broken = PQstatus(conn) != CONNECTION_OK;
        //  A dead connection is retried once, outside a transaction only:
        //  inside one, the statements before it died with the connection.
        if (broken && !self->in_tx && attempt == 0) {
            PQclear(res);
            s_drop(self);
            linli_warn("pg: connection lost, reconnecting");
            continue;
        }
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (sqlstate && state && !broken)
            snprintf(sqlstate, 6, "%s", state);
        s_log_failure(conn, res, sql);
        PQclear(res);
        if (broken)
            self->failing = true;
        return NULL;
    }
    return NULL;
}

PGresult *
linli_pg_exec(linli_pg_t *self, const char *sql, int nparams, const char *const *params)
{
    return linli_pg_exec_state(self, sql, nparams, params, NULL);
}

int
linli_pg_command(linli_pg_t *self, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = linli_pg_exec(self, sql, nparams, params);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

int
linli_pg_begin(linli_pg_t *self)
{
    if (!self)
        return -1;
    if (self->in_tx) {
        linli_error("pg: begin inside an open transaction");
        return -1;
    }
    if (linli_pg_command(self, "BEGIN", 0, NULL))
        return -1;
    self->in_tx = true;
    return 0;
}

int
linli_pg_commit(linli_pg_t *self)
{
    if (!self || !self->in_tx) {
        linli_error("pg: commit without a transaction");
        return -1;
    }
    PGresult *res = linli_pg_exec(self, "COMMIT", 0, NULL);
    //  COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK.
    int rc = res && !strcmp(PQcmdStatus(res), "COMMIT") ? 0 : -1;
    if (res && rc)
        linli_error("pg: commit of a failed transaction rolled back");
    PQclear(res);
    self->in_tx = false;
    if (self->conn && PQtransactionStatus(self->conn) != PQTRANS_IDLE)
        s_drop(self); //  unknown state: never reuse it
    return rc;
}

int
linli_pg_rollback(linli_pg_t *self)
{
    if (!self)
        return -1;
    if (!self->in_tx)
        return 0;
    self->in_tx = false;
    //  A lost connection already rolled the transaction back.
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK) {
        s_drop(self);
        return 0;
    }
    PGresult *res = PQexecParams(self->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(res);
    if (rc || PQtransactionStatus(self->conn) != PQTRANS_IDLE)
        s_drop(self);
    return 0;
}

bool
linli_pg_in_tx(const linli_pg_t *self)
{
    return self && self->in_tx;
}

uint64_t
linli_pg_generation(const linli_pg_t *self)
{
    return self ? self->generation : 0;
}

//  The schema migrations work in: the handle's, else public.
static const char *
s_schema(const linli_pg_t *self)
{
    return *self->schema ? self->schema : "public";
}

// ---------------------------------------------------------------- migrations

typedef struct {
    long version; //  NNN of the file name
    char *name;   //  file name, owned
} s_migration_t;

static int
s_migration_cmp(const void *a, const void *b)
{
    long va = ((const s_migration_t *)a)->version;
    long vb = ((const s_migration_t *)b)->version;
    return (va > vb) - (va < vb);
}

static void
s_migrations_free(s_migration_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

//  The NNN_name.sql files of dir sorted by number into *list_p (caller
//  frees with s_migrations_free). 0 or -1.
static int
s_migrations_list(const char *dir, s_migration_t **list_p, size_t *n_p)
{
    *list_p = NULL;
    *n_p = 0;
    DIR *d = opendir(dir);
    if (!d) {
        linli_error("pg: migrations folder %s: %s", dir, strerror(errno));
        return -1;
    }
    s_migration_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (len < 5 || strcmp(name + len - 4, ".sql") != 0)
            continue;
        char *end;
        errno = 0;
        long version = strtol(name, &end, 10);
        if (end == name || *end != '_' || name[0] < '0' || name[0] > '9' || errno || version < 0 ||
            version > 2147483647L) {
            linli_warn("pg: ignoring %s/%s: not NNN_name.sql", dir, name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            s_migration_t *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = -1;
                break;
            }
            list = grown;
        }
        list[n].version = version;
        list[n].name = strdup(name);
        if (!list[n].name) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 0) {
        qsort(list, n, sizeof *list, s_migration_cmp);
        for (size_t i = 1; i < n; i++)
            if (list[i].version == list[i - 1].version) {
                linli_error("pg: migrations %s and %s share version %ld", list[i - 1].name,
                            list[i].name, list[i].version);
                rc = -1;
                break;
            }
    }
    if (rc) {
        s_migrations_free(list, n);
        return -1;
    }
    *list_p = list;
    *n_p = n;
    return 0;
}

//  Whole file into a NUL-terminated buffer; caller frees. NULL on error.
static char *
s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (true) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

//  Apply one migration file in its own transaction. 0 or -1 (logged).
static int
s_migration_apply(linli_pg_t *self, uint64_t generation, const char *dir, const s_migration_t *m)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, m->name);
    char *sql = s_read_file(path);
    if (!sql) {
        linli_error("pg: migration %s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    if (linli_pg_begin(self)) {
        free(sql);
        return -1;
    }
    int rc = -1;
    //  BEGIN may have reconnected, and the advisory lock died with the old session.
    if (self->generation != generation) {
        linli_error("pg: connection lost while migrating %s", path);
        free(sql);
        linli_pg_rollback(self);
        return -1;
    }
    char path_value[S_SCHEMA_MAX + 16];
    snprintf(path_value, sizeof path_value, "%s, public", s_schema(self));
    const char *sp[] = {path_value};
    if (linli_pg_command(self, "SELECT set_config('search_path', $1, true)", 1, sp) == 0) {
        //  The one use of PQexec: a migration file holds many statements, which
        //  the extended protocol refuses. It is our own file, not input.
        PGresult *res = PQexec(self->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
            char version[24];
            snprintf(version, sizeof version, "%ld", m->version);
            const char *params[] = {version, m->name};
            char insert[160];
            snprintf(insert, sizeof insert,
                     "INSERT INTO \"%s\".schema_migrations (version, name) VALUES ($1, $2)",
                     s_schema(self));
            rc = linli_pg_command(self, insert, 2, params);
        } else {
            char buf[1024];
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            linli_error("pg: migration %s failed [%s]: %s", path, state ? state : "conn",
                        s_errmsg(PQresultErrorMessage(res), buf, sizeof buf));
        }
        PQclear(res);
    }
    free(sql);
    if (rc == 0 && linli_pg_commit(self) == 0) {
        linli_info("pg: applied migration %s to schema %s", m->name, s_schema(self));
        return 0;
    }
    linli_pg_rollback(self);
    return -1;
}

//  With the migration lock held: create the bookkeeping and apply what is new.
static int
s_migrate_locked(linli_pg_t *self, uint64_t generation, const char *dir)
{
    char ddl[256];
    //  The schema is validated; these statements cannot take it as a parameter.
    snprintf(ddl, sizeof ddl, "CREATE SCHEMA IF NOT EXISTS \"%s\"", s_schema(self));
    if (linli_pg_command(self, ddl, 0, NULL))
        return -1;
    snprintf(ddl, sizeof ddl,
             "CREATE TABLE IF NOT EXISTS \"%s\".schema_migrations (version int PRIMARY KEY, "
             "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
             s_schema(self));
    if (linli_pg_command(self, ddl, 0, NULL))
        return -1;

    s_migration_t *list;
    size_t n;
    if (s_migrations_list(dir, &list, &n))
        return -1;
    snprintf(ddl, sizeof ddl, "SELECT version FROM \"%s\".schema_migrations", s_schema(self));
    PGresult *res = linli_pg_exec(self, ddl, 0, NULL);
    if (!res) {
        s_migrations_free(list, n);
        return -1;
    }
    int rc = 0, applied = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool done = false;
        for (int r = 0; r < PQntuples(res) && !done; r++)
            done = atol(PQgetvalue(res, r, 0)) == list[i].version;
        if (done)
            continue;
        rc = s_migration_apply(self, generation, dir, &list[i]);
        applied += rc == 0;
    }
    PQclear(res);
    s_migrations_free(list, n);
    if (rc == 0)
        linli_info("pg: schema %s is up to date (%d migration%s applied)", s_schema(self), applied,
                   applied == 1 ? "" : "s");
    return rc;
}

int
linli_pg_migrate(linli_pg_t *self, const char *dir)
{
    if (!self || !dir || self->in_tx) {
        linli_error("pg: migrate needs a handle, a folder and no open transaction");
        return -1;
    }
    if (!linli_pg_conn(self))
        return -1;
    //  Waiting for another migrator, or a long CREATE INDEX, must not hit
    //  the service's statement_timeout; it is restored afterwards.
    if (linli_pg_command(self, "SELECT set_config('statement_timeout', '0', false)", 0, NULL))
        return -1;
    const char *lock[] = {s_schema(self)};
    int rc = -1;
    uint64_t generation = self->generation;
    if (linli_pg_command(self, "SELECT pg_advisory_lock(hashtext('linli.migrate.' || $1))", 1,
                         lock) == 0) {
        //  A reconnect (a retried statement) would have lost the lock.
        if (self->generation == generation) {
            rc = s_migrate_locked(self, generation, dir);
        } else {
            //  Taken on a new session by the retry: end that session to free it.
            linli_error("pg: connection lost while taking the migration lock");
            s_drop(self);
        }
        if (self->conn && self->generation == generation)
            linli_pg_command(self, "SELECT pg_advisory_unlock(hashtext('linli.migrate.' || $1))", 1,
                             lock);
    }
    if (self->conn) {
        char timeout[32];
        snprintf(timeout, sizeof timeout, "%d", self->statement_timeout_ms);
        const char *tp[] = {timeout};
        linli_pg_command(self, "SELECT set_config('statement_timeout', $1, false)", 1, tp);
    }
    return rc;
}

char *
linli_pg_int64_array(const int64_t *ids, size_t n)
{
    size_t cap = n * 21 + 3; //  "{", up to 20 characters and a comma per id, "}", NUL
    char *list = malloc(cap);
    if (!list)
        return NULL;
    size_t len = 0;
    list[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(list + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
    snprintf(list + len, cap - len, "}");
    return list;
}
