//  Staff accounts change and end: an admin above every role of a staff
//  account disables it (its sessions end at once, login is refused) and
//  enables it again, or replaces its grants (its sessions end, the new grants
//  hold from the next login). Who may do it, what is refused with which code,
//  the events it leaves, and that a change whose sessions cannot be ended is
//  not made at all (Redis refusing writes). The gateway caches sessions for a
//  minute here, so no refusal below can be the cache timing out.
#include "test_suite.h"

#include "linli/registry.pb-c.h"

#include <hiredis.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D1 "420102"           //  江岸区
#define D2 "420103"           //  another district
#define S1 "420102001"        //  a street of D1
#define C1 "420102001001"     //  a community of S1
#define C2 "420102001002"     //  its neighbour
#define C3 "420103001001"     //  a community of D2
#define PASSWORD "password-1" //  ts_create_staff's password

static ts_suite_t s_suite;
static char *s_city;     //  city admin
static char *s_district; //  district admin of D1
static char s_district_id[32];
static redisContext *s_redis;
static PGconn *s_db;

//  A staff account made by token with one grant: its id into id, logged in
//  (its token returned, caller frees), the session cached by the gateway.
static char *
s_staff(const char *token, const char *phone, const char *role, const char *scope, char id[32])
{
    assert_int_equal(ts_create_staff(&s_suite, token, phone, role, scope, id, 32), 201);
    char *t = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(t);
    ts_wait_session_cached(&s_suite, t);
    return t;
}

//  POST /v1/staff/{id}/status as token with body {"status": status}.
static ts_http_reply_t
s_set_status(const char *token, const char *id, const char *status)
{
    char path[96], body[64];
    snprintf(path, sizeof path, "/v1/staff/%s/status", id);
    snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    return ts_req(&s_suite, "POST", path, token, body);
}

//  PUT /v1/staff/{id}/grants as token with body {"grants": [grants_json]}.
static ts_http_reply_t
s_set_grants(const char *token, const char *id, const char *grants_json)
{
    char path[96], body[512];
    snprintf(path, sizeof path, "/v1/staff/%s/grants", id);
    snprintf(body, sizeof body, "{\"grants\":[%s]}", grants_json);
    return ts_req(&s_suite, "PUT", path, token, body);
}

//  Expect status and error code from a reply, and free it.
static void
s_expect(ts_http_reply_t r, long status, const char *code)
{
    assert_int_equal(r.status, status);
    if (code)
        assert_string_equal(ts_error_code(&r), code);
    ts_http_reply_free(&r);
}

//  The account's status as the database holds it.
static void
s_db_status(const char *id, const char *want)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registry.accounts WHERE id = %s AND status = '%s'", id, want);
    assert_int_equal(ts_sql_long(s_db, sql), 1);
}

//  ---------------------------------------------------------------- events

typedef struct {
    const char *subject; //  "staff/<id>"
    const char *phone;   //  must appear in no event
    int status_changed;  //  events seen of each type about subject
    int grants_changed;
    char last_status[16];
    int last_grants;
    char last_previous_area[16]; //  of the last grants_changed
    char last_area[16];
} s_scan_t;

static void
s_scan_event(const Linli__Event *ev, const char *d, size_t dlen, void *arg)
{
    s_scan_t *scan = arg;
    size_t plen = strlen(scan->phone);
    for (size_t k = 0; k + plen <= dlen; k++)
        assert_false(memcmp(d + k, scan->phone, plen) == 0);
    if (!ev || !ev->subject || strcmp(ev->subject, scan->subject))
        return;
    Linli__Registry__StaffEvent *data =
        linli__registry__staff_event__unpack(NULL, ev->data.len, ev->data.data);
    assert_non_null(data);
    if (!strcmp(ev->type, "linli.registry.staff.status_changed")) {
        scan->status_changed++;
        assert_non_null(data->status);
        snprintf(scan->last_status, sizeof scan->last_status, "%s", data->status);
    }
    if (!strcmp(ev->type, "linli.registry.staff.grants_changed")) {
        scan->grants_changed++;
        scan->last_grants = (int)data->n_grants;
        snprintf(scan->last_previous_area, sizeof scan->last_previous_area, "%s",
                 data->previous_area ? data->previous_area : "");
        snprintf(scan->last_area, sizeof scan->last_area, "%s", ev->area ? ev->area : "");
    }
    assert_non_null(data->actor);
    linli__registry__staff_event__free_unpacked(data, NULL);
}

