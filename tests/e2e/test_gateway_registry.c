//  End to end through the gateway: areas, login, sessions, staff and scope
//  rules, input validation, idempotency, events. The gateway and two
//  registry workers run as processes against real Redis and PostgreSQL.
#include "test_suite.h"

#include <hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

static ts_suite_t s_suite;
static char *s_admin; //  city admin token

static int
s_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    s_admin = ts_suite_start_admin(&s_suite, "gwreg", 2, NULL);
    return s_admin ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    free(s_admin);
    ts_suite_stop(&s_suite);
    return 0;
}

// ---------------------------------------------------------------- areas

static void
test_areas(void **state)
{
    (void)state;
    ts_http_reply_t r = ts_req(&s_suite, "GET", "/v1/areas/420102", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "江岸区");
    assert_string_equal(json_string_value(json_object_get(r.json, "level")), "district");
    assert_string_equal(json_string_value(json_object_get(r.json, "parent")), "4201");
    assert_true(json_integer_value(json_object_get(r.json, "children")) > 0);
    assert_true(strlen(r.request_id) > 0);
    ts_http_reply_free(&r);

    r = ts_req(&s_suite, "GET", "/v1/areas/4201", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "children")), 13);
    ts_http_reply_free(&r);

    //  The 13 districts, two pages of 10 then 3.
    r = ts_req(&s_suite, "GET", "/v1/areas?parent=4201&limit=10", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 10);
    const char *cursor = json_string_value(json_object_get(r.json, "next_cursor"));
    assert_non_null(cursor);
    char path[128];
    snprintf(path, sizeof path, "/v1/areas?parent=4201&limit=10&cursor=%s", cursor);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 2), "code")),
                        "420117");
    assert_null(json_object_get(r.json, "next_cursor"));
    ts_http_reply_free(&r);

    //  Communities in the whole city: about 3,300.
    r = ts_req(&s_suite, "GET", "/v1/areas?parent=420102001&limit=500", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "items")) >= 12);
    ts_http_reply_free(&r);

    r = ts_req(&s_suite, "GET", "/v1/areas/999999", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(ts_error_code(&r), "area_not_found");
    ts_http_reply_free(&r);

    r = ts_req(&s_suite, "GET", "/v1/areas/42x1", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "code");
    ts_http_reply_free(&r);

    r = ts_req(&s_suite, "GET", "/v1/areas?parent=4201&limit=0", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_field(&r), "limit");
    ts_http_reply_free(&r);

    r = ts_req(&s_suite, "GET", "/v1/areas?parent=4201&bogus=1", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(ts_error_code(&r), "unknown_field");
    assert_string_equal(ts_error_field(&r), "bogus");
    ts_http_reply_free(&r);
}

// ---------------------------------------------------------------- login

static void
test_login_and_sessions(void **state)
{
    (void)state;
    ts_http_reply_t r = ts_login_reply(&s_suite, TS_ADMIN_PHONE, "wrong-pass");
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "bad_credentials");
    ts_http_reply_free(&r);

    char *token = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_non_null(token);
    r = ts_req(&s_suite, "GET", "/v1/me", token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "kind")), "staff");
    //  The person sees their own phone whole.
    assert_string_equal(json_string_value(json_object_get(r.json, "phone")), TS_ADMIN_PHONE);
    json_t *grant = json_array_get(json_object_get(r.json, "grants"), 0);
    assert_string_equal(json_string_value(json_object_get(grant, "role")), "city_admin");
    ts_http_reply_free(&r);

    r = ts_req(&s_suite, "GET", "/v1/me", NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "unauthenticated");
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/me", "not-a-token", NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "invalid_token");
    ts_http_reply_free(&r);

    //  Logged out: the token no longer works.
    r = ts_req(&s_suite, "POST", "/v1/auth/logout", token, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/me", token, NULL);
    assert_int_equal(r.status, 401);
    ts_http_reply_free(&r);
    free(token);

    //  Expired: the session's TTL runs out in Redis.
    token = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_non_null(token);
    char key[256];
    ts_session_key(&s_suite, token, key, sizeof key);
    redisContext *rc = ts_redis_connect(&s_suite);
    assert_non_null(rc);
    redisReply *rr = redisCommand(rc, "PEXPIRE %s 1", key);
    assert_non_null(rr);
    assert_int_equal(rr->integer, 1);
    freeReplyObject(rr);
    redisFree(rc);
    ts_sleep_ms(50);
    r = ts_req(&s_suite, "GET", "/v1/me", token, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "invalid_token");
    ts_http_reply_free(&r);
    free(token);
}

