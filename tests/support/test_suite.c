//  test_suite: the suite as processes, and an HTTP client.
#include "test_suite.h"

#include <curl/curl.h>
#include <hiredis.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <strings.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "linli_crypto.h"
#include "linli_session.h"

void
ts_suite_var(ts_suite_t *s, const char *fmt, ...)
{
    char var[sizeof s->vars[0]];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(var, sizeof var, fmt, ap);
    va_end(ap);
    //  A name given again: its entry is replaced in place.
    size_t name_len = strcspn(var, "=");
    size_t i = 0;
    while (i < 32 && s->envp[i] &&
           !(!strncmp(s->vars[i], var, name_len) && s->vars[i][name_len] == '='))
        i++;
    if (i >= 32) {
        fprintf(stderr, "test_suite: environment full, %s not set\n", var);
        return;
    }
    bool append = !s->envp[i];
    memcpy(s->vars[i], var, sizeof var);
    s->envp[i] = s->vars[i];
    if (append)
        s->envp[i + 1] = NULL;
}

//  Run a binary of the build with the suite's environment and wait. Exit code or -1.
static int
s_run_tool(ts_suite_t *s, const char *bin, const char *arg)
{
    char path[512], log[512];
    ts_bin(bin, path, sizeof path);
    snprintf(log, sizeof log, "%s/%s-%s.log", s->logdir, bin, arg);
    const char *argv[] = {path, arg, NULL};
    pid_t pid = ts_spawn(argv, s->envp, log);
    if (pid < 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t
ts_suite_start_registry(ts_suite_t *s, int i)
{
    char path[512], log[512];
    ts_bin("linli-registry", path, sizeof path);
    snprintf(log, sizeof log, "%s/registry-%d.log", s->logdir, i);
    const char *argv[] = {path, "serve", NULL};
    s->registry[i] = ts_spawn(argv, s->envp, log);
    return s->registry[i];
}

pid_t
ts_suite_start_gateway(ts_suite_t *s)
{
    char path[512], log[512];
    ts_bin("linli-gateway", path, sizeof path);
    snprintf(log, sizeof log, "%s/gateway.log", s->logdir);
    const char *argv[] = {path, NULL};
    s->gateway = ts_spawn(argv, s->envp, log);
    return s->gateway;
}

static int
s_start(ts_suite_t *s, const char *name, int n_registry, const char *const *extra)
{
    s->http_port = ts_free_port();
    s->broker_port = ts_free_port();
    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->http_port);
    snprintf(s->logdir, sizeof s->logdir, "%s/suite-%s-%d", ts_root(), name, (int)getpid());
    mkdir(s->logdir, 0755);

    unsigned char key[32];
    char hex[65];
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    s->envp[0] = NULL;
    ts_suite_var(s, "LINLI_REDIS_HOST=127.0.0.1");
    ts_suite_var(s, "LINLI_REDIS_PORT=%d", s->env.redis.port);
    //  TCP unless a test asks (extra): empty, so a socket inherited from the
    //  caller's environment never points the suite at another Redis.
    ts_suite_var(s, "LINLI_REDIS_SOCKET=");
    ts_suite_var(s, "LINLI_REDIS_PREFIX=%s", s->env.prefix);
    ts_suite_var(s, "LINLI_PG_DSN=%s", s->env.dsn);
    ts_suite_var(s, "LINLI_HTTP_PORT=%d", s->http_port);
    ts_suite_var(s, "LINLI_BROKER_BIND=tcp://127.0.0.1:%d", s->broker_port);
    ts_suite_var(s, "LINLI_BROKER_ENDPOINTS=tcp://127.0.0.1:%d", s->broker_port);
    ts_suite_var(s, "LINLI_PII_KEY=%s", hex);
    ts_suite_var(s, "LINLI_BOOTSTRAP_ADMIN_PHONE=%s", TS_ADMIN_PHONE);
    ts_suite_var(s, "LINLI_BOOTSTRAP_ADMIN_PASSWORD=%s", TS_ADMIN_PASSWORD);
    ts_suite_var(s, "LINLI_HEARTBEAT_MS=200");
    ts_suite_var(s, "LINLI_REQUEST_TIMEOUT_MS=3000");
    ts_suite_var(s, "LINLI_ARGON2_OPS=1");
    ts_suite_var(s, "LINLI_ARGON2_MEM_KB=64");
    ts_suite_var(s, "LINLI_LOG_LEVEL=info");
    bool demo_set = false;
    for (size_t i = 0; extra && extra[i]; i++) {
        ts_suite_var(s, "%s", extra[i]);
        demo_set = demo_set || !strncmp(extra[i], "LINLI_DEMO_VOLUNTEERS=", 22);
    }
    //  The demo city's volunteers are for `make up`: a suite starts without
    //  them unless a test asks (extra).
    if (!demo_set)
        ts_suite_var(s, "LINLI_DEMO_VOLUNTEERS=0");

    if (s_run_tool(s, "linli-registry", "seed-demo") != 0) {
        fprintf(stderr, "test_suite: linli-registry seed-demo failed, see %s\n", s->logdir);
        return -1;
    }
    if (ts_suite_start_gateway(s) < 0)
        return -1;
    for (int i = 0; i < n_registry; i++)
        if (ts_suite_start_registry(s, i) < 0)
            return -1;
    if (ts_suite_wait_workers(s, "registry", n_registry, 15000)) {
        fprintf(stderr, "test_suite: %d registry workers did not connect, see %s\n", n_registry,
                s->logdir);
        return -1;
    }
    return 0;
}

int
ts_suite_start(ts_suite_t *s, const char *name, int n_registry, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    if (ts_env_open(&s->env, name))
        return -1;
    return s_start(s, name, n_registry, extra);
}

char *
ts_suite_start_admin(ts_suite_t *s, const char *name, int n_registry, const char *const *extra)
{
    if (ts_suite_start(s, name, n_registry, extra))
        return NULL;
    return ts_login(s, TS_ADMIN_PHONE, TS_ADMIN_PASSWORD);
}

int
ts_suite_start_private(ts_suite_t *s, const char *name, int n_registry, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    s->private_servers = true;
    if (ts_redis_start(&s->env.redis) || ts_pg_start(&s->env.pg) ||
        ts_pg_create_db(&s->env.pg, name, s->env.dsn, sizeof s->env.dsn))
        return -1;
    snprintf(s->env.prefix, sizeof s->env.prefix, "linli:");
    return s_start(s, name, n_registry, extra);
}

int
ts_suite_wait_workers(ts_suite_t *s, const char *service, int n, int timeout_ms)
{
    int64_t until = ts_mono_ms() + timeout_ms;
    while (ts_mono_ms() < until) {
        ts_http_reply_t r;
        if (ts_http(s, "GET", "/healthz", NULL, NULL, NULL, &r) == 0 && r.status == 200) {
            json_t *svc = json_object_get(
                json_object_get(json_object_get(r.json, "broker"), "services"), service);
            json_int_t workers = json_integer_value(json_object_get(svc, "workers"));
            ts_http_reply_free(&r);
            if (workers == n)
                return 0;
        } else {
            ts_http_reply_free(&r);
        }
        ts_sleep_ms(50);
    }
    return -1;
}

void
ts_suite_stop(ts_suite_t *s)
{
    for (int i = 0; i < TS_MAX_PROCS; i++)
        if (s->registry[i] > 0) {
            ts_kill(s->registry[i], SIGTERM);
            s->registry[i] = 0;
        }
    if (s->gateway > 0) {
        ts_kill(s->gateway, SIGTERM);
        s->gateway = 0;
    }
    if (s->private_servers) {
        ts_redis_stop(&s->env.redis);
        ts_pg_stop(&s->env.pg);
    }
}

// ---------------------------------------------------------------- HTTP

typedef struct {
    char *data;
    size_t len;
} s_buf_t;

static size_t
s_on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *b = (s_buf_t *)arg;
    size_t n = size * nmemb;
    char *data = realloc(b->data, b->len + n + 1);
    if (!data)
        return 0;
    memcpy(data + b->len, ptr, n);
    b->data = data;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static size_t
s_on_header(char *buffer, size_t size, size_t nitems, void *arg)
{
    ts_http_reply_t *out = (ts_http_reply_t *)arg;
    size_t n = size * nitems;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(n < 255 ? n : 255), buffer);
    line[strcspn(line, "\r\n")] = '\0';
    if (!strncasecmp(line, "Retry-After: ", 13))
        snprintf(out->retry_after, sizeof out->retry_after, "%.15s", line + 13);
    else if (!strncasecmp(line, "X-Request-Id: ", 14))
        snprintf(out->request_id, sizeof out->request_id, "%.79s", line + 14);
    return n;
}

