//  gateway: HTTP/JSON -> route table -> codec -> broker -> service, and back.
#include "gateway.h"
#include "gateway_metrics.h"
#include "gateway_routes.h"

#include <czmq.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "linli_auth.h"
#include "linli_broker.h"
#include "linli_client.h"
#include "linli_codec.h"
#include "linli_log.h"
#include "linli_pg.h"
#include "linli_utf8.h"
#include "gateway_sessions.h"

const linli_cfg_entry_t gateway_cfg[] = {
    {"LINLI_HTTP_ADDR", LINLI_CFG_STRING, "127.0.0.1", 0, 0, false, "HTTP listen address"},
    {"LINLI_HTTP_PORT", LINLI_CFG_INT, "8080", 1, 65535, false, "HTTP listen port"},
    {"LINLI_BROKER_BIND", LINLI_CFG_STRING, "tcp://127.0.0.1:5555", 0, 0, false,
     "endpoint(s) the broker binds for workers, comma-separated"},
    {"LINLI_REQUEST_TIMEOUT_MS", LINLI_CFG_INT, "5000", 100, 120000, false,
     "how long a request may take before the gateway answers 504"},
    {"LINLI_MAX_BODY_BYTES", LINLI_CFG_INT, "1048576", 1024, 268435456, false,
     "largest request body accepted (413 beyond)"},
    {"LINLI_NO_WORKER_WAIT_MS", LINLI_CFG_INT, "1000", 0, 60000, false,
     "how long a request waits for a first worker of its service before 503"},
    {"LINLI_IMPORT_MAX_BYTES", LINLI_CFG_INT, "8388608", 1024, 1073741824, false,
     "largest bulk-import file in one request (413 beyond; ~80k rows). evhttp buffers any "
     "body up to this size before a route is known, so keep it modest; migrate a whole "
     "city with `linli-registry import-volunteers` or several files"},
    {"LINLI_BROKER_MAX_QUEUE", LINLI_CFG_INT, "20000", 1, 10000000, false,
     "requests queued per service before 503 overloaded"},
    {"LINLI_SESSION_CACHE_MS", LINLI_CFG_INT, "5000", 0, 60000, false,
     "how long the gateway trusts a session it read from Redis (never past the session's "
     "end; logouts and revocations reach it at once by Redis pub/sub); 0 turns the cache off"},
    {"LINLI_SESSION_CACHE_ENTRIES", LINLI_CFG_INT, "65536", 1, 16777216, false,
     "sessions the gateway's cache holds at most"},
    LINLI_CFG_END,
};

struct gateway_t {
    struct event_base *base;      //  borrowed
    struct evhttp *http;          //  owned
    zactor_t *broker;             //  owned: the broker actor
    linli_client_t *client;       //  owned: our DEALER to the broker
    struct event *client_ev;      //  owned: client fd readable
    struct event *drain_ev;       //  owned: made active after sends, drains the client once
    struct event *tick_ev;        //  owned: timeouts safety net
    gateway_sessions_t *sessions; //  owned: session look-ups (async Redis)
    gateway_metrics_t *metrics;   //  owned
    int64_t timeout_ms;           //  per request
    size_t max_body;              //  bytes
    size_t *route_max_body;       //  owned: per route, its body limit
    size_t n_routes;              //  gateway_routes_count(), counted once; also "unmatched"
    size_t inflight;              //  HTTP requests waiting for a reply
    char *stats;                  //  owned: the broker's last stats snapshot
    int64_t stats_at_us;          //  when it was taken (monotonic)
};

//  One HTTP request waiting for its service's answer.
typedef struct {
    gateway_t *gw;                //  borrowed
    struct evhttp_request *req;   //  borrowed until answered
    const gateway_route_t *route; //  borrowed from the table
    size_t route_index;           //  for metrics
    int64_t start_us;             //  monotonic
    char request_id[65];          //  X-Request-Id
    Linli__Request *request;      //  owned, for a retry; body/caller point into owned copies
    uint8_t *body;                //  owned packed request body
    Linli__Caller *caller;        //  owned (from the session) or NULL
    bool retried;                 //  one retry at most
} s_pending_t;

