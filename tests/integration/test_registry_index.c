//  The registry's matching index (docs/matching-index.md) against real Redis
//  and PostgreSQL: volunteer events through the outbox, the relay and the
//  "registry-index" consumer group keep the index equal to what a rebuild
//  from PostgreSQL produces, whatever the duplicates, replays and crashes.
#include "test_servers.h"
#include "linli_outbox.h"
#include "linli_pg.h"
#include "linli_redis.h"

//  Integration tests link common/ and the test support only, not the
//  registry's sources: the index is compiled into this test directly (it
//  needs no other registry source, only registry.h's types).
#include "../../services/registry/registry_index.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MIGRATIONS LINLI_SOURCE_DIR "/services/registry/migrations"

//  Community centres: A; B about 1 km north of A; C about 5 km north; D has
//  no centre (its street's is used).
#define S_A "420102001001"
#define S_B "420102001002"
#define S_D "420102001003"
#define S_C "420102002001"
#define S_A_LAT 30.6000
#define S_LNG 114.3000
#define S_B_LAT 30.6090
#define S_C_LAT 30.6450
#define S_STREET_LAT 30.6050
#define S_STREET_LNG 114.3050

//  One test's world: the registry schema with areas, a relay, Redis.
typedef struct {
    ts_env_t env;         //  shared servers, own database and prefix
    int redis_port;       //  the Redis in use (shared or private)
    linli_pg_t *pg;       //  the "service" connection (schema registry)
    linli_redis_t *redis; //  the relay's and the checks' Redis
    linli_relay_t *relay; //  outbox -> <prefix>events
    int serial;           //  for unique phone and ID hashes
} s_world_t;

static void
s_exec(linli_pg_t *pg, const char *sql)
{
    assert_int_equal(linli_pg_command(pg, sql, 0, NULL), 0);
}

static void
s_world_open(s_world_t *w, const char *name, int redis_port)
{
    memset(w, 0, sizeof *w);
    assert_int_equal(ts_env_open(&w->env, name), 0);
    w->redis_port = redis_port ? redis_port : w->env.redis.port;
    w->pg = linli_pg_new(w->env.dsn, "registry", 60000);
    assert_non_null(w->pg);
    assert_int_equal(linli_pg_migrate(w->pg, S_MIGRATIONS), 0);
    s_exec(w->pg, "INSERT INTO areas (code, name, level, parent, lat, lng) VALUES "
                  "('4201', '武汉市', 'city', NULL, 30.59, 114.30), "
                  "('420102', '江岸区', 'district', '4201', 30.60, 114.31), "
                  "('420102001', 'S1', 'street', '420102', 30.6050, 114.3050), "
                  "('420102002', 'S2', 'street', '420102', NULL, NULL), "
                  "('" S_A "', 'A', 'community', '420102001', 30.6000, 114.3000), "
                  "('" S_B "', 'B', 'community', '420102001', 30.6090, 114.3000), "
                  "('" S_D "', 'D', 'community', '420102001', NULL, NULL), "
                  "('" S_C "', 'C', 'community', '420102002', 30.6450, 114.3000)");
    w->redis = linli_redis_new("127.0.0.1", w->redis_port, NULL, 5000, w->env.prefix);
    assert_non_null(w->redis);
    w->relay = linli_relay_new(w->env.dsn, "registry", w->redis, "events");
    assert_non_null(w->relay);
}

static void
s_world_close(s_world_t *w)
{
    linli_relay_destroy(&w->relay);
    linli_redis_destroy(&w->redis);
    linli_pg_destroy(&w->pg);
}

//  Publish what the outbox holds.
static void
s_relay(s_world_t *w)
{
    int n;
    while ((n = linli_relay_tick(w->relay)) > 0)
        ;
    assert_int_equal(n, 0);
}

//  A packed linli.Event kept for replaying.
typedef struct {
    uint8_t *data; //  owned
    size_t len;
} s_packed_t;

//  Write a volunteer event of v's state to the outbox (open transaction);
//  a packed copy goes to keep when not NULL.
static void
s_emit(s_world_t *w, const char *type, int64_t id, const char *status, const char *community,
       const char *skills, const char *slots, int64_t version, s_packed_t *keep)
{
    char ids[24], subject[40], bufs[2][256];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(subject, sizeof subject, "volunteer/%" PRId64, id);
    char *lists[2][16];
    size_t counts[2] = {0, 0};
    const char *csv[2] = {skills, slots};
    for (int k = 0; k < 2; k++) {
        snprintf(bufs[k], sizeof bufs[k], "%s", csv[k]);
        for (char *save = NULL, *t = strtok_r(bufs[k], ",", &save); t && counts[k] < 16;
             t = strtok_r(NULL, ",", &save))
            lists[k][counts[k]++] = t;
    }
    Linli__Registry__VolunteerEvent data = LINLI__REGISTRY__VOLUNTEER_EVENT__INIT;
    data.id = ids;
    data.community = (char *)community;
    data.status = (char *)status;
    data.n_skills = counts[0];
    data.skills = lists[0];
    data.n_free_slots = counts[1];
    data.free_slots = lists[1];
    data.has_version = true;
    data.version = version;
    linli_event_t ev;
    assert_int_equal(linli_event_init(&ev, "/linli/registry", type, subject, community, &data.base),
                     0);
    assert_int_equal(linli_outbox_append(w->pg, &ev.event), 0);
    if (keep) {
        keep->len = linli__event__get_packed_size(&ev.event);
        keep->data = malloc(keep->len);
        assert_non_null(keep->data);
        linli__event__pack(&ev.event, keep->data);
    }
    linli_event_clear(&ev);
}

