//  The broker, its workers and its client, all in one process on ephemeral
//  tcp ports: round trips, credit, fairness, every error the broker or a
//  worker makes itself, lost workers, a broker restart and garbage on the wire.
#include "linli_broker.h"
#include "linli_client.h"
#include "linli_log.h"
#include "linli_worker.h"
#include "test_servers.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HB_MS 100
#define LIVENESS 3

// ---------------------------------------------------------------- helpers

//  tcp endpoint on 127.0.0.1 port into buf.
static const char *
s_endpoint(char *buf, size_t cap, int port)
{
    snprintf(buf, cap, "tcp://127.0.0.1:%d", port);
    return buf;
}

//  A broker on port with test timings.
static zactor_t *
s_broker(int port, int no_worker_wait_ms, int max_queue)
{
    char ep[128];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d, inproc://broker-%d", port, port);
    linli_broker_opts_t opts = {
        .endpoints = ep,
        .heartbeat_ms = HB_MS,
        .liveness = LIVENESS,
        .no_worker_wait_ms = no_worker_wait_ms,
        .max_queue = max_queue,
    };
    return linli_broker_new(&opts);
}

//  One field of a service in the broker's stats; -1 when absent.
static int
s_stat(zactor_t *broker, const char *service, const char *field)
{
    char *text = linli_broker_stats(broker);
    assert_non_null(text);
    json_t *root = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(root);
    json_t *v =
        service
            ? json_object_get(json_object_get(json_object_get(root, "services"), service), field)
            : json_object_get(root, field);
    int n = json_is_integer(v) ? (int)json_integer_value(v) : -1;
    json_decref(root);
    return n;
}

// ---------------------------------------------------------------- test worker

//  A worker run as an actor with its own zloop; its handlers report here.
typedef struct {
    char name[16];        //  written into every reply, to tell workers apart
    char service[32];     //  service it serves
    char endpoints[128];  //  broker endpoints
    int credit;           //  its credit
    atomic_int calls;     //  handler invocations
    atomic_int freeze;    //  while set, test.Block never returns
    atomic_ulong handled; //  linli_worker_handled at the end
} tw_t;

//  Reply with a Caller: the caller's user and grants plus the body's grant;
//  client_addr = "<worker>|<idempotency key>|<request id>|<deadline set>".
static int
s_reply_caller(tw_t *tw, linli_request_t *request, const Linli__Grant *extra)
{
    const Linli__Caller *c = linli_request_caller(request);
    Linli__Caller out = LINLI__CALLER__INIT;
    Linli__Grant *grants[9];
    size_t n = 0;
    for (size_t i = 0; i < c->n_grants && n < 8; i++)
        grants[n++] = c->grants[i];
    if (extra)
        grants[n++] = (Linli__Grant *)extra;
    char addr[64];
    snprintf(addr, sizeof addr, "%s|%s|%s|%d", tw->name, linli_request_idempotency_key(request),
             linli_request_id(request), linli_request_deadline_ms(request) > 0);
    out.user_id = c->user_id;
    out.kind = c->kind;
    out.client_addr = addr;
    out.n_grants = n;
    out.grants = grants;
    return linli_reply(request, 200, &out.base);
}

//  test.Echo: the caller and the body back.
static int
s_handle_echo(void *self, linli_request_t *request, const ProtobufCMessage *msg)
{
    tw_t *tw = self;
    atomic_fetch_add(&tw->calls, 1);
    return s_reply_caller(tw, request, (const Linli__Grant *)msg);
}

//  test.Block: hangs (no heartbeats either) while the worker is frozen.
static int
s_handle_block(void *self, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)msg;
    tw_t *tw = self;
    atomic_fetch_add(&tw->calls, 1);
    for (int i = 0; i < 1000 && atomic_load(&tw->freeze); i++)
        ts_sleep_ms(10);
    return s_reply_caller(tw, request, NULL);
}

//  test.Slow: 100 ms of work.
static int
s_handle_slow(void *self, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)msg;
    tw_t *tw = self;
    atomic_fetch_add(&tw->calls, 1);
    ts_sleep_ms(100);
    return s_reply_caller(tw, request, NULL);
}

//  test.Fail: fails without replying.
static int
s_handle_fail(void *self, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)msg;
    (void)request;
    tw_t *tw = self;
    atomic_fetch_add(&tw->calls, 1);
    return -1;
}

//  test.Twice: replies twice; only the first may leave.
static int
s_handle_twice(void *self, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)msg;
    tw_t *tw = self;
    atomic_fetch_add(&tw->calls, 1);
    linli_reply(request, 201, NULL);
    //  No cmocka assert in this thread: a wrong answer shows in the call count.
    if (!linli_request_replied(request))
        atomic_fetch_add(&tw->calls, 1000);
    return linli_fail(request, 500, "second", "must not be sent");
}

static const linli_route_t s_routes[] = {
    {"test.Echo", &linli__grant__descriptor, s_handle_echo},
    {"test.Block", &linli__grant__descriptor, s_handle_block},
    {"test.Slow", &linli__grant__descriptor, s_handle_slow},
    {"test.Fail", &linli__grant__descriptor, s_handle_fail},
    {"test.Twice", &linli__grant__descriptor, s_handle_twice},
    {NULL, NULL, NULL},
};

