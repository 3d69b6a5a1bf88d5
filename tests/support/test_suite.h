//  test_suite: the whole suite as processes for end-to-end tests — the
//  gateway and registry workers against the run's Redis and PostgreSQL (a
//  fresh database and key prefix per suite) — and an HTTP client (libcurl).
#ifndef TEST_SUITE_H
#define TEST_SUITE_H

#include <hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

#include "linli/events.pb-c.h"
#include "test_servers.h"

#define TS_MAX_PROCS 8
#define TS_ADMIN_PHONE "13800000001"
#define TS_ADMIN_PASSWORD "admin-pass-1"

typedef struct {
    ts_env_t env;                 //  servers, database, key prefix
    bool private_servers;         //  env.redis/pg are ours: stop them at the end
    int http_port;                //  gateway HTTP
    int broker_port;              //  gateway broker (workers connect)
    char base_url[64];            //  "http://127.0.0.1:<port>"
    char logdir[256];             //  process logs (kept for a failing test)
    pid_t gateway;                //  0 when not running
    pid_t registry[TS_MAX_PROCS]; //  0 when not running
    char vars[32][640];           //  NAME=VALUE of the suite's environment
    const char *envp[33];         //  pointers into vars, NULL-ended
} ts_suite_t;

//  Start a suite named name: seed the demo areas and the bootstrap admin,
//  start the gateway and n_registry workers, wait until all are connected.
//  extra: more NAME=VALUE entries (may be NULL). 0 or -1.
int ts_suite_start(ts_suite_t *s, const char *name, int n_registry, const char *const *extra);

//  ts_suite_start, then log the bootstrap admin in: its malloc'd token, or NULL.
char *ts_suite_start_admin(ts_suite_t *s, const char *name, int n_registry,
                           const char *const *extra);

//  The same against private Redis and PostgreSQL (for tests that kill them).
int ts_suite_start_private(ts_suite_t *s, const char *name, int n_registry,
                           const char *const *extra);