static void
test_login_rate_limit(void **state)
{
    (void)state;
    char id[32];
    assert_int_equal(ts_create_staff(&s_suite, s_admin, "13900000077", "district_admin", "420106",
                                     id, sizeof id),
                     201);
    for (int i = 0; i < 5; i++) {
        ts_http_reply_t r = ts_login_reply(&s_suite, "13900000077", "wrong-pass");
        assert_int_equal(r.status, 401);
        ts_http_reply_free(&r);
    }
    ts_http_reply_t r = ts_login_reply(&s_suite, "13900000077", "wrong-pass");
    assert_int_equal(r.status, 429);
    assert_string_equal(ts_error_code(&r), "too_many_attempts");
    int retry = atoi(r.retry_after);
    assert_true(retry >= 1 && retry <= 60);
    ts_http_reply_free(&r);
    //  Even the right password waits now.
    r = ts_login_reply(&s_suite, "13900000077", "password-1");
    assert_int_equal(r.status, 429);
    ts_http_reply_free(&r);
    //  Another phone is not affected.
    char *token = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_non_null(token);
    free(token);
}

// ---------------------------------------------------------------- scope

static void
test_staff_scope(void **state)
{
    (void)state;
    char jiangan[32], wuchang_worker[32], id[32];
    //  A district admin for 江岸区 and a community worker in 武昌区.
    assert_int_equal(ts_create_staff(&s_suite, s_admin, "13900000010", "district_admin", "420102",
                                     jiangan, sizeof jiangan),
                     201);
    assert_int_equal(ts_create_staff(&s_suite, s_admin, "13900000011", "community_worker",
                                     "420106001001", wuchang_worker, sizeof wuchang_worker),
                     201);
    char *district = ts_login(&s_suite, "13900000010", "password-1");
    assert_non_null(district);

    //  Inside its district, below its role: fine.
    assert_int_equal(ts_create_staff(&s_suite, district, "13900000012", "street_admin", "420102001",
                                     id, sizeof id),
                     201);
    assert_int_equal(ts_create_staff(&s_suite, district, "13900000013", "community_worker",
                                     "420102001001", NULL, 0),
                     201);
    //  Outside its district: 403.
    assert_int_equal(
        ts_create_staff(&s_suite, district, "13900000014", "street_admin", "420106001", NULL, 0),
        403);
    //  Its own rank or above: 403.
    assert_int_equal(
        ts_create_staff(&s_suite, district, "13900000015", "district_admin", "420102", NULL, 0),
        403);
    assert_int_equal(
        ts_create_staff(&s_suite, district, "13900000016", "city_admin", "4201", NULL, 0), 403);
    //  A scope that does not fit the role: 400.
    assert_int_equal(
        ts_create_staff(&s_suite, district, "13900000017", "street_admin", "420102", NULL, 0), 400);

    //  Reading: its own staff yes, another district's no (404, not 403).
    char path[64];
    snprintf(path, sizeof path, "/v1/staff/%s", id);
    ts_http_reply_t r = ts_req(&s_suite, "GET", path, district, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "area")), "420102001");
    ts_http_reply_free(&r);
    snprintf(path, sizeof path, "/v1/staff/%s", wuchang_worker);
    r = ts_req(&s_suite, "GET", path, district, NULL);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/staff/999999", district, NULL);
    assert_int_equal(r.status, 404);
    ts_http_reply_free(&r);
    //  The city admin reads both.
    r = ts_req(&s_suite, "GET", path, s_admin, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);

    //  Lists stay inside the scope.
    r = ts_req(&s_suite, "GET", "/v1/staff?area=420102", district, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_true(json_array_size(items) >= 3);
    for (size_t i = 0; i < json_array_size(items); i++)
        assert_int_equal(
            strncmp(json_string_value(json_object_get(json_array_get(items, i), "area")), "420102",
                    6),
            0);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/v1/staff?area=420106", district, NULL);
    assert_int_equal(r.status, 403);
    ts_http_reply_free(&r);

    //  A community worker may not create staff at all (route-level rule).
    char *worker = ts_login(&s_suite, "13900000011", "password-1");
    assert_non_null(worker);
    assert_int_equal(ts_create_staff(&s_suite, worker, "13900000018", "community_worker",
                                     "420106001001", NULL, 0),
                     403);
    free(worker);
    free(district);

    //  The same phone twice: 409.
    assert_int_equal(
        ts_create_staff(&s_suite, s_admin, "13900000010", "street_admin", "420102002", NULL, 0),
        409);
}

