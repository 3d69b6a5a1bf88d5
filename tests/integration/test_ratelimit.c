//  linli_ratelimit against a real Redis: limits, separate buckets, a sliding
//  window that expires, and failing closed when Redis is gone.
#include "linli_ratelimit.h"
#include "test_servers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static ts_env_t s_env;

static int
s_group_setup(void **state)
{
    (void)state;
    return ts_env_open(&s_env, "ratelimit");
}

//  A handle on the run's Redis with this test's key prefix.
static int
s_setup(void **state)
{
    linli_redis_t *redis = linli_redis_new("127.0.0.1", s_env.redis.port, NULL, 2000, s_env.prefix);
    *state = redis;
    return redis ? 0 : -1;
}

static int
s_teardown(void **state)
{
    linli_redis_t *redis = *state;
    linli_redis_destroy(&redis);
    return 0;
}

//  One integer answer from Redis about the bucket's key ("ZCARD", "PTTL").
static long long
s_key_int(linli_redis_t *redis, const char *cmd, const char *bucket)
{
    char key[512];
    linli_redis_key(redis, key, sizeof key, "rl:%s", bucket);
    redisReply *r = linli_redis_cmd(redis, "%s %s", cmd, key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void
test_five_allowed_sixth_refused(void **state)
{
    linli_redis_t *redis = *state;
    const char *bucket = "login:phone:0f3a";
    bool allowed = false;
    int retry = -1;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(linli_ratelimit_hit(redis, bucket, 5, 60, &allowed, &retry), 0);
        assert_true(allowed);
        assert_int_equal(retry, 0);
    }
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 5, 60, &allowed, &retry), 0);
    assert_false(allowed);
    assert_in_range(retry, 1, 60);
    //  Refused hits are not counted, and peek agrees.
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 5, 60, &allowed, NULL), 0);
    assert_false(allowed);
    assert_int_equal(s_key_int(redis, "ZCARD", bucket), 5);
    retry = -1;
    assert_int_equal(linli_ratelimit_peek(redis, bucket, 5, 60, &allowed, &retry), 0);
    assert_false(allowed);
    assert_in_range(retry, 1, 60);
    //  The key goes away by itself within the window.
    long long pttl = s_key_int(redis, "PTTL", bucket);
    assert_in_range(pttl, 1, 60000);
    //  A lower limit on the same bucket refuses too; a higher one has room.
    assert_int_equal(linli_ratelimit_peek(redis, bucket, 3, 60, &allowed, &retry), 0);
    assert_false(allowed);
    assert_in_range(retry, 1, 60);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 6, 60, &allowed, &retry), 0);
    assert_true(allowed);
}

static void
test_peek_does_not_count(void **state)
{
    linli_redis_t *redis = *state;
    const char *bucket = "login:phone:peek";
    bool allowed = false;
    int retry = -1;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(linli_ratelimit_peek(redis, bucket, 2, 60, &allowed, &retry), 0);
        assert_true(allowed);
        assert_int_equal(retry, 0);
    }
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 60, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 60, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_peek(redis, bucket, 2, 60, &allowed, &retry), 0);
    assert_false(allowed);
}

static void
test_buckets_independent_and_reset(void **state)
{
    linli_redis_t *redis = *state;
    bool allowed = false;
    int retry = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.1", 3, 60, &allowed, &retry),
                         0);
    assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.1", 3, 60, &allowed, &retry), 0);
    assert_false(allowed);
    //  Another bucket is untouched.
    assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.2", 3, 60, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_peek(redis, "login:addr:10.0.0.10", 3, 60, &allowed, &retry),
                     0);
    assert_true(allowed);
    //  Reset empties one bucket only.
    assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.2", 3, 60, &allowed, &retry), 0);
    assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.2", 3, 60, &allowed, &retry), 0);
    assert_int_equal(linli_ratelimit_reset(redis, "login:addr:10.0.0.1"), 0);
    assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.1", 3, 60, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_hit(redis, "login:addr:10.0.0.2", 3, 60, &allowed, &retry), 0);
    assert_false(allowed);
    assert_int_equal(linli_ratelimit_reset(redis, "login:addr:never-used"), 0);
}

