//  The test fixture itself: the run's Redis and PostgreSQL answer for real,
//  and a private pair can be killed and restarted without losing data.
#include "test_servers.h"

#include <hiredis.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void
test_shared_servers_answer(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "smoke"), 0);

    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", env.redis.port, tv);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    redisReply *r = redisCommand(rc, "SET %sk hello", env.prefix);
    assert_non_null(r);
    freeReplyObject(r);
    r = redisCommand(rc, "GET %sk", env.prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "hello");
    freeReplyObject(r);
    redisFree(rc);

    PGconn *pg = PQconnectdb(env.dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *res = PQexec(pg, "CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    res = PQexec(pg, "SELECT sum(v) FROM t");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    PQfinish(pg);
}

static void
test_private_servers_survive_restart(void **state)
{
    (void)state;
    ts_redis_t redis;
    assert_int_equal(ts_redis_start(&redis), 0);
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
    assert_int_equal(rc->err, 0);
    redisReply *r = redisCommand(rc, "SET kept yes");
    freeReplyObject(r);
    //  appendfsync everysec: wait for the fsync before the crash
    r = redisCommand(rc, "BGREWRITEAOF");
    freeReplyObject(r);
    redisFree(rc);
    for (int i = 0; i < 50; i++) {
        rc = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
        r = redisCommand(rc, "INFO persistence");
        int busy = r && strstr(r->str, "aof_rewrite_in_progress:1") != NULL;
        freeReplyObject(r);
        redisFree(rc);
        if (!busy)
            break;
        ts_sleep_ms(100);
    }
    assert_int_equal(ts_redis_kill(&redis), 0);
    assert_int_equal(ts_redis_restart(&redis), 0);
    rc = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
    r = redisCommand(rc, "GET kept");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "yes");
    freeReplyObject(r);
    redisFree(rc);
    ts_redis_stop(&redis);

    ts_pg_t pg;
    assert_int_equal(ts_pg_start(&pg), 0);
    char dsn[512];
    assert_int_equal(ts_pg_create_db(&pg, "restart", dsn, sizeof dsn), 0);
    PGconn *conn = PQconnectdb(dsn);
    PGresult *res = PQexec(conn, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(conn);
    assert_int_equal(ts_pg_kill(&pg), 0);
    assert_int_equal(ts_pg_restart(&pg), 0);
    conn = PQconnectdb(dsn);
    res = PQexec(conn, "SELECT v FROM t");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "after restart: %s", PQerrorMessage(conn));
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "7");
    PQclear(res);
    PQfinish(conn);
    ts_pg_stop(&pg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_servers_answer),
        cmocka_unit_test(test_private_servers_survive_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
