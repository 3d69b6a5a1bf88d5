//  registry_index: the matching read model in Redis — a version-guarded
//  Lua apply shared by the event consumer and the rebuild, the area centre
//  table, and the candidates query (docs/matching-index.md).
#include "registry_index.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linli/registry.pb-c.h"
#include "linli_consumer.h"
#include "linli_log.h"

#define S_TYPE_PREFIX "linli.registry.volunteer."
#define S_DATA_TYPE "linli.registry.VolunteerEvent"
#define S_IMPORTED_TYPE "linli.registry.volunteers.imported"
#define S_IMPORTED_DATA_TYPE "linli.registry.VolunteersImported"
//  Rows per PostgreSQL page and scripts per Redis round trip in a rebuild.
#define S_PAGE_ROWS 5000
#define S_BATCH 1000
//  Longest skill or slot name kept in the index, in bytes.
#define S_ITEM_MAX 64
//  Fewest milliseconds between two area reloads caused by unknown codes.
#define S_RELOAD_MS 1000
//  Widest circle a candidates query may ask for.
#define S_RADIUS_MAX_M 100000

//  Compare-and-apply one volunteer's state. ARGV: prefix, id, version,
//  status, community, lat, lng, skills, slots (lat/lng "" without a
//  position; skills/slots comma-joined), again ("1": apply an equal version
//  too). 1 applied, 0 not newer than stored. The registry bumps updated_at
//  on every change, so an equal version is the same state: the consumer
//  skips it (a duplicate costs one HMGET); the rebuild applies it again
//  (repairs sets, moves positions after area centres changed).
//  Written for speed (a rebuild runs it 3.4 million times): no closures or
//  tables per call, SREM only when a list changed.
static const char s_apply_lua[] =
    "local p, id, ver, status = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]\n"
    "local hk = p .. 'vol:' .. id\n"
    "local cur = redis.call('HMGET', hk, 'version', 'status', 'community', 'skills', 'slots')\n"
    "local old = tonumber(cur[1])\n"
    "if old and (old > ver or (old == ver and ARGV[10] ~= '1')) then return 0 end\n"
    "local now, was = status == 'verified', cur[2] == 'verified'\n"
    "for i = 1, 3 do\n"
    "  local pre = p .. (i == 1 and 'vol:community:' or i == 2 and 'vol:skill:' or 'vol:slot:')\n"
    "  local new = ARGV[i == 1 and 5 or i + 6]\n"
    "  if was and cur[i + 2] and (not now or cur[i + 2] ~= new) then\n"
    "    local keep = now and (',' .. new .. ',') or ''\n"
    "    for x in string.gmatch(cur[i + 2], '[^,]+') do\n"
    "      if not string.find(keep, ',' .. x .. ',', 1, true) then\n"
    "        redis.call('SREM', pre .. x, id)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    //  Always SADD: it also repairs a set lost while the hash survived.
    "  if now then\n"
    "    for x in string.gmatch(new, '[^,]+') do redis.call('SADD', pre .. x, id) end\n"
    "  end\n"
    "end\n"
    "if now and ARGV[6] ~= '' then\n"
    "  redis.call('GEOADD', p .. 'vol:geo', ARGV[7], ARGV[6], id)\n"
    "else\n"
    "  redis.call('ZREM', p .. 'vol:geo', id)\n"
    "end\n"
    "redis.call('HSET', hk, 'community', ARGV[5], 'lat', ARGV[6], 'lng', ARGV[7],\n"
    "  'skills', ARGV[8], 'slots', ARGV[9], 'status', status, 'version', ARGV[3])\n"
    "return 1\n";

//  Remove one volunteer from the index entirely. ARGV: prefix, id.
static const char s_forget_lua[] =
    "local p, id = ARGV[1], ARGV[2]\n"
    "local hk = p .. 'vol:' .. id\n"
    "local cur = redis.call('HMGET', hk, 'status', 'community', 'skills', 'slots')\n"
    "if cur[1] == 'verified' then\n"
    "  local kinds = {'community', 'skill', 'slot'}\n"
    "  for i, kind in ipairs(kinds) do\n"
    "    if cur[i + 1] then\n"
    "      for x in string.gmatch(cur[i + 1], '[^,]+') do\n"
    "        redis.call('SREM', p .. 'vol:' .. kind .. ':' .. x, id)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('ZREM', p .. 'vol:geo', id)\n"
    "return redis.call('DEL', hk)\n";

//  A script and its SHA1 as Redis reported it ("" until loaded). Each user
//  (consumer, rebuild) holds its own copy: nothing shared between threads.
typedef struct {
    const char *lua; //  the source, static
    char sha[41];    //  from SCRIPT LOAD
} s_script_t;

//  One area's centre, for positions.
typedef struct {
    char code[16];   //  area code
    char parent[16]; //  "" at the top
    double lat, lng; //  centre, when has_center
    bool has_center; //  lat/lng set in PostgreSQL
} s_area_t;

//  Every area, sorted by code (strcmp) for bsearch.
typedef struct {
    s_area_t *areas;        //  owned
    size_t n;               //  how many
    bool loaded;            //  at least one load succeeded
    int64_t last_reload_ms; //  monotonic time of the last load attempt
} s_centres_t;