int
ts_http(ts_suite_t *s, const char *method, const char *path, const char *token, const char *body,
        const char *const *headers, ts_http_reply_t *out)
{
    memset(out, 0, sizeof *out);
    CURL *curl = curl_easy_init();
    if (!curl)
        return -1;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    s_buf_t buf = {0};
    struct curl_slist *list = NULL;
    char auth[512];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        list = curl_slist_append(list, auth);
    }
    if (body)
        list = curl_slist_append(list, "Content-Type: application/json");
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, out);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    out->body = buf.data ? buf.data : strdup("");
    out->json = json_loads(out->body, 0, NULL);
    return rc == CURLE_OK ? 0 : -1;
}

void
ts_http_reply_free(ts_http_reply_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

ts_http_reply_t
ts_req(ts_suite_t *s, const char *method, const char *path, const char *token, const char *body)
{
    ts_http_reply_t r;
    ts_http(s, method, path, token, body, NULL, &r);
    return r;
}

const char *
ts_error_code(const ts_http_reply_t *r)
{
    const char *c = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return c ? c : "";
}

const char *
ts_error_field(const ts_http_reply_t *r)
{
    const char *c = json_string_value(json_object_get(json_object_get(r->json, "error"), "field"));
    return c ? c : "";
}

const char *
ts_json_str(const ts_http_reply_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r->json, key));
    return v ? v : "";
}