//  Read the stream until the events about account id number at least
//  status + grants (the relay runs every 50 ms), then check them.
static void
s_scan_until(s_scan_t *scan, int status, int grants)
{
    for (int i = 0; i < 100; i++) {
        scan->status_changed = scan->grants_changed = 0;
        assert_int_equal(ts_stream_events(&s_suite, s_scan_event, scan), 0);
        if (scan->status_changed >= status && scan->grants_changed >= grants)
            break;
        ts_sleep_ms(50);
    }
    assert_int_equal(scan->status_changed, status);
    assert_int_equal(scan->grants_changed, grants);
}

//  ---------------------------------------------------------------- tests

static void
test_disable_and_enable(void **state)
{
    (void)state;
    char id[32], other_id[32];
    const char *phone = "13700000101";
    char *worker = s_staff(s_district, phone, "community_worker", C1, id);
    char *second = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(second);
    ts_wait_session_cached(&s_suite, second);
    char *other = s_staff(s_district, "13700000102", "community_worker", C2, other_id);

    //  Disabled: every session ends before the answer, though cached.
    ts_http_reply_t r = s_set_status(s_district, id, "disabled");
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "status"), "disabled");
    assert_string_equal(ts_json_str(&r, "id"), id);
    ts_http_reply_free(&r);
    ts_assert_token_ended(&s_suite, worker);
    ts_assert_token_ended(&s_suite, second);
    s_db_status(id, "disabled");
    //  Nobody else's.
    assert_int_equal(ts_me_status(&s_suite, other), 200);
    assert_int_equal(ts_me_status(&s_suite, s_district), 200);
    //  Login is refused with the reason (the password was right).
    s_expect(ts_login_reply(&s_suite, phone, PASSWORD), 403, "account_disabled");
    //  Disabling it again changes nothing and says so plainly.
    r = s_set_status(s_district, id, "disabled");
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "status"), "disabled");
    ts_http_reply_free(&r);
    //  Still listed and readable, as disabled.
    char path[96];
    snprintf(path, sizeof path, "/v1/staff/%s", id);
    r = ts_req(&s_suite, "GET", path, s_district, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "status"), "disabled");
    ts_http_reply_free(&r);

    //  Enabled: the old sessions stay ended; it logs in anew.
    r = s_set_status(s_district, id, "active");
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "status"), "active");
    ts_http_reply_free(&r);
    ts_assert_token_ended(&s_suite, worker);
    ts_assert_token_ended(&s_suite, second);
    char *fresh = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(fresh);
    assert_int_equal(ts_me_status(&s_suite, fresh), 200);
    s_db_status(id, "active");

    //  Two changes, two events (the repeat made none), no phone in any.
    char subject[48];
    snprintf(subject, sizeof subject, "staff/%s", id);
    s_scan_t scan = {.subject = subject, .phone = phone};
    s_scan_until(&scan, 2, 0);
    assert_string_equal(scan.last_status, "active");
    free(worker);
    free(second);
    free(other);
    free(fresh);
}

static void
test_idempotent_retry(void **state)
{
    (void)state;
    char id[32];
    char *worker = s_staff(s_district, "13700000111", "community_worker", C1, id);
    char path[96];
    snprintf(path, sizeof path, "/v1/staff/%s/status", id);
    const char *headers[] = {"Idempotency-Key: disable-13700000111", NULL};
    ts_http_reply_t first, again;
    assert_int_equal(
        ts_http(&s_suite, "POST", path, s_district, "{\"status\":\"disabled\"}", headers, &first),
        0);
    assert_int_equal(first.status, 200);
    ts_assert_token_ended(&s_suite, worker);
    //  Enabled meanwhile; the retry of the disabling answers as the first
    //  time and changes nothing.
    s_expect(s_set_status(s_district, id, "active"), 200, NULL);
    assert_int_equal(
        ts_http(&s_suite, "POST", path, s_district, "{\"status\":\"disabled\"}", headers, &again),
        0);
    assert_int_equal(again.status, 200);
    assert_string_equal(again.body, first.body);
    s_db_status(id, "active");
    //  The same key with another body is refused.
    ts_http_reply_t other;
    assert_int_equal(
        ts_http(&s_suite, "POST", path, s_district, "{\"status\":\"active\"}", headers, &other), 0);
    assert_int_equal(other.status, 422);
    ts_http_reply_free(&first);
    ts_http_reply_free(&again);
    ts_http_reply_free(&other);
    free(worker);
}