//  The worker actor: a linli worker until the test says $TERM.
static void
s_worker_actor(zsock_t *pipe, void *arg)
{
    tw_t *tw = arg;
    linli_worker_opts_t opts = {
        .service = tw->service,
        .endpoints = tw->endpoints,
        .credit = tw->credit,
        .heartbeat_ms = HB_MS,
        .liveness = LIVENESS,
        .routes = s_routes,
        .handler_self = tw,
    };
    uint64_t handled = 0;
    ts_worker_run(pipe, &opts, &handled);
    atomic_store(&tw->handled, handled);
}

//  Start a worker named name for service at port with credit.
static zactor_t *
s_worker(tw_t *tw, const char *name, const char *service, int port, int credit)
{
    memset(tw, 0, sizeof *tw);
    snprintf(tw->name, sizeof tw->name, "%s", name);
    snprintf(tw->service, sizeof tw->service, "%s", service);
    s_endpoint(tw->endpoints, sizeof tw->endpoints, port);
    tw->credit = credit;
    zactor_t *actor = zactor_new(s_worker_actor, tw);
    assert_non_null(actor);
    return actor;
}

//  Wait until the broker counts n workers for service.
static void
s_wait_workers(zactor_t *broker, const char *service, int n)
{
    int64_t until = ts_mono_ms() + 5000;
    while (s_stat(broker, service, "workers") != n) {
        assert_true(ts_mono_ms() < until);
        ts_sleep_ms(10);
    }
}

// ---------------------------------------------------------------- requests

//  A request the tests build: caller, keys, a Grant body.
typedef struct {
    Linli__Grant body_grant;
    Linli__Grant caller_grant;
    Linli__Grant *grants[1];
    Linli__Caller caller;
    uint8_t body[128];
    Linli__Request req;
} s_req_t;

//  Fill r for method; deadline_in_ms > 0 sets an explicit deadline.
static Linli__Request *
s_request(s_req_t *r, const char *method, int64_t deadline_in_ms)
{
    Linli__Grant g0 = LINLI__GRANT__INIT;
    r->caller_grant = g0;
    r->caller_grant.role = "street_admin";
    r->caller_grant.scope = "420102001";
    r->grants[0] = &r->caller_grant;
    Linli__Caller c = LINLI__CALLER__INIT;
    r->caller = c;
    r->caller.user_id = "u-42";
    r->caller.kind = "staff";
    r->caller.n_grants = 1;
    r->caller.grants = r->grants;
    r->body_grant = g0;
    r->body_grant.role = "volunteer";
    r->body_grant.scope = "420102";
    Linli__Request q = LINLI__REQUEST__INIT;
    r->req = q;
    r->req.method = (char *)method;
    r->req.caller = &r->caller;
    r->req.idempotency_key = "idem-7";
    r->req.request_id = "req-9";
    r->req.has_body = 1;
    r->req.body.len = linli__grant__pack(&r->body_grant, r->body);
    r->req.body.data = r->body;
    if (deadline_in_ms > 0) {
        r->req.has_deadline_ms = 1;
        r->req.deadline_ms = ts_now_ms() + deadline_in_ms;
    }
    return &r->req;
}

//  What came back for one asynchronous request.
typedef struct {
    bool done;       //  answered
    int calls;       //  times the callback ran
    int status;      //  Reply.status
    char code[32];   //  Reply.error_code
    char field[32];  //  Reply.error_field
    char who[64];    //  the Caller reply's client_addr
    int64_t sent_at; //  ts_mono_ms at send
    int64_t elapsed; //  ms from send to answer
} s_result_t;

//  Client callback: record the answer.
static void
s_on_reply(void *arg, const Linli__Reply *reply)
{
    s_result_t *r = arg;
    r->done = true;
    r->calls++;
    r->status = reply->status;
    snprintf(r->code, sizeof r->code, "%s", reply->error_code ? reply->error_code : "");
    snprintf(r->field, sizeof r->field, "%s", reply->error_field ? reply->error_field : "");
    r->who[0] = '\0';
    if (reply->has_body && reply->body.len) {
        Linli__Caller *c = linli__caller__unpack(NULL, reply->body.len, reply->body.data);
        if (c && c->client_addr)
            snprintf(r->who, sizeof r->who, "%s", c->client_addr);
        linli__caller__free_unpacked(c, NULL);
    }
    r->elapsed = ts_mono_ms() - r->sent_at;
}

//  Send asynchronously; r records the answer.
static void
s_send(linli_client_t *client, const char *service, const char *method, int64_t deadline_in_ms,
       int64_t timeout_ms, s_result_t *r)
{
    s_req_t q;
    memset(r, 0, sizeof *r);
    r->sent_at = ts_mono_ms();
    assert_true(linli_client_send(client, service, s_request(&q, method, deadline_in_ms),
                                  timeout_ms, s_on_reply, r) != 0);
}

//  Frame i of msg (0 first); NULL when it has fewer.
static zframe_t *
s_frame_at(zmsg_t *msg, int i)
{
    zframe_t *f = zmsg_first(msg);
    while (f && i-- > 0)
        f = zmsg_next(msg);
    return f;
}

//  A raw worker speaking the protocol by hand, for what a real one would not
//  do.
typedef struct {
    zsock_t *sock;    //  DEALER to the broker
    char service[32]; //  its service
    int64_t last_hb;  //  when it last sent HB
    zlist_t *rids;    //  request-ids received (zframe_t, owned)
    int bye;          //  BYEs received
} fake_t;