static const char *
s_route_name(size_t i)
{
    return gateway_routes[i].rpc;
}

// ---------------------------------------------------------------- answers

//  Send status with JSON text (len bytes, borrowed; NULL: none) and count it.
//  The request is gone after.
static void
s_send_text(gateway_t *self, struct evhttp_request *req, size_t route, int64_t start_us,
            const char *request_id, int status, const char *text, size_t len, int retry_after_s)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "application/json; charset=utf-8");
    if (request_id && *request_id)
        evhttp_add_header(out, "X-Request-Id", request_id);
    if (retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after_s);
        evhttp_add_header(out, "Retry-After", ra);
    }
    //  Straight into the request's own output buffer: no buffer of ours per answer.
    struct evbuffer *buf = evhttp_request_get_output_buffer(req);
    if (text)
        evbuffer_add(buf, text, len);
    else if (status >= 400)
        //  Out of memory building the answer: an error still carries its code.
        evbuffer_add_printf(buf, "{\"error\":{\"code\":\"%s\",\"message\":\"\"}}",
                            status >= 500 ? "internal" : "bad_request");
    const char *reason = status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    evhttp_send_reply(req, status, reason, NULL);
    gateway_metrics_observe(self->metrics, route, status, zclock_usecs() - start_us);
    if (status >= 500)
        linli_log_ctx(LINLI_LOG_WARN, request_id, NULL, "answered %d", status);
}

//  Send status with a JSON body (consumed) and count it. The request is gone after.
static void
s_send_json(gateway_t *self, struct evhttp_request *req, size_t route, int64_t start_us,
            const char *request_id, int status, json_t *body, int retry_after_s)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(body);
    s_send_text(self, req, route, start_us, request_id, status, text, text ? strlen(text) : 0,
                retry_after_s);
    free(text);
}

//  Bytes of s that are valid UTF-8, up to the first that is not: texts cut
//  to fit a buffer (a codec path, a service's message) may end mid-character,
//  and jansson refuses such a string outright.
static size_t
s_utf8_prefix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    uint32_t cp;
    for (size_t step; i < n && (step = linli_utf8_seq(p + i, n - i, &cp)); i += step)
        ;
    return i;
}

//  A JSON string of the valid UTF-8 prefix of s (NULL: ""); NULL only when memory runs out.
static json_t *
s_json_text(const char *s)
{
    s = s ? s : "";
    return json_stringn(s, s_utf8_prefix(s));
}

//  {"error":{"code", "message", "field"}}; whatever the texts hold, NULL only
//  when memory runs out.
static json_t *
s_error_json(const char *code, const char *message, const char *field)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", s_json_text(code && *code ? code : "error"));
    json_object_set_new(err, "message", s_json_text(message));
    if (field && *field)
        json_object_set_new(err, "field", s_json_text(field));
    json_t *top = json_object();
    if (json_object_set_new(top, "error", err)) {
        json_decref(top);
        return NULL;
    }
    return top;
}

static void
s_send_error(gateway_t *self, struct evhttp_request *req, size_t route, int64_t start_us,
             const char *request_id, int status, const char *code, const char *message,
             const char *field)
{
    s_send_json(self, req, route, start_us, request_id, status, s_error_json(code, message, field),
                0);
}

static void
s_pending_free(s_pending_t *p)
{
    if (!p)
        return;
    free(p->body);
    free(p->request);
    if (p->caller)
        linli__caller__free_unpacked(p->caller, NULL);
    free(p);
}

static void s_on_reply(void *arg, const Linli__Reply *reply);

