//  linli_idem: idempotency keys stored with the change they guard.
#include "linli_idem.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_log.h"

//  Hex digest of method + NUL + body: what "the same request" means.
static void
s_request_hash(linli_request_t *request, char out[65])
{
    size_t len = 0;
    const uint8_t *body = linli_request_body(request, &len);
    const char *method = linli_request_method(request);
    crypto_generichash_state st;
    unsigned char digest[32];
    crypto_generichash_init(&st, NULL, 0, sizeof digest);
    crypto_generichash_update(&st, (const unsigned char *)method, strlen(method) + 1);
    if (len)
        crypto_generichash_update(&st, body, len);
    crypto_generichash_final(&st, digest, sizeof digest);
    sodium_bin2hex(out, 65, digest, sizeof digest);
}

linli_idem_rc_t
linli_idem_begin(linli_pg_t *pg, linli_request_t *request, linli_idem_t *idem)
{
    memset(idem, 0, sizeof *idem);
    idem->pg = pg;
    if (linli_pg_begin(pg)) {
        linli_fail(request, 503, "store_unavailable", "the store is unavailable");
        return LINLI_IDEM_ANSWERED;
    }
    const char *key = linli_request_idempotency_key(request);
    if (!key || !*key)
        return LINLI_IDEM_NEW;
    const Linli__Caller *caller = linli_request_caller(request);
    idem->keyed = true;
    //  Keys are the caller's own: an anonymous caller's are its address's,
    //  so one client cannot claim (and spoil) another's key.
    if (caller->user_id && *caller->user_id)
        snprintf(idem->scope, sizeof idem->scope, "%s", caller->user_id);
    else
        snprintf(idem->scope, sizeof idem->scope, "anon:%.50s",
                 caller->client_addr ? caller->client_addr : "");
    snprintf(idem->key, sizeof idem->key, "%s", key);
    char hash[65];
    s_request_hash(request, hash);

    //  The insert takes the key's row lock: a concurrent duplicate blocks
    //  here until we commit (then replays) or roll back (then runs itself).
    const char *params[] = {idem->scope, idem->key, linli_request_method(request), hash};
    PGresult *res = linli_pg_exec(pg,
                                  "INSERT INTO idempotency (scope, key, method, request_hash) "
                                  "VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING "
                                  "RETURNING 1",
                                  4, params);
    if (!res) {
        linli_pg_rollback(pg);
        linli_fail(request, 503, "store_unavailable", "the store is unavailable");
        return LINLI_IDEM_ANSWERED;
    }
    bool inserted = PQntuples(res) == 1;
    PQclear(res);
    if (inserted)
        return LINLI_IDEM_NEW;

    res = linli_pg_exec(pg,
                        "SELECT request_hash, status, reply FROM idempotency "
                        "WHERE scope = $1 AND key = $2",
                        2, params);
    linli_pg_rollback(pg);
    if (!res || PQntuples(res) != 1) {
        if (res)
            PQclear(res);
        linli_fail(request, 503, "store_unavailable", "the store is unavailable");
        return LINLI_IDEM_ANSWERED;
    }
    if (strcmp(PQgetvalue(res, 0, 0), hash)) {
        PQclear(res);
        linli_fail(request, 422, "idempotency_key_reused",
                   "this Idempotency-Key was used with another request");
        return LINLI_IDEM_ANSWERED;
    }
    if (PQgetisnull(res, 0, 1)) {
        //  Only possible if a row was committed without a reply: a bug, not input.
        PQclear(res);
        linli_fail(request, 409, "idempotency_in_progress", "the first request is still running");
        return LINLI_IDEM_ANSWERED;
    }
    int status = atoi(PQgetvalue(res, 0, 1));
    size_t len = 0;
    unsigned char *reply = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &len);
    PQclear(res);
    if (!reply) {
        linli_fail(request, 503, "store_unavailable", "the stored reply cannot be read");
        return LINLI_IDEM_ANSWERED;
    }
    linli_log_ctx(LINLI_LOG_INFO, linli_request_id(request), NULL,
                  "replaying the first reply to a repeated idempotency key");
    linli_reply_packed(request, status, reply, len);
    PQfreemem(reply);
    return LINLI_IDEM_REPLAYED;
}

//  Store packed (len bytes) as the key's reply, if keyed, and commit. 0 or -1.
static int
s_store_and_commit(linli_idem_t *idem, int status, const uint8_t *packed, size_t len)
{
    if (idem->keyed) {
        size_t elen = 0;
        PGconn *conn = linli_pg_conn(idem->pg);
        unsigned char *escaped = conn ? PQescapeByteaConn(conn, packed, len, &elen) : NULL;
        char st[16];
        snprintf(st, sizeof st, "%d", status);
        const char *params[] = {idem->scope, idem->key, st, (const char *)escaped};
        int rc = escaped ? linli_pg_command(idem->pg,
                                            "UPDATE idempotency SET status = $3::int, "
                                            "reply = $4::bytea WHERE scope = $1 AND key = $2",
                                            4, params)
                         : -1;
        if (escaped)
            PQfreemem(escaped);
        if (rc) {
            linli_pg_rollback(idem->pg);
            return -1;
        }
    }
    return linli_pg_commit(idem->pg);
}

//  Pack body into a new buffer (caller frees); NULL when out of memory.
static uint8_t *
s_pack(const ProtobufCMessage *body, size_t *len)
{
    *len = body ? protobuf_c_message_get_packed_size(body) : 0;
    uint8_t *packed = malloc(*len ? *len : 1);
    if (packed && body)
        protobuf_c_message_pack(body, packed);
    return packed;
}

int
linli_idem_finish(linli_idem_t *idem, int status, const ProtobufCMessage *body)
{
    size_t len;
    uint8_t *packed = s_pack(body, &len);
    if (!packed) {
        linli_pg_rollback(idem->pg);
        return -1;
    }
    int rc = s_store_and_commit(idem, status, packed, len);
    free(packed);
    return rc;
}

int
linli_idem_commit(linli_idem_t *idem, linli_request_t *request, int status,
                  const ProtobufCMessage *body)
{
    size_t len;
    uint8_t *packed = s_pack(body, &len);
    if (!packed) {
        linli_pg_rollback(idem->pg);
        return linli_fail(request, 503, "overloaded", "out of memory");
    }
    if (s_store_and_commit(idem, status, packed, len)) {
        free(packed);
        return linli_fail(request, 503, "store_unavailable", "the change could not be committed");
    }
    linli_reply_packed(request, status, packed, len);
    free(packed);
    return 0;
}

int
linli_idem_abort(linli_idem_t *idem, linli_request_t *request, int status, const char *code,
                 const char *fmt, ...)
{
    linli_pg_rollback(idem->pg);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return linli_fail(request, status, code, "%s", msg);
}

int
linli_idem_expire(linli_pg_t *pg, int max_age_s)
{
    char age[16];
    snprintf(age, sizeof age, "%d", max_age_s);
    const char *params[] = {age};
    PGresult *res = linli_pg_exec(pg,
                                  "DELETE FROM idempotency WHERE created_at < "
                                  "now() - make_interval(secs => $1::int)",
                                  1, params);
    if (!res)
        return -1;
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n;
}
