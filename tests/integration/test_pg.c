//  linli_pg against a real PostgreSQL: parameters, SQLSTATEs, transactions,
//  migrations (ordered, once, concurrent, failing) and reconnect after a
//  restart.
#include "test_servers.h"
#include "linli_pg.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  The single value of a one-row query as a long; -1 on failure.
static long
s_scalar(linli_pg_t *pg, const char *sql)
{
    PGresult *res = linli_pg_exec(pg, sql, 0, NULL);
    if (!res)
        return -1;
    long v = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return v;
}

//  A fresh temporary folder for migration files.
static void
s_tmpdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/linli-mig-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void
s_write(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
s_rmdir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void
test_connect_params_and_session(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "pg_params"), 0);
    linli_pg_t *pg = linli_pg_new(env.dsn, "app_1", 1500);
    assert_non_null(pg);
    assert_int_equal(linli_pg_generation(pg), 0); //  lazy: not connected yet
    assert_non_null(linli_pg_conn(pg));
    assert_int_equal(linli_pg_generation(pg), 1);

    const char *params[] = {"40", "2", NULL};
    PGresult *res = linli_pg_exec(pg, "SELECT $1::int + $2::int, $3::text IS NULL", 3, params);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    assert_string_equal(PQgetvalue(res, 0, 1), "t");
    PQclear(res);

    //  Parameters are data, never SQL.
    const char *evil[] = {"x'); DROP TABLE t; --"};
    res = linli_pg_exec(pg, "SELECT length($1)", 1, evil);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "21");
    PQclear(res);

    res = linli_pg_exec(pg, "SHOW search_path", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "app_1, public");
    PQclear(res);
    res = linli_pg_exec(pg, "SHOW statement_timeout", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "1500ms");
    PQclear(res);

    //  A statement over the timeout is cancelled with 57014.
    char sqlstate[6];
    res = linli_pg_exec_state(pg, "SELECT pg_sleep(3)", 0, NULL, sqlstate);
    assert_null(res);
    assert_string_equal(sqlstate, "57014");
    //  A syntax error is not an outage.
    res = linli_pg_exec_state(pg, "SELEC 1", 0, NULL, sqlstate);
    assert_null(res);
    assert_string_equal(sqlstate, "42601");
    assert_int_equal(s_scalar(pg, "SELECT 7"), 7);
    linli_pg_destroy(&pg);
    assert_null(pg);
    linli_pg_destroy(&pg); //  accepts NULL

    //  Schema names are spliced into SQL: anything but [a-z_][a-z0-9_]* is
    //  refused.
    assert_null(linli_pg_new(env.dsn, "Bad", 1000));
    assert_null(linli_pg_new(env.dsn, "a;drop", 1000));
    assert_null(linli_pg_new(env.dsn, "1abc", 1000));
    assert_null(linli_pg_new(env.dsn, "", 1000));
    pg = linli_pg_new(env.dsn, NULL, 0);
    assert_non_null(pg);
    assert_int_equal(s_scalar(pg, "SELECT 1"), 1);
    linli_pg_destroy(&pg);

    //  An unreachable server: no failure at new, NULL (quickly) at use.
    char dsn[256];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=x user=linli connect_timeout=2",
             ts_free_port());
    pg = linli_pg_new(dsn, "app", 1000);
    assert_non_null(pg);
    assert_null(linli_pg_exec(pg, "SELECT 1", 0, NULL));
    int64_t t0 = ts_mono_ms();
    for (int i = 0; i < 1000; i++)
        assert_null(linli_pg_conn(pg)); //  rate-limited: no attempt per call
    assert_true(ts_mono_ms() - t0 < 500);
    linli_pg_destroy(&pg);
}