static void
test_window_slides_and_expires(void **state)
{
    linli_redis_t *redis = *state;
    const char *bucket = "slide";
    bool allowed = false;
    int retry = 0;
    //  Hits at 0 ms and ~600 ms in a 1 s window of 2.
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_true(allowed);
    ts_sleep_ms(600);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_false(allowed);
    assert_int_equal(retry, 1);
    //  At ~1.1 s the first hit has left the window, the second has not.
    ts_sleep_ms(500);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_false(allowed);
    //  A full window later everything is gone, the key included.
    ts_sleep_ms(1200);
    assert_int_equal(s_key_int(redis, "EXISTS", bucket), 0);
    assert_int_equal(linli_ratelimit_peek(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(linli_ratelimit_hit(redis, bucket, 2, 1, &allowed, &retry), 0);
    assert_true(allowed);
}

static void
test_bad_arguments_refused(void **state)
{
    linli_redis_t *redis = *state;
    bool allowed = true;
    int retry = 7;
    assert_int_equal(linli_ratelimit_hit(redis, "b", 0, 60, &allowed, &retry), -1);
    assert_false(allowed);
    assert_int_equal(retry, 0);
    allowed = true;
    assert_int_equal(linli_ratelimit_hit(redis, "b", 5, 0, &allowed, &retry), -1);
    assert_false(allowed);
    assert_int_equal(linli_ratelimit_hit(redis, NULL, 5, 60, &allowed, &retry), -1);
    assert_int_equal(linli_ratelimit_hit(redis, "", 5, 60, &allowed, &retry), -1);
    assert_int_equal(linli_ratelimit_hit(NULL, "b", 5, 60, &allowed, &retry), -1);
    assert_int_equal(linli_ratelimit_hit(redis, "b", 5, 60, NULL, &retry), -1);
    assert_int_equal(linli_ratelimit_reset(redis, NULL), -1);
    char longname[600];
    memset(longname, 'b', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    allowed = true;
    assert_int_equal(linli_ratelimit_hit(redis, longname, 5, 60, &allowed, &retry), -1);
    assert_false(allowed);
}

//  Redis down: every call fails, closed.
static void
test_redis_down_fails_closed(void **state)
{
    (void)state;
    //  Nothing listens on this port.
    linli_redis_t *nobody = linli_redis_new("127.0.0.1", ts_free_port(), NULL, 300, "t:down:");
    assert_non_null(nobody);
    bool allowed = true;
    int retry = 9;
    assert_int_equal(linli_ratelimit_hit(nobody, "login:phone:x", 5, 60, &allowed, &retry), -1);
    assert_false(allowed);
    assert_int_equal(retry, 0);
    allowed = true;
    assert_int_equal(linli_ratelimit_peek(nobody, "login:phone:x", 5, 60, &allowed, &retry), -1);
    assert_false(allowed);
    assert_int_equal(linli_ratelimit_reset(nobody, "login:phone:x"), -1);
    linli_redis_destroy(&nobody);

    //  A private Redis that dies under us (the run's shared one is left alone).
    ts_redis_t own;
    assert_int_equal(ts_redis_start(&own), 0);
    linli_redis_t *redis = linli_redis_new("127.0.0.1", own.port, NULL, 500, "t:kill:");
    assert_int_equal(linli_ratelimit_hit(redis, "login:phone:y", 5, 60, &allowed, &retry), 0);
    assert_true(allowed);
    assert_int_equal(ts_redis_kill(&own), 0);
    allowed = true;
    assert_int_equal(linli_ratelimit_hit(redis, "login:phone:y", 5, 60, &allowed, &retry), -1);
    assert_false(allowed);
    //  And it works again once Redis is back (after linli_redis's reconnect pause).
    assert_int_equal(ts_redis_restart(&own), 0);
    int rc = -1;
    for (int i = 0; i < 20 && rc != 0; i++) {
        ts_sleep_ms(100);
        rc = linli_ratelimit_hit(redis, "login:phone:y", 5, 60, &allowed, &retry);
    }
    assert_int_equal(rc, 0);
    assert_true(allowed);
    linli_redis_destroy(&redis);
    ts_redis_stop(&own);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_five_allowed_sixth_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peek_does_not_count, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_buckets_independent_and_reset, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_slides_and_expires, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_refused, s_setup, s_teardown),
        cmocka_unit_test(test_redis_down_fails_closed),
    };
    return cmocka_run_group_tests(tests, s_group_setup, NULL);
}