ts_http_reply_t
ts_login_reply(ts_suite_t *s, const char *phone, const char *password)
{
    char body[512];
    snprintf(body, sizeof body, "{\"phone\":\"%s\",\"password\":\"%s\"}", phone, password);
    return ts_req(s, "POST", "/v1/auth/login", NULL, body);
}

char *
ts_login(ts_suite_t *s, const char *phone, const char *password)
{
    ts_http_reply_t r = ts_login_reply(s, phone, password);
    char *token = NULL;
    if (r.status == 200) {
        const char *t = json_string_value(json_object_get(r.json, "token"));
        token = t ? strdup(t) : NULL;
    } else {
        fprintf(stderr, "test_suite: login failed: %ld %s\n", r.status, r.body ? r.body : "");
    }
    ts_http_reply_free(&r);
    return token;
}

ts_http_reply_t
ts_set_password(ts_suite_t *s, const char *phone, const char *code, const char *password)
{
    char body[256];
    snprintf(body, sizeof body, "{\"phone\":\"%s\",\"code\":\"%s\",\"password\":\"%s\"}", phone,
             code, password);
    return ts_req(s, "POST", "/v1/auth/password", NULL, body);
}

void
ts_password_code(ts_suite_t *s, const char *token, const char *volunteer_id, char code[9])
{
    char path[96];
    snprintf(path, sizeof path, "/v1/volunteers/%s/password-code", volunteer_id);
    ts_http_reply_t r = ts_req(s, "POST", path, token, NULL);
    assert_int_equal(r.status, 201);
    snprintf(code, 9, "%s", ts_json_str(&r, "code"));
    assert_int_equal(strlen(ts_json_str(&r, "code")), 8);
    ts_http_reply_free(&r);
}