//  One volunteer as the apply script takes it (all strings owned here).
typedef struct {
    char id[24];        //  decimal account id
    char version[24];   //  decimal ms
    char status[16];    //  pending | verified | suspended | left
    char community[16]; //  area code
    char lat[32];       //  "" without a position
    char lng[32];       //  likewise
    char skills[2048];  //  comma-joined, validated
    char slots[1024];   //  likewise
} s_entry_t;

struct registry_index_t {
    linli_consumer_t *consumer; //  owned: the group reader and its thread
    linli_redis_t *redis;       //  owned: applies (the consumer's connection blocks)
    linli_pg_t *pg;             //  owned: area centres
    s_centres_t centres;        //  area centres, loaded lazily
    s_script_t apply;           //  the apply script, per this index
    int block_ms;               //  the runner's BLOCK
};

//  Milliseconds on the monotonic clock.
static int64_t
s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------- scripts

//  SCRIPT LOAD script into Redis, remembering its SHA1. 0 or -1.
static int
s_script_load(linli_redis_t *redis, s_script_t *script)
{
    redisReply *reply = linli_redis_cmd(redis, "SCRIPT LOAD %s", script->lua);
    int rc = -1;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(script->sha, reply->str, 41);
        rc = 0;
    } else if (reply) {
        linli_error("index: SCRIPT LOAD: %s",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
    freeReplyObject(reply);
    return rc;
}

//  True when reply is Redis's "script not loaded" (restart, SCRIPT FLUSH).
static bool
s_noscript(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOSCRIPT", 8);
}

//  The EVALSHA argument vector for e into argv (13 entries); argv borrows
//  e, sha and prefix. again: apply an equal version too. Returns argc.
static int
s_apply_argv(const s_entry_t *e, const char *sha, const char *prefix, bool again, const char **argv)
{
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = sha;
    argv[argc++] = "0";
    argv[argc++] = prefix;
    argv[argc++] = e->id;
    argv[argc++] = e->version;
    argv[argc++] = e->status;
    argv[argc++] = e->community;
    argv[argc++] = e->lat;
    argv[argc++] = e->lng;
    argv[argc++] = e->skills;
    argv[argc++] = e->slots;
    argv[argc++] = again ? "1" : "0";
    return argc;
}

//  Apply one entry (an event: an equal version is skipped); *applied false
//  when Redis held this version or a newer one. 0 or -1.
static int
s_apply_one(linli_redis_t *redis, s_script_t *script, const s_entry_t *e, bool *applied)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!*script->sha && s_script_load(redis, script))
            return -1;
        const char *argv[13];
        int argc = s_apply_argv(e, script->sha, linli_redis_prefix(redis), false, argv);
        redisReply *reply = linli_redis_argv(redis, argc, argv, NULL);
        if (s_noscript(reply)) {
            freeReplyObject(reply);
            script->sha[0] = '\0';
            continue;
        }
        int rc = -1;
        if (reply && reply->type == REDIS_REPLY_INTEGER) {
            *applied = reply->integer == 1;
            rc = 0;
        } else if (reply) {
            linli_error("index: apply volunteer %s: %s", e->id,
                        reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        }
        freeReplyObject(reply);
        return rc;
    }
    return -1;
}

// ---------------------------------------------------------------- entries

//  True when s[0..len) may name a skill or slot: 1..64 bytes, no comma (the
//  hash's separator) and no control characters (key names stay printable).
static bool
s_item_ok(const char *s, size_t len)
{
    if (len == 0 || len > S_ITEM_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ',' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

//  Append item (len bytes) to the comma-joined list out; an invalid item,
//  or one that does not fit, is left out and logged.
static void
s_list_add(char *out, size_t cap, const char *item, size_t len, const char *id)
{
    size_t used = strlen(out);
    if (!s_item_ok(item, len)) {
        linli_warn("index: volunteer %s: a skill or slot name (%zu bytes) is not indexable", id,
                   len);
        return;
    }
    if (used + (used ? 1 : 0) + len + 1 > cap) {
        linli_warn("index: volunteer %s: too many skills or slots; the rest are left out", id);
        return;
    }
    if (used)
        out[used++] = ',';
    memcpy(out + used, item, len);
    out[used + len] = '\0';
}

//  True when code is an area code: 2 to 12 digits.
static bool
s_code_ok(const char *code)
{
    size_t len = strlen(code);
    if (len < 2 || len > 12)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)code[i]))
            return false;
    return true;
}

//  True when status is a plain lower-case word of at most 15 bytes.
static bool
s_status_ok(const char *status)
{
    size_t len = strlen(status);
    if (len == 0 || len > 15)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)status[i]) && status[i] != '_')
            return false;
    return true;
}

//  Fill the fields every source has; lat/lng stay empty. 0, or -1 when
//  the values cannot be indexed (logged).
static int
s_entry_init(s_entry_t *e, int64_t id, int64_t version, const char *status, const char *community)
{
    memset(e, 0, sizeof *e);
    if (id <= 0 || !s_status_ok(status) || !s_code_ok(community)) {
        linli_error("index: volunteer %" PRId64 " has an unusable id, status or community", id);
        return -1;
    }
    snprintf(e->id, sizeof e->id, "%" PRId64, id);
    snprintf(e->version, sizeof e->version, "%" PRId64, version);
    snprintf(e->status, sizeof e->status, "%s", status);
    snprintf(e->community, sizeof e->community, "%s", community);
    return 0;
}

// ---------------------------------------------------------------- centres

static int
s_area_cmp(const void *a, const void *b)
{
    return strcmp(((const s_area_t *)a)->code, ((const s_area_t *)b)->code);
}

