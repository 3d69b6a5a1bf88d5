//  linli_outbox: events appended in the caller's transaction, and the relay
//  that moves committed rows into a Redis Stream (docs/outbox.md).
#include "linli_outbox.h"
#include "linli_crypto.h"
#include "linli_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Rows per tick unless set, and the stream's approximate length bound.
#define S_DEFAULT_BATCH 500
#define S_DEFAULT_MAXLEN 1000000L
//  Stream entries read per XREVRANGE page while recovering.
#define S_RECOVER_PAGE 1000
//  Clock skew allowed between PostgreSQL (created_at) and Redis (stream ids).
#define S_SKEW_MS 60000
//  The relay's statement_timeout.
#define S_RELAY_TIMEOUT_MS 5000

static const char s_ddl[] =
    "CREATE TABLE IF NOT EXISTS outbox (\n"
    "    id         bigserial PRIMARY KEY,\n"
    "    event_id   text COLLATE \"C\" NOT NULL UNIQUE,\n"
    "    type       text NOT NULL,\n"
    "    area       text NOT NULL DEFAULT '',\n"
    "    payload    bytea NOT NULL,\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    sent_at    timestamptz\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;\n";

const char *
linli_outbox_ddl(void)
{
    return s_ddl;
}

// ---------------------------------------------------------------- events

void
linli_event_new_id(char id[33])
{
    //  Fails only when libsodium cannot initialise (id is then "").
    if (linli_random_id(id, LINLI_RANDOM_ID_CAP))
        linli_error("outbox: sodium_init failed");
}

int
linli_event_init(linli_event_t *self, const char *source, const char *type, const char *subject,
                 const char *area, const ProtobufCMessage *msg)
{
    if (!self)
        return -1;
    memset(self, 0, sizeof *self);
    linli__event__init(&self->event);
    if (!source || !*source || !type || !*type) {
        linli_error("outbox: an event needs a source and a type");
        return -1;
    }
    linli_event_new_id(self->id);
    self->event.id = self->id;
    self->event.source = (char *)source;
    self->event.type = (char *)type;
    self->event.time_ms = linli_now_ms();
    self->event.subject = (char *)subject;
    self->event.area = (char *)area;
    if (msg) {
        size_t len = protobuf_c_message_get_packed_size(msg);
        //  One byte at least: malloc(0) may return NULL.
        self->data = malloc(len ? len : 1);
        if (!self->data)
            return -1;
        protobuf_c_message_pack(msg, self->data);
        self->event.data_type = (char *)msg->descriptor->name;
        self->event.has_data = 1;
        self->event.data.data = self->data;
        self->event.data.len = len;
    }
    return 0;
}

void
linli_event_clear(linli_event_t *self)
{
    if (!self)
        return;
    free(self->data);
    self->data = NULL;
    linli__event__init(&self->event);
}

// ---------------------------------------------------------------- append

//  bytea input in hex format ("\x0a1b..."), for a text parameter; caller frees.
static char *
s_bytea_hex(const uint8_t *data, size_t len)
{
    char *out = malloc(2 * len + 3);
    if (!out)
        return NULL;
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 2 * len + 1, data, len);
    return out;
}

int
linli_outbox_append(linli_pg_t *pg, const Linli__Event *event)
{
    if (!pg || !event)
        return -1;
    if (!linli_pg_in_tx(pg)) {
        //  Outside the change's transaction the outbox promises nothing.
        linli_error("outbox: append outside a transaction");
        return -1;
    }
    if (!event->id || !*event->id || !event->type || !*event->type || !event->source ||
        !*event->source) {
        linli_error("outbox: event without id, source or type");
        return -1;
    }
    size_t len = linli__event__get_packed_size(event);
    uint8_t *packed = malloc(len ? len : 1);
    if (!packed)
        return -1;
    linli__event__pack(event, packed);
    char *payload = s_bytea_hex(packed, len);
    free(packed);
    if (!payload)
        return -1;
    const char *params[] = {event->id, event->type, event->area ? event->area : "", payload};
    int rc = linli_pg_command(
        pg, "INSERT INTO outbox (event_id, type, area, payload) VALUES ($1, $2, $3, $4::bytea)", 4,
        params);
    free(payload);
    if (rc)
        linli_log_ctx(LINLI_LOG_ERROR, NULL, event->id, "outbox: append of %s failed", event->type);
    return rc;
}