static int
s_submit(s_pending_t *p)
{
    gateway_t *self = p->gw;
    uint64_t handle = linli_client_send(self->client, p->route->service, p->request,
                                        self->timeout_ms + 250, s_on_reply, p);
    //  The DEALER's fd is edge-triggered: drain after sending, once for every
    //  send of this pass of the event loop (a drain costs system calls).
    event_active(self->drain_ev, EV_READ, 0);
    return handle ? 0 : -1;
}

static void
s_on_reply(void *arg, const Linli__Reply *reply)
{
    s_pending_t *p = (s_pending_t *)arg;
    gateway_t *self = p->gw;
    //  A worker died holding it: it may have run. Only a request with an
    //  idempotency key is safe to send again (the service replays its reply).
    if (reply->status == 504 && reply->error_code && !strcmp(reply->error_code, "worker_lost") &&
        p->request->idempotency_key && *p->request->idempotency_key && !p->retried) {
        p->retried = true;
        linli_log_ctx(LINLI_LOG_INFO, p->request_id, NULL, "worker lost; retrying %s",
                      p->route->rpc);
        if (s_submit(p) == 0)
            return;
    }
    self->inflight--;
    int status = reply->status;
    if (status >= 400 || status < 100) {
        if (status < 100 || status > 599)
            status = 502;
        s_send_json(self, p->req, p->route_index, p->start_us, p->request_id, status,
                    s_error_json(reply->error_code ? reply->error_code : "error",
                                 reply->error_message, reply->error_field),
                    reply->has_retry_after_s ? reply->retry_after_s : 0);
        s_pending_free(p);
        return;
    }
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(p->route->reply, NULL, reply->has_body ? reply->body.len : 0,
                                  reply->has_body ? reply->body.data : (const uint8_t *)"");
    if (!msg) {
        linli_log_ctx(LINLI_LOG_ERROR, p->request_id, NULL, "%s answered an unreadable %s",
                      p->route->service, p->route->reply->name);
        s_send_error(self, p->req, p->route_index, p->start_us, p->request_id, 502, "bad_gateway",
                     "the service answered something unreadable", NULL);
    } else {
        //  NULL: a string that is not UTF-8 (or no memory); never an empty 200.
        //  Written straight to text: no JSON tree for every reply.
        size_t len = 0;
        char *out = linli_codec_to_json_text(msg, &len);
        protobuf_c_message_free_unpacked(msg, NULL);
        if (out) {
            s_send_text(self, p->req, p->route_index, p->start_us, p->request_id, status, out, len,
                        0);
            free(out);
        } else {
            linli_log_ctx(LINLI_LOG_ERROR, p->request_id, NULL,
                          "%s answered a %s that cannot be rendered as JSON", p->route->service,
                          p->route->reply->name);
            s_send_error(self, p->req, p->route_index, p->start_us, p->request_id, 502,
                         "bad_gateway", "the service answered something unreadable", NULL);
        }
    }
    s_pending_free(p);
}

// ---------------------------------------------------------------- built-ins

//  The broker's stats, at most 200 ms old: /healthz and /metrics are polled
//  often, and asking the broker thread each time costs a round trip.
static const char *
s_broker_stats(gateway_t *self)
{
    int64_t now = zclock_usecs();
    if (!self->stats || now - self->stats_at_us > 200000) {
        char *fresh = linli_broker_stats(self->broker);
        if (fresh) {
            free(self->stats);
            self->stats = fresh;
            self->stats_at_us = now;
        }
    }
    return self->stats;
}

static void
s_healthz(gateway_t *self, struct evhttp_request *req, int64_t start_us, const char *rid)
{
    const char *stats = s_broker_stats(self);
    json_t *broker = stats ? json_loads(stats, 0, NULL) : NULL;
    json_t *body = json_pack("{s:s, s:o, s:I}", "status", broker ? "ok" : "degraded", "broker",
                             broker ? broker : json_null(), "inflight", (json_int_t)self->inflight);
    s_send_json(self, req, self->n_routes, start_us, rid, broker ? 200 : 503, body, 0);
}