//  Connect a raw worker and send READY with credit.
static void
s_fake_new(fake_t *f, int port, const char *service, int credit)
{
    memset(f, 0, sizeof *f);
    char ep[64];
    f->sock = zsock_new_dealer(s_endpoint(ep, sizeof ep, port));
    assert_non_null(f->sock);
    snprintf(f->service, sizeof f->service, "%s", service);
    f->rids = zlist_new();
    char c[16];
    snprintf(c, sizeof c, "%d", credit);
    zsock_send(f->sock, "sssss", "LNLW1", "READY", service, "", c);
    f->last_hb = ts_mono_ms();
}

//  Read what the broker sent; heartbeat every 50 ms.
static void
s_fake_poll(fake_t *f)
{
    if (!f || !f->sock)
        return;
    while (zsock_events(f->sock) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(f->sock);
        if (!msg)
            break;
        if (zmsg_size(msg) == 5) {
            zframe_t *cmd = s_frame_at(msg, 1);
            if (zframe_streq(cmd, "REQ")) {
                zlist_append(f->rids, zframe_dup(s_frame_at(msg, 3)));
            } else if (zframe_streq(cmd, "BYE")) {
                f->bye++;
            }
        }
        zmsg_destroy(&msg);
    }
    if (ts_mono_ms() - f->last_hb >= 50) {
        zsock_send(f->sock, "sssss", "LNLW1", "HB", f->service, "", "");
        f->last_hb = ts_mono_ms();
    }
}

//  Answer the oldest request received with status 200 (empty body).
static void
s_fake_reply(fake_t *f)
{
    zframe_t *rid = zlist_pop(f->rids);
    assert_non_null(rid);
    Linli__Reply reply = LINLI__REPLY__INIT;
    reply.status = 200;
    uint8_t buf[16];
    size_t len = linli__reply__pack(&reply, buf);
    zsock_send(f->sock, "sssfb", "LNLW1", "REP", f->service, rid, buf, len);
    zframe_destroy(&rid);
}

//  Close the raw worker abruptly (no BYE): a crash.
static void
s_fake_destroy(fake_t *f)
{
    zframe_t *rid;
    while ((rid = zlist_pop(f->rids)))
        zframe_destroy(&rid);
    zlist_destroy(&f->rids);
    zsock_destroy(&f->sock);
}

//  Run the client (and a raw worker, when given) for ms milliseconds, or
//  until all n results are done when n > 0.
static void
s_pump(linli_client_t *client, fake_t *fake, s_result_t *results, size_t n, int ms)
{
    int64_t until = ts_mono_ms() + ms;
    for (;;) {
        bool all = n > 0;
        for (size_t i = 0; i < n; i++)
            all = all && results[i].done;
        int64_t left = until - ts_mono_ms();
        if (all || left <= 0)
            break;
        s_fake_poll(fake);
        //  The fd is edge-triggered: poll briefly, then always process.
        zmq_pollitem_t item = {NULL, linli_client_fd(client), ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, left < 5 ? left : 5);
        linli_client_process(client);
    }
    s_fake_poll(fake);
    linli_client_process(client);
}

// ---------------------------------------------------------------- tests

//  A request and its reply cross broker and worker with caller, keys and
//  body intact; sys.Health answers on every worker.
static void
test_round_trip(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 100);
    assert_non_null(broker);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "echo", port, 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    assert_non_null(client);

    s_req_t q;
    Linli__Reply *reply = linli_client_call(client, "echo", s_request(&q, "test.Echo", 0), 3000);
    assert_int_equal(reply->status, 200);
    assert_true(reply->has_body);
    Linli__Caller *c = linli__caller__unpack(NULL, reply->body.len, reply->body.data);
    assert_non_null(c);
    assert_string_equal(c->user_id, "u-42");
    assert_string_equal(c->kind, "staff");
    assert_string_equal(c->client_addr, "w1|idem-7|req-9|1");
    assert_int_equal(c->n_grants, 2);
    assert_string_equal(c->grants[0]->role, "street_admin");
    assert_string_equal(c->grants[0]->scope, "420102001");
    assert_string_equal(c->grants[1]->role, "volunteer");
    assert_string_equal(c->grants[1]->scope, "420102");
    linli__caller__free_unpacked(c, NULL);
    linli__reply__free_unpacked(reply, NULL);

    reply = linli_client_call(client, "echo", s_request(&q, "sys.Health", 0), 3000);
    assert_int_equal(reply->status, 200);
    linli__reply__free_unpacked(reply, NULL);
    assert_int_equal(linli_client_pending(client), 0);

    //  The same broker over inproc, as a gateway holding it would ask.
    char inproc[64];
    snprintf(inproc, sizeof inproc, "inproc://broker-%d", port);
    linli_client_t *local = linli_client_new(inproc);
    assert_non_null(local);
    reply = linli_client_call(local, "echo", s_request(&q, "test.Echo", 0), 3000);
    assert_int_equal(reply->status, 200);
    linli__reply__free_unpacked(reply, NULL);
    linli_client_destroy(&local);
    assert_int_equal(s_stat(broker, NULL, "requests"), 3);
    assert_int_equal(s_stat(broker, NULL, "replies"), 3);

    linli_client_destroy(&client);
    zactor_destroy(&worker);
    assert_int_equal(atomic_load(&tw.calls), 2);
    assert_int_equal(atomic_load(&tw.handled), 3);
    zactor_destroy(&broker);
}