// ---------------------------------------------------------------- relay

struct linli_relay_t {
    linli_pg_t *pg;           //  own connection: its session holds the relay lock
    linli_redis_t *redis;     //  borrowed
    char schema[64];          //  the service schema (lock key)
    char key[256];            //  the stream: redis prefix + stream name
    int batch;                //  rows per tick
    long maxlen;              //  MAXLEN ~ for XADD; 0 = no trimming
    bool active;              //  holds the lock
    uint64_t lock_generation; //  pg session the lock was taken in
    bool need_recover;        //  scan the stream tail before publishing
};

linli_relay_t *
linli_relay_new(const char *dsn, const char *schema, linli_redis_t *redis, const char *stream_name)
{
    if (!dsn || !schema || !redis || !stream_name || !*stream_name)
        return NULL;
    linli_relay_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pg = linli_pg_new(dsn, schema, S_RELAY_TIMEOUT_MS);
    if (!self->pg) {
        free(self);
        return NULL;
    }
    self->redis = redis;
    snprintf(self->schema, sizeof self->schema, "%s", schema);
    linli_redis_key(redis, self->key, sizeof self->key, "%s", stream_name);
    self->batch = S_DEFAULT_BATCH;
    self->maxlen = S_DEFAULT_MAXLEN;
    return self;
}

void
linli_relay_destroy(linli_relay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_relay_t *self = *self_p;
    linli_pg_destroy(&self->pg);
    free(self);
    *self_p = NULL;
}

void
linli_relay_set_batch(linli_relay_t *self, int batch)
{
    if (self && batch > 0)
        self->batch = batch;
}

void
linli_relay_set_maxlen(linli_relay_t *self, long maxlen)
{
    if (self && maxlen >= 0)
        self->maxlen = maxlen;
}

bool
linli_relay_active(const linli_relay_t *self)
{
    return self && self->active;
}

//  True while the session that took the lock is still the one we talk to: a
//  reconnect (even a transparent retry) means the lock is gone.
static bool
s_still_locked(linli_relay_t *self)
{
    if (self->active && linli_pg_generation(self->pg) != self->lock_generation) {
        linli_warn("relay: lost the %s relay lock with its connection", self->schema);
        self->active = false;
    }
    return self->active;
}

//  Hold the relay lock: 1 when held, 0 when another relay has it, -1 on error.
static int
s_hold_lock(linli_relay_t *self)
{
    if (s_still_locked(self))
        return 1;
    const char *params[] = {self->schema};
    PGresult *res = linli_pg_exec(
        self->pg, "SELECT pg_try_advisory_lock(hashtext('linli.relay.' || $1))", 1, params);
    if (!res)
        return -1;
    bool got = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!got)
        return 0;
    self->active = true;
    self->lock_generation = linli_pg_generation(self->pg);
    //  The relay before us may have published rows it did not mark.
    self->need_recover = true;
    linli_info("relay: active for schema %s, stream %s", self->schema, self->key);
    return 1;
}

//  A PostgreSQL text[] literal of n strings: {"a","b"}; caller frees.
static char *
s_text_array(const char *const *items, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(items[i]) + 3;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t len = 0;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[len++] = ',';
        out[len++] = '"';
        for (const char *p = items[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                out[len++] = '\\';
            out[len++] = *p;
        }
        out[len++] = '"';
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

//  Mark sent the rows whose event ids are in ids. Returns how many, or -1.
static long
s_mark_event_ids(linli_relay_t *self, const char *const *ids, size_t n)
{
    if (n == 0)
        return 0;
    char *array = s_text_array(ids, n);
    if (!array)
        return -1;
    const char *params[] = {array};
    PGresult *res = linli_pg_exec(self->pg,
                                  "UPDATE outbox SET sent_at = now() "
                                  "WHERE sent_at IS NULL AND event_id = ANY($1::text[])",
                                  1, params);
    free(array);
    if (!res)
        return -1;
    long marked = atol(PQcmdTuples(res));
    PQclear(res);
    return marked;
}

//  The value of field name in a stream entry's field list, or NULL.
static const redisReply *
s_entry_field(const redisReply *fields, const char *name)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && !strcmp(f->str, name))
            return fields->element[i + 1];
    }
    return NULL;
}