//  (Re)load every area's code, parent and centre. 0 or -1 (the old table stays).
static int
s_centres_load(s_centres_t *c, linli_pg_t *pg)
{
    c->last_reload_ms = s_mono_ms();
    PGresult *res = linli_pg_exec(pg,
                                  "SELECT code, coalesce(parent, ''), lat IS NOT NULL AND lng IS "
                                  "NOT NULL, coalesce(lat, 0), coalesce(lng, 0) FROM areas",
                                  0, NULL);
    if (!res)
        return -1;
    size_t n = (size_t)PQntuples(res);
    s_area_t *areas = calloc(n ? n : 1, sizeof *areas);
    if (!areas) {
        linli_error("index: out of memory loading %zu area centres", n);
        PQclear(res);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        s_area_t *a = &areas[i];
        snprintf(a->code, sizeof a->code, "%s", PQgetvalue(res, (int)i, 0));
        snprintf(a->parent, sizeof a->parent, "%s", PQgetvalue(res, (int)i, 1));
        a->has_center = PQgetvalue(res, (int)i, 2)[0] == 't';
        a->lat = strtod(PQgetvalue(res, (int)i, 3), NULL);
        a->lng = strtod(PQgetvalue(res, (int)i, 4), NULL);
        //  GEOADD's limits: a centre outside them is no position at all.
        if (a->has_center && (!(fabs(a->lng) <= 180.0) || !(fabs(a->lat) <= 85.05112878)))
            a->has_center = false;
    }
    PQclear(res);
    //  Sorted here, not by ORDER BY: the database's collation need not be strcmp's.
    qsort(areas, n, sizeof *areas, s_area_cmp);
    free(c->areas);
    c->areas = areas;
    c->n = n;
    c->loaded = true;
    return 0;
}

//  bsearch's comparison of a code (the key) with an area.
static int
s_area_key_cmp(const void *key, const void *area)
{
    return strcmp((const char *)key, ((const s_area_t *)area)->code);
}

static const s_area_t *
s_centres_find(const s_centres_t *c, const char *code)
{
    return c->n ? bsearch(code, c->areas, c->n, sizeof *c->areas, s_area_key_cmp) : NULL;
}

//  Set e's position to community's centre, else its nearest ancestor's
//  with one. An unknown code reloads the table (at most once per
//  S_RELOAD_MS); without any centre e keeps no position. 0, or -1 when
//  PostgreSQL could not give the table at all.
static int
s_centres_place(s_centres_t *c, linli_pg_t *pg, s_entry_t *e)
{
    const s_area_t *a = s_centres_find(c, e->community);
    if (!c->loaded || (!a && s_mono_ms() - c->last_reload_ms >= S_RELOAD_MS)) {
        if (s_centres_load(c, pg) && !c->loaded)
            return -1;
        a = s_centres_find(c, e->community);
    }
    if (!a)
        linli_warn("index: volunteer %s: community %s is not a known area", e->id, e->community);
    //  Five levels at most; the bound also guards against a parent cycle.
    for (int depth = 0; a && depth < 6; depth++) {
        if (a->has_center) {
            snprintf(e->lat, sizeof e->lat, "%.7f", a->lat);
            snprintf(e->lng, sizeof e->lng, "%.7f", a->lng);
            return 0;
        }
        a = *a->parent ? s_centres_find(c, a->parent) : NULL;
    }
    return 0;
}

// ---------------------------------------------------------------- consumer

registry_index_t *
registry_index_new(const registry_index_opts_t *opts)
{
    bool unix_socket = opts && opts->redis_socket && *opts->redis_socket;
    if (!opts || (!unix_socket && (!opts->redis_host || opts->redis_port <= 0)) || !opts->pg_dsn) {
        linli_error("index: Redis host and port (or socket) and a PostgreSQL DSN are required");
        return NULL;
    }
    registry_index_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->block_ms = opts->block_ms > 0 ? opts->block_ms : 1000;
    self->apply.lua = s_apply_lua;
    self->redis =
        linli_redis_new(opts->redis_host, opts->redis_port, opts->redis_socket,
                        opts->redis_timeout_ms > 0 ? opts->redis_timeout_ms : 2000, opts->prefix);
    self->pg = linli_pg_new(opts->pg_dsn, "registry", opts->pg_timeout_ms);
    linli_consumer_opts_t copts = {
        .host = opts->redis_host,
        .port = opts->redis_port,
        .socket = opts->redis_socket,
        .prefix = opts->prefix,
        .stream = opts->stream && *opts->stream ? opts->stream : "events",
        .group = opts->group && *opts->group ? opts->group : REGISTRY_INDEX_GROUP,
        .name = opts->name,
        //  A new group replays what the stream retains: the version guard
        //  makes old events harmless, and the index may be empty.
        .start_id = "0",
        .count = 100,
        .block_max_ms = self->block_ms,
        .min_idle_ms = opts->min_idle_ms,
        .claim_every_ms = opts->claim_every_ms,
        .fn = registry_index_handle,
        .arg = self,
    };
    self->consumer = linli_consumer_new(&copts);
    if (!self->redis || !self->pg || !self->consumer) {
        registry_index_destroy(&self);
        return NULL;
    }
    return self;
}

