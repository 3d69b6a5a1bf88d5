//  A volunteer's sessions end with its service: suspended or leaving, it
//  loses every session at once (the gateway caches sessions for a minute
//  here, so nothing below can pass by the cache timing out), cannot log in
//  again — with its password or with a one-time code — while suspended or
//  after leaving, and logs in anew once reinstated. Other volunteers' and
//  staff's sessions are untouched.
#include "test_suite.h"

#include <hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C1 "420102001001"
#define PASSWORD "volunteer-1" //  ts_sign_up's self sign-up password

static ts_suite_t s_suite;
static char *s_admin;  //  city admin
static char *s_worker; //  community worker of C1
static redisContext *s_redis;

//  How many sessions Redis lists under account id.
static long long
s_listed(const char *id)
{
    char key[160];
    ts_account_sessions_key(&s_suite, id, key, sizeof key);
    redisReply *r = redisCommand(s_redis, "SCARD %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

//  A volunteer of C1 signed up by itself (password PASSWORD), verified by
//  the worker when verify: its sign-up token (caller frees), its id into id.
static char *
s_volunteer(const char *name, const char *phone, int seq, bool verify, char id[32])
{
    char idn[19], path[96];
    ts_id_number("420102", "19850505", seq, idn);
    ts_http_reply_t r = ts_sign_up(&s_suite, NULL, name, idn, phone, C1, "\"repair\"", id, 32);
    assert_int_equal(r.status, 201);
    assert_true(*ts_json_str(&r, "token"));
    char *token = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);
    if (verify) {
        snprintf(path, sizeof path, "/v1/volunteers/%s/verify", id);
        r = ts_req(&s_suite, "POST", path, s_worker, NULL);
        assert_int_equal(r.status, 200);
        ts_http_reply_free(&r);
    }
    return token;
}

//  POST /v1/volunteers/{id}/status as token, expecting 200 and the new status.
static void
s_status(const char *id, const char *token, const char *status)
{
    char path[96], body[64];
    snprintf(path, sizeof path, "/v1/volunteers/%s/status", id);
    snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    ts_http_reply_t r = ts_req(&s_suite, "POST", path, token, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "status"), status);
    ts_http_reply_free(&r);
}

//  Log in as phone, expecting 403 with code.
static void
s_login_refused(const char *phone, const char *code)
{
    ts_http_reply_t r = ts_login_reply(&s_suite, phone, PASSWORD);
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), code);
    assert_null(json_object_get(r.json, "token"));
    ts_http_reply_free(&r);
}

static void
test_suspension_ends_sessions(void **state)
{
    (void)state;
    const char *phone = "13911110001";
    char id[32], other_id[32];
    char *first = s_volunteer("停用", phone, 1, true, id);
    char *second = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(second);
    char *other = s_volunteer("旁人", "13911110002", 2, true, other_id);
    ts_wait_session_cached(&s_suite, first);
    ts_wait_session_cached(&s_suite, second);
    ts_wait_session_cached(&s_suite, other);
    assert_int_equal(s_listed(id), 2);

    //  Suspended: both sessions end before the answer, though cached.
    s_status(id, s_worker, "suspended");
    ts_assert_token_ended(&s_suite, first);
    ts_assert_token_ended(&s_suite, second);
    assert_int_equal(s_listed(id), 0);
    //  Nobody else's.
    assert_int_equal(ts_me_status(&s_suite, other), 200);
    assert_int_equal(ts_me_status(&s_suite, s_worker), 200);
    assert_int_equal(s_listed(other_id), 1);

    //  No new session: a wrong password still says nothing; the right one
    //  is refused with the reason.
    ts_http_reply_t r = ts_login_reply(&s_suite, phone, "wrong-password-1");
    assert_int_equal(r.status, 401);
    assert_string_equal(ts_error_code(&r), "bad_credentials");
    ts_http_reply_free(&r);
    s_login_refused(phone, "volunteer_suspended");
    //  Nor with a one-time code; the code and the password are kept.
    char code[9];
    ts_password_code(&s_suite, s_worker, id, code);
    r = ts_set_password(&s_suite, phone, "00000000", "changed-password-1");
    assert_int_equal(r.status, 401); //  a wrong code: the same 401 as ever
    ts_http_reply_free(&r);
    r = ts_set_password(&s_suite, phone, code, "changed-password-1");
    assert_int_equal(r.status, 403);
    assert_string_equal(ts_error_code(&r), "volunteer_suspended");
    assert_null(json_object_get(r.json, "token"));
    ts_http_reply_free(&r);
    assert_int_equal(s_listed(id), 0);

    //  Reinstated: nothing comes back; it logs in anew, with its old password.
    s_status(id, s_worker, "verified");
    ts_assert_token_ended(&s_suite, first);
    ts_assert_token_ended(&s_suite, second);
    char *fresh = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(fresh);
    assert_int_equal(ts_me_status(&s_suite, fresh), 200);
    //  The code refused while suspended works now.
    r = ts_set_password(&s_suite, phone, code, "changed-password-1");
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    assert_int_equal(ts_me_status(&s_suite, other), 200);
    free(fresh);
    free(first);
    free(second);
    free(other);
}

