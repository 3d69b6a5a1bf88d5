//  linli_worker: the service side of the broker protocol (docs/broker.md).
//
//  One DEALER per broker endpoint (one DEALER connected to several brokers
//  would round-robin its replies among them). Requests are handled one at a
//  time inside the loop: the linli_request_t lives on the loop's stack, and
//  the envelope and body are unpacked into an arena, so the common request
//  costs no malloc for unpacking. The arena is reset whenever no request is
//  held for a batch: a held request keeps what was unpacked for it there
//  until its batch has run, at the end of the drain.
#include "linli_worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_codec.h"
#include "linli_arena.h"
#include "linli_config.h"
#include "linli_frames.h"
#include "linli_log.h"

#define S_TAG "LNLW1"
#define S_TAG_LEN 5
#define S_ARENA_SIZE (256 * 1024) //  a full batch of held requests, and then some
#define S_HEALTH "sys.Health"     //  answered by every worker itself

//  One broker connection.
typedef struct {
    linli_worker_t *owner; //  back pointer
    char *endpoint;        //  owned
    zsock_t *sock;         //  the DEALER; NULL when it could not be made
    zsock_t *retired;      //  the previous DEALER, destroyed at the next tick
    int64_t expiry;        //  monotonic ms: the broker counts as gone after this
    int64_t ready_at;      //  monotonic ms of the last READY, 0 for none yet
} s_link_t;

struct linli_worker_t {
    zloop_t *loop;       //  borrowed
    char *service;       //  owned
    size_t service_len;  //  strlen(service)
    char credit[16];     //  the credit as READY carries it
    int heartbeat_ms;    //  heartbeat interval
    int liveness;        //  heartbeats missed before reconnecting
    zhashx_t *routes;    //  method -> route (borrowed from opts.routes)
    void *handler_self;  //  borrowed
    s_link_t *links;     //  owned array
    size_t nlinks;       //  its length
    int timer_id;        //  the heartbeat timer
    uint64_t handled;    //  requests answered
    linli_arena_t arena; //  unpacking memory; reset while nothing is held
    size_t nheld;        //  requests held in batches (their memory is in the arena)
    uint8_t *scratch;    //  owned; packed reply bodies
    size_t scratch_cap;  //  its size
    zhashx_t *batches;   //  method -> s_batch_t (owned values)
};

struct linli_request_t {
    linli_worker_t *worker;         //  the worker handling it
    s_link_t *link;                 //  where the reply goes
    zmq_msg_t *rid;                 //  the broker's request-id (consumed by the reply)
    const Linli__Request *envelope; //  NULL when the envelope was unreadable
    bool replied;                   //  true once answered
    int retry_after_s;              //  sent with the next error reply when > 0
};

static const Linli__Caller s_no_caller = LINLI__CALLER__INIT;

//  A request held for its batch: everything it needs outlives the drain.
typedef struct {
    linli_request_t request; //  .rid points at rid, .envelope at env
    zmq_msg_t rid;           //  the broker's request-id, moved out of the frame
    Linli__Request *env;     //  owned (unpacked in the worker's arena)
    ProtobufCMessage *msg;   //  owned (likewise)
} s_held_t;

//  One batched method and the requests waiting for its next call.
typedef struct {
    const linli_batch_route_t *route; //  borrowed from opts
    s_held_t *held;                   //  owned array of max entries, n in use
    size_t n, max;                    //  waiting, and the most per call
} s_batch_t;

// ---------------------------------------------------------------- sending