static void
test_unique_violation_sqlstate(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "pg_unique"), 0);
    linli_pg_t *pg = linli_pg_new(env.dsn, NULL, 2000);
    assert_int_equal(
        linli_pg_command(pg, "CREATE TABLE u (k text PRIMARY KEY, n int CHECK (n >= 0))", 0, NULL),
        0);
    const char *p1[] = {"a", "1"};
    char sqlstate[6] = "xxxxx";
    PGresult *res =
        linli_pg_exec_state(pg, "INSERT INTO u VALUES ($1, $2) RETURNING k", 2, p1, sqlstate);
    assert_non_null(res);
    assert_string_equal(sqlstate, "");
    assert_string_equal(PQgetvalue(res, 0, 0), "a");
    PQclear(res);
    res = linli_pg_exec_state(pg, "INSERT INTO u VALUES ($1, $2)", 2, p1, sqlstate);
    assert_null(res);
    assert_string_equal(sqlstate, "23505");
    const char *p2[] = {"b", "-1"};
    res = linli_pg_exec_state(pg, "INSERT INTO u VALUES ($1, $2)", 2, p2, sqlstate);
    assert_null(res);
    assert_string_equal(sqlstate, "23514");
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM u"), 1);
    linli_pg_destroy(&pg);
}

static void
test_transactions(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "pg_tx"), 0);
    linli_pg_t *pg = linli_pg_new(env.dsn, NULL, 2000);
    assert_int_equal(linli_pg_command(pg, "CREATE TABLE t (v int UNIQUE)", 0, NULL), 0);
    const char *one[] = {"1"}, *two[] = {"2"}, *three[] = {"3"};

    //  Rolled back: gone.
    assert_false(linli_pg_in_tx(pg));
    assert_int_equal(linli_pg_begin(pg), 0);
    assert_true(linli_pg_in_tx(pg));
    assert_int_equal(linli_pg_begin(pg), -1); //  no nesting
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    assert_int_equal(linli_pg_rollback(pg), 0);
    assert_false(linli_pg_in_tx(pg));
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM t"), 0);

    //  Committed: there.
    assert_int_equal(linli_pg_begin(pg), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, two), 0);
    assert_int_equal(linli_pg_commit(pg), 0);
    assert_int_equal(s_scalar(pg, "SELECT sum(v) FROM t"), 3);

    //  A failed statement aborts the transaction: commit reports it, nothing
    //  stays.
    assert_int_equal(linli_pg_begin(pg), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, three), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, one), -1);
    assert_int_equal(linli_pg_commit(pg), -1);
    assert_false(linli_pg_in_tx(pg));
    assert_int_equal(s_scalar(pg, "SELECT sum(v) FROM t"), 3);

    //  The usual shape: roll back after the failure.
    assert_int_equal(linli_pg_begin(pg), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, three), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, two), -1);
    assert_int_equal(linli_pg_rollback(pg), 0);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM t"), 2);
    assert_int_equal(linli_pg_commit(pg), -1); //  nothing open
    linli_pg_destroy(&pg);
}

static void
test_migrations_ordered_and_once(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "pg_migrate"), 0);
    char dir[64];
    s_tmpdir(dir, sizeof dir);
    //  Numeric order, not lexical: 2 before 10. Unqualified names land in the
    //  schema.
    s_write(dir, "10_third.sql", "INSERT INTO steps (name) VALUES ('third');\n");
    s_write(dir, "001_first.sql",
            "CREATE TABLE steps (n serial PRIMARY KEY, name text NOT NULL);\n"
            "INSERT INTO steps (name) VALUES ('first');\n");
    s_write(dir, "2_second.sql",
            "INSERT INTO steps (name) VALUES ('second');\n"
            "CREATE TABLE other (x int);\n");
    s_write(dir, "README.txt", "not a migration");
    s_write(dir, "notes.sql", "not numbered: ignored");

    linli_pg_t *pg = linli_pg_new(env.dsn, "svc", 1000);
    assert_int_equal(linli_pg_migrate(pg, dir), 0);
    PGresult *res =
        linli_pg_exec(pg, "SELECT string_agg(name, ',' ORDER BY n) FROM svc.steps", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "first,second,third");
    PQclear(res);
    res = linli_pg_exec(pg,
                        "SELECT string_agg(version || ':' || name, ',' ORDER BY "
                        "version) FROM svc.schema_migrations",
                        0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "1:001_first.sql,2:2_second.sql,10:10_third.sql");
    PQclear(res);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM pg_tables WHERE schemaname = 'svc' "
                                  "AND tablename = 'other'"),
                     1);
    //  The service's statement_timeout is back after migrating.
    res = linli_pg_exec(pg, "SHOW statement_timeout", 0, NULL);
    assert_string_equal(PQgetvalue(res, 0, 0), "1s");
    PQclear(res);

    //  Idempotent: a second run (new handle) applies nothing.
    linli_pg_t *again = linli_pg_new(env.dsn, "svc", 1000);
    assert_int_equal(linli_pg_migrate(again, dir), 0);
    assert_int_equal(s_scalar(again, "SELECT count(*) FROM steps"), 3);
    //  A new file is applied, only it.
    s_write(dir, "11_fourth.sql", "INSERT INTO steps (name) VALUES ('fourth');\n");
    assert_int_equal(linli_pg_migrate(again, dir), 0);
    assert_int_equal(s_scalar(again, "SELECT count(*) FROM steps"), 4);
    assert_int_equal(s_scalar(again, "SELECT count(*) FROM schema_migrations"), 4);

    //  A missing folder fails.
    assert_int_equal(linli_pg_migrate(again, "/nonexistent/linli"), -1);
    linli_pg_destroy(&again);
    linli_pg_destroy(&pg);
    s_rmdir(dir);
}

