//  linli_redis against a real Redis: commands, binary argv, key prefix,
//  pipelines, error replies, reconnect after a restart, and the Unix socket.
#include "test_servers.h"
#include "linli_redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
test_key_prefix(void **state)
{
    (void)state;
    linli_redis_t *r = linli_redis_new("127.0.0.1", 6399, NULL, 1000, "linli:t:");
    assert_non_null(r);
    char key[64];
    assert_string_equal(linli_redis_key(r, key, sizeof key, "session:%s:%d", "abc", 7),
                        "linli:t:session:abc:7");
    assert_string_equal(linli_redis_prefix(r), "linli:t:");
    //  Truncated, never overflowing.
    char small[12];
    assert_string_equal(linli_redis_key(r, small, sizeof small, "%s", "longer-name"),
                        "linli:t:lon");
    linli_redis_destroy(&r);
    assert_null(r);
    linli_redis_destroy(&r);
    r = linli_redis_new("127.0.0.1", 6399, NULL, 1000, NULL);
    assert_string_equal(linli_redis_key(r, key, sizeof key, "plain"), "plain");
    assert_string_equal(linli_redis_prefix(r), "");
    linli_redis_destroy(&r);
    assert_null(linli_redis_new("127.0.0.1", 0, NULL, 1000, "x"));
}

static void
test_commands_and_argv(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "redis_cmd"), 0);
    linli_redis_t *r = linli_redis_new("127.0.0.1", env.redis.port, NULL, 1000, env.prefix);
    char key[128];
    linli_redis_key(r, key, sizeof key, "greeting");
    redisReply *reply = linli_redis_cmd(r, "SET %s %s", key, "hello world");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    reply = linli_redis_cmd(r, "GET %s", key);
    assert_non_null(reply);
    assert_string_equal(reply->str, "hello world");
    freeReplyObject(reply);

    //  Binary-safe: a value with NUL bytes and CR/LF.
    const char value[] = {'a', '\0', 'b', '\r', '\n', 'c'};
    char bkey[128];
    linli_redis_key(r, bkey, sizeof bkey, "bin");
    const char *argv[] = {"SET", bkey, value};
    const size_t lens[] = {3, strlen(bkey), sizeof value};
    reply = linli_redis_argv(r, 3, argv, lens);
    assert_non_null(reply);
    freeReplyObject(reply);
    reply = linli_redis_cmd(r, "GET %b", bkey, strlen(bkey));
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_int_equal(reply->len, sizeof value);
    assert_memory_equal(reply->str, value, sizeof value);
    freeReplyObject(reply);

    //  An error reply is a reply: returned, and the connection stays usable.
    reply = linli_redis_cmd(r, "INCR %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
    reply = linli_redis_cmd(r, "PING");
    assert_non_null(reply);
    assert_string_equal(reply->str, "PONG");
    freeReplyObject(reply);
    linli_redis_destroy(&r);
}

static void
test_pipeline(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "redis_pipe"), 0);
    linli_redis_t *r = linli_redis_new("127.0.0.1", env.redis.port, NULL, 1000, env.prefix);
    char key[128];
    linli_redis_key(r, key, sizeof key, "counter");
    enum { N = 200 };
    int argcs[N];
    const char *args[N][2];
    const char **argvs[N];
    redisReply *replies[N];
    for (int i = 0; i < N; i++) {
        args[i][0] = "INCR";
        args[i][1] = key;
        argvs[i] = args[i];
        argcs[i] = 2;
    }
    assert_int_equal(linli_redis_pipeline(r, N, argcs, argvs, NULL, replies), 0);
    for (int i = 0; i < N; i++) {
        assert_non_null(replies[i]);
        assert_int_equal(replies[i]->type, REDIS_REPLY_INTEGER);
        assert_int_equal(replies[i]->integer, i + 1);
        freeReplyObject(replies[i]);
    }
    //  Mixed commands, one failing: every reply comes back in order.
    char other[128];
    linli_redis_key(r, other, sizeof other, "other");
    const char *set[] = {"SET", other, "v"};
    const char *bad[] = {"INCR", other};
    const char *get[] = {"GET", other};
    const char **mixed[] = {set, bad, get};
    const size_t set_lens[] = {3, strlen(other), 1};
    const size_t *lens[] = {set_lens, NULL, NULL};
    const int mixed_argcs[] = {3, 2, 2};
    assert_int_equal(linli_redis_pipeline(r, 3, mixed_argcs, mixed, lens, replies), 0);
    assert_int_equal(replies[0]->type, REDIS_REPLY_STATUS);
    assert_int_equal(replies[1]->type, REDIS_REPLY_ERROR);
    assert_string_equal(replies[2]->str, "v");
    for (int i = 0; i < 3; i++)
        freeReplyObject(replies[i]);
    assert_int_equal(linli_redis_pipeline(r, 0, NULL, NULL, NULL, NULL), 0);
    linli_redis_destroy(&r);
}