//  A new pending volunteer, as sign-up does: row and "registered" event in
//  one transaction. skills/slots comma-separated. Returns its id.
static int64_t
s_volunteer_new(s_world_t *w, const char *community, const char *skills, const char *slots)
{
    char token[32], skill_lit[256], slot_lit[256];
    snprintf(token, sizeof token, "tok-%d", ++w->serial);
    snprintf(skill_lit, sizeof skill_lit, "{%s}", skills);
    snprintf(slot_lit, sizeof slot_lit, "{%s}", slots);
    const char *params[] = {token, community, skill_lit, slot_lit};
    assert_int_equal(linli_pg_begin(w->pg), 0);
    PGresult *res = linli_pg_exec(
        w->pg,
        "WITH a AS (INSERT INTO accounts (kind, name, phone_enc, phone_hash, area) "
        "VALUES ('volunteer', 'v', 'x', $1, $2) RETURNING id) "
        "INSERT INTO volunteers (id, community, id_number_enc, id_number_hash, skills, "
        "free_slots) SELECT id, $2, 'x', $1, $3::text[], $4::text[] FROM a "
        "RETURNING id, (extract(epoch from updated_at) * 1000)::bigint",
        4, params);
    assert_non_null(res);
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    s_emit(w, "linli.registry.volunteer.registered", id, "pending", community, skills, slots,
           version, NULL);
    assert_int_equal(linli_pg_commit(w->pg), 0);
    return id;
}

//  Change a volunteer's state as the registry does (updated_at strictly
//  grows) and emit type with the new state. Returns the new version.
static int64_t
s_volunteer_set(s_world_t *w, int64_t id, const char *type, const char *status,
                const char *community, const char *skills, const char *slots, s_packed_t *keep)
{
    char ids[24], skill_lit[256], slot_lit[256];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(skill_lit, sizeof skill_lit, "{%s}", skills);
    snprintf(slot_lit, sizeof slot_lit, "{%s}", slots);
    const char *params[] = {ids, status, community, skill_lit, slot_lit};
    assert_int_equal(linli_pg_begin(w->pg), 0);
    PGresult *res = linli_pg_exec(
        w->pg,
        "UPDATE volunteers SET status = $2, community = $3, skills = $4::text[], "
        "free_slots = $5::text[], updated_at = greatest(now(), updated_at + interval '1 ms') "
        "WHERE id = $1::bigint RETURNING (extract(epoch from updated_at) * 1000)::bigint",
        5, params);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    int64_t version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    s_emit(w, type, id, status, community, skills, slots, version, keep);
    assert_int_equal(linli_pg_commit(w->pg), 0);
    return version;
}

//  XADD a kept event again, as an at-least-once redelivery or an old replay.
static void
s_republish(s_world_t *w, const s_packed_t *p)
{
    char key[256];
    linli_redis_key(w->redis, key, sizeof key, "events");
    const char *argv[] = {"XADD", key, "*", "event_id", "replayed", "data", (const char *)p->data};
    size_t lens[] = {4, strlen(key), 1, 8, 8, 4, p->len};
    redisReply *reply = linli_redis_argv(w->redis, 7, argv, lens);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    freeReplyObject(reply);
}

static registry_index_t *
s_index(s_world_t *w, const char *name, int min_idle_ms)
{
    registry_index_opts_t opts = {
        .redis_host = "127.0.0.1",
        .redis_port = w->redis_port,
        .redis_timeout_ms = 5000,
        .prefix = w->env.prefix,
        .pg_dsn = w->env.dsn,
        .pg_timeout_ms = 5000,
        .name = name,
        .min_idle_ms = min_idle_ms,
        .claim_every_ms = 50,
        .block_ms = 200,
    };
    registry_index_t *index = registry_index_new(&opts);
    assert_non_null(index);
    return index;
}

//  Entries of the group not yet acknowledged.
static long long
s_pending(s_world_t *w)
{
    char key[256];
    linli_redis_key(w->redis, key, sizeof key, "events");
    redisReply *reply = linli_redis_cmd(w->redis, "XPENDING %s %s", key, REGISTRY_INDEX_GROUP);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    long long n = reply->element[0]->integer;
    freeReplyObject(reply);
    return n;
}

//  Poll index until the stream's last entry is delivered and nothing is
//  pending (a minute at most).
static void
s_consume(s_world_t *w, registry_index_t *index)
{
    char key[256];
    linli_redis_key(w->redis, key, sizeof key, "events");
    int64_t until = ts_mono_ms() + 60000;
    for (;;) {
        //  -1 is allowed: after a FLUSHALL the group is created again.
        registry_index_poll(index, 50);
        redisReply *reply = linli_redis_cmd(w->redis, "XINFO GROUPS %s", key);
        assert_non_null(reply);
        bool done = false;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
            //  [name, .., consumers, n, pending, n, last-delivered-id, id, ..]
            const redisReply *g = reply->element[0];
            const char *last = "";
            long long pending = -1;
            for (size_t i = 0; i + 1 < g->elements; i += 2) {
                if (!strcmp(g->element[i]->str, "last-delivered-id"))
                    last = g->element[i + 1]->str;
                if (!strcmp(g->element[i]->str, "pending"))
                    pending = g->element[i + 1]->integer;
            }
            redisReply *tail = linli_redis_cmd(w->redis, "XREVRANGE %s + - COUNT 1", key);
            assert_non_null(tail);
            done = pending == 0 && tail->elements == 1 &&
                   !strcmp(tail->element[0]->element[0]->str, last);
            freeReplyObject(tail);
        }
        freeReplyObject(reply);
        if (done)
            return;
        assert_true(ts_mono_ms() < until);
    }
}