//  Unknown method: 404 from the worker; a body the codec refuses: 400 with
//  the field; a failing handler: 500; a double reply: only the first.
static void
test_worker_errors(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 100);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "errs", port, 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));

    s_req_t q;
    Linli__Reply *reply = linli_client_call(client, "errs", s_request(&q, "test.Nope", 0), 3000);
    assert_int_equal(reply->status, 404);
    assert_string_equal(reply->error_code, "unknown_method");
    linli__reply__free_unpacked(reply, NULL);

    s_request(&q, "test.Echo", 0);
    q.body_grant.role = "wizard";
    q.req.body.len = linli__grant__pack(&q.body_grant, q.body);
    reply = linli_client_call(client, "errs", &q.req, 3000);
    assert_int_equal(reply->status, 400);
    assert_non_null(reply->error_field);
    assert_string_equal(reply->error_field, "role");
    linli__reply__free_unpacked(reply, NULL);

    s_request(&q, "test.Echo", 0);
    q.req.body.data = (uint8_t *)"\xff\xff\xff";
    q.req.body.len = 3;
    reply = linli_client_call(client, "errs", &q.req, 3000);
    assert_int_equal(reply->status, 400);
    assert_string_equal(reply->error_code, "bad_body");
    linli__reply__free_unpacked(reply, NULL);

    reply = linli_client_call(client, "errs", s_request(&q, "test.Fail", 0), 3000);
    assert_int_equal(reply->status, 500);
    assert_string_equal(reply->error_code, "internal");
    linli__reply__free_unpacked(reply, NULL);

    reply = linli_client_call(client, "errs", s_request(&q, "test.Twice", 0), 3000);
    assert_int_equal(reply->status, 201);
    linli__reply__free_unpacked(reply, NULL);
    //  The worker is still in step: the next request is answered normally.
    reply = linli_client_call(client, "errs", s_request(&q, "test.Echo", 0), 3000);
    assert_int_equal(reply->status, 200);
    linli__reply__free_unpacked(reply, NULL);
    assert_int_equal(s_stat(broker, "errs", "inflight"), 0);

    linli_client_destroy(&client);
    zactor_destroy(&worker);
    //  Echo with a refused body and bad bytes never reached a handler.
    assert_int_equal(atomic_load(&tw.calls), 3);
    zactor_destroy(&broker);
}

//  Two workers of one service both get traffic, lockstep and concurrent.
static void
test_two_workers_share(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 1000);
    tw_t a, b;
    zactor_t *wa = s_worker(&a, "A", "pair", port, 1);
    zactor_t *wb = s_worker(&b, "B", "pair", port, 1);
    s_wait_workers(broker, "pair", 2);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));

    for (int i = 0; i < 10; i++) {
        s_req_t q;
        Linli__Reply *reply =
            linli_client_call(client, "pair", s_request(&q, "test.Echo", 0), 3000);
        assert_int_equal(reply->status, 200);
        linli__reply__free_unpacked(reply, NULL);
    }
    assert_true(atomic_load(&a.calls) >= 3);
    assert_true(atomic_load(&b.calls) >= 3);

    s_result_t r[40];
    for (int i = 0; i < 40; i++)
        s_send(client, "pair", "test.Echo", 0, 5000, &r[i]);
    s_pump(client, NULL, r, 40, 5000);
    int by_a = 0, by_b = 0;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(r[i].status, 200);
        by_a += r[i].who[0] == 'A';
        by_b += r[i].who[0] == 'B';
    }
    assert_int_equal(by_a + by_b, 40);
    assert_true(by_a > 0 && by_b > 0);

    linli_client_destroy(&client);
    zactor_destroy(&wa);
    zactor_destroy(&wb);
    zactor_destroy(&broker);
}

//  Credit 4 keeps four requests at the worker while the rest queue.
static void
test_credit_in_flight(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 1000);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "slow", port, 4);
    s_wait_workers(broker, "slow", 1);
    assert_int_equal(s_stat(broker, "slow", "credit"), 4);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));

    s_result_t r[8];
    for (int i = 0; i < 8; i++)
        s_send(client, "slow", "test.Slow", 0, 5000, &r[i]);
    s_pump(client, NULL, NULL, 0, 50);
    assert_int_equal(s_stat(broker, "slow", "inflight"), 4);
    assert_int_equal(s_stat(broker, "slow", "queued"), 4);
    s_pump(client, NULL, r, 8, 5000);
    for (int i = 0; i < 8; i++)
        assert_int_equal(r[i].status, 200);
    assert_int_equal(s_stat(broker, "slow", "inflight"), 0);
    assert_int_equal(s_stat(broker, "slow", "queued"), 0);

    linli_client_destroy(&client);
    zactor_destroy(&worker);
    zactor_destroy(&broker);
}

//  No worker for the service: 503 "no_worker" after no_worker_wait_ms.
static void
test_no_worker_503(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 200, 100);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_req_t q;
    int64_t start = ts_mono_ms();
    Linli__Reply *reply = linli_client_call(client, "nobody", s_request(&q, "x.Y", 0), 5000);
    int64_t took = ts_mono_ms() - start;
    assert_int_equal(reply->status, 503);
    assert_string_equal(reply->error_code, "no_worker");
    assert_true(took >= 150 && took < 1500);
    linli__reply__free_unpacked(reply, NULL);
    linli_client_destroy(&client);
    zactor_destroy(&broker);
}