static void
s_metrics(gateway_t *self, struct evhttp_request *req, int64_t start_us, const char *rid)
{
    gateway_sessions_stats_t sessions;
    gateway_sessions_stats(self->sessions, &sessions);
    char *text =
        gateway_metrics_render(self->metrics, s_route_name, s_broker_stats(self), &sessions);
    if (text)
        evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    free(text);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "text/plain; version=0.0.4");
    evhttp_add_header(out, "X-Request-Id", rid);
    evhttp_send_reply(req, 200, "OK", NULL);
    gateway_metrics_observe(self->metrics, self->n_routes, 200, zclock_usecs() - start_us);
}

// ---------------------------------------------------------------- requests

//  Length of s when it is visible ASCII only ('!' to '~'), else 0.
static size_t
s_visible_ascii(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '!' || s[n] > '~')
            return 0;
    return n;
}

static const char *
s_verb(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    default:
        return "OTHER";
    }
}

//  A client's X-Request-Id is kept when it is short and plain; else we make one.
static void
s_request_id(struct evhttp_request *req, char out[65])
{
    const char *in = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
    if (in && *in && strlen(in) <= 64 &&
        strspn(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789-_.") == strlen(in)) {
        snprintf(out, 65, "%s", in);
        return;
    }
    unsigned char raw[12];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, 65, raw, sizeof raw);
}

//  Query string into params (string values). -1 on a repeated or unusable key.
static int
s_query_params(const char *query, json_t *params, char *bad, size_t cap)
{
    if (!query || !*query)
        return 0;
    struct evkeyvalq q;
    q.tqh_first = NULL;
    q.tqh_last = &q.tqh_first;
    if (evhttp_parse_query_str(query, &q) != 0) {
        snprintf(bad, cap, "%s", "");
        return -1;
    }
    int rc = 0;
    for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
        json_t *v = json_string(kv->value);
        if (!v || json_object_get(params, kv->key)) {
            snprintf(bad, cap, "%s", kv->key);
            json_decref(v);
            rc = -1;
            break;
        }
        json_object_set_new(params, kv->key, v);
    }
    evhttp_clear_headers(&q);
    return rc;
}

//  v as a protobuf varint into out (room for 10 bytes); its length.
static size_t
s_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

//  Append field `name` (a bytes field of desc) holding data to an already
//  packed message: protobuf allows fields in any order, so tag + length +
//  data after the rest is the same message. Returns the grown buffer (the
//  old one is consumed) and its new length, or NULL (packed is untouched
//  and still the caller's).
static uint8_t *
s_append_bytes_field(const ProtobufCMessageDescriptor *desc, const char *name, uint8_t *packed,
                     size_t *len, const uint8_t *data, size_t dlen)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, name);
    if (!f || f->type != PROTOBUF_C_TYPE_BYTES)
        return NULL;
    uint8_t head[20];
    size_t h = s_varint(head, ((uint64_t)f->id << 3) | 2); //  wire type 2: length-delimited
    h += s_varint(head + h, dlen);
    uint8_t *grown = realloc(packed, *len + h + dlen);
    if (!grown)
        return NULL; //  packed is still the caller's to free
    memcpy(grown + *len, head, h);
    memcpy(grown + *len + h, data, dlen);
    *len += h + dlen;
    return grown;
}

//  A request between its route match and its session look-up.
typedef struct {
    gateway_t *gw;                //  borrowed
    struct evhttp_request *req;   //  borrowed until answered
    const gateway_route_t *route; //  from the table
    size_t ri;                    //  its index
    int64_t start;                //  monotonic µs
    char rid[65];                 //  X-Request-Id
    const char *verb;             //  static string
    const struct evhttp_uri *uri; //  lives with req
    json_t *params;               //  owned: path parameters so far
    bool had_authz;               //  an Authorization header came
} s_stage_t;