//  PING through the handle until it answers (the reconnect back-off is 250 ms).
static bool
s_ping_within(linli_redis_t *r, int ms)
{
    int64_t until = ts_mono_ms() + ms;
    while (ts_mono_ms() < until) {
        redisReply *reply = linli_redis_cmd(r, "PING");
        bool ok = reply && reply->type == REDIS_REPLY_STATUS;
        if (reply)
            freeReplyObject(reply);
        if (ok)
            return true;
        ts_sleep_ms(50);
    }
    return false;
}

static void
test_reconnect_after_restart(void **state)
{
    (void)state;
    ts_redis_t server;
    assert_int_equal(ts_redis_start(&server), 0);
    linli_redis_t *r = linli_redis_new("127.0.0.1", server.port, NULL, 500, "rc:");
    char key[64];
    linli_redis_key(r, key, sizeof key, "n");
    redisReply *reply = linli_redis_cmd(r, "SET %s 1", key);
    assert_non_null(reply);
    freeReplyObject(reply);

    //  Killed and started again between two commands: the dead context is
    //  noticed, replaced, and the command retried once, on the same handle.
    assert_int_equal(ts_redis_kill(&server), 0);
    assert_int_equal(ts_redis_restart(&server), 0);
    reply = linli_redis_cmd(r, "INCR %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    freeReplyObject(reply);

    //  Down: NULL, quickly, and at most one connection attempt per 250 ms.
    assert_int_equal(ts_redis_kill(&server), 0);
    assert_null(linli_redis_cmd(r, "PING"));
    int64_t t0 = ts_mono_ms();
    for (int i = 0; i < 1000; i++)
        assert_null(linli_redis_cmd(r, "PING"));
    assert_true(ts_mono_ms() - t0 < 1000);
    int argcs[] = {1};
    const char *ping[] = {"PING"};
    const char **argvs[] = {ping};
    redisReply *replies[1];
    assert_int_equal(linli_redis_pipeline(r, 1, argcs, argvs, NULL, replies), -1);
    assert_null(replies[0]);

    //  Up again: commands and pipelines work on the same handle.
    assert_int_equal(ts_redis_restart(&server), 0);
    assert_true(s_ping_within(r, 5000));
    assert_int_equal(linli_redis_pipeline(r, 1, argcs, argvs, NULL, replies), 0);
    assert_string_equal(replies[0]->str, "PONG");
    freeReplyObject(replies[0]);

    //  A pipeline on a context whose server restarted fails once (no blind
    //  retry), and the next one reconnects.
    assert_int_equal(ts_redis_kill(&server), 0);
    assert_int_equal(ts_redis_restart(&server), 0);
    assert_int_equal(linli_redis_pipeline(r, 1, argcs, argvs, NULL, replies), -1);
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) {
        ok = linli_redis_pipeline(r, 1, argcs, argvs, NULL, replies) == 0;
        if (ok)
            freeReplyObject(replies[0]);
        else
            ts_sleep_ms(50);
    }
    assert_true(ok);
    linli_redis_destroy(&r);
    ts_redis_stop(&server);
}

//  Connections the server has accepted so far (INFO stats).
static long
s_connections(linli_redis_t *r)
{
    redisReply *reply = linli_redis_cmd(r, "INFO stats");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    const char *at = strstr(reply->str, "total_connections_received:");
    assert_non_null(at);
    long n = atol(at + strlen("total_connections_received:"));
    freeReplyObject(reply);
    return n;
}

