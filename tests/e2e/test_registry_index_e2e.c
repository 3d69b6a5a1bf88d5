//  The matching index end to end: volunteers signed up and verified through
//  the gateway appear in Redis (two registry processes share the consumer
//  group), leave it when suspended, keep coming with one registry killed,
//  and `linli-registry rebuild-index` restores the index from PostgreSQL.
#include "test_suite.h"
#include "linli_pg.h"
#include "linli_redis.h"

//  e2e tests link common/ and the test support only: the index's read API
//  is compiled in directly (it needs no other registry source).
#include "../../services/registry/registry_index.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define C1 "420102001001"

static ts_suite_t s_suite;
static char *s_admin;             //  city admin's token
static linli_redis_t *s_redis;    //  the suite's Redis, its prefix
static double s_c1_lat, s_c1_lng; //  C1's centre from PostgreSQL

//  Sign a volunteer up in C1 by staff; its id into id. HTTP status.
static long
s_sign_up(int seq, const char *skills, char *id, size_t cap)
{
    char idn[19], phone[24];
    ts_id_number("420102", "19850505", seq, idn);
    snprintf(phone, sizeof phone, "150000%05d", seq);
    ts_http_reply_t r = ts_sign_up(&s_suite, s_admin, "志愿者", idn, phone, C1, skills, id, cap);
    assert_int_not_equal(r.status, 0); //  0: no answer (ts_http failed)
    long status = r.status;
    ts_http_reply_free(&r);
    return status;
}

//  POST path with body as the admin; HTTP status.
static long
s_post(const char *path, const char *body)
{
    ts_http_reply_t r;
    assert_int_equal(ts_http(&s_suite, "POST", path, s_admin, body, NULL, &r), 0);
    long status = r.status;
    ts_http_reply_free(&r);
    return status;
}

//  Wait (5 s at most) until vol:<id> has this status. true when it did.
static bool
s_wait_status(const char *id, const char *status)
{
    char key[256];
    linli_redis_key(s_redis, key, sizeof key, "vol:%s", id);
    for (int64_t until = ts_mono_ms() + 5000; ts_mono_ms() < until; ts_sleep_ms(25)) {
        redisReply *reply = linli_redis_cmd(s_redis, "HGET %s status", key);
        bool done = reply && reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, status);
        freeReplyObject(reply);
        if (done)
            return true;
    }
    return false;
}

//  Is id among the verified volunteers near C1 with skill?
static bool
s_candidate(const char *id, const char *skill)
{
    registry_candidate_t out[64];
    size_t n = 0;
    assert_int_equal(
        registry_index_candidates(s_redis, s_c1_lat, s_c1_lng, 300, skill, "sat_am", 64, out, &n),
        0);
    for (size_t i = 0; i < n; i++)
        if (out[i].id == strtoll(id, NULL, 10))
            return out[i].dist_m < 1.0;
    return false;
}

