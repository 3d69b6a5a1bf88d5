//  bench_broker: round trips per second and latency through the broker to one
//  worker with an empty handler, lockstep and with 32 in flight, beside raw
//  DEALER <-> ROUTER echo over the same loopback tcp. Not a test: run by hand.
//
//  Usage: bench_broker [round trips, default 20000; four times that with 32
//  in flight]
#include "linli_broker.h"
#include "linli_client.h"
#include "linli_log.h"
#include "linli_worker.h"
#include "test_servers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WINDOW 32

//  Latencies of one run, in microseconds.
typedef struct {
    int64_t *lat;         //  owned, one per round trip
    size_t total;         //  round trips to make
    size_t sent;          //  sent so far
    size_t done;          //  answered so far
    size_t errors;        //  answers other than 200
    int64_t t0[S_WINDOW]; //  send time of each window slot
} s_run_t;

//  What one run measured.
typedef struct {
    double rate; //  round trips per second
    double p50;  //  microseconds
    double p99;  //  microseconds
} s_figures_t;

//  Ascending order of int64_t.
static int
s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

//  Rate and percentiles of run, which took elapsed_us.
static s_figures_t
s_figures(s_run_t *run, int64_t elapsed_us)
{
    qsort(run->lat, run->done, sizeof *run->lat, s_cmp);
    s_figures_t f = {
        .rate = (double)run->done * 1e6 / (double)(elapsed_us ? elapsed_us : 1),
        .p50 = (double)run->lat[run->done / 2],
        .p99 = (double)run->lat[run->done * 99 / 100],
    };
    return f;
}

// ---------------------------------------------------------------- worker

//  bench.Nop: an empty answer.
static int
s_handle_nop(void *self, linli_request_t *request, const ProtobufCMessage *msg)
{
    (void)self;
    (void)msg;
    return linli_reply(request, 200, NULL);
}

static const linli_route_t s_routes[] = {
    {"bench.Nop", &linli__caller__descriptor, s_handle_nop},
    {NULL, NULL, NULL},
};

//  The worker actor; arg is the broker endpoint.
static void
s_worker_actor(zsock_t *pipe, void *arg)
{
    linli_worker_opts_t opts = {
        .service = "bench",
        .endpoints = arg,
        .credit = S_WINDOW,
        .heartbeat_ms = 1000,
        .liveness = 3,
        .routes = s_routes,
    };
    ts_worker_run(pipe, &opts, NULL);
}

// ---------------------------------------------------------------- through the broker

typedef struct {
    s_run_t *run;           //  the run
    linli_client_t *client; //  to send the next request
    int slot;               //  window slot
} s_slot_t;

static Linli__Request s_request = LINLI__REQUEST__INIT;

//  Reply of one request: record it, send the next from the same slot.
static void
s_on_reply(void *arg, const Linli__Reply *reply)
{
    s_slot_t *slot = arg;
    s_run_t *run = slot->run;
    int64_t now = zclock_usecs();
    run->lat[run->done++] = now - run->t0[slot->slot];
    run->errors += reply->status != 200;
    if (run->sent < run->total) {
        run->sent++;
        run->t0[slot->slot] = zclock_usecs();
        linli_client_send(slot->client, "bench", &s_request, 5000, s_on_reply, slot);
    }
}

//  total round trips with window requests in flight through the broker.
static s_figures_t
s_bench_broker(const char *endpoint, size_t total, int window)
{
    linli_client_t *client = linli_client_new(endpoint);
    s_run_t run = {.lat = calloc(total, sizeof(int64_t)), .total = total};
    s_slot_t slots[S_WINDOW];
    int64_t start = zclock_usecs();
    for (int i = 0; i < window; i++) {
        slots[i] = (s_slot_t){&run, client, i};
        run.sent++;
        run.t0[i] = zclock_usecs();
        linli_client_send(client, "bench", &s_request, 5000, s_on_reply, &slots[i]);
    }
    while (run.done < total) {
        linli_client_process(client);
        zmq_pollitem_t item = {NULL, linli_client_fd(client), ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 10);
    }
    s_figures_t f = s_figures(&run, zclock_usecs() - start);
    if (run.errors)
        fprintf(stderr, "bench: %zu answers were not 200\n", run.errors);
    free(run.lat);
    linli_client_destroy(&client);
    return f;
}

// ---------------------------------------------------------------- raw echo

//  A ROUTER that sends every message straight back (zero-copy frames).
static void
s_echo_actor(zsock_t *pipe, void *arg)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_bind(router, "%s", (const char *)arg);
    void *handle = zsock_resolve(router);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    while (zpoller_wait(poller, -1) == router) {
        while (zsock_events(router) & ZMQ_POLLIN) {
            zmq_msg_t part;
            int more = 1;
            while (more) {
                zmq_msg_init(&part);
                if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) == -1) {
                    zmq_msg_close(&part);
                    break;
                }
                more = zmq_msg_more(&part);
                zmq_msg_send(&part, handle, more ? ZMQ_SNDMORE : 0);
                zmq_msg_close(&part);
            }
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