long
ts_status(ts_suite_t *s, const char *method, const char *path, const char *token, const char *body)
{
    ts_http_reply_t r = ts_req(s, method, path, token, body);
    long status = r.status;
    ts_http_reply_free(&r);
    return status;
}

long
ts_me_status(ts_suite_t *s, const char *token)
{
    return ts_status(s, "GET", "/v1/me", token, NULL);
}

// ---------------------------------------------------------------- gateway checks

void
ts_assert_token_ended(ts_suite_t *s, const char *token)
{
    for (int i = 0; i < 10; i++) {
        ts_http_reply_t r = ts_req(s, "GET", "/v1/me", token, NULL);
        assert_int_equal(r.status, 401);
        assert_string_equal(ts_error_code(&r), "invalid_token");
        ts_http_reply_free(&r);
    }
}

long
ts_metric(ts_suite_t *s, const char *line_prefix)
{
    ts_http_reply_t r = ts_req(s, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    size_t n = strlen(line_prefix);
    const char *line = r.body;
    while (line && strncmp(line, line_prefix, n)) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    assert_non_null(line);
    long v = atol(line + n);
    ts_http_reply_free(&r);
    return v;
}

long
ts_session_cache_hits(ts_suite_t *s)
{
    return ts_metric(s, "linli_session_lookups_total{from=\"cache\"} ");
}

void
ts_wait_session_cached(ts_suite_t *s, const char *token)
{
    for (int64_t until = ts_mono_ms() + 5000; ts_mono_ms() < until; ts_sleep_ms(50)) {
        long before = ts_session_cache_hits(s);
        //  The first may be the look-up that fills the cache; the second is
        //  then answered from it, once the gateway is subscribed to ended
        //  sessions (it caches nothing before).
        assert_int_equal(ts_me_status(s, token), 200);
        assert_int_equal(ts_me_status(s, token), 200);
        if (ts_session_cache_hits(s) > before)
            return;
    }
    fail_msg("the gateway never answered a session from its cache");
}

// ---------------------------------------------------------------- servers from outside

redisContext *
ts_redis_connect(ts_suite_t *s)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", s->env.redis.port, tv);
    if (!rc || rc->err) {
        fprintf(stderr, "test_suite: cannot reach Redis: %s\n", rc ? rc->errstr : "no memory");
        redisFree(rc);
        return NULL;
    }
    return rc;
}

void
ts_session_key(ts_suite_t *s, const char *token, char *out, size_t cap)
{
    char hash[LINLI_HASH_HEX_CAP];
    linli_token_hash(token, hash);
    linli_session_key(s->env.prefix, hash, out, cap);
}

void
ts_account_sessions_key(ts_suite_t *s, const char *account_id, char *out, size_t cap)
{
    snprintf(out, cap, "%ssessions:%s", s->env.prefix, account_id);
}

long
ts_sql_long(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    long v = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

// ---------------------------------------------------------------- registry data

void
ts_id_number(const char *region, const char *birth, int seq, char out[19])
{
    static const int weights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char checks[] = "10X98765432";
    snprintf(out, 19, "%s%s%03d", region, birth, seq % 1000);
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (out[i] - '0') * weights[i];
    out[17] = checks[sum % 11];
    out[18] = '\0';
}

ts_http_reply_t
ts_sign_up(ts_suite_t *s, const char *token, const char *name, const char *id_number,
           const char *phone, const char *community, const char *skills, char *id, size_t cap)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"id_number\":\"%s\",\"phone\":\"%s\",%s\"community\":\"%s\","
             "\"skills\":[%s],\"free_slots\":[\"sat_am\"]}",
             name, id_number, phone, token ? "" : "\"password\":\"volunteer-1\",", community,
             skills);
    ts_http_reply_t r = ts_req(s, "POST", "/v1/volunteers", token, body);
    if (id) {
        const char *v =
            json_string_value(json_object_get(json_object_get(r.json, "volunteer"), "id"));
        snprintf(id, cap, "%s", v ? v : "");
    }
    return r;
}

