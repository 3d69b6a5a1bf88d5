//  linli_worker: the service side of the broker protocol (docs/broker.md).
//
//  A worker keeps one DEALER per broker endpoint it is given, sends READY with
//  its credit (how many requests it may hold at once), heartbeats every
//  heartbeat_ms, and reconnects to a broker silent for liveness heartbeats.
//  Each request is unpacked with its route's descriptor, validated against the
//  constraints table (linli_codec_validate), and handed to the route's handler.
#ifndef LINLI_WORKER_H
#define LINLI_WORKER_H

#include <czmq.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "linli/envelope.pb-c.h"

typedef struct linli_request_t linli_request_t;
typedef struct linli_worker_t linli_worker_t;

//  A handler: msg is the unpacked, validated request body (borrowed). It ends
//  with exactly one linli_reply/linli_fail and returns its result; returning
//  -1 without replying makes the worker answer 500.
typedef int(linli_handler_fn)(void *self, linli_request_t *request, const ProtobufCMessage *msg);

typedef struct {
    const char *method;                        //  "registry.GetArea"
    const ProtobufCMessageDescriptor *request; //  type of Request.body
    linli_handler_fn *handler;                 //  the code
} linli_route_t;

//  A batch handler: n requests of one method that arrived together (all
//  borrowed, each msg validated); it answers every one of them. Lets a read
//  be one query for many callers instead of one round trip each.
typedef int(linli_batch_fn)(void *self, linli_request_t **requests, const ProtobufCMessage **msgs,
                            size_t n);

typedef struct {
    const char *method; //  a method of the route table
    linli_batch_fn *fn; //  handles those requests in batches
    size_t max;         //  most requests in one batch (0: 64)
} linli_batch_route_t;

typedef struct {
    const char *service;                //  service name the broker routes by, e.g. "registry"
    const char *endpoints;              //  comma-separated broker endpoints
    int credit;                         //  requests held at once, per broker (>= 1)
    int heartbeat_ms;                   //  1000 unless testing
    int liveness;                       //  heartbeats missed before a broker counts as gone (3)
    const linli_route_t *routes;        //  terminated by a {NULL} entry; borrowed
    void *handler_self;                 //  first argument of every handler; borrowed
    const linli_batch_route_t *batches; //  optional, {NULL}-ended: methods whose requests,
                                        //  drained together, go to one call
} linli_worker_opts_t;

//  Create the worker and register its sockets and timers in loop (borrowed;
//  must outlive the worker). NULL if an endpoint is invalid. Caller owns.
linli_worker_t *linli_worker_new(zloop_t *loop, const linli_worker_opts_t *opts);

//  Tell each broker goodbye, close sockets; accepts NULL, nulls the pointer.
void linli_worker_destroy(linli_worker_t **self_p);

//  Requests handled since start (for metrics and tests).
uint64_t linli_worker_handled(const linli_worker_t *self);

// ---- inside a handler: the request being handled (all borrowed)

//  Who is asking; never NULL (an empty caller when the request had none).
const Linli__Caller *linli_request_caller(const linli_request_t *request);
//  "" when none.
const char *linli_request_idempotency_key(const linli_request_t *request);
const char *linli_request_id(const linli_request_t *request);
const char *linli_request_method(const linli_request_t *request);
int64_t linli_request_deadline_ms(const linli_request_t *request);
//  The packed body as received (to hash for idempotency).
const uint8_t *linli_request_body(const linli_request_t *request, size_t *len);

//  Answer with status and body (may be NULL); returns 0.
int linli_reply(linli_request_t *request, int status, const ProtobufCMessage *body);
//  Answer with an already packed body (a stored idempotent reply); returns 0.
int linli_reply_packed(linli_request_t *request, int status, const uint8_t *body, size_t len);
//  Answer with an error: status, machine-readable code, message; returns 0.
//  4xx are logged at info, 5xx at error.
int linli_fail(linli_request_t *request, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
//  The same, naming the offending field.
int linli_fail_field(linli_request_t *request, int status, const char *code, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
//  Tell the caller when to try again (429, 503): sent with the error reply.
void linli_request_set_retry_after(linli_request_t *request, int seconds);
//  True once the request has been answered.
bool linli_request_replied(const linli_request_t *request);

#endif