static int
s_setup(void **state)
{
    (void)state;
    s_admin = ts_suite_start_admin(&s_suite, "index_e2e", 2, NULL);
    if (!s_admin)
        return -1;
    s_redis = linli_redis_new("127.0.0.1", s_suite.env.redis.port, NULL, 5000, s_suite.env.prefix);
    linli_pg_t *pg = linli_pg_new(s_suite.env.dsn, "registry", 5000);
    PGresult *res = pg ? linli_pg_exec(pg, "SELECT lat, lng FROM areas WHERE code = $1", 1,
                                       (const char *[]){C1})
                       : NULL;
    if (res && PQntuples(res) == 1) {
        s_c1_lat = strtod(PQgetvalue(res, 0, 0), NULL);
        s_c1_lng = strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    linli_pg_destroy(&pg);
    return s_admin && s_redis && s_c1_lat > 0 ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    free(s_admin);
    linli_redis_destroy(&s_redis);
    ts_suite_stop(&s_suite);
    return 0;
}

static void
test_verified_volunteer_in_redis(void **state)
{
    (void)state;
    char id[32], path[96];
    assert_int_equal(s_sign_up(1, "\"elderly_care\",\"repair\"", id, sizeof id), 201);
    assert_true(s_wait_status(id, "pending"));
    assert_false(s_candidate(id, "repair"));

    snprintf(path, sizeof path, "/v1/volunteers/%s/verify", id);
    assert_int_equal(s_post(path, NULL), 200);
    assert_true(s_wait_status(id, "verified"));
    //  At its community's centre, with its skills and slot.
    assert_true(s_candidate(id, "repair"));
    assert_true(s_candidate(id, "elderly_care"));
    assert_false(s_candidate(id, "tutoring"));

    snprintf(path, sizeof path, "/v1/volunteers/%s/status", id);
    assert_int_equal(s_post(path, "{\"status\":\"suspended\"}"), 200);
    assert_true(s_wait_status(id, "suspended"));
    assert_false(s_candidate(id, "repair"));
    assert_int_equal(s_post(path, "{\"status\":\"verified\"}"), 200);
    assert_true(s_wait_status(id, "verified"));
    assert_true(s_candidate(id, "repair"));
}

//  An import's volunteers reach the index through volunteers.imported
//  events (500 to an event: 650 rows make two events): in the hash with
//  their status, in the skill set and on the map when verified.
static void
test_imported_volunteers_in_redis(void **state)
{
    (void)state;
    enum { ROWS = 650 };
    size_t cap = 64 + ROWS * 96;
    char *csv = malloc(cap);
    assert_non_null(csv);
    size_t len =
        (size_t)snprintf(csv, cap, "name,id_number,phone,community,skills,free_slots,status\n");
    for (int i = 0; i < ROWS; i++) {
        char idn[19], birth[16];
        snprintf(birth, sizeof birth, "19%02d0303", 60 + i / 1000);
        ts_id_number("420102", birth, i % 1000, idn);
        //  The last 50 stay pending: in the hash, out of the candidate sets.
        len += (size_t)snprintf(csv + len, cap - len,
                                "导入者,%s,1570000%04d," C1 ",tutoring,sat_am,%s\n", idn, i,
                                i < ROWS - 50 ? "verified" : "pending");
    }
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/imports/volunteers", s_admin, csv);
    free(csv);
    assert_int_equal(r.status, 202);
    char job[32], path[64];
    snprintf(job, sizeof job, "%s", json_string_value(json_object_get(r.json, "id")));
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/imports/%s", job);
    bool done = false;
    for (int64_t until = ts_mono_ms() + 30000; !done && ts_mono_ms() < until; ts_sleep_ms(50)) {
        r = ts_req(&s_suite, "GET", path, s_admin, NULL);
        const char *status = json_string_value(json_object_get(r.json, "status"));
        done = status && !strcmp(status, "done");
        if (done)
            assert_int_equal(json_integer_value(json_object_get(r.json, "imported")), ROWS);
        ts_http_reply_free(&r);
    }
    assert_true(done);

    //  Every imported volunteer is indexed with its status; the verified
    //  ones are candidates at C1's centre.
    linli_pg_t *pg = linli_pg_new(s_suite.env.dsn, "registry", 5000);
    PGresult *res = linli_pg_exec(
        pg, "SELECT id, status FROM volunteers WHERE source = 'import' AND community = $1", 1,
        (const char *[]){C1});
    assert_non_null(res);
    assert_int_equal(PQntuples(res), ROWS);
    for (int i = 0; i < PQntuples(res); i++)
        assert_true(s_wait_status(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)));
    char key[256];
    linli_redis_key(s_redis, key, sizeof key, "vol:skill:tutoring");
    int members = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        redisReply *reply = linli_redis_cmd(s_redis, "SISMEMBER %s %s", key, PQgetvalue(res, i, 0));
        assert_non_null(reply);
        bool verified = !strcmp(PQgetvalue(res, i, 1), "verified");
        assert_int_equal(reply->integer, verified ? 1 : 0);
        members += (int)reply->integer;
        freeReplyObject(reply);
        char geo[256];
        linli_redis_key(s_redis, geo, sizeof geo, "vol:geo");
        reply = linli_redis_cmd(s_redis, "ZSCORE %s %s", geo, PQgetvalue(res, i, 0));
        assert_non_null(reply);
        assert_int_equal(reply->type == REDIS_REPLY_NIL ? 0 : 1, verified ? 1 : 0);
        freeReplyObject(reply);
    }
    assert_int_equal(members, ROWS - 50);
    PQclear(res);
    linli_pg_destroy(&pg);
}

static void
test_registry_killed_and_rebuild(void **state)
{
    (void)state;
    //  One registry process dies; the other serves and indexes what follows.
    //  (A consumer killed before XACK: tests/integration/test_registry_index.c.)
    assert_int_equal(ts_kill(s_suite.registry[0], SIGKILL), 0);
    s_suite.registry[0] = 0;
    assert_int_equal(ts_suite_wait_workers(&s_suite, "registry", 1, 10000), 0);
    char ids[5][32], path[256];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s_sign_up(10 + i, "\"repair\"", ids[i], sizeof ids[i]), 201);
        snprintf(path, sizeof path, "/v1/volunteers/%s/verify", ids[i]);
        assert_int_equal(s_post(path, NULL), 200);
    }
    for (int i = 0; i < 5; i++) {
        assert_true(s_wait_status(ids[i], "verified"));
        assert_true(s_candidate(ids[i], "repair"));
    }

    //  The index lost: the tool rebuilds it from PostgreSQL.
    assert_true(registry_index_clear(s_redis) > 0);
    assert_false(s_candidate(ids[0], "repair"));
    char bin[512], log[600];
    ts_bin("linli-registry", bin, sizeof bin);
    snprintf(log, sizeof log, "%s/rebuild-index.log", s_suite.logdir);
    const char *argv[] = {bin, "rebuild-index", NULL};
    pid_t pid = ts_spawn(argv, s_suite.envp, log);
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(s_wait_status(ids[i], "verified"));
        assert_true(s_candidate(ids[i], "repair"));
    }
    //  A bad argument is refused.
    const char *bad[] = {bin, "rebuild-index", "--everything", NULL};
    pid = ts_spawn(bad, s_suite.envp, log);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified_volunteer_in_redis),
        cmocka_unit_test(test_imported_volunteers_in_redis),
        cmocka_unit_test(test_registry_killed_and_rebuild),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