registry_index_t *
registry_index_new_from_config(const linli_config_t *config)
{
    registry_index_opts_t opts = {
        .redis_host = linli_config_str(config, "LINLI_REDIS_HOST"),
        .redis_port = (int)linli_config_int(config, "LINLI_REDIS_PORT"),
        .redis_socket = linli_config_str(config, "LINLI_REDIS_SOCKET"),
        .redis_timeout_ms = (int)linli_config_int(config, "LINLI_REDIS_TIMEOUT_MS"),
        .prefix = linli_config_str(config, "LINLI_REDIS_PREFIX"),
        .pg_dsn = linli_config_str(config, "LINLI_PG_DSN"),
        .pg_timeout_ms = (int)linli_config_int(config, "LINLI_PG_STATEMENT_TIMEOUT_MS"),
    };
    return registry_index_new(&opts);
}

void
registry_index_destroy(registry_index_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_index_t *self = *self_p;
    //  The consumer first: its thread uses the connections below.
    linli_consumer_destroy(&self->consumer);
    linli_redis_destroy(&self->redis);
    linli_pg_destroy(&self->pg);
    free(self->centres.areas);
    free(self);
    *self_p = NULL;
}

int
registry_index_start(registry_index_t *self)
{
    if (!self || linli_consumer_start(self->consumer, self->block_ms))
        return -1;
    linli_info("index: consumer %s of group %s started", linli_consumer_name(self->consumer),
               REGISTRY_INDEX_GROUP);
    return 0;
}

int
registry_index_poll(registry_index_t *self, int block_ms)
{
    return self ? linli_consumer_poll(self->consumer, block_ms) : -1;
}

//  Run script over n argument vectors in one pipeline, counting replies of
//  1 in *ones when not NULL. Loads the script first and again on NOSCRIPT;
//  a failed round trip is retried (the scripts are idempotent). 0, -1 when
//  Redis failed, or -2 when the script refused an entry (logged; the
//  others were applied, and retrying will not help).
static int
s_run_batch(linli_redis_t *redis, s_script_t *script, int n, const int *argcs, const char ***argvs,
            long *ones)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt > 0) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (!*script->sha && s_script_load(redis, script))
            continue;
        for (int i = 0; i < n; i++)
            argvs[i][1] = script->sha;
        redisReply **replies = calloc((size_t)n, sizeof *replies);
        if (!replies)
            return -1;
        int rc = linli_redis_pipeline(redis, n, argcs, argvs, NULL, replies);
        long got = 0;
        bool reload = false, failed = rc != 0;
        for (int i = 0; rc == 0 && i < n; i++) {
            if (s_noscript(replies[i])) {
                reload = true;
            } else if (replies[i]->type == REDIS_REPLY_INTEGER) {
                got += replies[i]->integer == 1;
            } else {
                linli_error("index: %s", replies[i]->type == REDIS_REPLY_ERROR
                                             ? replies[i]->str
                                             : "unexpected reply");
                failed = true;
            }
            freeReplyObject(replies[i]);
        }
        free(replies);
        if (reload) {
            script->sha[0] = '\0';
            continue;
        }
        if (failed && rc == 0)
            return -2; //  the script itself refused: retrying will not help
        if (!failed) {
            if (ones)
                *ones += got;
            return 0;
        }
    }
    linli_error("index: Redis failed three times on one batch");
    return -1;
}

//  e from v (an event's data), positioned; fallback is the version of data
//  without one. 1 filled, 0 not indexable (logged: acknowledged and
//  skipped), -1 when PostgreSQL is down (try again later rather than index
//  no position).
static int
s_entry_from(registry_index_t *self, const Linli__Registry__VolunteerEvent *v, int64_t fallback,
             const char *event_id, s_entry_t *e)
{
    char *end = NULL;
    long long id = strtoll(v->id, &end, 10);
    if (!v->has_version)
        //  Older producers: the event time orders updates of one volunteer as well.
        linli_log_ctx(LINLI_LOG_WARN, NULL, event_id, "index: volunteer %s without version", v->id);
    int64_t version = v->has_version ? v->version : fallback;
    if (!end || *end || s_entry_init(e, (int64_t)id, version, v->status, v->community)) {
        linli_log_ctx(LINLI_LOG_ERROR, NULL, event_id, "index: volunteer %s not indexable; ignored",
                      v->id);
        return 0;
    }
    for (size_t i = 0; i < v->n_skills; i++)
        s_list_add(e->skills, sizeof e->skills, v->skills[i], strlen(v->skills[i]), e->id);
    for (size_t i = 0; i < v->n_free_slots; i++)
        s_list_add(e->slots, sizeof e->slots, v->free_slots[i], strlen(v->free_slots[i]), e->id);
    return s_centres_place(&self->centres, self->pg, e) ? -1 : 1;
}

