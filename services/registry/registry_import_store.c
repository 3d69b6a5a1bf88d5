//  registry_import_store: the import_jobs rows.
#include "registry_import_store.h"
#include "registry_util.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linli_log.h"

//  The job's advisory lock: two int4 keys, a constant and the job id.
#define S_LOCK_KEY "hashtext('linli.registry.import')"
#define S_LOCK_ID "($1::bigint % 2147483647)::int"

#define S_JOB_COLUMNS                                                                              \
    "id, kind, coalesce(created_by, 0), grants, dry_run, status, coalesce(phase, ''), attempts, "  \
    "coalesce(error_code, ''), coalesce(error, ''), coalesce(error_line, 0), total_rows, "         \
    "processed_rows, imported, rejected, file_bytes, "                                             \
    "(extract(epoch FROM created_at) * 1000)::bigint, "                                            \
    "coalesce((extract(epoch FROM started_at) * 1000)::bigint, 0), "                               \
    "coalesce((extract(epoch FROM finished_at) * 1000)::bigint, 0)"

static void
s_row_from(PGresult *res, int r, registry_import_row_t *row)
{
    memset(row, 0, sizeof *row);
    row->id = registry_col_int64(res, r, 0);
    registry_copy(row->kind, sizeof row->kind, PQgetvalue(res, r, 1));
    row->created_by = registry_col_int64(res, r, 2);
    registry_copy(row->grants, sizeof row->grants, PQgetvalue(res, r, 3));
    row->dry_run = PQgetvalue(res, r, 4)[0] == 't';
    registry_copy(row->status, sizeof row->status, PQgetvalue(res, r, 5));
    registry_copy(row->phase, sizeof row->phase, PQgetvalue(res, r, 6));
    row->attempts = atoi(PQgetvalue(res, r, 7));
    registry_copy(row->error_code, sizeof row->error_code, PQgetvalue(res, r, 8));
    registry_copy(row->error, sizeof row->error, PQgetvalue(res, r, 9));
    row->error_line = registry_col_int64(res, r, 10);
    row->total_rows = registry_col_int64(res, r, 11);
    row->processed_rows = registry_col_int64(res, r, 12);
    row->imported = registry_col_int64(res, r, 13);
    row->rejected = registry_col_int64(res, r, 14);
    row->file_bytes = registry_col_int64(res, r, 15);
    row->created_at_ms = registry_col_int64(res, r, 16);
    row->started_at_ms = registry_col_int64(res, r, 17);
    row->finished_at_ms = registry_col_int64(res, r, 18);
}