static void
test_leaving_ends_sessions(void **state)
{
    (void)state;
    //  The person leaves, with one of its own sessions.
    const char *phone = "13911110003";
    char id[32], other_id[32];
    char *first = s_volunteer("离开", phone, 3, true, id);
    char *second = ts_login(&s_suite, phone, PASSWORD);
    assert_non_null(second);
    char *other = s_volunteer("留下", "13911110004", 4, true, other_id);
    ts_wait_session_cached(&s_suite, first);
    ts_wait_session_cached(&s_suite, second);
    ts_wait_session_cached(&s_suite, other);
    s_status(id, first, "left");
    ts_assert_token_ended(&s_suite, first);
    ts_assert_token_ended(&s_suite, second);
    s_login_refused(phone, "volunteer_left");
    assert_int_equal(s_listed(id), 0);
    assert_int_equal(ts_me_status(&s_suite, other), 200);

    //  Staff mark a pending volunteer as left: the same.
    const char *pending_phone = "13911110005";
    char pending_id[32];
    char *pending = s_volunteer("未审", pending_phone, 5, false, pending_id);
    ts_wait_session_cached(&s_suite, pending);
    s_status(pending_id, s_worker, "left");
    ts_assert_token_ended(&s_suite, pending);
    s_login_refused(pending_phone, "volunteer_left");

    //  And a suspended one: still refused, now as left.
    const char *suspended_phone = "13911110006";
    char suspended_id[32];
    char *suspended = s_volunteer("先停", suspended_phone, 6, true, suspended_id);
    s_status(suspended_id, s_worker, "suspended");
    ts_assert_token_ended(&s_suite, suspended);
    s_status(suspended_id, s_worker, "left");
    s_login_refused(suspended_phone, "volunteer_left");

    assert_int_equal(ts_me_status(&s_suite, other), 200);
    assert_int_equal(ts_me_status(&s_suite, s_worker), 200);
    free(first);
    free(second);
    free(other);
    free(pending);
    free(suspended);
}

static int
s_setup(void **state)
{
    (void)state;
    //  A minute's cache: a refused token is the announcement's doing.
    const char *const extra[] = {"LINLI_SESSION_CACHE_MS=60000", NULL};
    s_admin = ts_suite_start_admin(&s_suite, "volunteer_sessions", 1, extra);
    if (!s_admin)
        return -1;
    s_worker = ts_staff(&s_suite, s_admin, "13700000021", "community_worker", C1);
    s_redis = ts_redis_connect(&s_suite);
    return s_worker && s_redis ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    if (s_redis)
        redisFree(s_redis);
    free(s_admin);
    free(s_worker);
    ts_suite_stop(&s_suite);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suspension_ends_sessions),
        cmocka_unit_test(test_leaving_ends_sessions),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
