//  linli_client: the asking side of the broker protocol (docs/broker.md),
//  asynchronous for the gateway's event loop, with a blocking call for tools
//  and tests. Every request gets exactly one answer: the service's, or one the
//  client makes itself (504 "timeout") when nothing came back in time.
#ifndef LINLI_CLIENT_H
#define LINLI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "linli/envelope.pb-c.h"

typedef struct linli_client_t linli_client_t;

//  Called once per request with its reply (borrowed for the call).
typedef void(linli_client_fn)(void *arg, const Linli__Reply *reply);

//  New client: a DEALER connected to the broker at endpoint. Caller owns.
linli_client_t *linli_client_new(const char *endpoint);

//  Destroy; pending callbacks are not called. Accepts NULL, nulls the pointer.
void linli_client_destroy(linli_client_t **self_p);

//  The DEALER's ZMQ_FD, edge-triggered: after it signals, and after every
//  send, call linli_client_process.
int linli_client_fd(linli_client_t *self);

//  Send request (borrowed; packed at once) to service. When nothing comes back
//  within timeout_ms the client answers 504 "timeout" itself. Returns a
//  nonzero handle, or 0 when it could not be sent (callback never called).
uint64_t linli_client_send(linli_client_t *self, const char *service, const Linli__Request *request,
                           int64_t timeout_ms, linli_client_fn *callback, void *arg);

//  Forget a request: its callback is never called (e.g. the HTTP client left).
void linli_client_cancel(linli_client_t *self, uint64_t handle);

//  Read every waiting reply and call its callback; answer overdue requests.
void linli_client_process(linli_client_t *self);

//  Milliseconds until the next pending request is overdue; -1 when none.
int64_t linli_client_next_timeout_ms(const linli_client_t *self);

//  Requests waiting for an answer.
size_t linli_client_pending(const linli_client_t *self);

//  Blocking call for tools and tests: returns the reply (never NULL; a 504
//  "timeout" one made here when nothing came). Caller frees it with
//  linli__reply__free_unpacked(reply, NULL).
Linli__Reply *linli_client_call(linli_client_t *self, const char *service,
                                const Linli__Request *request, int64_t timeout_ms);

#endif