//  Add one NAME=VALUE (printf format) to the suite's environment, for the
//  processes started after; a name given again overrides the earlier value.
void ts_suite_var(ts_suite_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//  Start one more registry worker in slot i; its pid or -1.
pid_t ts_suite_start_registry(ts_suite_t *s, int i);
//  Start the gateway (again); its pid or -1.
pid_t ts_suite_start_gateway(ts_suite_t *s);

//  Wait until the gateway's /healthz counts n workers of service. 0 or -1.
int ts_suite_wait_workers(ts_suite_t *s, const char *service, int n, int timeout_ms);

//  Stop every process (SIGTERM) and, for private servers, the servers.
void ts_suite_stop(ts_suite_t *s);

typedef struct {
    long status;          //  HTTP status; 0 when the request failed
    char *body;           //  owned raw body
    json_t *json;         //  owned parsed body, NULL when not JSON
    char retry_after[16]; //  Retry-After header
    char request_id[80];  //  X-Request-Id header
} ts_http_reply_t;

//  One HTTP request to the gateway. token and body may be NULL; headers is a
//  NULL-ended list of "Name: value" (may be NULL). 0, or -1 on a transport error.
int ts_http(ts_suite_t *s, const char *method, const char *path, const char *token,
            const char *body, const char *const *headers, ts_http_reply_t *out);
void ts_http_reply_free(ts_http_reply_t *r);

//  ts_http without extra headers, the reply returned (status 0 on a
//  transport error); the caller frees it.
ts_http_reply_t ts_req(ts_suite_t *s, const char *method, const char *path, const char *token,
                       const char *body);

//  error.code of a reply, or "".
const char *ts_error_code(const ts_http_reply_t *r);
//  error.field of a reply, or "".
const char *ts_error_field(const ts_http_reply_t *r);

//  A string member of the reply's JSON object, or "".
const char *ts_json_str(const ts_http_reply_t *r, const char *key);

//  POST /v1/auth/login: the reply (caller frees it).
ts_http_reply_t ts_login_reply(ts_suite_t *s, const char *phone, const char *password);
//  Log in; returns a malloc'd token or NULL.
char *ts_login(ts_suite_t *s, const char *phone, const char *password);

//  POST /v1/auth/password (set a password with a one-time code): the reply
//  (caller frees it).
ts_http_reply_t ts_set_password(ts_suite_t *s, const char *phone, const char *code,
                                const char *password);

//  The status of one request (ts_req), 0 when it failed.
long ts_status(ts_suite_t *s, const char *method, const char *path, const char *token,
               const char *body);
//  GET /v1/me as token: the status.
long ts_me_status(ts_suite_t *s, const char *token);

//  POST /v1/volunteers/{volunteer_id}/password-code as token, the reply
//  asserted 201 with an 8-character code: the one-time code into code.
void ts_password_code(ts_suite_t *s, const char *token, const char *volunteer_id, char code[9]);

// ---------------------------------------------------------------- gateway checks
//  These fail the running cmocka test when what they read is not there.

//  The value on the gateway's /metrics line that starts with line_prefix
//  (the metric's name, its labels and the space): a "# HELP" line never matches.
long ts_metric(ts_suite_t *s, const char *line_prefix);
//  token is refused at once, ten times in a row, as an unknown token
//  (401 invalid_token): its session has ended.
void ts_assert_token_ended(ts_suite_t *s, const char *token);

//  The gateway's count of session look-ups answered from its cache.
long ts_session_cache_hits(ts_suite_t *s);
//  Wait (5 s at most) until the gateway answers token's session from its
//  cache, every GET /v1/me meanwhile answering 200.
void ts_wait_session_cached(ts_suite_t *s, const char *token);

// ---------------------------------------------------------------- servers from outside

//  A new connection to the suite's Redis (2 s timeout), or NULL (said on
//  stderr) when it cannot connect; caller frees it with redisFree.
redisContext *ts_redis_connect(ts_suite_t *s);

//  The Redis key of token's session (<prefix>session:<hash of token>).
void ts_session_key(ts_suite_t *s, const char *token, char *out, size_t cap);
//  The Redis key of the set listing account_id's sessions
//  (<prefix>sessions:<account id>).
void ts_account_sessions_key(ts_suite_t *s, const char *account_id, char *out, size_t cap);

//  One number from SQL: the first value of the one row, the query asserted
//  PGRES_TUPLES_OK with exactly one row (it fails the running cmocka test
//  otherwise).
long ts_sql_long(PGconn *db, const char *sql);

// ---------------------------------------------------------------- registry data

//  An 18-character ID number region (6 digits), birth (YYYYMMDD), seq % 1000,
//  with a correct GB 11643 check digit.
void ts_id_number(const char *region, const char *birth, int seq, char out[19]);

//  POST /v1/volunteers as token (NULL: self sign-up with password
//  "volunteer-1"); skills are JSON array members ("\"repair\""), free slot
//  sat_am. The reply (caller frees it); the volunteer's id into id (may be NULL).
ts_http_reply_t ts_sign_up(ts_suite_t *s, const char *token, const char *name,
                           const char *id_number, const char *phone, const char *community,
                           const char *skills, char *id, size_t cap);

//  POST /v1/staff as token: password "password-1", one grant of role over
//  scope. The HTTP status; the account's id into id (may be NULL).
long ts_create_staff(ts_suite_t *s, const char *token, const char *phone, const char *role,
                     const char *scope, char *id, size_t cap);
//  ts_create_staff, then log the account in: a malloc'd token, or NULL.
char *ts_staff(ts_suite_t *s, const char *token, const char *phone, const char *role,
               const char *scope);

// ---------------------------------------------------------------- events

//  One entry of the event stream: its data bytes, unpacked into ev (NULL
//  when they do not unpack).
typedef void(ts_event_fn)(const Linli__Event *ev, const char *data, size_t len, void *arg);

//  Read the suite's event stream once (XRANGE) and call fn on every entry. 0 or -1.
int ts_stream_events(ts_suite_t *s, ts_event_fn *fn, void *arg);

//  How many events of type about subject the stream holds, waiting (5 s at
//  most) for the relay to publish one; -1 (said on stderr) when the stream
//  cannot be read or one of them is not in area or carries one of needles
//  (NULL-ended, may be NULL) in its bytes.
int ts_stream_count_events(ts_suite_t *s, const char *subject, const char *type, const char *area,
                           const char *const *needles);

#endif