//  A volunteers.imported event: its entries applied in one pipeline (an
//  equal version skipped, as for single events). 0 or -1.
static int
s_handle_imported(registry_index_t *self, const Linli__Event *event)
{
    Linli__Registry__VolunteersImported *batch =
        linli__registry__volunteers_imported__unpack(NULL, event->data.len, event->data.data);
    if (!batch) {
        linli_log_ctx(LINLI_LOG_ERROR, NULL, event->id, "index: %s data does not parse; ignored",
                      event->type);
        return 0;
    }
    size_t n = batch->n_volunteers;
    s_entry_t *entries = n ? malloc(n * sizeof *entries) : NULL;
    const char *(*argv)[13] = n ? malloc(n * sizeof *argv) : NULL;
    const char ***argvs = n ? malloc(n * sizeof *argvs) : NULL;
    int *argcs = n ? malloc(n * sizeof *argcs) : NULL;
    int rc = 0;
    if (n && (!entries || !argv || !argvs || !argcs)) {
        linli_log_ctx(LINLI_LOG_ERROR, NULL, event->id,
                      "index: out of memory for %zu entries of %s", n, event->type);
        rc = -1;
    }
    int k = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int got = s_entry_from(self, batch->volunteers[i], event->time_ms, event->id, &entries[k]);
        if (got < 0)
            rc = -1;
        else if (got > 0) {
            argvs[k] = argv[k];
            argcs[k] =
                s_apply_argv(&entries[k], "", linli_redis_prefix(self->redis), false, argv[k]);
            k++;
        }
    }
    for (int start = 0; rc == 0 && start < k; start += S_BATCH) {
        int count = k - start < S_BATCH ? k - start : S_BATCH;
        rc = s_run_batch(self->redis, &self->apply, count, argcs + start, argvs + start, NULL);
        if (rc == -2) {
            //  One entry the script refuses must not hold back the event's
            //  others for ever: acknowledged, as an unindexable one is.
            linli_log_ctx(LINLI_LOG_ERROR, NULL, event->id,
                          "index: an entry of %s was refused; the rest applied", event->type);
            rc = 0;
        }
    }
    free(argcs);
    free(argvs);
    free(argv);
    free(entries);
    linli__registry__volunteers_imported__free_unpacked(batch, NULL);
    return rc;
}

int
registry_index_handle(void *arg, const char *stream_id, const Linli__Event *event)
{
    (void)stream_id;
    registry_index_t *self = (registry_index_t *)arg;
    bool imported = !strcmp(event->type, S_IMPORTED_TYPE);
    if (!imported && strncmp(event->type, S_TYPE_PREFIX, strlen(S_TYPE_PREFIX)) != 0)
        return 0; //  not ours to index: acknowledged
    const char *data_type = imported ? S_IMPORTED_DATA_TYPE : S_DATA_TYPE;
    if (!event->data_type || strcmp(event->data_type, data_type) || !event->has_data) {
        linli_log_ctx(LINLI_LOG_WARN, NULL, event->id, "index: %s without %s data; ignored",
                      event->type, data_type);
        return 0;
    }
    if (imported)
        return s_handle_imported(self, event);
    Linli__Registry__VolunteerEvent *v =
        linli__registry__volunteer_event__unpack(NULL, event->data.len, event->data.data);
    if (!v) {
        //  It will never parse: retrying would only block the group.
        linli_log_ctx(LINLI_LOG_ERROR, NULL, event->id, "index: %s data does not parse; ignored",
                      event->type);
        return 0;
    }
    s_entry_t e;
    int got = s_entry_from(self, v, event->time_ms, event->id, &e);
    linli__registry__volunteer_event__free_unpacked(v, NULL);
    if (got <= 0)
        return got;
    bool applied = false;
    if (s_apply_one(self->redis, &self->apply, &e, &applied))
        return -1;
    if (!applied)
        linli_log_ctx(LINLI_LOG_DEBUG, NULL, event->id,
                      "index: volunteer %s version %s is not newer than the index's; ignored", e.id,
                      e.version);
    return 0;
}

// ---------------------------------------------------------------- rebuild

//  The rebuild's working state.
typedef struct {
    linli_pg_t *pg;               //  borrowed
    linli_redis_t *redis;         //  borrowed
    s_script_t apply;             //  apply script
    s_script_t forget;            //  forget script
    s_centres_t centres;          //  area centres, owned
    int64_t *seen;                //  ids read from PostgreSQL, ascending; owned
    size_t n_seen;                //  how many
    size_t cap_seen;              //  allocated
    const char *(*argv)[13];      //  S_BATCH argument vectors for a pipeline; owned
    char (*ids)[24];              //  S_BATCH decimal ids the sweep's vectors borrow; owned
    registry_index_stats_t stats; //  what it did
} s_rebuild_t;

//  Apply entries [0, n) in pipelines of S_BATCH. 0 or -1.
static int
s_rebuild_apply(s_rebuild_t *r, const s_entry_t *entries, int n)
{
    const char *prefix = linli_redis_prefix(r->redis);
    const char **argvs[S_BATCH];
    int argcs[S_BATCH];
    for (int start = 0; start < n; start += S_BATCH) {
        int count = n - start < S_BATCH ? n - start : S_BATCH;
        for (int i = 0; i < count; i++) {
            argvs[i] = r->argv[i];
            argcs[i] = s_apply_argv(&entries[start + i], "", prefix, true, r->argv[i]);
        }
        long applied = 0;
        if (s_run_batch(r->redis, &r->apply, count, argcs, argvs, &applied) != 0)
            return -1;
        r->stats.stale += count - applied;
    }
    return 0;
}

//  Remember id as present in PostgreSQL (ids come ascending). 0 or -1.
static int
s_seen_add(s_rebuild_t *r, int64_t id)
{
    if (r->n_seen == r->cap_seen) {
        size_t cap = r->cap_seen ? r->cap_seen * 2 : 65536;
        int64_t *seen = realloc(r->seen, cap * sizeof *seen);
        if (!seen)
            return -1;
        r->seen = seen;
        r->cap_seen = cap;
    }
    r->seen[r->n_seen++] = id;
    return 0;
}

static int
s_id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