//  A request that waits for a worker is served when one comes in time.
static void
test_worker_arrives_in_time(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 3000, 100);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_result_t r;
    s_send(client, "late", "test.Echo", 0, 5000, &r);
    s_pump(client, NULL, NULL, 0, 200);
    assert_false(r.done);
    assert_int_equal(s_stat(broker, "late", "queued"), 1);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "late", port, 1);
    s_pump(client, NULL, &r, 1, 3000);
    assert_int_equal(r.status, 200);
    linli_client_destroy(&client);
    zactor_destroy(&worker);
    zactor_destroy(&broker);
}

//  A worker that never answers: 504 "timeout" at the deadline; its late
//  reply is dropped but returns its credit.
static void
test_deadline_504(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 100);
    fake_t fake;
    s_fake_new(&fake, port, "mute", 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_wait_workers(broker, "mute", 1);

    s_result_t r;
    s_send(client, "mute", "test.Echo", 300, 5000, &r);
    s_pump(client, &fake, &r, 1, 3000);
    assert_true(r.done);
    assert_int_equal(r.status, 504);
    assert_string_equal(r.code, "timeout");
    assert_true(r.elapsed >= 250 && r.elapsed < 1500);
    assert_int_equal(zlist_size(fake.rids), 1);
    assert_int_equal(s_stat(broker, "mute", "inflight"), 1);

    //  The late reply returns the credit: the next request reaches the worker.
    s_fake_reply(&fake);
    s_result_t r2;
    s_send(client, "mute", "test.Echo", 0, 5000, &r2);
    int64_t until = ts_mono_ms() + 2000;
    while (zlist_size(fake.rids) == 0 && ts_mono_ms() < until)
        s_pump(client, &fake, NULL, 0, 10);
    assert_int_equal(zlist_size(fake.rids), 1);
    assert_int_equal(r.calls, 1);
    s_fake_reply(&fake);
    s_pump(client, &fake, &r2, 1, 2000);
    assert_int_equal(r2.status, 200);
    assert_int_equal(r.calls, 1);

    linli_client_destroy(&client);
    s_fake_destroy(&fake);
    zactor_destroy(&broker);
}

//  max_queue waiting: the next one is 503 "overloaded" at once.
static void
test_queue_overflow_503(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 2);
    fake_t fake;
    s_fake_new(&fake, port, "busy", 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_wait_workers(broker, "busy", 1);
    s_result_t r[4];
    for (int i = 0; i < 4; i++)
        s_send(client, "busy", "test.Echo", 0, 5000, &r[i]);
    s_pump(client, &fake, &r[3], 1, 2000);
    assert_int_equal(r[3].status, 503);
    assert_string_equal(r[3].code, "overloaded");
    assert_true(r[3].elapsed < 1000);
    assert_false(r[0].done || r[1].done || r[2].done);
    assert_int_equal(s_stat(broker, "busy", "queued"), 2);
    linli_client_destroy(&client);
    s_fake_destroy(&fake);
    zactor_destroy(&broker);
}

//  A READY again on a known socket (the answer to a BYE that crossed it)
//  changes only the credit: what the worker holds is still answered.
static void
test_ready_again_keeps_requests(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 100);
    fake_t fake;
    s_fake_new(&fake, port, "again", 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_wait_workers(broker, "again", 1);
    s_result_t r[2];
    s_send(client, "again", "test.Echo", 0, 5000, &r[0]);
    s_send(client, "again", "test.Echo", 0, 5000, &r[1]);
    int64_t until = ts_mono_ms() + 2000;
    while (zlist_size(fake.rids) == 0 && ts_mono_ms() < until)
        s_pump(client, &fake, NULL, 0, 10);
    assert_int_equal(zlist_size(fake.rids), 1);
    zsock_send(fake.sock, "sssss", "LNLW1", "READY", "again", "", "2");
    until = ts_mono_ms() + 2000;
    while (zlist_size(fake.rids) < 2 && ts_mono_ms() < until)
        s_pump(client, &fake, NULL, 0, 10);
    assert_int_equal(zlist_size(fake.rids), 2);
    assert_int_equal(s_stat(broker, "again", "credit"), 2);
    assert_int_equal(s_stat(broker, "again", "workers"), 1);
    s_fake_reply(&fake);
    s_fake_reply(&fake);
    s_pump(client, &fake, r, 2, 2000);
    assert_int_equal(r[0].status, 200);
    assert_int_equal(r[1].status, 200);
    linli_client_destroy(&client);
    s_fake_destroy(&fake);
    zactor_destroy(&broker);
}

//  A worker that hangs (no heartbeats) while holding requests: they are
//  answered 504 "worker_lost" within about liveness heartbeats, and the
//  next requests go to the surviving worker.
static void
test_worker_hangs_lost(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 1000);
    tw_t a, b;
    zactor_t *wa = s_worker(&a, "A", "hang", port, 2);
    zactor_t *wb = s_worker(&b, "B", "hang", port, 2);
    s_wait_workers(broker, "hang", 2);
    atomic_store(&a.freeze, 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));

    s_result_t r[4];
    for (int i = 0; i < 4; i++)
        s_send(client, "hang", "test.Block", 0, 10000, &r[i]);
    s_pump(client, NULL, r, 4, 3000);
    int lost = 0, by_b = 0;
    for (int i = 0; i < 4; i++) {
        assert_true(r[i].done);
        if (r[i].status == 504) {
            assert_string_equal(r[i].code, "worker_lost");
            assert_true(r[i].elapsed < 1500);
            lost++;
        } else {
            assert_int_equal(r[i].status, 200);
            assert_int_equal(r[i].who[0], 'B');
            by_b++;
        }
    }
    assert_int_equal(lost, 2);
    assert_int_equal(by_b, 2);
    assert_int_equal(s_stat(broker, "hang", "workers"), 1);
    assert_int_equal(s_stat(broker, NULL, "expired_workers"), 1);

    for (int i = 0; i < 4; i++)
        s_send(client, "hang", "test.Block", 0, 5000, &r[i]);
    s_pump(client, NULL, r, 4, 3000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].status, 200);
        assert_int_equal(r[i].who[0], 'B');
    }
    //  Thawed, A finds itself forgotten (BYE) and comes back with READY.
    atomic_store(&a.freeze, 0);
    s_wait_workers(broker, "hang", 2);

    linli_client_destroy(&client);
    zactor_destroy(&wa);
    zactor_destroy(&wb);
    zactor_destroy(&broker);
}