static void s_proceed(s_stage_t *st, int rc, Linli__Caller *caller, const char *session_hash);
static void s_on_session(void *arg, int rc, Linli__Caller *caller, const char *hash);

static void
s_on_request(struct evhttp_request *req, void *arg)
{
    gateway_t *self = (gateway_t *)arg;
    int64_t start = zclock_usecs();
    size_t unmatched = self->n_routes;
    char rid[65];
    s_request_id(req, rid);

    const char *verb = s_verb(evhttp_request_get_command(req));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) {
        s_send_error(self, req, unmatched, start, rid, 400, "bad_request", "no path", NULL);
        return;
    }
    if (!strcmp(verb, "GET") && !strcmp(path, "/healthz")) {
        s_healthz(self, req, start, rid);
        return;
    }
    if (!strcmp(verb, "GET") && !strcmp(path, "/metrics")) {
        s_metrics(self, req, start, rid);
        return;
    }

    json_t *params = json_object();
    const gateway_route_t *route = NULL;
    gateway_match_t m = gateway_routes_match(verb, path, &route, params);
    if (m != GATEWAY_ROUTE_FOUND) {
        json_decref(params);
        if (m == GATEWAY_ROUTE_NO_METHOD)
            s_send_error(self, req, unmatched, start, rid, 405, "method_not_allowed",
                         "this path does not take that method", NULL);
        else if (m == GATEWAY_ROUTE_BAD_PATH)
            s_send_error(self, req, unmatched, start, rid, 400, "invalid_path",
                         "a path parameter is not valid", NULL);
        else
            s_send_error(self, req, unmatched, start, rid, 404, "not_found", "no such route", NULL);
        return;
    }
    size_t ri = (size_t)(route - gateway_routes);

    //  Who is asking: looked up in Redis without blocking the loop; the
    //  request goes on in s_proceed when the answer comes.
    s_stage_t *st = calloc(1, sizeof *st);
    if (!st) {
        json_decref(params);
        s_send_error(self, req, ri, start, rid, 503, "overloaded", "out of memory", NULL);
        return;
    }
    st->gw = self;
    st->req = req;
    st->route = route;
    st->ri = ri;
    st->start = start;
    memcpy(st->rid, rid, sizeof rid);
    st->verb = verb;
    st->uri = uri;
    st->params = params;
    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    st->had_authz = authz != NULL;
    if (authz && !strncasecmp(authz, "Bearer ", 7) && strlen(authz + 7) > 0 &&
        strlen(authz + 7) <= 128) {
        gateway_sessions_lookup(self->sessions, authz + 7, s_on_session, st);
        return;
    }
    s_proceed(st, 0, NULL, "");
}

static void
s_on_session(void *arg, int rc, Linli__Caller *caller, const char *hash)
{
    s_proceed((s_stage_t *)arg, rc, caller, hash);
}

