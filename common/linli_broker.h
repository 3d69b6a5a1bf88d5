//  linli_broker: the Majordomo-style broker (docs/broker.md) as a CZMQ actor.
//
//  One ROUTER bound to every endpoint given serves both clients and workers
//  (told apart by the protocol tag). Workers announce their credit in READY;
//  the broker hands each request to the worker of its service with the most
//  free credit, queues requests while all credit is taken, answers 503 when no
//  worker of the service appears within no_worker_wait_ms, 504 when a
//  request's deadline passes, and 504 "worker_lost" for every request a worker
//  held when that worker expires (liveness heartbeats missed) or vanishes.
#ifndef LINLI_BROKER_H
#define LINLI_BROKER_H

#include <czmq.h>

typedef struct {
    const char *endpoints; //  comma-separated bind endpoints ("tcp://127.0.0.1:5555")
    const char
        *client_endpoints; //  set: clients only here (the gateway's inproc endpoint), never
                           //  on `endpoints`, which then serve workers only. NULL: both there.
    int heartbeat_ms;      //  1000 unless testing
    int liveness;          //  heartbeats missed before a worker expires (3)
    int no_worker_wait_ms; //  how long a request waits for a first worker before 503
    int max_queue;         //  queued requests per service before 503 "overloaded"
} linli_broker_opts_t;

//  Start the broker actor, bound to every endpoint; NULL when a bind fails
//  (logged). opts is copied. Destroy with zactor_destroy. Caller owns.
zactor_t *linli_broker_new(const linli_broker_opts_t *opts);

//  A JSON snapshot: {"services":{"<name>":{"workers":N,"credit":N,"inflight":N,
//  "queued":N,"dispatched":[N per connected worker]}},"requests":N,"replies":N,
//  "expired_workers":N}. Caller frees.
char *linli_broker_stats(zactor_t *broker);

#endif