//  Read every volunteer in keyset pages and apply it. 0 or -1.
static int
s_rebuild_pass(s_rebuild_t *r)
{
    s_entry_t *entries = malloc(S_PAGE_ROWS * sizeof *entries);
    if (!entries) {
        linli_error("index: out of memory for a rebuild page");
        return -1;
    }
    char after[24] = "0", limit[16];
    snprintf(limit, sizeof limit, "%d", S_PAGE_ROWS);
    int rc = 0;
    for (;;) {
        const char *params[] = {after, limit};
        //  chr(31) separates list items: no skill contains it, many could a comma.
        PGresult *res = linli_pg_exec(r->pg,
                                      "SELECT id, status, community, "
                                      "array_to_string(skills, chr(31)), "
                                      "array_to_string(free_slots, chr(31)), "
                                      "(extract(epoch from updated_at) * 1000)::bigint "
                                      "FROM volunteers WHERE id > $1::bigint ORDER BY id LIMIT $2",
                                      2, params);
        if (!res) {
            rc = -1;
            break;
        }
        int rows = PQntuples(res), n = 0;
        for (int i = 0; i < rows && rc == 0; i++) {
            int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            snprintf(after, sizeof after, "%" PRId64, id);
            if (s_seen_add(r, id)) {
                rc = -1;
                break;
            }
            r->stats.volunteers++;
            s_entry_t *e = &entries[n];
            if (s_entry_init(e, id, strtoll(PQgetvalue(res, i, 5), NULL, 10), PQgetvalue(res, i, 1),
                             PQgetvalue(res, i, 2)))
                continue;
            for (int col = 3; col <= 4; col++) {
                const char *s = PQgetvalue(res, i, col);
                char *out = col == 3 ? e->skills : e->slots;
                size_t cap = col == 3 ? sizeof e->skills : sizeof e->slots;
                while (*s) {
                    size_t len = strcspn(s, "\x1f");
                    s_list_add(out, cap, s, len, e->id);
                    s += len + (s[len] ? 1 : 0);
                }
            }
            if (s_centres_place(&r->centres, r->pg, e)) {
                rc = -1;
                break;
            }
            r->stats.verified += !strcmp(e->status, "verified");
            n++;
        }
        PQclear(res);
        if (rc == 0 && s_rebuild_apply(r, entries, n))
            rc = -1;
        if (rc || rows < S_PAGE_ROWS)
            break;
    }
    free(entries);
    return rc;
}

//  Of ids[0..n) (in Redis, not read by the pass), forget those PostgreSQL
//  does not hold now: a volunteer added after its page was read is kept. 0 or -1.
static int
s_sweep_batch(s_rebuild_t *r, const int64_t *ids, int n)
{
    if (n == 0)
        return 0;
    char *array = linli_pg_int64_array(ids, (size_t)n);
    if (!array) {
        linli_error("index: out of memory checking %d ids", n);
        return -1;
    }
    const char *params[] = {array};
    PGresult *res =
        linli_pg_exec(r->pg, "SELECT id FROM volunteers WHERE id = ANY($1::bigint[])", 1, params);
    free(array);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    int64_t *present = malloc(((size_t)rows + 1) * sizeof *present);
    if (!present) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < rows; i++)
        present[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    qsort(present, (size_t)rows, sizeof *present, s_id_cmp);

    const char *prefix = linli_redis_prefix(r->redis);
    const char **argvs[S_BATCH];
    int argcs[S_BATCH], count = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (bsearch(&ids[i], present, (size_t)rows, sizeof *present, s_id_cmp))
            continue;
        snprintf(r->ids[count], sizeof r->ids[count], "%" PRId64, ids[i]);
        const char **argv = r->argv[count];
        argv[0] = "EVALSHA";
        argv[1] = "";
        argv[2] = "0";
        argv[3] = prefix;
        argv[4] = r->ids[count];
        argvs[count] = argv;
        argcs[count] = 5;
        count++;
    }
    if (count > 0) {
        rc = s_run_batch(r->redis, &r->forget, count, argcs, argvs, NULL);
        if (rc == 0) {
            r->stats.removed += count;
            linli_info("index: rebuild removed %d volunteers PostgreSQL no longer holds", count);
        }
    }
    free(present);
    return rc;
}

//  Copy pattern-escaped s (glob specials backslashed) into out. 0 or -1.
static int
s_glob_escape(const char *s, char *out, size_t cap)
{
    size_t used = 0;
    for (; *s; s++) {
        if (used + 3 > cap)
            return -1;
        if (strchr("*?[]\\", *s))
            out[used++] = '\\';
        out[used++] = *s;
    }
    out[used] = '\0';
    return 0;
}