// ---------------------------------------------------------------- input

static void
s_expect(const char *method, const char *path, const char *body, long status, const char *code,
         const char *field)
{
    ts_http_reply_t r = ts_req(&s_suite, method, path, s_admin, body);
    if (r.status != status || strcmp(ts_error_code(&r), code) ||
        (field && strcmp(ts_error_field(&r), field)))
        fprintf(stderr, "%s %s %s -> %ld %s\n", method, path, body ? body : "", r.status, r.body);
    assert_int_equal(r.status, status);
    assert_string_equal(ts_error_code(&r), code);
    if (field)
        assert_string_equal(ts_error_field(&r), field);
    ts_http_reply_free(&r);
}

static void
test_bad_input(void **state)
{
    (void)state;
    s_expect("POST", "/v1/staff", "{not json", 400, "invalid_json", NULL);
    s_expect("POST", "/v1/staff", "[1,2]", 400, "invalid_json", NULL);
    s_expect("POST", "/v1/staff",
             "{\"name\":5,\"phone\":\"13900000020\",\"password\":\"password-1\",\"grants\":[]}",
             400, "invalid_type", "name");
    s_expect("POST", "/v1/staff", "{\"phone\":\"13900000020\",\"password\":\"password-1\"}", 400,
             "missing_field", "name");
    s_expect("POST", "/v1/staff",
             "{\"name\":\"a\",\"phone\":\"13900000020\",\"password\":\"password-1\","
             "\"grants\":[{\"role\":\"street_admin\",\"scope\":\"420102001\"}],\"x\":1}",
             400, "unknown_field", "x");
    s_expect("POST", "/v1/staff",
             "{\"name\":\"a\",\"phone\":\"13900000020\",\"password\":\"password-1\","
             "\"grants\":[{\"role\":\"street_admin\"}]}",
             400, "missing_field", "grants[0].scope");
    s_expect("POST", "/v1/staff",
             "{\"name\":\"a\",\"phone\":\"13900000020\",\"password\":\"password-1\","
             "\"grants\":[{\"role\":\"king\",\"scope\":\"420102001\"}]}",
             400, "invalid_value", "grants[0].role");
    //  Over-long: a name of 65 characters.
    char body[1024];
    char name[70];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"phone\":\"13900000020\",\"password\":\"password-1\","
             "\"grants\":[{\"role\":\"street_admin\",\"scope\":\"420102001\"}]}",
             name);
    s_expect("POST", "/v1/staff", body, 400, "too_long", "name");
    s_expect("POST", "/v1/staff",
             "{\"name\":\"a\",\"phone\":\"12345\",\"password\":\"password-1\","
             "\"grants\":[{\"role\":\"street_admin\",\"scope\":\"420102001\"}]}",
             400, "invalid_format", "phone");
    s_expect("GET", "/v1/nowhere", NULL, 404, "not_found", NULL);
    s_expect("DELETE", "/v1/areas/4201", NULL, 405, "method_not_allowed", NULL);
    s_expect("OPTIONS", "/v1/areas/4201", NULL, 405, "method_not_allowed", NULL);
    s_expect("OPTIONS", "/v1/nowhere", NULL, 404, "not_found", NULL);

    //  A body over the limit: 413.
    size_t big = 2 * 1024 * 1024;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    memcpy(huge, "{\"name\":\"", 9);
    memset(huge + 9, 'x', big);
    memcpy(huge + 9 + big, "\"}", 3);
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/staff", s_admin, huge);
    assert_int_equal(r.status, 413);
    ts_http_reply_free(&r);
    free(huge);

    //  The service still answers after all that.
    r = ts_req(&s_suite, "GET", "/v1/areas/4201", NULL, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
}