static void
test_grants_replaced(void **state)
{
    (void)state;
    char id[32];
    const char *phone = "13700000121";
    char *worker = s_staff(s_district, phone, "community_worker", C1, id);

    //  Moved to the neighbouring community and made street admin too.
    ts_http_reply_t r = s_set_grants(s_district, id,
                                     "{\"role\":\"community_worker\",\"scope\":\"" C2 "\"},"
                                     "{\"role\":\"street_admin\",\"scope\":\"" S1 "\"}");
    assert_int_equal(r.status, 200);
    json_t *grants = json_object_get(r.json, "grants");
    assert_int_equal(json_array_size(grants), 2);
    assert_string_equal(ts_json_str(&r, "area"), S1); //  the highest role's scope
    ts_http_reply_free(&r);
    //  The old session, holding the old grants, is over.
    ts_assert_token_ended(&s_suite, worker);
    char *fresh = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(fresh);
    r = ts_req(&s_suite, "GET", "/v1/me", fresh, NULL);
    assert_int_equal(r.status, 200);
    grants = json_object_get(r.json, "grants");
    assert_int_equal(json_array_size(grants), 2);
    bool street = false, c2 = false;
    for (size_t i = 0; i < json_array_size(grants); i++) {
        const char *role = json_string_value(json_object_get(json_array_get(grants, i), "role"));
        const char *scope = json_string_value(json_object_get(json_array_get(grants, i), "scope"));
        street |= !strcmp(role, "street_admin") && !strcmp(scope, S1);
        c2 |= !strcmp(role, "community_worker") && !strcmp(scope, C2);
    }
    assert_true(street && c2);
    ts_http_reply_free(&r);
    //  The new grants work at once: a street admin lists staff of its street.
    assert_int_equal(ts_status(&s_suite, "GET", "/v1/staff?area=" S1, fresh, NULL), 200);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM registry.grants WHERE account_id = %s", id);
    assert_int_equal(ts_sql_long(s_db, sql), 2);

    //  Refused, nothing changed, the session kept:
    //  a role not below the caller's,
    r = s_set_grants(s_district, id, "{\"role\":\"district_admin\",\"scope\":\"" D1 "\"}");
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "grant_not_allowed");
    assert_string_equal(ts_error_field(&r), "grants[0]");
    ts_http_reply_free(&r);
    //  an area outside its district,
    s_expect(s_set_grants(s_district, id, "{\"role\":\"community_worker\",\"scope\":\"" C3 "\"}"),
             403, "grant_not_allowed");
    //  a scope not of the role's level, an unknown role, an unknown area,
    s_expect(s_set_grants(s_district, id, "{\"role\":\"community_worker\",\"scope\":\"" S1 "\"}"),
             400, "invalid_value");
    s_expect(s_set_grants(s_district, id, "{\"role\":\"king\",\"scope\":\"" C1 "\"}"), 400,
             "invalid_value");
    s_expect(
        s_set_grants(s_district, id, "{\"role\":\"community_worker\",\"scope\":\"420102999999\"}"),
        422, "unknown_area");
    //  no grants at all (disable the account instead), too many, not a list.
    s_expect(s_set_grants(s_district, id, ""), 400, "too_short");
    char many[1024] = "";
    for (int i = 0; i < 9; i++)
        strcat(many, i ? ",{\"role\":\"community_worker\",\"scope\":\"" C1 "\"}"
                       : "{\"role\":\"community_worker\",\"scope\":\"" C1 "\"}");
    s_expect(s_set_grants(s_district, id, many), 400, "too_many");
    char path[96];
    snprintf(path, sizeof path, "/v1/staff/%s/grants", id);
    s_expect(ts_req(&s_suite, "PUT", path, s_district, "{\"grants\":\"street_admin\"}"), 400,
             "invalid_type");
    assert_int_equal(ts_me_status(&s_suite, fresh), 200);
    assert_int_equal(ts_sql_long(s_db, sql), 2);

    char subject[48];
    snprintf(subject, sizeof subject, "staff/%s", id);
    s_scan_t scan = {.subject = subject, .phone = phone};
    s_scan_until(&scan, 0, 1);
    assert_int_equal(scan.last_grants, 2);
    //  Out under the new home area, naming the old one.
    assert_string_equal(scan.last_area, S1);
    assert_string_equal(scan.last_previous_area, C1);
    free(worker);
    free(fresh);
}