// ---------------------------------------------------------------- checks

static char *
s_hget(s_world_t *w, int64_t id, const char *field)
{
    char key[256];
    linli_redis_key(w->redis, key, sizeof key, "vol:%" PRId64, id);
    redisReply *reply = linli_redis_cmd(w->redis, "HGET %s %s", key, field);
    assert_non_null(reply);
    char *v = reply->type == REDIS_REPLY_STRING ? strdup(reply->str) : NULL;
    freeReplyObject(reply);
    return v;
}

//  Is id a member of set <prefix>vol:<name>?
static bool
s_member(s_world_t *w, const char *name, int64_t id)
{
    char key[256], ids[24];
    linli_redis_key(w->redis, key, sizeof key, "vol:%s", name);
    snprintf(ids, sizeof ids, "%" PRId64, id);
    redisReply *reply = linli_redis_cmd(w->redis, "SISMEMBER %s %s", key, ids);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    bool in = reply->integer == 1;
    freeReplyObject(reply);
    return in;
}

//  id's GEO position; false when it has none.
static bool
s_geopos(s_world_t *w, int64_t id, double *lat, double *lng)
{
    char key[256], ids[24];
    linli_redis_key(w->redis, key, sizeof key, "vol:geo");
    snprintf(ids, sizeof ids, "%" PRId64, id);
    redisReply *reply = linli_redis_cmd(w->redis, "GEOPOS %s %s", key, ids);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    bool has = reply->element[0]->type == REDIS_REPLY_ARRAY;
    if (has) {
        *lng = strtod(reply->element[0]->element[0]->str, NULL);
        *lat = strtod(reply->element[0]->element[1]->str, NULL);
    }
    freeReplyObject(reply);
    return has;
}

static void
s_assert_at(s_world_t *w, int64_t id, double lat, double lng)
{
    double la = 0, ln = 0;
    assert_true(s_geopos(w, id, &la, &ln));
    assert_true(fabs(la - lat) < 1e-5 && fabs(ln - lng) < 1e-5);
}

static void
s_assert_status(s_world_t *w, int64_t id, const char *status)
{
    char *s = s_hget(w, id, "status");
    assert_non_null(s);
    assert_string_equal(s, status);
    free(s);
}

static int
s_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