//  Send one 5-frame message like a client's REQ from window slot.
static void
s_raw_send(void *handle, int slot, const uint8_t *body, size_t len)
{
    char rid[16];
    int n = snprintf(rid, sizeof rid, "%d", slot);
    zmq_send(handle, "LNLC1", 5, ZMQ_SNDMORE);
    zmq_send(handle, "REQ", 3, ZMQ_SNDMORE);
    zmq_send(handle, "bench", 5, ZMQ_SNDMORE);
    zmq_send(handle, rid, (size_t)n, ZMQ_SNDMORE);
    zmq_send(handle, body, len, 0);
}

//  total round trips with window messages in flight through the echo.
static s_figures_t
s_bench_raw(const char *endpoint, size_t total, int window)
{
    zsock_t *dealer = zsock_new_dealer(endpoint);
    void *handle = zsock_resolve(dealer);
    uint8_t body[256];
    size_t len = linli__request__pack(&s_request, body);
    s_run_t run = {.lat = calloc(total, sizeof(int64_t)), .total = total};
    int64_t start = zclock_usecs();
    for (int i = 0; i < window; i++) {
        run.sent++;
        run.t0[i] = zclock_usecs();
        s_raw_send(handle, i, body, len);
    }
    while (run.done < total) {
        //  The echo sends back exactly what we sent: five frames.
        zmq_msg_t part[5];
        int n = 0;
        do {
            zmq_msg_init(&part[n]);
            zmq_msg_recv(&part[n], handle, 0);
        } while (zmq_msg_more(&part[n++]) && n < 5);
        char rid[16] = "";
        if (n == 5 && zmq_msg_size(&part[3]) < sizeof rid)
            memcpy(rid, zmq_msg_data(&part[3]), zmq_msg_size(&part[3]));
        for (int i = 0; i < n; i++)
            zmq_msg_close(&part[i]);
        int slot = atoi(rid);
        run.lat[run.done++] = zclock_usecs() - run.t0[slot];
        if (run.sent < total) {
            run.sent++;
            run.t0[slot] = zclock_usecs();
            s_raw_send(handle, slot, body, len);
        }
    }
    s_figures_t f = s_figures(&run, zclock_usecs() - start);
    free(run.lat);
    zsock_destroy(&dealer);
    return f;
}

//  One line of results.
static void
s_print(const char *what, s_figures_t broker, s_figures_t raw)
{
    printf("%-28s broker %8.0f rt/s  p50 %6.0f us  p99 %6.0f us | raw %8.0f rt/s  p50 %6.0f us  "
           "p99 %6.0f us | ratio %.2f\n",
           what, broker.rate, broker.p50, broker.p99, raw.rate, raw.p50, raw.p99,
           broker.rate / raw.rate);
}

int
main(int argc, char *argv[])
{
    size_t total = argc > 1 ? (size_t)atol(argv[1]) : 20000;
    if (total < 100)
        total = 100;
    linli_log_init("bench_broker", LINLI_LOG_ERROR);
    Linli__Caller caller = LINLI__CALLER__INIT;
    caller.user_id = "u-1";
    s_request.method = "bench.Nop";
    s_request.caller = &caller;
    s_request.request_id = "bench-0000000000000001";

    char broker_ep[64], raw_ep[64], both_ep[128];
    const char *inproc_ep = "inproc://bench-broker";
    snprintf(broker_ep, sizeof broker_ep, "tcp://127.0.0.1:%d", ts_free_port());
    snprintf(raw_ep, sizeof raw_ep, "tcp://127.0.0.1:%d", ts_free_port());
    snprintf(both_ep, sizeof both_ep, "%s,%s", broker_ep, inproc_ep);
    linli_broker_opts_t opts = {.endpoints = both_ep,
                                .heartbeat_ms = 1000,
                                .liveness = 3,
                                .no_worker_wait_ms = 5000,
                                .max_queue = 10000};
    zactor_t *broker = linli_broker_new(&opts);
    zactor_t *worker = zactor_new(s_worker_actor, broker_ep);
    zactor_t *echo = zactor_new(s_echo_actor, raw_ep);
    if (!broker || !worker || !echo) {
        fprintf(stderr, "bench: could not start\n");
        return 1;
    }
    //  Warm up: connections made, worker registered.
    s_bench_broker(broker_ep, 1000, 1);
    s_bench_raw(raw_ep, 1000, 1);

    s_figures_t b1 = s_bench_broker(broker_ep, total, 1);
    s_figures_t r1 = s_bench_raw(raw_ep, total, 1);
    s_print("lockstep", b1, r1);
    s_figures_t b32 = s_bench_broker(broker_ep, total * 4, S_WINDOW);
    s_figures_t r32 = s_bench_raw(raw_ep, total * 4, S_WINDOW);
    s_print("32 in flight", b32, r32);
    //  A gateway holds its broker: its client may use inproc (workers stay on tcp).
    s_print("lockstep, client inproc", s_bench_broker(inproc_ep, total, 1), r1);
    s_print("32 in flight, client inproc", s_bench_broker(inproc_ep, total * 4, S_WINDOW), r32);

    zactor_destroy(&echo);
    zactor_destroy(&worker);
    zactor_destroy(&broker);
    return 0;
}