//  After a takeover or a failed publish: walk the stream tail back to the
//  oldest unsent row and mark sent every event already in the stream, so
//  nothing is published twice. 0 or -1 (the next tick tries again).
static int
s_recover(linli_relay_t *self)
{
    PGresult *res = linli_pg_exec(self->pg,
                                  "SELECT count(*), (extract(epoch FROM min(created_at)) * "
                                  "1000)::bigint FROM outbox WHERE sent_at IS NULL",
                                  0, NULL);
    if (!res)
        return -1;
    long unsent = atol(PQgetvalue(res, 0, 0));
    //  created_at is the inserting transaction's start: every publication
    //  of a row came later (give or take the clock skew between the hosts).
    long long oldest_ms = unsent ? atoll(PQgetvalue(res, 0, 1)) - S_SKEW_MS : 0;
    PQclear(res);
    if (unsent == 0) {
        self->need_recover = false;
        return 0;
    }
    char end[64] = "+";
    long scanned = 0, marked = 0;
    const char *ids[S_RECOVER_PAGE];
    while (true) {
        redisReply *reply = linli_redis_cmd(self->redis, "XREVRANGE %s %s - COUNT %d", self->key,
                                            end, S_RECOVER_PAGE);
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
            if (reply)
                linli_error("relay: XREVRANGE %s: %s", self->key,
                            reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
            freeReplyObject(reply);
            return -1;
        }
        size_t n = 0;
        long long last_ms = 0;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *entry = reply->element[i];
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
                entry->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(end, sizeof end, "(%s", entry->element[0]->str);
            last_ms = atoll(entry->element[0]->str);
            const redisReply *id = s_entry_field(entry->element[1], "event_id");
            if (id && id->type == REDIS_REPLY_STRING)
                ids[n++] = id->str;
        }
        size_t got = reply->elements;
        long m = s_mark_event_ids(self, ids, n);
        freeReplyObject(reply);
        if (m < 0)
            return -1;
        marked += m;
        scanned += (long)got;
        if (got < S_RECOVER_PAGE || last_ms < oldest_ms)
            break;
    }
    self->need_recover = false;
    linli_info("relay: %s recovered: %ld of %ld unsent events were already in %s (%ld entries "
               "read)",
               self->schema, marked, unsent, self->key, scanned);
    return 0;
}

//  Publish up to a batch of unsent rows; mark them unless mark is false (the
//  crash test hook). Returns how many were published, or -1.
static int
s_publish(linli_relay_t *self, bool mark)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", self->batch);
    const char *params[] = {limit};
    //  All unsent rows in id order, never "id > last": ids are taken before
    //  commit, so a lower id can commit after a higher one was published.
    PGresult *res = linli_pg_exec(self->pg,
                                  "SELECT id, event_id, type, area, payload FROM outbox "
                                  "WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                                  1, params);
    if (!res)
        return -1;
    int n = PQntuples(res);
    if (n == 0 || !s_still_locked(self)) {
        PQclear(res);
        return 0;
    }
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%ld", self->maxlen);
    enum { ARGS = 14 };
    unsigned char **payloads = calloc((size_t)n, sizeof *payloads);
    const char **args = calloc((size_t)n * ARGS, sizeof *args);
    size_t *lens = calloc((size_t)n * ARGS, sizeof *lens);
    const char ***argvs = calloc((size_t)n, sizeof *argvs);
    const size_t **argvlens = calloc((size_t)n, sizeof *argvlens);
    int *argcs = calloc((size_t)n, sizeof *argcs);
    redisReply **replies = calloc((size_t)n, sizeof *replies);
    //  The ids literal: "{" + up to 20 digits and a comma per row + "}".
    char *marks = malloc((size_t)n * 21 + 3);
    int rc = -1, published = 0, failed = 0;
    if (!payloads || !args || !lens || !argvs || !argvlens || !argcs || !replies || !marks)
        goto done;
    for (int i = 0; i < n; i++) {
        size_t plen = 0;
        payloads[i] = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &plen);
        if (!payloads[i])
            goto done;
        const char **a = args + (size_t)i * ARGS;
        size_t *l = lens + (size_t)i * ARGS;
        int k = 0;
        a[k++] = "XADD";
        a[k++] = self->key;
        if (self->maxlen > 0) {
            a[k++] = "MAXLEN";
            a[k++] = "~";
            a[k++] = maxlen;
        }
        a[k++] = "*";
        a[k++] = "event_id";
        a[k++] = PQgetvalue(res, i, 1);
        a[k++] = "type";
        a[k++] = PQgetvalue(res, i, 2);
        a[k++] = "area";
        a[k++] = PQgetvalue(res, i, 3);
        a[k++] = "data";
        a[k] = (const char *)payloads[i];
        l[k] = plen;
        for (int j = 0; j < k; j++)
            l[j] = strlen(a[j]);
        argcs[i] = k + 1;
        argvs[i] = a;
        argvlens[i] = l;
    }
    if (linli_redis_pipeline(self->redis, n, argcs, argvs, argvlens, replies)) {
        //  Some XADDs may have landed: find them in the stream before retrying.
        self->need_recover = true;
        goto done;
    }
    size_t mlen = 0;
    marks[mlen++] = '{';
    for (int i = 0; i < n; i++) {
        if (replies[i]->type != REDIS_REPLY_STRING) {
            if (!failed++)
                linli_log_ctx(
                    LINLI_LOG_ERROR, NULL, PQgetvalue(res, i, 1), "relay: XADD %s: %s", self->key,
                    replies[i]->type == REDIS_REPLY_ERROR ? replies[i]->str : "unexpected reply");
            continue;
        }
        mlen += (size_t)sprintf(marks + mlen, "%s%s", published ? "," : "", PQgetvalue(res, i, 0));
        published++;
    }
    marks[mlen++] = '}';
    marks[mlen] = '\0';
    rc = published;
    if (mark && published > 0) {
        const char *mp[] = {marks};
        if (linli_pg_command(self->pg,
                             "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", 1,
                             mp)) {
            //  Published but not marked: the stream tail tells on the next tick.
            self->need_recover = true;
            rc = -1;
        }
    }