static void
test_who_may_change(void **state)
{
    (void)state;
    char worker_id[32], peer_id[32], other_district_id[32], street_id[32], split_id[32];
    char *worker = s_staff(s_district, "13700000131", "community_worker", C1, worker_id);
    char *peer = s_staff(s_city, "13700000132", "district_admin", D1, peer_id);
    char *elsewhere = s_staff(s_city, "13700000133", "district_admin", D2, other_district_id);
    char *street = s_staff(s_district, "13700000134", "street_admin", S1, street_id);
    //  Anonymous, a volunteer-less community worker: refused at the gateway.
    s_expect(s_set_status(NULL, worker_id, "disabled"), 401, NULL);
    s_expect(s_set_status(worker, peer_id, "disabled"), 403, NULL);
    s_expect(s_set_grants(worker, peer_id, "{\"role\":\"community_worker\",\"scope\":\"" C1 "\"}"),
             403, NULL);
    //  Another district's admin does not learn the account exists.
    s_expect(s_set_status(elsewhere, worker_id, "disabled"), 404, "staff_not_found");
    s_expect(
        s_set_grants(elsewhere, worker_id, "{\"role\":\"community_worker\",\"scope\":\"" C3 "\"}"),
        404, "staff_not_found");
    //  A peer (same role, same district) and oneself: 403.
    s_expect(s_set_status(peer, s_district_id, "disabled"), 403, "forbidden");
    s_expect(s_set_status(s_district, s_district_id, "disabled"), 403, "forbidden");
    s_expect(
        s_set_grants(street, street_id, "{\"role\":\"community_worker\",\"scope\":\"" C1 "\"}"),
        403, "forbidden");
    //  An account with a grant outside the caller's district is not its to
    //  change, though its home area is inside.
    ts_http_reply_t r =
        ts_req(&s_suite, "POST", "/v1/staff", s_city,
               "{\"name\":\"两区\",\"phone\":\"13700000135\",\"password\":\"password-1\","
               "\"grants\":[{\"role\":\"street_admin\",\"scope\":\"" S1 "\"},"
               "{\"role\":\"community_worker\",\"scope\":\"" C3 "\"}]}");
    assert_int_equal(r.status, 201);
    snprintf(split_id, sizeof split_id, "%s", ts_json_str(&r, "id"));
    ts_http_reply_free(&r);
    s_expect(s_set_status(s_district, split_id, "disabled"), 403, "forbidden");
    s_db_status(split_id, "active");
    //  Not a staff account (a volunteer of its district), unknown ids,
    //  malformed input.
    char vol_id[32], idn[19];
    ts_id_number("420102", "19870707", 36, idn);
    r = ts_sign_up(&s_suite, NULL, "志愿者", idn, "13911110136", C1, "\"repair\"", vol_id,
                   sizeof vol_id);
    assert_int_equal(r.status, 201);
    ts_http_reply_free(&r);
    s_expect(s_set_status(s_district, vol_id, "disabled"), 404, "staff_not_found");
    s_expect(
        s_set_grants(s_district, vol_id, "{\"role\":\"community_worker\",\"scope\":\"" C1 "\"}"),
        404, "staff_not_found");
    s_expect(s_set_status(s_district, "999999999", "disabled"), 404, "staff_not_found");
    s_expect(s_set_status(s_district, "abc", "disabled"), 400, "invalid_format");
    s_expect(s_set_status(s_district, worker_id, "paused"), 400, "invalid_value");
    char path[96];
    snprintf(path, sizeof path, "/v1/staff/%s/status", worker_id);
    s_expect(ts_req(&s_suite, "POST", path, s_district, "{}"), 400, "missing_field");
    s_expect(ts_req(&s_suite, "POST", path, s_district, "{\"status\":\"disabled\",\"x\":1}"), 400,
             "unknown_field");
    s_expect(ts_req(&s_suite, "POST", path, s_district, "not json"), 400, "invalid_json");
    s_db_status(worker_id, "active");
    assert_int_equal(ts_me_status(&s_suite, worker), 200);

    //  A street admin above the worker may; the city admin may disable a
    //  district admin, whose own session then ends.
    s_expect(s_set_status(street, worker_id, "disabled"), 200, NULL);
    ts_assert_token_ended(&s_suite, worker);
    s_expect(s_set_status(s_city, peer_id, "disabled"), 200, NULL);
    ts_assert_token_ended(&s_suite, peer);
    assert_int_equal(ts_me_status(&s_suite, s_district), 200);
    //  The grants it holds already change nothing: its session stays.
    r = s_set_grants(s_district, street_id, "{\"role\":\"street_admin\",\"scope\":\"" S1 "\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "grants")), 1);
    ts_http_reply_free(&r);
    assert_int_equal(ts_me_status(&s_suite, street), 200);
    //  The same grant twice is one grant.
    r = s_set_grants(s_district, street_id,
                     "{\"role\":\"community_worker\",\"scope\":\"" C1 "\"},"
                     "{\"role\":\"community_worker\",\"scope\":\"" C1 "\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "grants")), 1);
    ts_http_reply_free(&r);
    ts_assert_token_ended(&s_suite, street);
    free(worker);
    free(peer);
    free(elsewhere);
    free(street);
}

//  Redis refusing writes (CLIENT PAUSE WRITE; reads, so session look-ups,
//  go on): a change whose sessions cannot be ended is not made, and the
//  caller is told; once Redis writes again the same request goes through.
static void
test_no_change_without_ending_sessions(void **state)
{
    (void)state;
    char id[32], vol_id[32], idn[19];
    char *worker = s_staff(s_district, "13700000141", "community_worker", C1, id);
    ts_id_number("420102", "19860606", 41, idn);
    ts_http_reply_t r = ts_sign_up(&s_suite, NULL, "停不了", idn, "13911110141", C1, "\"repair\"",
                                   vol_id, sizeof vol_id);
    assert_int_equal(r.status, 201);
    assert_true(*ts_json_str(&r, "token"));
    char *volunteer = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/v1/volunteers/%s/verify", vol_id);
    s_expect(ts_req(&s_suite, "POST", path, worker, NULL), 200, NULL);
    ts_wait_session_cached(&s_suite, volunteer);
    long before = ts_sql_long(s_db, "SELECT count(*) FROM registry.outbox");

    redisReply *p = redisCommand(s_redis, "CLIENT PAUSE 15000 WRITE");
    assert_non_null(p);
    assert_int_equal(p->type, REDIS_REPLY_STATUS);
    freeReplyObject(p);
    s_expect(s_set_status(s_district, id, "disabled"), 503, "session_store_unavailable");
    snprintf(path, sizeof path, "/v1/volunteers/%s/status", vol_id);
    s_expect(ts_req(&s_suite, "POST", path, worker, "{\"status\":\"suspended\"}"), 503,
             "session_store_unavailable");
    s_db_status(id, "active");
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM registry.volunteers WHERE id = %s AND "
             "status = 'verified'",
             vol_id);
    assert_int_equal(ts_sql_long(s_db, sql), 1);
    assert_int_equal(ts_sql_long(s_db, "SELECT count(*) FROM registry.outbox"), before);
    p = redisCommand(s_redis, "CLIENT UNPAUSE");
    assert_non_null(p);
    freeReplyObject(p);

    //  The same requests now succeed, and the sessions end: after a timeout
    //  the registry waits one more timeout before it reconnects (503 meanwhile).
    long status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        status = ts_status(&s_suite, "POST", path, worker, "{\"status\":\"suspended\"}");
        assert_true(status == 200 || status == 503);
        if (status != 200)
            ts_sleep_ms(100);
    }
    assert_int_equal(status, 200);
    ts_assert_token_ended(&s_suite, volunteer);
    s_expect(s_set_status(s_district, id, "disabled"), 200, NULL);
    ts_assert_token_ended(&s_suite, worker);
    s_db_status(id, "disabled");
    free(worker);
    free(volunteer);
}