//  SCAN every key under the prefix matching tail (a glob), handing each
//  page of names to fn. 0 or -1.
static int
s_scan(linli_redis_t *redis, const char *tail, int (*fn)(void *arg, const redisReply *keys),
       void *arg)
{
    char pattern[512];
    if (s_glob_escape(linli_redis_prefix(redis), pattern, sizeof pattern - strlen(tail) - 1))
        return -1;
    strcat(pattern, tail);
    char cursor[32] = "0";
    do {
        redisReply *reply = linli_redis_cmd(redis, "SCAN %s MATCH %s COUNT 2000", cursor, pattern);
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
            linli_error("index: SCAN failed");
            freeReplyObject(reply);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        int rc = fn(arg, reply->element[1]);
        freeReplyObject(reply);
        if (rc)
            return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

//  The sweep's SCAN page handler: ids of vol:<id> hashes not seen.
typedef struct {
    s_rebuild_t *r;
    int64_t unseen[S_BATCH]; //  waiting for s_sweep_batch
    int n;
} s_sweep_t;

static int
s_sweep_page(void *arg, const redisReply *keys)
{
    s_sweep_t *sw = arg;
    size_t skip = strlen(linli_redis_prefix(sw->r->redis)) + 4; //  prefix + "vol:"
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= skip)
            continue;
        const char *digits = k->str + skip;
        if (strspn(digits, "0123456789") != strlen(digits))
            continue; //  vol:geo, vol:skill:…
        int64_t id = strtoll(digits, NULL, 10);
        if (bsearch(&id, sw->r->seen, sw->r->n_seen, sizeof id, s_id_cmp))
            continue;
        sw->unseen[sw->n++] = id;
        if (sw->n == S_BATCH) {
            if (s_sweep_batch(sw->r, sw->unseen, sw->n))
                return -1;
            sw->n = 0;
        }
    }
    return 0;
}

//  The clear's state.
typedef struct {
    linli_redis_t *redis; //  borrowed
    long count;           //  keys deleted
} s_clear_t;

//  The clear's SCAN page handler: UNLINK the page.
static int
s_clear_page(void *arg, const redisReply *keys)
{
    s_clear_t *clear = arg;
    if (keys->elements == 0)
        return 0;
    const char **argv = calloc(keys->elements + 1, sizeof *argv);
    size_t *lens = calloc(keys->elements + 1, sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return -1;
    }
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t i = 0; i < keys->elements; i++) {
        argv[i + 1] = keys->element[i]->str;
        lens[i + 1] = keys->element[i]->len;
    }
    redisReply *reply = linli_redis_argv(clear->redis, (int)keys->elements + 1, argv, lens);
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (rc == 0)
        clear->count += reply->integer;
    else
        linli_error("index: UNLINK of %zu keys failed", keys->elements);
    freeReplyObject(reply);
    free(argv);
    free(lens);
    return rc;
}

long
registry_index_clear(linli_redis_t *redis)
{
    s_clear_t clear = {redis, 0};
    if (!redis || s_scan(redis, "vol:*", s_clear_page, &clear))
        return -1;
    return clear.count;
}

int
registry_index_rebuild(linli_pg_t *pg, linli_redis_t *redis, bool clear,
                       registry_index_stats_t *stats)
{
    if (!pg || !redis)
        return -1;
    int64_t start_ms = s_mono_ms();
    s_rebuild_t r;
    memset(&r, 0, sizeof r);
    r.pg = pg;
    r.redis = redis;
    r.apply.lua = s_apply_lua;
    r.forget.lua = s_forget_lua;
    r.argv = calloc(S_BATCH, sizeof *r.argv);
    r.ids = calloc(S_BATCH, sizeof *r.ids);
    int rc = r.argv && r.ids ? 0 : -1;
    if (rc)
        linli_error("index: out of memory starting a rebuild");
    if (rc == 0 && clear) {
        long n = registry_index_clear(redis);
        if (n < 0)
            rc = -1;
        else
            linli_info("index: rebuild cleared %ld keys", n);
    }
    if (rc == 0 && s_centres_load(&r.centres, pg))
        rc = -1;
    if (rc == 0)
        rc = s_rebuild_pass(&r);
    if (rc == 0) {
        //  Ids in Redis the pass did not read: deleted from PostgreSQL, or
        //  added after their page was read (s_sweep_batch tells them apart).
        s_sweep_t *sw = calloc(1, sizeof *sw);
        if (sw)
            sw->r = &r;
        else
            linli_error("index: out of memory for the rebuild's sweep");
        if (!sw || s_scan(redis, "vol:[0-9]*", s_sweep_page, sw) ||
            s_sweep_batch(&r, sw->unseen, sw->n))
            rc = -1;
        free(sw);
    }
    r.stats.seconds = (double)(s_mono_ms() - start_ms) / 1000.0;
    if (rc == 0) {
        char at[24], vols[24], ver[24], secs[32];
        snprintf(at, sizeof at, "%" PRId64, linli_now_ms());
        snprintf(vols, sizeof vols, "%ld", r.stats.volunteers);
        snprintf(ver, sizeof ver, "%ld", r.stats.verified);
        snprintf(secs, sizeof secs, "%.3f", r.stats.seconds);
        char key[256];
        linli_redis_key(redis, key, sizeof key, "vol:meta");
        redisReply *reply = linli_redis_cmd(redis,
                                            "HSET %s rebuilt_at %s volunteers %s verified %s "
                                            "seconds %s",
                                            key, at, vols, ver, secs);
        //  Only a report of the last rebuild: the index itself is complete.
        if (!reply || reply->type == REDIS_REPLY_ERROR)
            linli_warn("index: rebuild done, but %s not updated", key);
        freeReplyObject(reply);
        linli_info("index: rebuilt %ld volunteers (%ld verified, %ld stale, %ld removed) in "
                   "%.1f s",
                   r.stats.volunteers, r.stats.verified, r.stats.stale, r.stats.removed,
                   r.stats.seconds);
    }
    if (stats)
        *stats = r.stats;
    free(r.seen);
    free(r.argv);
    free(r.ids);
    free(r.centres.areas);
    return rc;
}

