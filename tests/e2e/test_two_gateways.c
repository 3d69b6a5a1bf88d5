//  Several gateways side by side (DESIGN.md "Shape"): one registry worker
//  connected to both brokers serves requests from either; a session made
//  through one works through the other (sessions live in Redis); one gateway
//  gone, the other goes on.
#include "test_suite.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ts_suite_t s_suite;
static pid_t s_gateway2;
static char s_url1[64], s_url2[64];

//  GET path through the gateway at url; the status.
static long
s_get(const char *url, const char *path, const char *token)
{
    snprintf(s_suite.base_url, sizeof s_suite.base_url, "%s", url);
    return ts_status(&s_suite, "GET", path, token, NULL);
}

//  Workers of service the gateway at url counts.
static json_int_t
s_workers(const char *url)
{
    snprintf(s_suite.base_url, sizeof s_suite.base_url, "%s", url);
    ts_http_reply_t r;
    ts_http(&s_suite, "GET", "/healthz", NULL, NULL, NULL, &r);
    json_int_t n = json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(r.json, "broker"), "services"), "registry"),
        "workers"));
    ts_http_reply_free(&r);
    return n;
}

static int
s_setup(void **state)
{
    (void)state;
    if (ts_suite_start(&s_suite, "twogw", 1, NULL))
        return -1;
    snprintf(s_url1, sizeof s_url1, "%s", s_suite.base_url);

    //  A second gateway: its own HTTP port and broker, the same Redis.
    int http2 = ts_free_port(), broker2 = ts_free_port();
    snprintf(s_url2, sizeof s_url2, "http://127.0.0.1:%d", http2);
    char http_var[64], bind_var[96], endpoints[160], log[512], bin[512];
    snprintf(http_var, sizeof http_var, "LINLI_HTTP_PORT=%d", http2);
    snprintf(bind_var, sizeof bind_var, "LINLI_BROKER_BIND=tcp://127.0.0.1:%d", broker2);
    const char *env[40];
    size_t n = 0;
    for (size_t i = 0; s_suite.envp[i] && n < 36; i++)
        env[n++] = s_suite.envp[i];
    env[n++] = http_var;
    env[n++] = bind_var;
    env[n] = NULL;
    snprintf(log, sizeof log, "%s/gateway-2.log", s_suite.logdir);
    const char *argv[] = {ts_bin("linli-gateway", bin, sizeof bin), NULL};
    s_gateway2 = ts_spawn(argv, env, log);
    if (s_gateway2 < 0)
        return -1;

    //  The worker is restarted knowing both brokers (one endpoint each).
    snprintf(endpoints, sizeof endpoints,
             "LINLI_BROKER_ENDPOINTS=tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", s_suite.broker_port,
             broker2);
    for (size_t i = 0; s_suite.envp[i]; i++)
        if (!strncmp(s_suite.envp[i], "LINLI_BROKER_ENDPOINTS=", 23))
            snprintf(s_suite.vars[i], sizeof s_suite.vars[i], "%s", endpoints);
    ts_kill(s_suite.registry[0], SIGTERM);
    if (ts_suite_start_registry(&s_suite, 0) < 0)
        return -1;
    for (int i = 0; i < 200; i++) {
        if (s_workers(s_url1) == 1 && s_workers(s_url2) == 1)
            return 0;
        ts_sleep_ms(50);
    }
    fprintf(stderr, "the worker did not reach both gateways\n");
    return -1;
}

static int
s_teardown(void **state)
{
    (void)state;
    if (s_gateway2 > 0)
        ts_kill(s_gateway2, SIGTERM);
    snprintf(s_suite.base_url, sizeof s_suite.base_url, "%s", s_url1);
    ts_suite_stop(&s_suite);
    return 0;
}

static void
test_either_gateway_serves(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(s_get(s_url1, "/v1/areas/420102", NULL), 200);
        assert_int_equal(s_get(s_url2, "/v1/areas/420103", NULL), 200);
    }
    //  Logged in through the first, recognised by the second.
    snprintf(s_suite.base_url, sizeof s_suite.base_url, "%s", s_url1);
    char *token = ts_login(&s_suite, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
    assert_non_null(token);
    assert_int_equal(s_get(s_url2, "/v1/me", token), 200);
    free(token);
}

static void
test_one_gateway_gone(void **state)
{
    (void)state;
    ts_kill(s_suite.gateway, SIGKILL);
    s_suite.gateway = 0;
    //  The worker keeps its other broker: requests through it go on.
    for (int i = 0; i < 20; i++)
        assert_int_equal(s_get(s_url2, "/v1/areas/420104", NULL), 200);
    assert_int_equal(s_workers(s_url2), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_either_gateway_serves),
        cmocka_unit_test(test_one_gateway_gone),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