static int
s_setup(void **state)
{
    (void)state;
    //  A minute's cache: a refused token is the announcement's doing. A
    //  short Redis timeout: a paused Redis fails a write quickly, well
    //  inside the broker's patience with a worker (three 1 s heartbeats).
    const char *const extra[] = {"LINLI_SESSION_CACHE_MS=60000", "LINLI_REDIS_TIMEOUT_MS=500",
                                 "LINLI_HEARTBEAT_MS=1000", NULL};
    //  Private servers: one test pauses Redis's writes.
    if (ts_suite_start_private(&s_suite, "staff_lifecycle", 1, extra))
        return -1;
    s_city = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    if (!s_city)
        return -1;
    if (ts_create_staff(&s_suite, s_city, "13700000100", "district_admin", D1, s_district_id,
                        sizeof s_district_id) != 201)
        return -1;
    s_district = ts_login(&s_suite, "13700000100", PASSWORD);
    s_redis = ts_redis_connect(&s_suite);
    s_db = PQconnectdb(s_suite.env.dsn);
    return s_district && s_redis && PQstatus(s_db) == CONNECTION_OK ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    if (s_redis)
        redisFree(s_redis);
    PQfinish(s_db);
    free(s_city);
    free(s_district);
    ts_suite_stop(&s_suite);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disable_and_enable),
        cmocka_unit_test(test_idempotent_retry),
        cmocka_unit_test(test_grants_replaced),
        cmocka_unit_test(test_who_may_change),
        cmocka_unit_test(test_no_change_without_ending_sessions),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