int
registry_index_tool(registry_t *reg, const linli_config_t *config, int argc, char **argv)
{
    (void)config;
    bool clear = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--clear")) {
            clear = true;
        } else {
            fprintf(stderr, "usage: linli-registry rebuild-index [--clear]\n");
            return -1;
        }
    }
    registry_index_stats_t stats;
    if (registry_index_rebuild(reg->pg, reg->redis, clear, &stats))
        return -1;
    printf("rebuilt %ld volunteers (%ld verified, %ld stale, %ld removed) in %.1f s: %.0f/s\n",
           stats.volunteers, stats.verified, stats.stale, stats.removed, stats.seconds,
           stats.seconds > 0 ? (double)stats.volunteers / stats.seconds : 0.0);
    return 0;
}

// ---------------------------------------------------------------- candidates

int
registry_index_candidates(linli_redis_t *redis, double lat, double lng, int radius_m,
                          const char *skill, const char *slot, size_t max,
                          registry_candidate_t *out, size_t *n)
{
    if (n)
        *n = 0;
    if (!redis || !n || (max > 0 && !out) || radius_m <= 0 || radius_m > S_RADIUS_MAX_M ||
        !(fabs(lat) <= 85.05112878) || !(fabs(lng) <= 180.0))
        return -1;
    bool by_skill = skill && *skill, by_slot = slot && *slot;
    if ((by_skill && !s_item_ok(skill, strlen(skill))) ||
        (by_slot && !s_item_ok(slot, strlen(slot))))
        return -1;
    if (max == 0)
        return 0;
    char geo[256], skill_key[256], slot_key[256], lat_s[32], lng_s[32], radius[16], count_s[24];
    linli_redis_key(redis, geo, sizeof geo, "vol:geo");
    linli_redis_key(redis, skill_key, sizeof skill_key, "vol:skill:%s", by_skill ? skill : "");
    linli_redis_key(redis, slot_key, sizeof slot_key, "vol:slot:%s", by_slot ? slot : "");
    snprintf(lat_s, sizeof lat_s, "%.7f", lat);
    snprintf(lng_s, sizeof lng_s, "%.7f", lng);
    snprintf(radius, sizeof radius, "%d", radius_m);
    //  Filters drop some of the nearest: ask for more than max, and four
    //  times more again until max pass or the circle has no more.
    size_t count = max < 16 ? 64 : max * 4;
    for (;;) {
        snprintf(count_s, sizeof count_s, "%zu", count);
        const char *gargv[] = {"GEOSEARCH", geo, "FROMLONLAT", lng_s,   lat_s,   "BYRADIUS",
                               radius,      "m", "ASC",        "COUNT", count_s, "WITHDIST"};
        redisReply *found = linli_redis_argv(redis, 12, gargv, NULL);
        if (!found || found->type != REDIS_REPLY_ARRAY) {
            if (found)
                linli_error("index: GEOSEARCH: %s",
                            found->type == REDIS_REPLY_ERROR ? found->str : "unexpected reply");
            freeReplyObject(found);
            return -1;
        }
        size_t k = found->elements;
        //  Membership of each found id in the skill and slot sets, one round trip.
        redisReply *member[2] = {NULL, NULL};
        int nfilters = 0;
        if (k > 0 && (by_skill || by_slot)) {
            const char **argv[2];
            int argcs[2];
            int rc = 0;
            for (int f = 0; f < 2 && rc == 0; f++) {
                if (!(f == 0 ? by_skill : by_slot))
                    continue;
                argv[nfilters] = calloc(k + 2, sizeof(char *));
                if (!argv[nfilters]) {
                    rc = -1;
                    break;
                }
                argv[nfilters][0] = "SMISMEMBER";
                argv[nfilters][1] = f == 0 ? skill_key : slot_key;
                for (size_t i = 0; i < k; i++)
                    argv[nfilters][i + 2] = found->element[i]->type == REDIS_REPLY_ARRAY &&
                                                    found->element[i]->elements == 2
                                                ? found->element[i]->element[0]->str
                                                : "";
                argcs[nfilters] = (int)k + 2;
                nfilters++;
            }
            if (rc == 0)
                rc = linli_redis_pipeline(redis, nfilters, argcs, argv, NULL, member);
            for (int f = 0; f < nfilters; f++)
                free(argv[f]);
            for (int f = 0; rc == 0 && f < nfilters; f++)
                if (member[f]->type != REDIS_REPLY_ARRAY || member[f]->elements != k)
                    rc = -1;
            if (rc) {
                linli_error("index: SMISMEMBER failed");
                for (int f = 0; f < nfilters; f++)
                    freeReplyObject(member[f]);
                freeReplyObject(found);
                return -1;
            }
        }
        *n = 0;
        for (size_t i = 0; i < k && *n < max; i++) {
            const redisReply *item = found->element[i];
            if (item->type != REDIS_REPLY_ARRAY || item->elements != 2)
                continue;
            bool pass = true;
            for (int f = 0; f < nfilters; f++)
                pass = pass && member[f]->element[i]->integer == 1;
            if (!pass)
                continue;
            out[*n].id = strtoll(item->element[0]->str, NULL, 10);
            out[*n].dist_m = strtod(item->element[1]->str, NULL);
            (*n)++;
        }
        for (int f = 0; f < nfilters; f++)
            freeReplyObject(member[f]);
        freeReplyObject(found);
        //  Enough, or the circle holds no more than what came.
        if (*n >= max || k < count)
            return 0;
        count *= 4;
    }
}
