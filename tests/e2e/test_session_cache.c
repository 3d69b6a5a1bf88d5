//  The gateway's session cache end to end: sessions found in Redis are
//  reused for LINLI_SESSION_CACHE_MS (a minute here, so nothing below can
//  pass by the cache simply timing out), yet a logout or a new password ends
//  the session at once, a session never outlives its own end, and a gateway
//  that loses its subscription to ended sessions forgets what it holds.
#include "test_suite.h"

#include <hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/envelope.pb-c.h"

static ts_suite_t s_suite;
static char *s_admin; //  the city admin's token
static redisContext *s_redis;

//  A fresh login of the city admin (a session of its own).
static char *
s_login(void)
{
    char *token = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_non_null(token);
    return token;
}

static void
test_cache_answers_repeats(void **state)
{
    (void)state;
    char *token = s_login();
    ts_wait_session_cached(&s_suite, token);
    long before = ts_session_cache_hits(&s_suite);
    for (int i = 0; i < 20; i++)
        assert_int_equal(ts_me_status(&s_suite, token), 200);
    assert_true(ts_session_cache_hits(&s_suite) >= before + 20);
    free(token);
}

static void
test_logout_ends_cached_session(void **state)
{
    (void)state;
    char *token = s_login();
    ts_wait_session_cached(&s_suite, token);
    ts_http_reply_t r = ts_req(&s_suite, "POST", "/v1/auth/logout", token, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    //  At once, many times (twice ten): never the cached copy.
    ts_assert_token_ended(&s_suite, token);
    ts_assert_token_ended(&s_suite, token);
    //  Other sessions of the same account live on.
    assert_int_equal(ts_me_status(&s_suite, s_admin), 200);
    free(token);
}

static void
test_new_password_ends_cached_sessions(void **state)
{
    (void)state;
    char idn[19], id[32];
    ts_id_number("420102", "19800101", 77, idn);
    ts_http_reply_t r = ts_sign_up(&s_suite, NULL, "缓存", idn, "13912340077", "420102001001",
                                   "\"repair\"", id, sizeof id);
    assert_int_equal(r.status, 201);
    assert_true(*ts_json_str(&r, "token"));
    char *old = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);
    ts_wait_session_cached(&s_suite, old);

    //  600 more (made-up) sessions listed under the account: their
    //  announcements (≈ 70 KB) come in one burst with the real one's, more
    //  than one read of the subscription takes.
    char set_key[160];
    ts_account_sessions_key(&s_suite, id, set_key, sizeof set_key);
    for (int i = 0; i < 600; i++)
        redisAppendCommand(s_redis, "SADD %s %064x", set_key, i);
    for (int i = 0; i < 600; i++) {
        redisReply *added = NULL;
        assert_int_equal(redisGetReply(s_redis, (void **)&added), REDIS_OK);
        freeReplyObject(added);
    }

    char code[9];
    ts_password_code(&s_suite, s_admin, id, code);
    long ended = ts_metric(&s_suite, "linli_sessions_ended_total ");
    r = ts_set_password(&s_suite, "13912340077", code, "a-new-password-1");
    assert_int_equal(r.status, 200);
    assert_true(*ts_json_str(&r, "token"));
    char *fresh = strdup(ts_json_str(&r, "token"));
    ts_http_reply_free(&r);

    for (int i = 0; i < 20; i++)
        assert_int_equal(ts_me_status(&s_suite, old), 401);
    assert_int_equal(ts_me_status(&s_suite, fresh), 200);
    //  Every one was announced (the made-up ones too).
    assert_true(ts_metric(&s_suite, "linli_sessions_ended_total ") >= ended + 601);
    free(old);
    free(fresh);
}

//  A session whose recorded end comes before the cache time is refused from
//  that moment on, cached or not, though Redis still holds it.
static void
test_session_end_is_honoured(void **state)
{
    (void)state;
    char *token = s_login();
    char key[256];
    ts_session_key(&s_suite, token, key, sizeof key);
    redisReply *got = redisCommand(s_redis, "GET %s", key);
    assert_non_null(got);
    assert_int_equal(got->type, REDIS_REPLY_STRING);
    Linli__Caller *caller =
        linli__caller__unpack(NULL, (size_t)got->len, (const uint8_t *)got->str);
    freeReplyObject(got);
    assert_non_null(caller);
    assert_true(caller->has_expires_at_ms);
    //  Past the longest wait for the cache below (5 s).
    int64_t expires = ts_now_ms() + 6000;
    caller->expires_at_ms = expires;
    uint8_t buf[1024];
    assert_true(linli__caller__get_packed_size(caller) <= sizeof buf);
    size_t len = linli__caller__pack(caller, buf);
    linli__caller__free_unpacked(caller, NULL);
    redisReply *set = redisCommand(s_redis, "SET %s %b EX 600", key, buf, len);
    assert_non_null(set);
    freeReplyObject(set);

    ts_wait_session_cached(&s_suite, token);
    int64_t left = expires - ts_now_ms();
    ts_sleep_ms((int)(left > 0 ? left : 0) + 100);
    assert_int_equal(ts_me_status(&s_suite, token), 401);
    //  And read from Redis afresh (the cache let it go): still refused.
    assert_int_equal(ts_me_status(&s_suite, token), 401);
    free(token);
}

//  Sessions deleted behind the gateway's back (no announcement) stay
//  cached — this is the cache — until the subscription is lost, which
//  empties it: the next request asks Redis and is refused.
static void
test_lost_subscription_empties_cache(void **state)
{
    (void)state;
    char *token = s_login();
    char key[256];
    ts_session_key(&s_suite, token, key, sizeof key);
    ts_wait_session_cached(&s_suite, token);
    redisReply *r = redisCommand(s_redis, "DEL %s", key);
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(ts_me_status(&s_suite, token), 200); //  cached, as configured

    r = redisCommand(s_redis, "CLIENT KILL TYPE pubsub");
    assert_non_null(r);
    assert_true(r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    freeReplyObject(r);
    assert_int_equal(ts_me_status(&s_suite, token), 401);

    //  Subscribed again, the cache works again.
    char *fresh = s_login();
    ts_wait_session_cached(&s_suite, fresh);
    free(fresh);
    free(token);
}

static int
s_setup(void **state)
{
    (void)state;
    //  Private servers: the test ends the subscriptions on its Redis.
    const char *extra[] = {"LINLI_SESSION_CACHE_MS=60000", NULL};
    if (ts_suite_start_private(&s_suite, "session_cache", 1, extra))
        return -1;
    s_admin = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    if (!s_admin)
        return -1;
    s_redis = ts_redis_connect(&s_suite);
    return s_redis ? 0 : -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    if (s_redis)
        redisFree(s_redis);
    free(s_admin);
    ts_suite_stop(&s_suite);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_answers_repeats),
        cmocka_unit_test(test_logout_ends_cached_session),
        cmocka_unit_test(test_new_password_ends_cached_sessions),
        cmocka_unit_test(test_session_end_is_honoured),
        cmocka_unit_test(test_lost_subscription_empties_cache),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