//  The rest of a request once its caller is known: rc -1 when sessions could
//  not be checked; caller (consumed) NULL when there is no valid session.
static void
s_proceed(s_stage_t *st, int rc, Linli__Caller *caller, const char *session_hash)
{
    gateway_t *self = st->gw;
    struct evhttp_request *req = st->req;
    const gateway_route_t *route = st->route;
    size_t ri = st->ri;
    int64_t start = st->start;
    char rid[65];
    memcpy(rid, st->rid, sizeof rid);
    const char *verb = st->verb;
    const struct evhttp_uri *uri = st->uri;
    json_t *params = st->params;
    bool authz = st->had_authz;
    free(st);
    char session[65];
    snprintf(session, sizeof session, "%s", session_hash ? session_hash : "");

    //  Refusals before the request is built: what to answer, then one exit
    //  (refuse) that frees what this stage holds.
    json_t *body = NULL;
    int status;
    const char *code, *message, *field = NULL;
    char msg[256];

    //  A bad token on a public route is ignored, elsewhere 401.
    bool public_route = !strcmp(route->access, "public");
    if (rc != 0 && !public_route) {
        status = 503;
        code = "session_store_unavailable";
        message = "sessions cannot be checked right now";
        goto refuse;
    }
    if (!public_route && !caller) {
        status = 401;
        code = authz ? "invalid_token" : "unauthenticated";
        message = authz ? "the token is unknown or expired" : "log in first";
        goto refuse;
    }
    if (!public_route && !linli_auth_has_role(caller, route->access)) {
        status = 403;
        code = "forbidden";
        message = "your role may not do this";
        goto refuse;
    }

    //  Body: size, then a JSON object, or raw bytes for a raw-body route.
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > self->route_max_body[ri]) {
        status = 413;
        code = "too_large";
        message = "the request body is too large";
        goto refuse;
    }
    if (len > 0 && !strcmp(verb, "GET")) {
        status = 400;
        code = "unexpected_body";
        message = "GET takes its parameters in the path and query, not a body";
        goto refuse;
    }
    if (len > 0 && !route->raw_body) {
        json_error_t jerr;
        body = json_loadb((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len,
                          JSON_REJECT_DUPLICATES, &jerr);
        if (!body || !json_is_object(body)) {
            snprintf(msg, sizeof msg, "the body must be a JSON object%s%s", body ? "" : ": ",
                     body ? "" : jerr.text);
            status = 400;
            code = "invalid_json";
            message = msg;
            goto refuse;
        }
    }
    char bad[128] = "";
    if (s_query_params(uri ? evhttp_uri_get_query(uri) : NULL, params, bad, sizeof bad) ||
        (route->raw_body && json_object_get(params, route->raw_body) &&
         snprintf(bad, sizeof bad, "%s", route->raw_body))) {
        //  A raw-body route's field comes from the body only.
        status = 400;
        code = "invalid_query";
        message = "the query string is malformed or repeats a parameter";
        field = bad;
        goto refuse;
    }
    linli_codec_error_t cerr;
    ProtobufCMessage *msg_in = linli_codec_from_json(route->request, body, params, &cerr);
    json_decref(body);
    json_decref(params);
    body = params = NULL;
    if (!msg_in) {
        status = cerr.status ? cerr.status : 400;
        code = cerr.code;
        message = cerr.message;
        field = cerr.field;
        goto refuse;
    }

    s_pending_t *p = calloc(1, sizeof *p);
    Linli__Request *request = calloc(1, sizeof *request);
    size_t blen = protobuf_c_message_get_packed_size(msg_in);
    uint8_t *packed = malloc(blen ? blen : 1);
    if (!p || !request || !packed) {
        free(p);
        free(request);
        free(packed);
        protobuf_c_message_free_unpacked(msg_in, NULL);
        goto out_of_memory;
    }
    protobuf_c_message_pack(msg_in, packed);
    protobuf_c_message_free_unpacked(msg_in, NULL);
    if (route->raw_body && len > 0) {
        //  The raw body is appended as its field, packed by hand: no copy
        //  into the message, no base64 round trip.
        uint8_t *more = s_append_bytes_field(route->request, route->raw_body, packed, &blen,
                                             evbuffer_pullup(in, (ev_ssize_t)len), len);
        if (!more) {
            free(packed);
            free(p);
            free(request);
            goto out_of_memory;
        }
        packed = more;
    }

    linli__request__init(request);
    p->gw = self;
    p->req = req;
    p->route = route;
    p->route_index = ri;
    p->start_us = start;
    memcpy(p->request_id, rid, sizeof rid);
    p->request = request;
    p->body = packed;
    if (caller) {
        //  The client's address and the session hash ride with the caller.
        p->caller = caller;
    } else {
        p->caller = calloc(1, sizeof(Linli__Caller));
        if (p->caller)
            linli__caller__init(p->caller);
    }
    char *host = NULL;
    ev_uint16_t port = 0;
    static char empty[] = "";
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon)
        evhttp_connection_get_peer(evcon, &host, &port);
    //  Strings we add to the caller are freed by linli__caller__free_unpacked,
    //  so they must be malloc'd copies.
    if (p->caller) {
        if (caller && *session) {
            free(p->caller->session);
            p->caller->session = strdup(session);
        }
        free(p->caller->client_addr);
        p->caller->client_addr = strdup(host ? host : empty);
    }
    request->method = (char *)route->rpc;
    request->caller = p->caller;
    request->request_id = p->request_id;
    request->has_deadline_ms = true;
    request->deadline_ms = linli_now_ms() + self->timeout_ms;
    request->has_body = true;
    request->body.data = packed;
    request->body.len = blen;
    const char *idem = evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
    if (idem && strcmp(verb, "GET")) {
        //  Visible ASCII only: the key is stored as text by the service, and a
        //  byte that is not UTF-8 made PostgreSQL fail the insert (a 503).
        size_t ilen = s_visible_ascii(idem);
        if (ilen == 0 || ilen > 128) {
            s_pending_free(p);
            s_send_error(self, req, ri, start, rid, 400, "invalid_idempotency_key",
                         "Idempotency-Key must be 1 to 128 visible ASCII characters", NULL);
            return;
        }
        request->idempotency_key = (char *)idem; //  lives as long as req
    }
    self->inflight++;
    if (s_submit(p) != 0) {
        self->inflight--;
        s_pending_free(p);
        s_send_error(self, req, ri, start, rid, 503, "broker_unavailable",
                     "the request could not be queued", NULL);
    }
    return;