typedef struct {
    const char *dsn; //  database
    const char *dir; //  migrations folder
    int rc;          //  linli_pg_migrate's result
} s_migrator_t;

static void *
s_migrator_run(void *arg)
{
    s_migrator_t *m = arg;
    linli_pg_t *pg = linli_pg_new(m->dsn, "race", 200);
    m->rc = pg ? linli_pg_migrate(pg, m->dir) : -1;
    linli_pg_destroy(&pg);
    return NULL;
}

static void
test_concurrent_migrators_apply_once(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "pg_race"), 0);
    char dir[64];
    s_tmpdir(dir, sizeof dir);
    //  No unique key on applied: a second application would show as a second row.
    //  The sleep (longer than the 200 ms statement_timeout) keeps the others
    //  waiting.
    s_write(dir, "001_init.sql",
            "CREATE TABLE applied (name text NOT NULL);\n"
            "SELECT pg_sleep(0.4);\n"
            "INSERT INTO applied VALUES ('001');\n");
    s_write(dir, "002_more.sql", "INSERT INTO applied VALUES ('002');\n");
    s_write(dir, "003_more.sql", "INSERT INTO applied VALUES ('003');\n");

    enum { N = 4 };
    pthread_t threads[N];
    s_migrator_t m[N];
    for (int i = 0; i < N; i++) {
        m[i] = (s_migrator_t){env.dsn, dir, -2};
        assert_int_equal(pthread_create(&threads[i], NULL, s_migrator_run, &m[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(m[i].rc, 0);
    }
    linli_pg_t *pg = linli_pg_new(env.dsn, "race", 1000);
    PGresult *res =
        linli_pg_exec(pg, "SELECT string_agg(name, ',' ORDER BY name) FROM applied", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "001,002,003");
    PQclear(res);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM schema_migrations"), 3);
    linli_pg_destroy(&pg);
    s_rmdir(dir);
}

static void
test_bad_migration_rolls_back(void **state)
{
    (void)state;
    ts_env_t env;
    assert_int_equal(ts_env_open(&env, "pg_badmig"), 0);
    char dir[64];
    s_tmpdir(dir, sizeof dir);
    s_write(dir, "001_ok.sql", "CREATE TABLE a (x int);\n");
    s_write(dir, "002_bad.sql",
            "CREATE TABLE b (x int);\n"
            "INSERT INTO a VALUES (1);\n"
            "CREATE TABLE oops (;\n");
    s_write(dir, "003_never.sql", "CREATE TABLE c (x int);\n");
    linli_pg_t *pg = linli_pg_new(env.dsn, "bad", 1000);
    assert_int_equal(linli_pg_migrate(pg, dir), -1);
    assert_false(linli_pg_in_tx(pg));
    //  001 stays, 002 left nothing behind, 003 was not tried.
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM a"), 0);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM pg_tables WHERE schemaname = 'bad' "
                                  "AND tablename IN ('b', 'c')"),
                     0);
    //  The lock was released and the handle still works: fix the file and go on.
    s_write(dir, "002_bad.sql", "CREATE TABLE b (x int);\nINSERT INTO a VALUES (1);\n");
    linli_pg_t *other = linli_pg_new(env.dsn, "bad", 1000);
    assert_int_equal(linli_pg_migrate(other, dir), 0);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM a"), 1);
    linli_pg_destroy(&other);

    //  Two files with one number are refused before anything runs.
    s_write(dir, "004_x.sql", "CREATE TABLE x1 (x int);\n");
    s_write(dir, "4_y.sql", "CREATE TABLE x2 (x int);\n");
    assert_int_equal(linli_pg_migrate(pg, dir), -1);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM schema_migrations"), 3);
    linli_pg_destroy(&pg);
    s_rmdir(dir);
}