//  A worker process that crashes (socket closed, no BYE): what it held is
//  answered 504 "worker_lost" promptly; a request sent to a vanished worker
//  before the broker noticed goes to the survivor instead.
static void
test_worker_crash_lost(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 2000, 1000);
    tw_t b;
    zactor_t *wb = s_worker(&b, "B", "crash", port, 1);
    s_wait_workers(broker, "crash", 1);
    fake_t fake;
    s_fake_new(&fake, port, "crash", 5);
    s_wait_workers(broker, "crash", 2);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));

    //  The fake has the most credit, so it gets the request; then it dies.
    s_result_t r;
    s_send(client, "crash", "test.Echo", 0, 10000, &r);
    int64_t until = ts_mono_ms() + 2000;
    while (zlist_size(fake.rids) == 0 && ts_mono_ms() < until)
        s_pump(client, &fake, NULL, 0, 10);
    assert_int_equal(zlist_size(fake.rids), 1);
    s_fake_destroy(&fake);
    int64_t crashed = ts_mono_ms();
    s_pump(client, NULL, &r, 1, 3000);
    assert_int_equal(r.status, 504);
    assert_string_equal(r.code, "worker_lost");
    assert_true(ts_mono_ms() - crashed < (int64_t)HB_MS * (LIVENESS + 2));

    s_send(client, "crash", "test.Echo", 0, 5000, &r);
    s_pump(client, NULL, &r, 1, 3000);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.who[0], 'B');

    //  A worker that vanishes before any request: the request it would have
    //  had is delivered to B, not lost.
    s_fake_new(&fake, port, "crash", 5);
    s_wait_workers(broker, "crash", 2);
    s_fake_destroy(&fake);
    ts_sleep_ms(100);
    s_send(client, "crash", "test.Echo", 0, 5000, &r);
    s_pump(client, NULL, &r, 1, 3000);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.who[0], 'B');

    linli_client_destroy(&client);
    zactor_destroy(&wb);
    zactor_destroy(&broker);
}

//  The broker restarts on the same port: the worker reconnects and serves.
static void
test_broker_restart(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 500, 100);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "phoenix", port, 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_req_t q;
    Linli__Reply *reply = linli_client_call(client, "phoenix", s_request(&q, "test.Echo", 0), 3000);
    assert_int_equal(reply->status, 200);
    linli__reply__free_unpacked(reply, NULL);

    zactor_destroy(&broker);
    ts_sleep_ms(300);
    broker = s_broker(port, 500, 100);
    assert_non_null(broker);
    int status = 0;
    int64_t until = ts_mono_ms() + 5000;
    while (status != 200 && ts_mono_ms() < until) {
        reply = linli_client_call(client, "phoenix", s_request(&q, "test.Echo", 0), 1000);
        status = reply->status;
        linli__reply__free_unpacked(reply, NULL);
    }
    assert_int_equal(status, 200);

    linli_client_destroy(&client);
    zactor_destroy(&worker);
    zactor_destroy(&broker);
}