out_of_memory:
    status = 503;
    code = "overloaded";
    message = "out of memory";
refuse:
    json_decref(body);
    json_decref(params);
    if (caller)
        linli__caller__free_unpacked(caller, NULL);
    s_send_error(self, req, ri, start, rid, status, code, message, field);
}

// ---------------------------------------------------------------- events

static void
s_on_client(evutil_socket_t fd, short events, void *arg)
{
    (void)fd;
    (void)events;
    linli_client_process(((gateway_t *)arg)->client);
}

//  The periodic tick: client timeouts and session look-up timeouts.
static void
s_on_tick(evutil_socket_t fd, short events, void *arg)
{
    gateway_t *self = (gateway_t *)arg;
    s_on_client(fd, events, arg);
    gateway_sessions_tick(self->sessions);
}

gateway_t *
gateway_new(struct event_base *base, const linli_config_t *config)
{
    if (sodium_init() < 0)
        return NULL;
    gateway_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->base = base;
    self->timeout_ms = linli_config_int(config, "LINLI_REQUEST_TIMEOUT_MS");
    self->max_body = (size_t)linli_config_int(config, "LINLI_MAX_BODY_BYTES");
    size_t largest = self->max_body;
    self->n_routes = gateway_routes_count();
    self->route_max_body = calloc(self->n_routes + 1, sizeof(size_t));
    if (!self->route_max_body) {
        free(self);
        return NULL;
    }
    for (size_t i = 0; i < self->n_routes; i++) {
        const char *cfg = gateway_routes[i].max_body_cfg;
        self->route_max_body[i] = cfg ? (size_t)linli_config_int(config, cfg) : self->max_body;
        if (self->route_max_body[i] > largest)
            largest = self->route_max_body[i];
    }

    //  The broker binds the workers' endpoint(s) and a private inproc one for us.
    char inproc[64], endpoints[1024];
    snprintf(inproc, sizeof inproc, "inproc://linli-gateway-%p", (void *)self);
    snprintf(endpoints, sizeof endpoints, "%s", linli_config_str(config, "LINLI_BROKER_BIND"));
    //  Clients only on our inproc endpoint: requests carry the caller the
    //  services trust, so nobody on the workers' TCP port may send one.
    linli_broker_opts_t bopts = {
        .endpoints = endpoints,
        .client_endpoints = inproc,
        .heartbeat_ms = (int)linli_config_int(config, "LINLI_HEARTBEAT_MS"),
        .liveness = 3,
        .no_worker_wait_ms = (int)linli_config_int(config, "LINLI_NO_WORKER_WAIT_MS"),
        .max_queue = (int)linli_config_int(config, "LINLI_BROKER_MAX_QUEUE"),
    };
    self->broker = linli_broker_new(&bopts);
    self->client = self->broker ? linli_client_new(inproc) : NULL;
    gateway_sessions_opts_t sopts = {
        .host = linli_config_str(config, "LINLI_REDIS_HOST"),
        .port = (int)linli_config_int(config, "LINLI_REDIS_PORT"),
        .socket = linli_config_str(config, "LINLI_REDIS_SOCKET"),
        .prefix = linli_config_str(config, "LINLI_REDIS_PREFIX"),
        .timeout_ms = (int)linli_config_int(config, "LINLI_REDIS_TIMEOUT_MS"),
        .cache_ms = (int)linli_config_int(config, "LINLI_SESSION_CACHE_MS"),
        .cache_entries = (size_t)linli_config_int(config, "LINLI_SESSION_CACHE_ENTRIES"),
    };
    self->sessions = gateway_sessions_new(base, &sopts);
    self->metrics = gateway_metrics_new(self->n_routes);
    self->http = evhttp_new(base);
    if (!self->broker || !self->client || !self->sessions || !self->metrics || !self->http) {
        linli_error("gateway could not start its broker, client, session look-ups or HTTP server");
        gateway_destroy(&self);
        return NULL;
    }
    self->client_ev =
        event_new(base, linli_client_fd(self->client), EV_READ | EV_PERSIST, s_on_client, self);
    self->drain_ev = event_new(base, -1, 0, s_on_client, self);
    //  The fd is edge-triggered and timeouts need a clock: a short tick covers both.
    self->tick_ev = event_new(base, -1, EV_PERSIST, s_on_tick, self);
    struct timeval tick = {0, 20000};
    if (!self->client_ev || !self->drain_ev || !self->tick_ev) {
        gateway_destroy(&self);
        return NULL;
    }
    event_add(self->client_ev, NULL);
    event_add(self->tick_ev, &tick);

    evhttp_set_allowed_methods(self->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                               EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
                                               EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    //  Bodies a little over the limit reach us and get our JSON 413; far
    //  over it evhttp refuses them itself without reading them.
    evhttp_set_max_body_size(self->http, (ev_ssize_t)largest + (ev_ssize_t)self->max_body);
    evhttp_set_max_headers_size(self->http, 16384);
    evhttp_set_timeout(self->http, 60);
    evhttp_set_gencb(self->http, s_on_request, self);
    const char *addr = linli_config_str(config, "LINLI_HTTP_ADDR");
    int port = (int)linli_config_int(config, "LINLI_HTTP_PORT");
    if (evhttp_bind_socket(self->http, addr, (ev_uint16_t)port) != 0) {
        linli_error("gateway cannot listen on %s:%d", addr, port);
        gateway_destroy(&self);
        return NULL;
    }
    linli_info("gateway listening on http://%s:%d, broker on %s", addr, port,
               linli_config_str(config, "LINLI_BROKER_BIND"));
    return self;
}

void
gateway_destroy(gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_t *self = *self_p;
    //  Look-ups still waiting are answered (503) while their requests live.
    gateway_sessions_destroy(&self->sessions);
    if (self->http)
        evhttp_free(self->http);
    if (self->tick_ev)
        event_free(self->tick_ev);
    if (self->client_ev)
        event_free(self->client_ev);
    if (self->drain_ev)
        event_free(self->drain_ev);
    linli_client_destroy(&self->client);
    zactor_destroy(&self->broker);
    gateway_metrics_destroy(&self->metrics);
    free(self->stats);
    free(self->route_max_body);
    free(self);
    *self_p = NULL;
}