//  Every index key under the prefix (but vol:meta) with its content, in a
//  canonical order, as one string. Caller frees.
static char *
s_snapshot(linli_redis_t *redis)
{
    char pattern[256];
    linli_redis_key(redis, pattern, sizeof pattern, "vol:*");
    size_t n = 0, cap = 1024;
    char **items = malloc(cap * sizeof *items);
    char cursor[32] = "0";
    do {
        redisReply *page = linli_redis_cmd(redis, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        assert_non_null(page);
        snprintf(cursor, sizeof cursor, "%s", page->element[0]->str);
        for (size_t i = 0; i < page->element[1]->elements; i++) {
            const char *key = page->element[1]->element[i]->str;
            if (strstr(key, "vol:meta"))
                continue;
            redisReply *type = linli_redis_cmd(redis, "TYPE %s", key);
            redisReply *body = NULL;
            if (!strcmp(type->str, "hash"))
                body = linli_redis_cmd(redis, "HGETALL %s", key);
            else if (!strcmp(type->str, "set"))
                body = linli_redis_cmd(redis, "SMEMBERS %s", key);
            else
                body = linli_redis_cmd(redis, "ZRANGE %s 0 -1 WITHSCORES", key);
            assert_non_null(body);
            //  Hash fields and zset members with their value or score, sorted.
            size_t m = body->elements, step = !strcmp(type->str, "set") ? 1 : 2;
            char **parts = calloc(m + 1, sizeof *parts);
            size_t np = 0;
            for (size_t k = 0; k + step <= m; k += step) {
                char part[512];
                if (step == 2)
                    snprintf(part, sizeof part, "%s=%s", body->element[k]->str,
                             body->element[k + 1]->str);
                else
                    snprintf(part, sizeof part, "%s", body->element[k]->str);
                parts[np++] = strdup(part);
            }
            qsort(parts, np, sizeof *parts, s_str_cmp);
            size_t len = strlen(key) + 4;
            for (size_t k = 0; k < np; k++)
                len += strlen(parts[k]) + 1;
            char *item = malloc(len);
            size_t used = (size_t)snprintf(item, len, "%s {", key);
            for (size_t k = 0; k < np; k++) {
                used += (size_t)snprintf(item + used, len - used, "%s%s", k ? " " : "", parts[k]);
                free(parts[k]);
            }
            snprintf(item + used, len - used, "}");
            free(parts);
            freeReplyObject(body);
            freeReplyObject(type);
            if (n == cap)
                items = realloc(items, (cap *= 2) * sizeof *items);
            items[n++] = item;
        }
        freeReplyObject(page);
    } while (strcmp(cursor, "0"));
    qsort(items, n, sizeof *items, s_str_cmp);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    char *all = malloc(len);
    size_t used = 0;
    all[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        used += (size_t)snprintf(all + used, len - used, "%s\n", items[i]);
        free(items[i]);
    }
    free(items);
    return all;
}

// ---------------------------------------------------------------- tests

static void
test_verified_volunteer_indexed(void **state)
{
    (void)state;
    s_world_t w;
    s_world_open(&w, "ri_verified", 0);
    registry_index_t *index = s_index(&w, NULL, 30000);
    assert_int_equal(registry_index_start(index), 0);

    int64_t a = s_volunteer_new(&w, S_A, "cooking,driving", "sat_am,sun_pm");
    int64_t d = s_volunteer_new(&w, S_D, "repair", "");
    int64_t p = s_volunteer_new(&w, S_B, "cooking", "sat_am");
    //  Another kind of event on the same stream: acknowledged, ignored.
    assert_int_equal(linli_pg_begin(w.pg), 0);
    linli_event_t other;
    assert_int_equal(linli_event_init(&other, "/linli/registry", "linli.registry.staff.created",
                                      "staff/1", "4201", NULL),
                     0);
    assert_int_equal(linli_outbox_append(w.pg, &other.event), 0);
    linli_event_clear(&other);
    assert_int_equal(linli_pg_commit(w.pg), 0);
    int64_t va = s_volunteer_set(&w, a, "linli.registry.volunteer.verified", "verified", S_A,
                                 "cooking,driving", "sat_am,sun_pm", NULL);
    s_volunteer_set(&w, d, "linli.registry.volunteer.verified", "verified", S_D, "repair", "",
                    NULL);
    s_relay(&w);

    //  The consumer thread applies them.
    int64_t until = ts_mono_ms() + 5000;
    char *status = NULL;
    while (!(status = s_hget(&w, d, "status")) || strcmp(status, "verified")) {
        free(status);
        assert_true(ts_mono_ms() < until);
        ts_sleep_ms(20);
    }
    free(status);
    until = ts_mono_ms() + 5000;
    while (s_pending(&w) > 0 && ts_mono_ms() < until)
        ts_sleep_ms(20);
    assert_int_equal(s_pending(&w), 0);

    s_assert_status(&w, a, "verified");
    s_assert_at(&w, a, S_A_LAT, S_LNG);
    assert_true(s_member(&w, "community:" S_A, a));
    assert_true(s_member(&w, "skill:cooking", a));
    assert_true(s_member(&w, "skill:driving", a));
    assert_true(s_member(&w, "slot:sat_am", a));
    assert_true(s_member(&w, "slot:sun_pm", a));
    char *v = s_hget(&w, a, "version"), want[24];
    snprintf(want, sizeof want, "%" PRId64, va);
    assert_string_equal(v, want);
    free(v);
    v = s_hget(&w, a, "skills");
    assert_string_equal(v, "cooking,driving");
    free(v);
    v = s_hget(&w, a, "community");
    assert_string_equal(v, S_A);
    free(v);
    //  D has no centre of its own: its street's.
    s_assert_at(&w, d, S_STREET_LAT, S_STREET_LNG);
    assert_true(s_member(&w, "skill:repair", d));
    //  Pending: a hash, in no set.
    s_assert_status(&w, p, "pending");
    double la, ln;
    assert_false(s_geopos(&w, p, &la, &ln));
    assert_false(s_member(&w, "skill:cooking", p));
    assert_false(s_member(&w, "community:" S_B, p));

    registry_index_destroy(&index);
    s_world_close(&w);
}

static void
test_changes_move_and_remove(void **state)
{
    (void)state;
    s_world_t w;
    s_world_open(&w, "ri_changes", 0);
    registry_index_t *index = s_index(&w, "c1", 30000);
    int64_t a = s_volunteer_new(&w, S_A, "cooking", "sat_am");
    int64_t b = s_volunteer_new(&w, S_A, "driving", "mon_eve");
    s_volunteer_set(&w, a, "linli.registry.volunteer.verified", "verified", S_A, "cooking",
                    "sat_am", NULL);
    s_volunteer_set(&w, b, "linli.registry.volunteer.verified", "verified", S_A, "driving",
                    "mon_eve", NULL);
    s_relay(&w);
    s_consume(&w, index);
    assert_true(s_member(&w, "skill:cooking", a));

    //  Moved to B with other skills: out of A, cooking and sat_am; into the rest.
    s_volunteer_set(&w, a, "linli.registry.volunteer.updated", "verified", S_B, "repair,reading",
                    "sun_am", NULL);
    s_relay(&w);
    s_consume(&w, index);
    assert_false(s_member(&w, "community:" S_A, a));
    assert_false(s_member(&w, "skill:cooking", a));
    assert_false(s_member(&w, "slot:sat_am", a));
    assert_true(s_member(&w, "community:" S_B, a));
    assert_true(s_member(&w, "skill:repair", a));
    assert_true(s_member(&w, "skill:reading", a));
    assert_true(s_member(&w, "slot:sun_am", a));
    s_assert_at(&w, a, S_B_LAT, S_LNG);

    //  Suspended, and left: out of every set and the GEO set; hashes stay.
    s_volunteer_set(&w, a, "linli.registry.volunteer.status_changed", "suspended", S_B,
                    "repair,reading", "sun_am", NULL);
    s_volunteer_set(&w, b, "linli.registry.volunteer.status_changed", "left", S_A, "driving",
                    "mon_eve", NULL);
    s_relay(&w);
    s_consume(&w, index);
    double la, ln;
    assert_false(s_geopos(&w, a, &la, &ln));
    assert_false(s_geopos(&w, b, &la, &ln));
    assert_false(s_member(&w, "community:" S_B, a));
    assert_false(s_member(&w, "skill:repair", a));
    assert_false(s_member(&w, "slot:sun_am", a));
    assert_false(s_member(&w, "community:" S_A, b));
    assert_false(s_member(&w, "skill:driving", b));
    s_assert_status(&w, a, "suspended");
    s_assert_status(&w, b, "left");
    //  Empty sets are gone altogether.
    char key[256];
    linli_redis_key(w.redis, key, sizeof key, "vol:community:%s", S_A);
    redisReply *reply = linli_redis_cmd(w.redis, "EXISTS %s", key);
    assert_int_equal(reply->integer, 0);
    freeReplyObject(reply);

    //  Verified again: back in.
    s_volunteer_set(&w, a, "linli.registry.volunteer.verified", "verified", S_B, "repair", "",
                    NULL);
    s_relay(&w);
    s_consume(&w, index);
    assert_true(s_member(&w, "skill:repair", a));
    assert_false(s_member(&w, "skill:reading", a));
    s_assert_at(&w, a, S_B_LAT, S_LNG);

    registry_index_destroy(&index);
    s_world_close(&w);
}

static void
test_versions_never_regress(void **state)
{
    (void)state;
    s_world_t w;
    s_world_open(&w, "ri_versions", 0);
    registry_index_t *index = s_index(&w, "c1", 30000);
    int64_t a = s_volunteer_new(&w, S_A, "cooking", "");
    s_packed_t verified, suspended;
    s_volunteer_set(&w, a, "linli.registry.volunteer.verified", "verified", S_A, "cooking", "",
                    &verified);
    int64_t vs = s_volunteer_set(&w, a, "linli.registry.volunteer.status_changed", "suspended", S_A,
                                 "cooking", "", &suspended);
    s_relay(&w);
    s_consume(&w, index);
    s_assert_status(&w, a, "suspended");
    char *before = s_snapshot(w.redis);

    //  The older "verified" delivered again after the newer "suspended": ignored.
    s_republish(&w, &verified);
    s_consume(&w, index);
    s_assert_status(&w, a, "suspended");
    assert_false(s_member(&w, "skill:cooking", a));
    char *v = s_hget(&w, a, "version"), want[24];
    snprintf(want, sizeof want, "%" PRId64, vs);
    assert_string_equal(v, want);
    free(v);
    char *after = s_snapshot(w.redis);
    assert_string_equal(before, after);
    free(after);

    //  The same event twice: the index is as after once.
    s_republish(&w, &suspended);
    s_republish(&w, &suspended);
    s_consume(&w, index);
    after = s_snapshot(w.redis);
    assert_string_equal(before, after);
    free(after);
    free(before);

    //  Two consumers of the group racing over interleaved replays: the newest wins.
    registry_index_t *other = s_index(&w, "c2", 30000);
    int64_t vv = s_volunteer_set(&w, a, "linli.registry.volunteer.verified", "verified", S_A,
                                 "cooking", "", NULL);
    for (int i = 0; i < 20; i++)
        s_republish(&w, i % 2 ? &verified : &suspended);
    s_relay(&w);
    for (int i = 0; i < 20; i++) {
        s_republish(&w, i % 2 ? &suspended : &verified);
        assert_true(registry_index_poll(i % 2 ? index : other, 0) >= 0);
    }
    s_consume(&w, index);
    s_consume(&w, other);
    s_assert_status(&w, a, "verified");
    assert_true(s_member(&w, "skill:cooking", a));
    v = s_hget(&w, a, "version");
    snprintf(want, sizeof want, "%" PRId64, vv);
    assert_string_equal(v, want);
    free(v);

    //  The script's own answers: an equal version is not applied twice, an
    //  older one never; a newer one is.
    s_script_t script = {.lua = s_apply_lua};
    s_entry_t e;
    assert_int_equal(s_entry_init(&e, 424242, 5000, "verified", S_A), 0);
    bool applied = false;
    assert_int_equal(s_apply_one(w.redis, &script, &e, &applied), 0);
    assert_true(applied);
    assert_int_equal(s_apply_one(w.redis, &script, &e, &applied), 0);
    assert_false(applied);
    snprintf(e.version, sizeof e.version, "4999");
    assert_int_equal(s_apply_one(w.redis, &script, &e, &applied), 0);
    assert_false(applied);
    snprintf(e.version, sizeof e.version, "5001");
    assert_int_equal(s_apply_one(w.redis, &script, &e, &applied), 0);
    assert_true(applied);
    free(verified.data);
    free(suspended.data);
    registry_index_destroy(&other);
    registry_index_destroy(&index);
    s_world_close(&w);
}

//  A consumer that dies before XACK: every delivery fails; the odd ones
//  are applied first (died after the effect, before the acknowledgement).
typedef struct {
    registry_index_t *index; //  whose handler applies
    int calls;               //  deliveries
} s_crashy_t;

static int
s_crashy(void *arg, const char *stream_id, const Linli__Event *event)
{
    s_crashy_t *c = arg;
    if (c->calls++ % 2)
        (void)registry_index_handle(c->index, stream_id, event);
    return -1;
}

static void
test_dead_consumer_entries_claimed(void **state)
{
    (void)state;
    s_world_t w;
    s_world_open(&w, "ri_claim", 0);
    int64_t ids[6];
    const char *communities[] = {S_A, S_B, S_C, S_D, S_A, S_B};
    for (int i = 0; i < 6; i++)
        ids[i] = s_volunteer_new(&w, communities[i], i % 2 ? "cooking" : "repair", "sat_am");
    for (int i = 0; i < 6; i++)
        s_volunteer_set(&w, ids[i], "linli.registry.volunteer.verified",
                        i == 5 ? "suspended" : "verified", communities[i],
                        i % 2 ? "cooking" : "repair", "sat_am", NULL);
    s_relay(&w);

    //  The first consumer of the group takes every entry and dies.
    registry_index_t *applier = s_index(&w, "applier", 30000);
    s_crashy_t crashy = {.index = applier};
    linli_consumer_opts_t opts = {
        .host = "127.0.0.1",
        .port = w.redis_port,
        .prefix = w.env.prefix,
        .stream = "events",
        .group = REGISTRY_INDEX_GROUP,
        .name = "dies",
        .count = 100,
        .block_max_ms = 200,
        .min_idle_ms = 600000,
        .fn = s_crashy,
        .arg = &crashy,
    };
    linli_consumer_t *dies = linli_consumer_new(&opts);
    assert_non_null(dies);
    for (int i = 0; i < 3; i++)
        assert_int_equal(linli_consumer_poll(dies, 0), 0);
    assert_int_equal(crashy.calls, 12);
    assert_int_equal(s_pending(&w), 12);
    linli_consumer_destroy(&dies);

    //  Another registry process claims them once idle and applies them.
    registry_index_t *index = s_index(&w, "survivor", 300);
    int64_t until = ts_mono_ms() + 5000;
    while (s_pending(&w) > 0) {
        assert_true(ts_mono_ms() < until);
        assert_true(registry_index_poll(index, 50) >= 0);
    }
    for (int i = 0; i < 5; i++)
        s_assert_status(&w, ids[i], "verified");
    s_assert_status(&w, ids[5], "suspended");
    s_assert_at(&w, ids[2], S_C_LAT, S_LNG);
    assert_true(s_member(&w, "skill:cooking", ids[1]));
    assert_false(s_member(&w, "skill:cooking", ids[5]));

    //  The same index as one built from PostgreSQL.
    char *fed = s_snapshot(w.redis);
    assert_true(registry_index_clear(w.redis) > 0);
    registry_index_stats_t stats;
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, &stats), 0);
    assert_int_equal(stats.volunteers, 6);
    assert_int_equal(stats.verified, 5);
    char *built = s_snapshot(w.redis);
    assert_string_equal(fed, built);
    free(fed);
    free(built);

    registry_index_destroy(&index);
    registry_index_destroy(&applier);
    s_world_close(&w);
}