//  Random frames from several peers never crash the broker, which serves on.
static void
test_garbage_frames(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zactor_t *broker = s_broker(port, 100, 100);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "fuzz", port, 2);
    s_wait_workers(broker, "fuzz", 1);
    static const char *tags[] = {"LNLC1", "LNLW1", "LNLX9", ""};
    static const char *cmds[] = {"REQ", "REP", "READY", "HB", "BYE", "NOPE", ""};
    static const char services[4][6] = {"fuzz", "", "other", "fu\0zz"};
    unsigned seed = 12345;
    for (int peer = 0; peer < 8; peer++) {
        zsock_t *sock = zsock_new_dealer(s_endpoint(ep, sizeof ep, port));
        assert_non_null(sock);
        for (int i = 0; i < 500; i++) {
            int nframes = 1 + rand_r(&seed) % 8;
            bool shaped = rand_r(&seed) % 2;
            zmsg_t *msg = zmsg_new();
            for (int f = 0; f < nframes; f++) {
                uint8_t buf[48];
                size_t len = (size_t)(rand_r(&seed) % (int)sizeof buf);
                for (size_t k = 0; k < len; k++)
                    buf[k] = (uint8_t)rand_r(&seed);
                if (shaped && f == 0)
                    zmsg_addstr(msg, tags[rand_r(&seed) % 4]);
                else if (shaped && f == 1)
                    zmsg_addstr(msg, cmds[rand_r(&seed) % 7]);
                else if (shaped && f == 2)
                    zmsg_addmem(msg, services[rand_r(&seed) % 4], 4 + rand_r(&seed) % 2);
                else if (shaped && f == 3 && rand_r(&seed) % 2)
                    zmsg_addmem(msg, buf, 8);
                else if (shaped && f == 4 && rand_r(&seed) % 3 == 0)
                    zmsg_addstr(msg, "2");
                else
                    zmsg_addmem(msg, buf, len);
            }
            zmsg_send(&msg, sock);
            //  Read whatever the broker answers, so nothing piles up.
            while (zsock_events(sock) & ZMQ_POLLIN) {
                zmsg_t *in = zmsg_recv(sock);
                zmsg_destroy(&in);
            }
        }
        zsock_destroy(&sock);
    }
    char *stats = linli_broker_stats(broker);
    assert_non_null(stats);
    free(stats);
    //  Fuzzing peers that said READY for "fuzz" are gone: wait until the
    //  broker has noticed, or the request below could go to one of them.
    s_wait_workers(broker, "fuzz", 1);
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    s_req_t q;
    Linli__Reply *reply = linli_client_call(client, "fuzz", s_request(&q, "test.Echo", 0), 3000);
    assert_int_equal(reply->status, 200);
    linli__reply__free_unpacked(reply, NULL);
    //  A REQ whose envelope is garbage is answered 400 by the broker.
    zsock_t *raw = zsock_new_dealer(ep);
    zsock_send(raw, "sssss", "LNLC1", "REQ", "fuzz", "1", "\xff\xff");
    zmsg_t *in = zmsg_recv(raw);
    assert_non_null(in);
    assert_int_equal(zmsg_size(in), 5);
    zframe_t *body = zmsg_last(in);
    Linli__Reply *r = linli__reply__unpack(NULL, zframe_size(body), zframe_data(body));
    assert_non_null(r);
    assert_int_equal(r->status, 400);
    assert_string_equal(r->error_code, "bad_envelope");
    linli__reply__free_unpacked(r, NULL);
    zmsg_destroy(&in);
    zsock_destroy(&raw);

    linli_client_destroy(&client);
    zactor_destroy(&worker);
    zactor_destroy(&broker);
}

//  Receive from the test's ROUTER the next message with command cmd from a
//  worker (skipping heartbeats); NULL after timeout_ms.
static zmsg_t *
s_router_expect(zsock_t *router, const char *cmd, int timeout_ms)
{
    zsock_set_rcvtimeo(router, timeout_ms);
    for (;;) {
        zmsg_t *msg = zmsg_recv(router);
        if (!msg)
            return NULL;
        zframe_t *c = s_frame_at(msg, 2);
        if (zmsg_size(msg) == 6 && zframe_streq(c, cmd))
            return msg;
        zmsg_destroy(&msg);
    }
}

//  Send a REQ with packed request body to the worker at id.
static void
s_router_req(zsock_t *router, zframe_t *id, const Linli__Request *req)
{
    uint8_t buf[512];
    size_t len = linli__request__pack(req, buf);
    zsock_send(router, "fsssbb", id, "LNLW1", "REQ", "direct", "\x01\x02", (size_t)2, buf, len);
}

//  The Reply inside a REP message; caller frees.
static Linli__Reply *
s_rep_reply(zmsg_t *msg)
{
    zframe_t *body = zmsg_last(msg);
    Linli__Reply *r = linli__reply__unpack(NULL, zframe_size(body), zframe_data(body));
    assert_non_null(r);
    return r;
}

//  The worker on its own, the test acting as its broker: READY, the request
//  id echoed, expired deadlines refused without running the handler, bad
//  envelopes, BYE answered with READY, garbage survived.
static void
test_worker_direct(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert_int_equal(zsock_bind(router, "%s", s_endpoint(ep, sizeof ep, port)), port);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "direct", port, 3);

    zmsg_t *msg = s_router_expect(router, "READY", 3000);
    assert_non_null(msg);
    zframe_t *id = zmsg_pop(msg);
    zframe_t *credit = zmsg_last(msg);
    assert_true(zframe_streq(credit, "3"));
    zmsg_destroy(&msg);
    msg = s_router_expect(router, "HB", 1000);
    assert_non_null(msg);
    zmsg_destroy(&msg);

    //  Expired deadline: 504, handler not called.
    s_req_t q;
    s_request(&q, "test.Echo", 0);
    q.req.has_deadline_ms = 1;
    q.req.deadline_ms = ts_now_ms() - 10;
    s_router_req(router, id, &q.req);
    msg = s_router_expect(router, "REP", 3000);
    assert_non_null(msg);
    zframe_t *rid = s_frame_at(msg, 4);
    assert_int_equal(zframe_size(rid), 2);
    assert_memory_equal(zframe_data(rid), "\x01\x02", 2);
    Linli__Reply *r = s_rep_reply(msg);
    assert_int_equal(r->status, 504);
    assert_string_equal(r->error_code, "deadline_exceeded");
    linli__reply__free_unpacked(r, NULL);
    zmsg_destroy(&msg);
    assert_int_equal(atomic_load(&tw.calls), 0);

    //  A valid one runs.
    s_router_req(router, id, s_request(&q, "test.Echo", 1000));
    msg = s_router_expect(router, "REP", 3000);
    r = s_rep_reply(msg);
    assert_int_equal(r->status, 200);
    linli__reply__free_unpacked(r, NULL);
    zmsg_destroy(&msg);
    assert_int_equal(atomic_load(&tw.calls), 1);

    //  Garbage, then an unreadable envelope: 400.
    zsock_send(router, "fs", id, "junk");
    zsock_send(router, "fsssss", id, "LNLW1", "WHAT", "direct", "", "");
    zsock_send(router, "fsssss", id, "LNLW1", "REQ", "direct", "7", "\xff\xff\xff");
    msg = s_router_expect(router, "REP", 3000);
    assert_non_null(msg);
    r = s_rep_reply(msg);
    assert_int_equal(r->status, 400);
    assert_string_equal(r->error_code, "bad_envelope");
    linli__reply__free_unpacked(r, NULL);
    zmsg_destroy(&msg);

    //  BYE (the broker forgot it): READY again.
    zsock_send(router, "fsssss", id, "LNLW1", "BYE", "direct", "", "");
    msg = s_router_expect(router, "READY", 3000);
    assert_non_null(msg);
    zmsg_destroy(&msg);

    zframe_destroy(&id);
    zactor_destroy(&worker);
    zsock_destroy(&router);
}