long
ts_create_staff(ts_suite_t *s, const char *token, const char *phone, const char *role,
                const char *scope, char *id, size_t cap)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"工作人员\",\"phone\":\"%s\",\"password\":\"password-1\","
             "\"grants\":[{\"role\":\"%s\",\"scope\":\"%s\"}]}",
             phone, role, scope);
    ts_http_reply_t r = ts_req(s, "POST", "/v1/staff", token, body);
    long status = r.status;
    if (id)
        snprintf(id, cap, "%s", ts_json_str(&r, "id"));
    ts_http_reply_free(&r);
    return status;
}

char *
ts_staff(ts_suite_t *s, const char *token, const char *phone, const char *role, const char *scope)
{
    long status = ts_create_staff(s, token, phone, role, scope, NULL, 0);
    return status == 201 ? ts_login(s, phone, "password-1") : NULL;
}

// ---------------------------------------------------------------- events

int
ts_stream_events(ts_suite_t *s, ts_event_fn *fn, void *arg)
{
    redisContext *rc = ts_redis_connect(s);
    if (!rc)
        return -1;
    redisReply *rr = redisCommand(rc, "XRANGE %sevents - +", s->env.prefix);
    int rv = rr && rr->type == REDIS_REPLY_ARRAY ? 0 : -1;
    for (size_t i = 0; rv == 0 && i < rr->elements; i++) {
        redisReply *fields = rr->element[i]->element[1];
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
            if (strcmp(fields->element[f]->str, "data"))
                continue;
            const char *d = fields->element[f + 1]->str;
            size_t dlen = fields->element[f + 1]->len;
            Linli__Event *ev = linli__event__unpack(NULL, dlen, (const uint8_t *)d);
            fn(ev, d, dlen, arg);
            if (ev)
                linli__event__free_unpacked(ev, NULL);
        }
    }
    if (rv)
        fprintf(stderr, "test_suite: XRANGE %sevents failed\n", s->env.prefix);
    freeReplyObject(rr);
    redisFree(rc);
    return rv;
}

typedef struct {
    const char *subject, *type, *area; //  what to count, and the area it must carry
    const char *const *needles;        //  what it must not carry
    int found;                         //  events of type about subject
    int bad;                           //  of those, the ones with a wrong area or a needle
} s_count_t;

//  ts_event_fn of ts_stream_count_events.
static void
s_count_event(const Linli__Event *ev, const char *data, size_t len, void *arg)
{
    s_count_t *c = arg;
    if (!ev || strcmp(ev->type, c->type) || !ev->subject || strcmp(ev->subject, c->subject))
        return;
    c->found++;
    if (!ev->area || strcmp(ev->area, c->area)) {
        fprintf(stderr, "test_suite: %s of %s in area %s, not %s\n", c->type, c->subject,
                ev->area ? ev->area : "(none)", c->area);
        c->bad++;
    }
    for (size_t n = 0; c->needles && c->needles[n]; n++) {
        size_t nlen = strlen(c->needles[n]);
        for (size_t k = 0; k + nlen <= len; k++)
            if (memcmp(data + k, c->needles[n], nlen) == 0) {
                fprintf(stderr, "test_suite: %s of %s carries \"%s\"\n", c->type, c->subject,
                        c->needles[n]);
                c->bad++;
                break;
            }
    }
}

int
ts_stream_count_events(ts_suite_t *s, const char *subject, const char *type, const char *area,
                       const char *const *needles)
{
    s_count_t c = {subject, type, area, needles, 0, 0};
    for (int attempt = 0; attempt < 100 && !c.found; attempt++) {
        c.found = c.bad = 0;
        if (ts_stream_events(s, s_count_event, &c))
            return -1;
        if (c.bad)
            return -1;
        if (!c.found)
            ts_sleep_ms(50);
    }
    return c.found;
}