done:
    for (int i = 0; payloads && i < n; i++)
        if (payloads[i])
            PQfreemem(payloads[i]);
    for (int i = 0; replies && i < n; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
    free(payloads);
    free(args);
    free(lens);
    free(argvs);
    free(argvlens);
    free(argcs);
    free(replies);
    free(marks);
    PQclear(res);
    if (rc < 0 && !self->need_recover)
        linli_error("relay: %s publish failed", self->schema);
    return rc;
}

//  One relay step: lock, recover if needed, publish (and mark unless testing).
static int
s_tick(linli_relay_t *self, bool mark)
{
    if (!self)
        return -1;
    int held = s_hold_lock(self);
    if (held <= 0)
        return held;
    if (self->need_recover && s_recover(self))
        return -1;
    if (!s_still_locked(self))
        return 0;
    return s_publish(self, mark);
}

int
linli_relay_tick(linli_relay_t *self)
{
    return s_tick(self, true);
}

int
linli_relay_tick_publish_only(linli_relay_t *self)
{
    return s_tick(self, false);
}

long
linli_relay_replay_from(linli_relay_t *self, int64_t since_ms)
{
    if (!self)
        return -1;
    char since[24];
    snprintf(since, sizeof since, "%lld", (long long)since_ms);
    const char *params[] = {since};
    PGresult *res = linli_pg_exec(self->pg,
                                  "UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL "
                                  "AND created_at >= to_timestamp($1::bigint / 1000.0)",
                                  1, params);
    if (!res)
        return -1;
    long n = atol(PQcmdTuples(res));
    PQclear(res);
    //  Rows still in the stream are found and re-marked before publishing.
    self->need_recover = true;
    linli_warn("relay: %s replay from %lld: %ld events to publish again", self->schema,
               (long long)since_ms, n);
    return n;
}

long
linli_relay_cleanup(linli_relay_t *self, int keep_days)
{
    if (!self || keep_days < 0)
        return -1;
    char days[16];
    snprintf(days, sizeof days, "%d", keep_days);
    const char *params[] = {days};
    long total = 0;
    //  In slices, oldest first along the primary key, so no long lock or transaction.
    while (true) {
        PGresult *res = linli_pg_exec(
            self->pg,
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL "
            "AND sent_at < now() - make_interval(days => $1::int) ORDER BY id LIMIT 10000)",
            1, params);
        if (!res)
            return -1;
        long n = atol(PQcmdTuples(res));
        PQclear(res);
        total += n;
        if (n < 10000)
            break;
    }
    if (total)
        linli_info("relay: %s cleanup deleted %ld sent events", self->schema, total);
    return total;
}