//  The client answers 504 itself when nothing comes; a cancelled request's
//  callback never runs.
static void
test_client_timeout_cancel(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64];
    linli_client_t *client = linli_client_new(s_endpoint(ep, sizeof ep, port));
    assert_int_equal(linli_client_next_timeout_ms(client), -1);
    s_req_t q;
    int64_t start = ts_mono_ms();
    Linli__Reply *reply = linli_client_call(client, "void", s_request(&q, "x.Y", 0), 200);
    int64_t took = ts_mono_ms() - start;
    assert_int_equal(reply->status, 504);
    assert_string_equal(reply->error_code, "timeout");
    assert_true(took >= 190 && took < 1000);
    linli__reply__free_unpacked(reply, NULL);

    s_result_t r[100];
    uint64_t handles[100];
    for (int i = 0; i < 100; i++) {
        memset(&r[i], 0, sizeof r[i]);
        handles[i] =
            linli_client_send(client, "void", s_request(&q, "x.Y", 0), 100 + i, s_on_reply, &r[i]);
        assert_true(handles[i] != 0);
    }
    assert_int_equal(linli_client_pending(client), 100);
    int64_t next = linli_client_next_timeout_ms(client);
    assert_true(next >= 0 && next <= 100);
    for (int i = 0; i < 100; i += 2)
        linli_client_cancel(client, handles[i]);
    assert_int_equal(linli_client_pending(client), 50);
    s_pump(client, NULL, NULL, 0, 400);
    assert_int_equal(linli_client_pending(client), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(r[i].calls, i % 2);
        if (i % 2)
            assert_int_equal(r[i].status, 504);
    }
    linli_client_destroy(&client);
}

//  With a clients' endpoint of its own (as the gateway runs it), the broker
//  refuses client requests on the workers' TCP port: a peer there cannot
//  pose as the gateway and name any caller it likes.
static void
test_clients_only_on_their_endpoint(void **state)
{
    (void)state;
    int port = ts_free_port();
    char ep[64], workers[64], clients[64];
    snprintf(workers, sizeof workers, "tcp://127.0.0.1:%d", port);
    snprintf(clients, sizeof clients, "inproc://clients-%d", port);
    linli_broker_opts_t opts = {
        .endpoints = workers,
        .client_endpoints = clients,
        .heartbeat_ms = HB_MS,
        .liveness = LIVENESS,
        .no_worker_wait_ms = 2000,
        .max_queue = 100,
    };
    zactor_t *broker = linli_broker_new(&opts);
    assert_non_null(broker);
    tw_t tw;
    zactor_t *worker = s_worker(&tw, "w1", "echo", port, 1);
    s_req_t q;
    //  The gateway's way in works.
    linli_client_t *local = linli_client_new(clients);
    Linli__Reply *reply = linli_client_call(local, "echo", s_request(&q, "test.Echo", 0), 3000);
    assert_int_equal(reply->status, 200);
    linli__reply__free_unpacked(reply, NULL);
    //  A client on the workers' port gets nothing: its request is dropped
    //  (the 504 is the client's own timeout), and no worker ran it.
    int before = tw.calls;
    linli_client_t *remote = linli_client_new(s_endpoint(ep, sizeof ep, port));
    reply = linli_client_call(remote, "echo", s_request(&q, "test.Echo", 0), 500);
    assert_int_equal(reply->status, 504);
    assert_string_equal(reply->error_code, "timeout");
    linli__reply__free_unpacked(reply, NULL);
    assert_int_equal(tw.calls, before);
    assert_int_equal(s_stat(broker, NULL, "requests"), 1);
    linli_client_destroy(&remote);
    linli_client_destroy(&local);
    zactor_destroy(&worker);
    zactor_destroy(&broker);
}

int
main(void)
{
    linli_log_init("test_broker", LINLI_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_clients_only_on_their_endpoint),
        cmocka_unit_test(test_worker_errors),
        cmocka_unit_test(test_two_workers_share),
        cmocka_unit_test(test_credit_in_flight),
        cmocka_unit_test(test_no_worker_503),
        cmocka_unit_test(test_worker_arrives_in_time),
        cmocka_unit_test(test_deadline_504),
        cmocka_unit_test(test_queue_overflow_503),
        cmocka_unit_test(test_ready_again_keeps_requests),
        cmocka_unit_test(test_worker_hangs_lost),
        cmocka_unit_test(test_worker_crash_lost),
        cmocka_unit_test(test_broker_restart),
        cmocka_unit_test(test_garbage_frames),
        cmocka_unit_test(test_worker_direct),
        cmocka_unit_test(test_client_timeout_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