static void
test_rebuild_after_flushall(void **state)
{
    (void)state;
    ts_redis_t server;
    assert_int_equal(ts_redis_start(&server), 0);
    s_world_t w;
    s_world_open(&w, "ri_rebuild", server.port);
    registry_index_t *index = s_index(&w, "c1", 30000);
    int64_t ids[8];
    const char *communities[] = {S_A, S_B, S_C, S_D, S_A, S_B, S_C, S_A};
    for (int i = 0; i < 8; i++)
        ids[i] = s_volunteer_new(&w, communities[i], "cooking,repair", "sat_am");
    for (int i = 0; i < 7; i++)
        s_volunteer_set(&w, ids[i], "linli.registry.volunteer.verified", "verified", communities[i],
                        i % 3 ? "cooking" : "repair,reading", "sat_am,sun_pm", NULL);
    s_volunteer_set(&w, ids[1], "linli.registry.volunteer.updated", "verified", S_C, "driving", "",
                    NULL);
    s_volunteer_set(&w, ids[2], "linli.registry.volunteer.status_changed", "left", S_C, "cooking",
                    "sat_am,sun_pm", NULL);
    s_relay(&w);
    s_consume(&w, index);
    char *fed = s_snapshot(w.redis);

    //  Redis lost everything: the rebuild gives back the same keys.
    redisReply *reply = linli_redis_cmd(w.redis, "FLUSHALL");
    assert_non_null(reply);
    freeReplyObject(reply);
    //  (Its scripts too, and the consumer's cached SHA1 with them: loaded again.)
    reply = linli_redis_cmd(w.redis, "SCRIPT FLUSH");
    freeReplyObject(reply);
    registry_index_stats_t stats;
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, &stats), 0);
    assert_int_equal(stats.volunteers, 8);
    assert_int_equal(stats.verified, 6);
    assert_int_equal(stats.stale, 0);
    assert_int_equal(stats.removed, 0);
    char *built = s_snapshot(w.redis);
    assert_string_equal(fed, built);
    free(built);
    char key[256];
    linli_redis_key(w.redis, key, sizeof key, "vol:meta");
    reply = linli_redis_cmd(w.redis, "HGET %s volunteers", key);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "8");
    freeReplyObject(reply);

    //  Again over a complete index: nothing changes. With --clear: the same.
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, &stats), 0);
    built = s_snapshot(w.redis);
    assert_string_equal(fed, built);
    free(built);
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, true, &stats), 0);
    built = s_snapshot(w.redis);
    assert_string_equal(fed, built);
    free(built);
    free(fed);

    //  A volunteer deleted from PostgreSQL leaves the index; one whose newer
    //  event Redis already holds is not set back by the rebuild.
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM accounts WHERE id = %" PRId64, ids[0]);
    s_exec(w.pg, sql);
    s_packed_t newer;
    s_volunteer_set(&w, ids[4], "linli.registry.volunteer.status_changed", "suspended", S_A,
                    "cooking", "sat_am,sun_pm", &newer);
    s_relay(&w);
    s_consume(&w, index);
    //  PostgreSQL seen as it was before the suspension (version one lower).
    snprintf(sql, sizeof sql,
             "UPDATE volunteers SET status = 'verified', updated_at = updated_at - "
             "interval '1 ms' WHERE id = %" PRId64,
             ids[4]);
    s_exec(w.pg, sql);
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, &stats), 0);
    assert_int_equal(stats.volunteers, 7);
    assert_int_equal(stats.removed, 1);
    assert_int_equal(stats.stale, 1);
    s_assert_status(&w, ids[4], "suspended");
    assert_false(s_member(&w, "skill:cooking", ids[4]));
    char *gone = s_hget(&w, ids[0], "status");
    assert_null(gone);
    assert_false(s_member(&w, "skill:repair", ids[0]));
    double la, ln;
    assert_false(s_geopos(&w, ids[0], &la, &ln));
    free(newer.data);

    registry_index_destroy(&index);
    s_world_close(&w);
    ts_redis_stop(&server);
}