static void
test_reconnect_after_restart(void **state)
{
    (void)state;
    ts_pg_t server;
    assert_int_equal(ts_pg_start(&server), 0);
    char dsn[512];
    assert_int_equal(ts_pg_create_db(&server, "reconnect", dsn, sizeof dsn), 0);
    linli_pg_t *pg = linli_pg_new(dsn, "app", 2000);
    assert_non_null(pg);
    assert_int_equal(linli_pg_command(pg, "CREATE TABLE t (v int)", 0, NULL), 0);
    const char *one[] = {"1"};
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    uint64_t generation = linli_pg_generation(pg);

    //  Down: calls fail (no crash, no hang) and do not busy-loop reconnecting.
    assert_int_equal(ts_pg_kill(&server), 0);
    assert_null(linli_pg_exec(pg, "SELECT 1", 0, NULL));
    int64_t t0 = ts_mono_ms();
    for (int i = 0; i < 200; i++)
        assert_null(linli_pg_exec(pg, "SELECT 1", 0, NULL));
    assert_true(ts_mono_ms() - t0 < 2000);

    //  Up again: the same handle works (after the 250 ms back-off at most).
    assert_int_equal(ts_pg_restart(&server), 0);
    long v = -1;
    for (int i = 0; i < 50 && v < 0; i++) {
        v = s_scalar(pg, "SELECT count(*) FROM t");
        if (v < 0)
            ts_sleep_ms(100);
    }
    assert_int_equal(v, 1);
    assert_true(linli_pg_generation(pg) > generation);
    //  The session settings came back with the new connection.
    PGresult *res = linli_pg_exec(pg, "SHOW search_path", 0, NULL);
    assert_string_equal(PQgetvalue(res, 0, 0), "app, public");
    PQclear(res);

    //  A restart under an open transaction: the statement fails, no silent
    //  reconnect runs the rest outside it; roll back and carry on.
    assert_int_equal(linli_pg_begin(pg), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    assert_int_equal(ts_pg_kill(&server), 0);
    assert_int_equal(ts_pg_restart(&server), 0);
    assert_int_equal(linli_pg_command(pg, "INSERT INTO t VALUES ($1)", 1, one), -1);
    assert_true(linli_pg_in_tx(pg));
    assert_null(linli_pg_conn(pg));
    assert_int_equal(linli_pg_rollback(pg), 0);
    v = -1;
    for (int i = 0; i < 50 && v < 0; i++) {
        v = s_scalar(pg, "SELECT count(*) FROM t");
        if (v < 0)
            ts_sleep_ms(100);
    }
    assert_int_equal(v, 1);
    linli_pg_destroy(&pg);
    ts_pg_stop(&server);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_params_and_session),
        cmocka_unit_test(test_unique_violation_sqlstate),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_migrations_ordered_and_once),
        cmocka_unit_test(test_concurrent_migrators_apply_once),
        cmocka_unit_test(test_bad_migration_rolls_back),
        cmocka_unit_test(test_reconnect_after_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