//  A reply that does not come within the timeout (Redis paused for writes:
//  it is there, but slow) fails once, after one timeout, not two: no retry
//  on a fresh connection. The next command, once Redis answers again, works
//  on the same handle.
static void
test_timeout_not_retried(void **state)
{
    (void)state;
    ts_redis_t server;
    assert_int_equal(ts_redis_start(&server), 0);
    linli_redis_t *r = linli_redis_new("127.0.0.1", server.port, NULL, 1000, "to:");
    linli_redis_t *admin = linli_redis_new("127.0.0.1", server.port, NULL, 1000, NULL);
    redisReply *reply = linli_redis_cmd(admin, "CLIENT PAUSE 10000 WRITE");
    assert_non_null(reply);
    freeReplyObject(reply);
    //  Reads go on; a write waits, and is given up after one timeout.
    reply = linli_redis_cmd(r, "GET to:k");
    assert_non_null(reply);
    freeReplyObject(reply);
    long before = s_connections(admin);
    int64_t t0 = ts_mono_ms();
    assert_null(linli_redis_cmd(r, "SET to:k 1"));
    assert_true(ts_mono_ms() - t0 >= 900);
    //  No second connection was opened to try again.
    assert_int_equal(s_connections(admin), before);
    //  Nor does the next command, for one timeout, though Redis answers.
    reply = linli_redis_cmd(admin, "CLIENT UNPAUSE");
    assert_non_null(reply);
    freeReplyObject(reply);
    assert_null(linli_redis_cmd(r, "INCR to:n"));
    assert_int_equal(s_connections(admin), before);
    assert_true(s_ping_within(r, 5000));
    reply = linli_redis_cmd(r, "INCR to:n");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    linli_redis_destroy(&admin);
    linli_redis_destroy(&r);
    ts_redis_stop(&server);
}

static void
test_unix_socket(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "redis_unix"), 0);
    assert_true(*env.redis.socket);
    //  Host and port are ignored with a socket: a port nobody listens on.
    linli_redis_t *r =
        linli_redis_new("127.0.0.1", ts_free_port(), env.redis.socket, 1000, env.prefix);
    assert_non_null(r);
    char where[160];
    snprintf(where, sizeof where, "unix:%s", env.redis.socket);
    assert_string_equal(linli_redis_where(r), where);
    char key[128];
    linli_redis_key(r, key, sizeof key, "over-socket");
    redisReply *reply = linli_redis_cmd(r, "SET %s %s", key, "yes");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    //  One connection throughout: the context is kept, not dropped and made
    //  again for every command.
    reply = linli_redis_cmd(r, "CLIENT ID");
    assert_non_null(reply);
    long long id = reply->integer;
    freeReplyObject(reply);
    for (int i = 0; i < 3; i++) {
        reply = linli_redis_cmd(r, "CLIENT ID");
        assert_non_null(reply);
        assert_int_equal(reply->integer, id);
        freeReplyObject(reply);
    }
    int argcs[] = {2};
    const char *get[] = {"GET", key};
    const char **argvs[] = {get};
    redisReply *replies[1];
    assert_int_equal(linli_redis_pipeline(r, 1, argcs, argvs, NULL, replies), 0);
    assert_string_equal(replies[0]->str, "yes");
    freeReplyObject(replies[0]);
    linli_redis_destroy(&r);

    //  Over TCP the same handle says host:port.
    r = linli_redis_new("127.0.0.1", env.redis.port, "", 1000, env.prefix);
    snprintf(where, sizeof where, "127.0.0.1:%d", env.redis.port);
    assert_string_equal(linli_redis_where(r), where);
    linli_redis_destroy(&r);

    //  A socket nobody listens on: NULL replies, no crash; a path too long
    //  for sockaddr_un: no handle at all.
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-redis-%d.sock", ts_root(), (int)getpid());
    r = linli_redis_new(NULL, 0, missing, 300, "x:");
    assert_non_null(r);
    assert_null(linli_redis_cmd(r, "PING"));
    linli_redis_destroy(&r);
    char long_path[200];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    assert_null(linli_redis_new("127.0.0.1", 6399, long_path, 1000, "x:"));
    long_path[LINLI_REDIS_SOCKET_MAX] = '\0';
    r = linli_redis_new("127.0.0.1", 6399, long_path, 1000, "x:");
    assert_non_null(r);
    linli_redis_destroy(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_prefix),  cmocka_unit_test(test_commands_and_argv),
        cmocka_unit_test(test_pipeline),    cmocka_unit_test(test_reconnect_after_restart),
        cmocka_unit_test(test_unix_socket), cmocka_unit_test(test_timeout_not_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