static void
test_candidates(void **state)
{
    (void)state;
    s_world_t w;
    s_world_open(&w, "ri_candidates", 0);
    //  300 verified at A with no matching skill: the search must look past them.
    s_exec(w.pg, "INSERT INTO accounts (kind, name, phone_enc, phone_hash, area) "
                 "SELECT 'volunteer', 'v', 'x', 'many-' || g, '" S_A "' "
                 "FROM generate_series(1, 300) g");
    s_exec(w.pg, "INSERT INTO volunteers (id, community, id_number_enc, id_number_hash, skills, "
                 "free_slots, status) SELECT id, '" S_A "', 'x', phone_hash, '{reading}', "
                 "'{sat_am}', 'verified' FROM accounts WHERE phone_hash LIKE 'many-%'");
    int64_t near = s_volunteer_new(&w, S_A, "cooking", "sat_am");
    int64_t mid = s_volunteer_new(&w, S_B, "cooking", "sun_pm");
    int64_t far = s_volunteer_new(&w, S_C, "cooking", "sat_am");
    int64_t off = s_volunteer_new(&w, S_A, "cooking", "sat_am");
    int64_t all[] = {near, mid, far};
    const char *comm[] = {S_A, S_B, S_C};
    const char *slot[] = {"sat_am", "sun_pm", "sat_am"};
    for (int i = 0; i < 3; i++)
        s_volunteer_set(&w, all[i], "linli.registry.volunteer.verified", "verified", comm[i],
                        "cooking", slot[i], NULL);
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, NULL), 0);

    registry_candidate_t out[400];
    size_t n = 0;
    //  Nearest first, with distances; "off" is pending.
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 1500, "cooking", NULL, 10, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, near);
    assert_true(out[0].dist_m < 1.0);
    assert_int_equal(out[1].id, mid);
    assert_true(out[1].dist_m > 950 && out[1].dist_m < 1050);
    //  A wider circle reaches C.
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 6000, "cooking", "", 10, out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2].id, far);
    assert_true(out[2].dist_m > 4900 && out[2].dist_m < 5100);
    //  Skill and slot.
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 6000, "cooking", "sat_am", 10, out, &n),
        0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, near);
    assert_int_equal(out[1].id, far);
    //  From C's side the order turns round.
    assert_int_equal(
        registry_index_candidates(w.redis, S_C_LAT, S_LNG, 6000, "cooking", NULL, 10, out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, far);
    assert_int_equal(out[2].id, near);
    //  max bounds the answer; no filter gives everyone in the circle.
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 6000, "cooking", NULL, 1, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, near);
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 500, NULL, NULL, 400, out, &n), 0);
    assert_int_equal(n, 301);
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 500, "nobody", NULL, 5, out, &n), 0);
    assert_int_equal(n, 0);
    (void)off;
    //  Bad arguments.
    assert_int_equal(registry_index_candidates(w.redis, 91.0, S_LNG, 500, NULL, NULL, 5, out, &n),
                     -1);
    assert_int_equal(registry_index_candidates(w.redis, S_A_LAT, S_LNG, 0, NULL, NULL, 5, out, &n),
                     -1);
    assert_int_equal(
        registry_index_candidates(w.redis, S_A_LAT, S_LNG, 500, "a,b", NULL, 5, out, &n), -1);
    s_world_close(&w);
}