int
registry_import_store_queue(linli_pg_t *pg, int64_t created_by, const char *grants, bool dry_run,
                            const uint8_t *csv, size_t len, registry_import_row_t *row)
{
    char by[24], bytes[24];
    snprintf(by, sizeof by, "%" PRId64, created_by);
    snprintf(bytes, sizeof bytes, "%zu", len);
    const char *params[] = {created_by > 0 ? by : NULL, grants, dry_run ? "t" : "f", bytes};
    //  libpq takes a parameter's length as an int.
    if (len > INT_MAX) {
        linli_error("import: a file of %zu bytes is too large to store", len);
        return -1;
    }
    PGresult *res =
        linli_pg_exec(pg,
                      "INSERT INTO import_jobs (created_by, grants, dry_run, file_bytes) "
                      "VALUES ($1::bigint, $2, $3::boolean, $4::bigint) "
                      "RETURNING " S_JOB_COLUMNS,
                      4, params);
    if (!res)
        return -1;
    s_row_from(res, 0, row);
    PQclear(res);
    //  The file goes as a binary parameter: no escaping, no doubling.
    PGconn *conn = linli_pg_conn(pg);
    if (!conn)
        return -1;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, row->id);
    const char *values[] = {id, (const char *)csv};
    int lengths[] = {0, (int)len};
    int formats[] = {0, 1};
    res = PQexecParams(conn, "INSERT INTO import_files (job_id, payload) VALUES ($1::bigint, $2)",
                       2, NULL, values, lengths, formats, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        linli_error("import: storing the file of job %" PRId64 " failed: %s", row->id,
                    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                        ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                        : PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

int
registry_import_store_start(linli_pg_t *pg, const char *kind, int64_t created_by,
                            const char *grants, bool dry_run, registry_import_row_t *row)
{
    char by[24], runner[96], host[64] = "";
    snprintf(by, sizeof by, "%" PRId64, created_by);
    gethostname(host, sizeof host - 1);
    snprintf(runner, sizeof runner, "%s:%d", host, (int)getpid());
    const char *params[] = {kind, created_by > 0 ? by : NULL, grants, dry_run ? "t" : "f", runner};
    if (linli_pg_begin(pg))
        return -1;
    PGresult *res = linli_pg_exec(
        pg,
        "INSERT INTO import_jobs (kind, created_by, grants, dry_run, status, phase, runner, "
        "attempts, started_at) VALUES ($1, $2::bigint, $3, $4::boolean, 'running', 'checking', $5, "
        "1, now()) RETURNING " S_JOB_COLUMNS,
        5, params);
    if (!res) {
        linli_pg_rollback(pg);
        return -1;
    }
    s_row_from(res, 0, row);
    PQclear(res);
    //  Held before the row is visible: no runner can claim it in between.
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, row->id);
    const char *lp[] = {id};
    if (linli_pg_command(pg, "SELECT pg_advisory_lock(" S_LOCK_KEY ", " S_LOCK_ID ")", 1, lp) ||
        linli_pg_commit(pg)) {
        linli_pg_rollback(pg);
        return -1;
    }
    return 0;
}

//  End job id as failed, inside pg's open transaction.
static int
s_fail_in_tx(linli_pg_t *pg, const char *id, const char *code, const char *message, int64_t line)
{
    char lbuf[24];
    snprintf(lbuf, sizeof lbuf, "%" PRId64, line);
    const char *params[] = {id, code, message, line > 0 ? lbuf : NULL};
    if (linli_pg_command(pg,
                         "UPDATE import_jobs SET status = 'failed', phase = NULL, error_code = $2, "
                         "error = $3, error_line = $4::bigint, finished_at = clock_timestamp() "
                         "WHERE id = $1::bigint",
                         4, params))
        return -1;
    return linli_pg_command(pg, "DELETE FROM import_files WHERE job_id = $1::bigint", 1, params);
}

int
registry_import_store_claim(linli_pg_t *pg, const char *runner, registry_import_row_t *row,
                            bool *found)
{
    *found = false;
    if (linli_pg_begin(pg))
        return -1;
    //  Row locks keep two runners from claiming at once; the advisory lock
    //  (held by the session while the job runs) tells a running job whose
    //  runner lives from one whose runner died.
    PGresult *res =
        linli_pg_exec(pg,
                      "SELECT id FROM import_jobs WHERE status IN ('queued', 'running') "
                      "ORDER BY id LIMIT 32 FOR UPDATE SKIP LOCKED",
                      0, NULL);
    if (!res) {
        linli_pg_rollback(pg);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(res) && !*found && rc == 0; i++) {
        const char *id = PQgetvalue(res, i, 0);
        const char *lp[] = {id};
        PGresult *lock =
            linli_pg_exec(pg, "SELECT pg_try_advisory_lock(" S_LOCK_KEY ", " S_LOCK_ID ")", 1, lp);
        if (!lock) {
            rc = -1;
            break;
        }
        bool got = PQgetvalue(lock, 0, 0)[0] == 't';
        PQclear(lock);
        if (!got)
            continue; //  a live runner has it
        char max[16];
        snprintf(max, sizeof max, "%d", REGISTRY_IMPORT_MAX_ATTEMPTS);
        const char *up[] = {id, runner, max};
        PGresult *claimed = linli_pg_exec(
            pg,
            "UPDATE import_jobs SET status = 'running', phase = 'checking', runner = $2, "
            "attempts = attempts + 1, started_at = coalesce(started_at, now()) "
            "WHERE id = $1::bigint AND attempts < $3::int RETURNING " S_JOB_COLUMNS,
            3, up);
        if (!claimed) {
            rc = -1;
        } else if (PQntuples(claimed) == 1) {
            s_row_from(claimed, 0, row);
            *found = true;
        } else {
            //  Claimed and lost that many times: something in it kills its runner.
            linli_warn("import: job %s failed after %d attempts", id, REGISTRY_IMPORT_MAX_ATTEMPTS);
            rc = s_fail_in_tx(pg, id, "too_many_attempts",
                              "the job was interrupted too many times; submit it again", 0);
        }
        PQclear(claimed);
        if (!*found)
            linli_pg_command(pg, "SELECT pg_advisory_unlock(" S_LOCK_KEY ", " S_LOCK_ID ")", 1, lp);
    }
    PQclear(res);
    if (rc == 0 && linli_pg_commit(pg) == 0)
        return 0;
    linli_pg_rollback(pg);
    if (*found)
        registry_import_store_release(pg, row->id);
    *found = false;
    return -1;
}

int
registry_import_store_file(linli_pg_t *pg, int64_t id, PGresult **res, const uint8_t **data,
                           size_t *len, bool *found)
{
    *res = NULL;
    *found = false;
    PGconn *conn = linli_pg_conn(pg);
    if (!conn)
        return -1;
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    const char *params[] = {idbuf};
    //  A binary result: the bytes as stored, not their hex text.
    PGresult *r = PQexecParams(conn, "SELECT payload FROM import_files WHERE job_id = $1::bigint",
                               1, NULL, params, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        linli_error("import: reading the file of job %" PRId64 " failed: %s", id,
                    PQerrorMessage(conn));
        PQclear(r);
        return -1;
    }
    if (PQntuples(r) == 1) {
        *found = true;
        *data = (const uint8_t *)PQgetvalue(r, 0, 0);
        *len = (size_t)PQgetlength(r, 0, 0);
    }
    *res = r;
    return 0;
}

int
registry_import_store_fail(linli_pg_t *pg, int64_t id, const char *code, const char *message,
                           int64_t line)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    int rc = -1;
    if (linli_pg_begin(pg) == 0) {
        if (s_fail_in_tx(pg, idbuf, code, message, line) == 0 && linli_pg_commit(pg) == 0)
            rc = 0;
        else
            linli_pg_rollback(pg);
    }
    registry_import_store_release(pg, id);
    return rc;
}