//  Send [tag][cmd][service][""][body] on link. 0, or -1 (dropped) when the
//  socket cannot take it.
static int
s_send_cmd(s_link_t *link, const char *cmd, const char *body)
{
    linli_worker_t *self = link->owner;
    if (!link->sock)
        return -1;
    void *handle = zsock_resolve(link->sock);
    //  Only the first frame can fail: the rest of a message always follows it.
    if (zmq_send(handle, S_TAG, S_TAG_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    zmq_send(handle, cmd, strlen(cmd), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(handle, self->service, self->service_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(handle, body, strlen(body), ZMQ_DONTWAIT);
    return 0;
}

//  Pack reply and send it for request: once only, later replies are refused.
static int
s_send_reply(linli_request_t *request, const Linli__Reply *reply)
{
    linli_worker_t *self = request->worker;
    if (request->replied) {
        linli_log_ctx(LINLI_LOG_ERROR, linli_request_id(request), NULL,
                      "worker: second reply to %s ignored", linli_request_method(request));
        return 0;
    }
    request->replied = true;
    self->handled++;
    s_link_t *link = request->link;
    if (!link->sock)
        return 0;
    void *handle = zsock_resolve(link->sock);
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, linli__reply__get_packed_size(reply)) == -1) {
        linli_log_ctx(LINLI_LOG_ERROR, linli_request_id(request), NULL,
                      "worker: reply to %s dropped: %s", linli_request_method(request),
                      zmq_strerror(errno));
        return 0;
    }
    linli__reply__pack(reply, zmq_msg_data(&body));
    if (zmq_send(handle, S_TAG, S_TAG_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        linli_log_ctx(LINLI_LOG_WARN, linli_request_id(request), NULL,
                      "worker: reply to %s dropped: %s", linli_request_method(request),
                      zmq_strerror(errno));
        zmq_msg_close(&body);
        return 0;
    }
    zmq_send(handle, "REP", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(handle, self->service, self->service_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_msg_send(request->rid, handle, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_msg_send(&body, handle, ZMQ_DONTWAIT);
    zmq_msg_close(&body);
    return 0;
}

//  Answer request with an error: status, code, message, and field (may be NULL).
static int
s_fail(linli_request_t *request, int status, const char *code, const char *field,
       const char *message)
{
    if (request->replied)
        return s_send_reply(request, NULL);
    linli_log_ctx(status >= 500 ? LINLI_LOG_ERROR : LINLI_LOG_INFO, linli_request_id(request), NULL,
                  "worker: %s %d %s%s%s: %s",
                  *linli_request_method(request) ? linli_request_method(request) : "(no method)",
                  status, code, field ? " " : "", field ? field : "", message);
    Linli__Reply reply = LINLI__REPLY__INIT;
    reply.status = status;
    reply.error_code = (char *)code;
    reply.error_message = (char *)message;
    reply.error_field = (char *)field;
    if (request->retry_after_s > 0) {
        reply.has_retry_after_s = true;
        reply.retry_after_s = request->retry_after_s;
    }
    return s_send_reply(request, &reply);
}

// ---------------------------------------------------------------- requests

//  Run every batch that holds requests, answer what the handler left
//  unanswered, free them.
static void
s_batches_run(linli_worker_t *self)
{
    if (!self->batches)
        return;
    for (s_batch_t *b = zhashx_first(self->batches); b; b = zhashx_next(self->batches)) {
        if (b->n == 0)
            continue;
        linli_request_t *requests[b->max];
        const ProtobufCMessage *msgs[b->max];
        size_t n = b->n;
        for (size_t i = 0; i < n; i++) {
            requests[i] = &b->held[i].request;
            msgs[i] = b->held[i].msg;
        }
        if (linli_log_enabled(LINLI_LOG_DEBUG))
            linli_debug("worker: %zu %s requests in one batch", n, b->route->method);
        b->route->fn(self->handler_self, requests, msgs, n);
        for (size_t i = 0; i < n; i++) {
            s_held_t *h = &b->held[i];
            if (!h->request.replied)
                s_fail(&h->request, 500, "internal", NULL,
                       "The service could not handle the request.");
            //  Frees only what did not fit in the arena.
            protobuf_c_message_free_unpacked(h->msg, &self->arena.base);
            linli__request__free_unpacked(h->env, &self->arena.base);
            zmq_msg_close(&h->rid);
        }
        self->nheld -= n;
        b->n = 0;
    }
}

//  Keep a valid request of a batched method for the batch's next call: its
//  envelope and body (env, msg: consumed, in the arena, which is not reset
//  while they are held) and its request-id, moved out of the frame.
static void
s_hold(linli_worker_t *self, s_batch_t *batch, s_link_t *link, zmq_msg_t *rid, Linli__Request *env,
       ProtobufCMessage *msg)
{
    s_held_t *h = &batch->held[batch->n++];
    self->nheld++;
    h->env = env;
    h->msg = msg;
    zmq_msg_init(&h->rid);
    zmq_msg_move(&h->rid, rid);
    h->request = (linli_request_t){.worker = self, .link = link, .rid = &h->rid, .envelope = env};
    if (batch->n == batch->max)
        s_batches_run(self);
}

//  Handle one REQ from link: rid is the broker's request-id, body the packed
//  Request. Answers exactly once, whatever happens (a batched method's
//  request is answered when its batch runs, at the end of the drain).
static void
s_handle(linli_worker_t *self, s_link_t *link, zmq_msg_t *rid, zmq_msg_t *body)
{
    linli_request_t request = {.worker = self, .link = link, .rid = rid};
    ProtobufCAllocator *alloc = &self->arena.base;
    ProtobufCMessage *msg = NULL;
    //  What held requests were unpacked into must stay.
    if (self->nheld == 0)
        linli_arena_reset(&self->arena);
    Linli__Request *env = linli__request__unpack(alloc, zmq_msg_size(body), zmq_msg_data(body));
    request.envelope = env;
    if (!env) {
        s_fail(&request, 400, "bad_envelope", NULL, "The request envelope could not be parsed.");
        goto done;
    }
    if (env->has_deadline_ms && env->deadline_ms > 0 && env->deadline_ms <= zclock_time()) {
        s_fail(&request, 504, "deadline_exceeded", NULL,
               "The request's deadline passed before it was handled.");
        goto done;
    }
    if (streq(env->method, S_HEALTH)) {
        linli_reply(&request, 200, NULL);
        goto done;
    }
    const linli_route_t *route = zhashx_lookup(self->routes, env->method);
    if (!route) {
        linli_fail(&request, 404, "unknown_method", "This service has no method %.100s.",
                   env->method);
        goto done;
    }
    static const uint8_t empty[1];
    msg = protobuf_c_message_unpack(route->request, alloc, env->has_body ? env->body.len : 0,
                                    env->has_body && env->body.data ? env->body.data : empty);
    if (!msg) {
        linli_fail(&request, 400, "bad_body", "The request body is not a valid %s.",
                   route->request->name);
        goto done;
    }
    linli_codec_error_t err;
    memset(&err, 0, sizeof err);
    if (linli_codec_validate(msg, &err) == -1) {
        linli_fail_field(&request, err.status >= 400 && err.status < 500 ? err.status : 400,
                         *err.code ? err.code : "invalid_value", *err.field ? err.field : NULL,
                         "%s", *err.message ? err.message : "The request body is invalid.");
        goto done;
    }
    s_batch_t *batch = self->batches ? zhashx_lookup(self->batches, env->method) : NULL;
    if (batch) {
        //  Held: answered when its batch runs (s_batches_run).
        s_hold(self, batch, link, rid, env, msg);
        return;
    }
    int rc = route->handler(self->handler_self, &request, msg);
    if (!request.replied) {
        linli_log_ctx(LINLI_LOG_ERROR, linli_request_id(&request), NULL,
                      "worker: handler of %s %s without replying", env->method,
                      rc == -1 ? "failed" : "returned");
        s_fail(&request, 500, "internal", NULL, "The service could not handle the request.");
    }
done:
    if (msg)
        protobuf_c_message_free_unpacked(msg, alloc);
    if (env)
        linli__request__free_unpacked(env, alloc);
}

// ---------------------------------------------------------------- links

static int s_on_link(zloop_t *loop, zsock_t *sock, void *arg);

//  Say READY on link, at most once a heartbeat: after a broker restart every
//  stale reply draws a BYE, and one READY answers them all.
static void
s_send_ready(s_link_t *link)
{
    int64_t now = zclock_mono();
    if (link->ready_at && now - link->ready_at < link->owner->heartbeat_ms)
        return;
    link->ready_at = now;
    s_send_cmd(link, "READY", link->owner->credit);
}

//  Make link's DEALER, connect it and say READY. 0 or -1 (logged).
static int
s_link_open(s_link_t *link)
{
    linli_worker_t *self = link->owner;
    link->expiry = zclock_mono() + (int64_t)self->liveness * self->heartbeat_ms;
    link->sock = zsock_new(ZMQ_DEALER);
    if (!link->sock) {
        linli_error("worker: cannot make a socket for %s", link->endpoint);
        return -1;
    }
    //  A reconnect throws away what the old socket still queued.
    zsock_set_linger(link->sock, 0);
    if (zsock_connect(link->sock, "%s", link->endpoint) == -1) {
        linli_error("worker: cannot connect to %s", link->endpoint);
        zsock_destroy(&link->sock);
        return -1;
    }
    if (zloop_reader(self->loop, link->sock, s_on_link, link) == -1) {
        linli_error("worker: cannot poll the socket for %s", link->endpoint);
        zsock_destroy(&link->sock);
        return -1;
    }
    zloop_reader_set_tolerant(self->loop, link->sock);
    link->ready_at = 0;
    s_send_ready(link);
    return 0;
}

//  Stop reading link's DEALER and put it aside: zloop may still hold it for
//  the current round, so it is destroyed at the next tick.
static void
s_link_retire(s_link_t *link)
{
    if (!link->sock)
        return;
    zloop_reader_end(link->owner->loop, link->sock);
    zsock_destroy(&link->retired);
    link->retired = link->sock;
    link->sock = NULL;
}

//  Everything waiting on a broker socket: requests, heartbeats, BYE.
static int
s_on_link(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    s_link_t *link = arg;
    linli_worker_t *self = link->owner;
    void *handle = zsock_resolve(sock);
    //  Receive until nothing is left (not ZMQ_EVENTS before each message:
    //  two system calls each time, where a receive that finds one costs none).
    while (link->sock == sock) {
        zmq_msg_t part[5];
        bool too_many;
        size_t nparts = linli_frames_recv(handle, part, 5, &too_many);
        if (!nparts)
            break;
        if (nparts == 5 && !too_many && zmq_msg_size(&part[0]) == S_TAG_LEN &&
            memcmp(zmq_msg_data(&part[0]), S_TAG, S_TAG_LEN) == 0) {
            link->expiry = zclock_mono() + (int64_t)self->liveness * self->heartbeat_ms;
            const char *cmd = zmq_msg_data(&part[1]);
            size_t cmd_len = zmq_msg_size(&part[1]);
            if (cmd_len == 3 && memcmp(cmd, "REQ", 3) == 0)
                s_handle(self, link, &part[3], &part[4]);
            else if (cmd_len == 3 && memcmp(cmd, "BYE", 3) == 0)
                s_send_ready(link);
            else if (!(cmd_len == 2 && memcmp(cmd, "HB", 2) == 0))
                linli_warn("worker: unknown command from %s", link->endpoint);
        } else if (nparts) {
            linli_warn("worker: malformed message from %s dropped", link->endpoint);
        }
        linli_frames_close(part, nparts);
    }
    //  Everything waiting was read: what came together is answered together.
    s_batches_run(self);
    return 0;
}

//  Every heartbeat: reconnect to brokers gone silent, heartbeat the others.
static int
s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    linli_worker_t *self = arg;
    int64_t now = zclock_mono();
    for (size_t i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links[i];
        zsock_destroy(&link->retired);
        //  Messages still waiting (after a long handler) prove the broker alive.
        if (link->sock && (now < link->expiry || (zsock_events(link->sock) & ZMQ_POLLIN))) {
            s_send_cmd(link, "HB", "");
            continue;
        }
        if (link->sock)
            linli_warn("worker: broker at %s silent, reconnecting", link->endpoint);
        s_link_retire(link);
        s_link_open(link);
    }
    return 0;
}

// ---------------------------------------------------------------- public

//  zhashx destructor of a batch (nothing waits in it between drains).
static void
s_batch_destroy(void **item)
{
    s_batch_t *b = (s_batch_t *)*item;
    if (b) {
        free(b->held);
        free(b);
    }
    *item = NULL;
}

linli_worker_t *
linli_worker_new(zloop_t *loop, const linli_worker_opts_t *opts)
{
    if (!loop || !opts || !opts->service || !*opts->service || strlen(opts->service) > 255 ||
        !opts->endpoints) {
        linli_error("worker: service name and endpoints are required");
        return NULL;
    }
    linli_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->loop = loop;
    self->service = strdup(opts->service);
    self->service_len = strlen(opts->service);
    snprintf(self->credit, sizeof self->credit, "%d", opts->credit >= 1 ? opts->credit : 1);
    self->heartbeat_ms = opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 1000;
    self->liveness = opts->liveness > 0 ? opts->liveness : 3;
    self->handler_self = opts->handler_self;
    self->timer_id = -1;
    self->routes = zhashx_new();
    linli_arena_init(&self->arena, S_ARENA_SIZE);
    if (!self->service || !self->routes || !self->arena.buf) {
        linli_worker_destroy(&self);
        return NULL;
    }
    //  Keys are the route table's own method strings.
    zhashx_set_key_duplicator(self->routes, NULL);
    zhashx_set_key_destructor(self->routes, NULL);
    for (const linli_route_t *r = opts->routes; r && r->method; r++) {
        if (!r->request || !r->handler || zhashx_insert(self->routes, r->method, (void *)r)) {
            linli_error("worker: route %s is incomplete or repeated", r->method);
            linli_worker_destroy(&self);
            return NULL;
        }
    }
    for (const linli_batch_route_t *b = opts->batches; b && b->method; b++) {
        if (!self->batches) {
            self->batches = zhashx_new();
            if (!self->batches) {
                linli_worker_destroy(&self);
                return NULL;
            }
            zhashx_set_key_duplicator(self->batches, NULL);
            zhashx_set_key_destructor(self->batches, NULL);
            zhashx_set_destructor(self->batches, s_batch_destroy);
        }
        s_batch_t *batch = calloc(1, sizeof *batch);
        if (batch) {
            batch->route = b;
            batch->max = b->max ? b->max : 64;
            batch->held = calloc(batch->max, sizeof *batch->held);
        }
        if (!batch || !batch->held || !b->fn || !zhashx_lookup(self->routes, b->method) ||
            zhashx_insert(self->batches, b->method, batch)) {
            linli_error("worker: batch route %s is incomplete, repeated or not a route", b->method);
            if (batch)
                free(batch->held);
            free(batch);
            linli_worker_destroy(&self);
            return NULL;
        }
    }
    char *list = strdup(opts->endpoints);
    size_t count = 1;
    for (const char *p = opts->endpoints; *p; p++)
        count += *p == ',';
    self->links = calloc(count, sizeof *self->links);
    if (!list || !self->links) {
        free(list);
        linli_worker_destroy(&self);
        return NULL;
    }
    for (char *cursor = list, *ep; (ep = linli_list_next(&cursor));) {
        s_link_t *link = &self->links[self->nlinks++];
        link->owner = self;
        link->endpoint = strdup(ep);
        if (!link->endpoint || s_link_open(link) == -1) {
            free(list);
            linli_worker_destroy(&self);
            return NULL;
        }
    }
    free(list);
    if (self->nlinks == 0) {
        linli_error("worker: no broker endpoint given");
        linli_worker_destroy(&self);
        return NULL;
    }
    self->timer_id = zloop_timer(loop, (size_t)self->heartbeat_ms, 0, s_on_tick, self);
    if (self->timer_id == -1) {
        linli_worker_destroy(&self);
        return NULL;
    }
    linli_info("worker: %s serving through %zu broker(s), credit %s", self->service, self->nlinks,
               self->credit);
    return self;
}

void
linli_worker_destroy(linli_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_worker_t *self = *self_p;
    for (size_t i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links[i];
        if (link->sock) {
            s_send_cmd(link, "BYE", "");
            zloop_reader_end(self->loop, link->sock);
            //  Give BYE a moment to leave; the broker expires us anyway.
            zsock_set_linger(link->sock, 100);
            zsock_destroy(&link->sock);
        }
        zsock_destroy(&link->retired);
        free(link->endpoint);
    }
    if (self->timer_id != -1)
        zloop_timer_end(self->loop, self->timer_id);
    free(self->links);
    zhashx_destroy(&self->batches);
    zhashx_destroy(&self->routes);
    linli_arena_clear(&self->arena);
    free(self->scratch);
    free(self->service);
    free(self);
    *self_p = NULL;
}

uint64_t
linli_worker_handled(const linli_worker_t *self)
{
    return self ? self->handled : 0;
}

const Linli__Caller *
linli_request_caller(const linli_request_t *request)
{
    if (request->envelope && request->envelope->caller)
        return request->envelope->caller;
    return &s_no_caller;
}

const char *
linli_request_idempotency_key(const linli_request_t *request)
{
    if (request->envelope && request->envelope->idempotency_key)
        return request->envelope->idempotency_key;
    return "";
}

const char *
linli_request_id(const linli_request_t *request)
{
    if (request->envelope && request->envelope->request_id)
        return request->envelope->request_id;
    return "";
}

const char *
linli_request_method(const linli_request_t *request)
{
    if (request->envelope && request->envelope->method)
        return request->envelope->method;
    return "";
}

int64_t
linli_request_deadline_ms(const linli_request_t *request)
{
    if (request->envelope && request->envelope->has_deadline_ms)
        return request->envelope->deadline_ms;
    return 0;
}

const uint8_t *
linli_request_body(const linli_request_t *request, size_t *len)
{
    static const uint8_t empty[1];
    if (request->envelope && request->envelope->has_body && request->envelope->body.data) {
        *len = request->envelope->body.len;
        return request->envelope->body.data;
    }
    *len = 0;
    return empty;
}

int
linli_reply(linli_request_t *request, int status, const ProtobufCMessage *body)
{
    if (request->replied)
        return s_send_reply(request, NULL);
    if (!body)
        return linli_reply_packed(request, status, NULL, 0);
    linli_worker_t *self = request->worker;
    size_t len = protobuf_c_message_get_packed_size(body);
    //  Even an empty body needs a buffer: a NULL one would send no body at all.
    if (!self->scratch || len > self->scratch_cap) {
        size_t cap = len < 4096 ? 4096 : len;
        uint8_t *scratch = realloc(self->scratch, cap);
        if (!scratch)
            return s_fail(request, 500, "internal", NULL, "Out of memory packing a reply.");
        self->scratch = scratch;
        self->scratch_cap = cap;
    }
    protobuf_c_message_pack(body, self->scratch);
    return linli_reply_packed(request, status, self->scratch, len);
}

int
linli_reply_packed(linli_request_t *request, int status, const uint8_t *body, size_t len)
{
    Linli__Reply reply = LINLI__REPLY__INIT;
    reply.status = status;
    if (body) {
        reply.has_body = 1;
        reply.body.len = len;
        reply.body.data = (uint8_t *)body;
    }
    return s_send_reply(request, &reply);
}

int
linli_fail(linli_request_t *request, int status, const char *code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return s_fail(request, status, code, NULL, message);
}

int
linli_fail_field(linli_request_t *request, int status, const char *code, const char *field,
                 const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return s_fail(request, status, code, field, message);
}

void
linli_request_set_retry_after(linli_request_t *request, int seconds)
{
    request->retry_after_s = seconds;
}

bool
linli_request_replied(const linli_request_t *request)
{
    return request->replied;
}