static void
test_rebuild_rate(void **state)
{
    (void)state;
    //  A private Redis, so its memory figure is the index's alone.
    ts_redis_t server;
    assert_int_equal(ts_redis_start(&server), 0);
    s_world_t w;
    s_world_open(&w, "ri_rate", server.port);
    //  200 communities around A, 100,000 volunteers, 90% verified.
    s_exec(w.pg, "INSERT INTO areas (code, name, level, parent) "
                 "VALUES ('420102003', 'S3', 'street', '420102')");
    s_exec(w.pg, "INSERT INTO areas (code, name, level, parent, lat, lng) "
                 "SELECT '420102003' || lpad(g::text, 3, '0'), 'c' || g, 'community', "
                 "'420102003', 30.55 + (g % 20) * 0.005, 114.25 + (g / 20) * 0.005 "
                 "FROM generate_series(1, 200) g");
    s_exec(w.pg, "INSERT INTO accounts (kind, name, phone_enc, phone_hash, area) "
                 "SELECT 'volunteer', 'v', 'x', 'bulk-' || g, '" S_A "' "
                 "FROM generate_series(1, 100000) g");
    s_exec(w.pg, "INSERT INTO volunteers (id, community, id_number_enc, id_number_hash, skills, "
                 "free_slots, status) SELECT id, '420102003' || lpad((1 + id % 200)::text, 3, "
                 "'0'), 'x', phone_hash, (array['{cooking}', '{cooking,driving}', "
                 "'{repair,reading,elder_care}', '{}'])[1 + (id / 200) % 4]::text[], "
                 "(array['{sat_am,sun_am}', '{mon_eve}', '{}'])[1 + (id / 800) % 3]::text[], "
                 "CASE WHEN id % 10 = 0 THEN 'pending' ELSE 'verified' END FROM accounts");
    redisReply *reply = linli_redis_cmd(w.redis, "INFO memory");
    long long mem0 = strtoll(strstr(reply->str, "used_memory:") + 12, NULL, 10);
    freeReplyObject(reply);

    registry_index_stats_t stats;
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, &stats), 0);
    assert_int_equal(stats.volunteers, 100000);
    assert_int_equal(stats.verified, 90000);
    reply = linli_redis_cmd(w.redis, "INFO memory");
    long long mem1 = strtoll(strstr(reply->str, "used_memory:") + 12, NULL, 10);
    freeReplyObject(reply);
    char key[256];
    linli_redis_key(w.redis, key, sizeof key, "vol:geo");
    reply = linli_redis_cmd(w.redis, "ZCARD %s", key);
    assert_int_equal(reply->integer, 90000);
    freeReplyObject(reply);
    printf("rebuild: %ld volunteers in %.2f s = %.0f/s; Redis memory %.0f bytes per volunteer\n",
           stats.volunteers, stats.seconds, (double)stats.volunteers / stats.seconds,
           (double)(mem1 - mem0) / (double)stats.volunteers);

    //  A second pass over a full index (the usual case: repair, not restore).
    assert_int_equal(registry_index_rebuild(w.pg, w.redis, false, &stats), 0);
    printf("rebuild over a full index: %.2f s = %.0f/s\n", stats.seconds,
           (double)stats.volunteers / stats.seconds);
    registry_candidate_t out[20];
    size_t n;
    int64_t t0 = ts_mono_ms();
    for (int i = 0; i < 100; i++)
        assert_int_equal(registry_index_candidates(w.redis, 30.60, 114.30, 1200, "elder_care",
                                                   "sat_am", 20, out, &n),
                         0);
    printf("candidates (1.2 km, skill and slot, 20): %.2f ms each, %zu found\n",
           (double)(ts_mono_ms() - t0) / 100.0, n);
    assert_int_equal(n, 20);

    //  The consumer's pace: 20,000 events (one script round trip each).
    enum { N_EVENTS = 20000, PIPE = 500 };
    char stream[256];
    linli_redis_key(w.redis, stream, sizeof stream, "events");
    static uint8_t packed[PIPE][256];
    static const char *argvs_store[PIPE][7];
    static size_t lens_store[PIPE][7];
    const char **argvs[PIPE];
    const size_t *lens[PIPE];
    int argcs[PIPE];
    redisReply *replies[PIPE];
    for (int base = 0; base < N_EVENTS; base += PIPE) {
        for (int i = 0; i < PIPE; i++) {
            char ids[24], community[16];
            int64_t id = base + i + 1;
            snprintf(ids, sizeof ids, "%" PRId64, id);
            snprintf(community, sizeof community, "420102003%03d", (int)(1 + id % 200));
            char *skills[] = {"cooking", "repair"}, *slots[] = {"sun_pm"};
            Linli__Registry__VolunteerEvent data = LINLI__REGISTRY__VOLUNTEER_EVENT__INIT;
            data.id = ids;
            data.community = community;
            data.status = "verified";
            data.n_skills = 2;
            data.skills = skills;
            data.n_free_slots = 1;
            data.free_slots = slots;
            data.has_version = true;
            data.version = linli_now_ms() + 60000;
            linli_event_t ev;
            assert_int_equal(linli_event_init(&ev, "/linli/registry",
                                              "linli.registry.volunteer.updated", NULL, community,
                                              &data.base),
                             0);
            size_t len = linli__event__get_packed_size(&ev.event);
            assert_true(len <= sizeof packed[i]);
            linli__event__pack(&ev.event, packed[i]);
            linli_event_clear(&ev);
            const char *argv[] = {"XADD", stream, "*", "event_id", "e", "data", (char *)packed[i]};
            size_t argl[] = {4, strlen(stream), 1, 8, 1, 4, len};
            memcpy(argvs_store[i], argv, sizeof argv);
            memcpy(lens_store[i], argl, sizeof argl);
            argvs[i] = argvs_store[i];
            lens[i] = lens_store[i];
            argcs[i] = 7;
        }
        assert_int_equal(linli_redis_pipeline(w.redis, PIPE, argcs, argvs, lens, replies), 0);
        for (int i = 0; i < PIPE; i++)
            freeReplyObject(replies[i]);
    }
    registry_index_t *index = s_index(&w, "pace", 30000);
    t0 = ts_mono_ms();
    s_consume(&w, index);
    double secs = (double)(ts_mono_ms() - t0) / 1000.0;
    printf("consumer: %d events in %.2f s = %.0f/s\n", N_EVENTS, secs, N_EVENTS / secs);
    assert_true(s_member(&w, "slot:sun_pm", N_EVENTS));
    registry_index_destroy(&index);
    s_world_close(&w);
    ts_redis_stop(&server);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified_volunteer_indexed),
        cmocka_unit_test(test_changes_move_and_remove),
        cmocka_unit_test(test_versions_never_regress),
        cmocka_unit_test(test_dead_consumer_entries_claimed),
        cmocka_unit_test(test_rebuild_after_flushall),
        cmocka_unit_test(test_candidates),
        cmocka_unit_test(test_rebuild_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