// ---------------------------------------------------------------- idempotency

static void
test_idempotency(void **state)
{
    (void)state;
    const char *body = "{\"name\":\"李四\",\"phone\":\"13900000030\",\"password\":\"password-1\","
                       "\"grants\":[{\"role\":\"street_admin\",\"scope\":\"420103001\"}]}";
    const char *const key[] = {"Idempotency-Key: staff-create-30", NULL};
    ts_http_reply_t first, again, other;
    ts_http(&s_suite, "POST", "/v1/staff", s_admin, body, key, &first);
    assert_int_equal(first.status, 201);
    ts_http(&s_suite, "POST", "/v1/staff", s_admin, body, key, &again);
    assert_int_equal(again.status, 201);
    assert_string_equal(first.body, again.body);
    const char *body2 = "{\"name\":\"李四\",\"phone\":\"13900000031\",\"password\":\"password-1\","
                        "\"grants\":[{\"role\":\"street_admin\",\"scope\":\"420103001\"}]}";
    ts_http(&s_suite, "POST", "/v1/staff", s_admin, body2, key, &other);
    assert_int_equal(other.status, 422);
    assert_string_equal(ts_error_code(&other), "idempotency_key_reused");
    ts_http_reply_free(&first);
    ts_http_reply_free(&again);
    ts_http_reply_free(&other);
    //  Without the key the same body is a new request: the phone is taken.
    ts_http_reply_t plain = ts_req(&s_suite, "POST", "/v1/staff", s_admin, body);
    assert_int_equal(plain.status, 409);
    ts_http_reply_free(&plain);
}

// ---------------------------------------------------------------- events

static void
test_staff_created_event(void **state)
{
    (void)state;
    char id[32];
    assert_int_equal(ts_create_staff(&s_suite, s_admin, "13900000040", "street_admin", "420104001",
                                     id, sizeof id),
                     201);
    //  The relay publishes within a few ticks; exactly one entry for the account,
    //  in its area. No personal data in events: the phone appears nowhere.
    char subject[64];
    snprintf(subject, sizeof subject, "staff/%s", id);
    const char *const phone[] = {"13900000040", NULL};
    assert_int_equal(ts_stream_count_events(&s_suite, subject, "linli.registry.staff.created",
                                            "420104001", phone),
                     1);
}

static void
test_healthz_and_metrics(void **state)
{
    (void)state;
    ts_http_reply_t r = ts_req(&s_suite, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *reg =
        json_object_get(json_object_get(json_object_get(r.json, "broker"), "services"), "registry");
    assert_int_equal(json_integer_value(json_object_get(reg, "workers")), 2);
    ts_http_reply_free(&r);
    r = ts_req(&s_suite, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "linli_http_requests_total{route=\"registry.GetArea\""));
    assert_non_null(strstr(r.body, "linli_http_request_duration_seconds_bucket"));
    assert_non_null(strstr(r.body, "linli_broker_workers{service=\"registry\"} 2"));
    ts_http_reply_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_areas),
        cmocka_unit_test(test_login_and_sessions),
        cmocka_unit_test(test_login_rate_limit),
        cmocka_unit_test(test_staff_scope),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_staff_created_event),
        cmocka_unit_test(test_healthz_and_metrics),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