void
registry_import_store_release(linli_pg_t *pg, int64_t id)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    const char *lp[] = {idbuf};
    //  On a lost connection the lock went with the session: nothing to do.
    linli_pg_command(pg, "SELECT pg_advisory_unlock(" S_LOCK_KEY ", " S_LOCK_ID ")", 1, lp);
}

void
registry_import_store_requeue(linli_pg_t *pg, int64_t id)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    const char *params[] = {idbuf};
    linli_pg_command(pg,
                     "UPDATE import_jobs SET status = 'queued', phase = NULL, "
                     "attempts = greatest(attempts - 1, 0) WHERE id = $1::bigint "
                     "AND status = 'running'",
                     1, params);
    registry_import_store_release(pg, id);
}

int
registry_import_store_progress(linli_pg_t *pg, int64_t id, const char *phase, int64_t total,
                               int64_t processed)
{
    char idbuf[24], tbuf[24], pbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    snprintf(tbuf, sizeof tbuf, "%" PRId64, total);
    snprintf(pbuf, sizeof pbuf, "%" PRId64, processed);
    const char *params[] = {idbuf, phase, tbuf, pbuf};
    return linli_pg_command(pg,
                            "UPDATE import_jobs SET phase = coalesce($2, phase), "
                            "total_rows = $3::bigint, processed_rows = $4::bigint "
                            "WHERE id = $1::bigint AND status = 'running'",
                            4, params);
}

int
registry_import_store_get(linli_pg_t *pg, int64_t id, registry_import_row_t *row,
                          registry_import_error_t *errors, size_t max, size_t *n_errors,
                          bool *found)
{
    *found = false;
    *n_errors = 0;
    char idbuf[24], limit[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    snprintf(limit, sizeof limit, "%zu", max);
    const char *params[] = {idbuf, limit};
    PGresult *res = linli_pg_exec(
        pg, "SELECT " S_JOB_COLUMNS " FROM import_jobs WHERE id = $1::bigint", 1, params);
    if (!res)
        return -1;
    *found = PQntuples(res) == 1;
    if (*found)
        s_row_from(res, 0, row);
    PQclear(res);
    if (!*found || max == 0)
        return 0;
    res = linli_pg_exec(pg,
                        "SELECT line, code, field, message FROM import_errors "
                        "WHERE job_id = $1::bigint ORDER BY line LIMIT $2::int",
                        2, params);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res) && (size_t)i < max; i++) {
        registry_import_error_t *e = &errors[(*n_errors)++];
        e->line = registry_col_int64(res, i, 0);
        registry_copy(e->code, sizeof e->code, PQgetvalue(res, i, 1));
        registry_copy(e->field, sizeof e->field, PQgetvalue(res, i, 2));
        registry_copy(e->message, sizeof e->message, PQgetvalue(res, i, 3));
    }
    PQclear(res);
    return 0;
}

int
registry_import_store_demo_loaded(linli_pg_t *pg, int64_t *rows)
{
    return registry_get_int64(pg,
                              "SELECT coalesce(sum(total_rows), 0) FROM import_jobs "
                              "WHERE kind = 'demo' AND status = 'done'",
                              0, NULL, rows);
}
