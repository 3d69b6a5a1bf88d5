//  Same-host transports: the gateway and a registry worker reach each other
//  over ipc:// only, Redis over its Unix socket (their Redis TCP port points
//  nowhere) and PostgreSQL over the socket directory; a login, a sign-up and
//  an authenticated read through the gateway need all three. A socket path
//  that is missing or too long is a clear error, not a crash.
#include "test_suite.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static ts_suite_t s_suite;
static char s_ipc[160];       //  the broker's only endpoint, "ipc://…"
static char s_pg_socket[640]; //  the test database's DSN over the socket directory

//  The suite's DSN (host=127.0.0.1 …) with host= the server's socket directory.
static int
s_socket_dsn(const ts_suite_t *s, char *out, size_t cap)
{
    const char *tcp_host = "host=127.0.0.1 ";
    if (strncmp(s->env.dsn, tcp_host, strlen(tcp_host)))
        return -1;
    int n = snprintf(out, cap, "host=%s %s", s->env.pg.dir, s->env.dsn + strlen(tcp_host));
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

//  True when the file at path holds needle.
static bool
s_file_holds(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static int
s_setup(void **state)
{
    (void)state;
    ts_redis_t redis;
    ts_pg_t pg;
    if (ts_shared(&redis, &pg))
        return -1;
    if (!*redis.socket) {
        fprintf(stderr, "the run's Redis has no Unix socket (its folder's path is too long)\n");
        return -1;
    }
    //  The gateway binds ipc:// only: a worker that arrives came over it.
    snprintf(s_ipc, sizeof s_ipc, "ipc://%s/broker-unix-%d.sock", ts_root(), (int)getpid());
    //  Redis: the socket, and a TCP port nobody listens on, so that only the
    //  socket can serve the gateway's sessions and the worker.
    char socket_var[160], port_var[64], bind_var[200], endpoints_var[200];
    snprintf(socket_var, sizeof socket_var, "LINLI_REDIS_SOCKET=%s", redis.socket);
    snprintf(port_var, sizeof port_var, "LINLI_REDIS_PORT=%d", ts_free_port());
    snprintf(bind_var, sizeof bind_var, "LINLI_BROKER_BIND=%s", s_ipc);
    snprintf(endpoints_var, sizeof endpoints_var, "LINLI_BROKER_ENDPOINTS=%s", s_ipc);
    const char *const extra[] = {socket_var, port_var, bind_var, endpoints_var, NULL};
    if (ts_suite_start(&s_suite, "unix_sockets", 0, extra))
        return -1;

    //  The worker, once its database exists: PostgreSQL over the socket
    //  directory.
    if (s_socket_dsn(&s_suite, s_pg_socket, sizeof s_pg_socket)) {
        fprintf(stderr, "unexpected DSN %s\n", s_suite.env.dsn);
        return -1;
    }
    ts_suite_var(&s_suite, "LINLI_PG_DSN=%s", s_pg_socket);
    if (ts_suite_start_registry(&s_suite, 0) < 0 ||
        ts_suite_wait_workers(&s_suite, "registry", 1, 15000)) {
        fprintf(stderr, "the worker did not connect over %s, see %s\n", s_ipc, s_suite.logdir);
        return -1;
    }
    return 0;
}

static int
s_teardown(void **state)
{
    (void)state;
    ts_suite_stop(&s_suite);
    return 0;
}

static void
test_round_trip(void **state)
{
    (void)state;
    //  Login: the worker reads the account (PostgreSQL), counts the attempt
    //  and writes the session (Redis); the gateway then finds the session.
    char *token = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_non_null(token);
    ts_http_reply_t r = ts_req(&s_suite, "GET", "/v1/me", token, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);

    //  A self sign-up (rate limit in Redis, rows in PostgreSQL, a session),
    //  read back by the admin.
    char id_number[19], id[32];
    ts_id_number("420102", "19800101", 7, id_number);
    r = ts_sign_up(&s_suite, NULL, "套接字", id_number, "15000000071", "420102001001", "\"repair\"",
                   id, sizeof id);
    assert_int_equal(r.status, 201);
    assert_true(*id);
    ts_http_reply_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/v1/volunteers/%s", id);
    r = ts_req(&s_suite, "GET", path, token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_json_str(&r, "name"), "套接字");
    ts_http_reply_free(&r);
    free(token);

    //  The outbox relay published it to the stream over the socket too.
    char subject[64];
    snprintf(subject, sizeof subject, "volunteer/%s", id);
    assert_int_equal(ts_stream_count_events(&s_suite, subject,
                                            "linli.registry.volunteer.registered", "420102001001",
                                            NULL),
                     1);

    //  Every connection the worker holds to its database came over the
    //  socket: PostgreSQL shows no client address for those.
    PGconn *pg = PQconnectdb(s_suite.env.dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *res = PQexec(pg, "SELECT count(*) FILTER (WHERE client_addr IS NULL), "
                               "count(*) FILTER (WHERE client_addr IS NOT NULL) "
                               "FROM pg_stat_activity WHERE datname = current_database() "
                               "AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(res, 0, 0)) >= 1);
    assert_int_equal(atoi(PQgetvalue(res, 0, 1)), 0);
    PQclear(res);
    PQfinish(pg);
}

static void
test_missing_redis_socket(void **state)
{
    (void)state;
    //  The worker again, its Redis socket a path where nothing listens.
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing-%d.sock", ts_root(), (int)getpid());
    ts_kill(s_suite.registry[0], SIGTERM);
    s_suite.registry[0] = 0;
    //  Gone from the gateway's count first: the wait for one below is then
    //  for the new worker.
    assert_int_equal(ts_suite_wait_workers(&s_suite, "registry", 0, 5000), 0);
    ts_suite_var(&s_suite, "LINLI_REDIS_SOCKET=%s", missing);
    assert_true(ts_suite_start_registry(&s_suite, 1) > 0);
    assert_int_equal(ts_suite_wait_workers(&s_suite, "registry", 1, 15000), 0);

    //  It runs and answers; what needs Redis is refused with a coded 503.
    ts_http_reply_t r = ts_req(&s_suite, "GET", "/v1/areas/420102", NULL, NULL);
    assert_int_equal(r.status, 200);
    ts_http_reply_free(&r);
    r = ts_login_reply(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_int_equal(r.status, 503);
    assert_string_equal(ts_error_code(&r), "rate_limit_unavailable");
    ts_http_reply_free(&r);
    assert_int_equal(waitpid(s_suite.registry[1], NULL, WNOHANG), 0);

    //  Its log names the socket and why.
    char log[512], needle[240];
    snprintf(log, sizeof log, "%s/registry-1.log", s_suite.logdir);
    snprintf(needle, sizeof needle, "cannot connect to unix:%s: No such file or directory",
             missing);
    assert_true(s_file_holds(log, needle));
}

static void
test_socket_path_too_long(void **state)
{
    (void)state;
    //  A path sockaddr_un cannot hold: the service refuses to start and says
    //  why, rather than connecting to a path cut short.
    char var[400], bin[512], log[512];
    snprintf(var, sizeof var, "LINLI_REDIS_SOCKET=%s/%0150d.sock", ts_root(), 0);
    snprintf(log, sizeof log, "%s/registry-long-socket.log", s_suite.logdir);
    const char *env[40];
    size_t n = 0;
    for (size_t i = 0; s_suite.envp[i] && n < 38; i++)
        env[n++] = s_suite.envp[i];
    env[n++] = var;
    env[n] = NULL;
    const char *argv[] = {ts_bin("linli-registry", bin, sizeof bin), "migrate", NULL};
    pid_t pid = ts_spawn(argv, env, log);
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(s_file_holds(log, "socket path longer than 107 bytes"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_missing_redis_socket),
        cmocka_unit_test(test_socket_path_too_long),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
