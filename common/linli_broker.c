//  linli_broker: the Majordomo-style broker (docs/broker.md) as a CZMQ actor.
//
//  Requests live in a slot pool: a request-id the broker hands a worker is the
//  slot's index and generation, so a reply finds its request without a hash
//  and a stale id never matches. A slot sits in its service's FIFO queue or in
//  the list its worker holds (intrusive links), and in one min-heap of expiry
//  times while it has one. Frames are read and sent as raw zmq_msg_t: the
//  client's identity, request-id and body move from the received message into
//  the slot and out to the worker without a copy or an allocation.
#include "linli_broker.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/envelope.pb-c.h"
#include "linli_config.h"
#include "linli_frames.h"
#include "linli_log.h"

#define S_TAG_CLIENT "LNLC1"
#define S_TAG_WORKER "LNLW1"
#define S_TAG_LEN 5
#define S_NIL UINT32_MAX
#define S_NEVER INT64_MAX
#define S_CHUNK_BITS 10
#define S_CHUNK_SIZE (1u << S_CHUNK_BITS)
#define S_MAX_CHUNKS 4096          //  at most 4M requests held at once
#define S_BATCH 512                //  messages read before timers get a turn
#define S_MAX_CREDIT 100000        //  largest credit a READY may announce
#define S_SERVICE_IDLE_MS 60000    //  an empty service is forgotten after this
#define S_MAX_REMAINING 86400000LL //  deadlines further away count as none
#define S_HWM 100000               //  ROUTER queue limits, per peer

typedef enum { S_FREE, S_QUEUED, S_INFLIGHT, S_ANSWERED } s_state_t;

typedef struct s_service_t s_service_t;
typedef struct s_worker_t s_worker_t;

//  One request, from a client's REQ until its answer (or a late reply).
typedef struct {
    uint32_t gen;         //  bumped at every release: stale request-ids never match
    uint8_t state;        //  s_state_t
    uint32_t prev, next;  //  links in the service queue or the worker's list; free list
    uint32_t heap_pos;    //  index in the expiry heap, S_NIL when not in it
    int64_t deadline;     //  monotonic ms, S_NEVER when the request has none
    int64_t expires;      //  heap key: when the broker answers in the worker's stead
    s_service_t *service; //  the service asked
    s_worker_t *worker;   //  the holder while in flight or answered
    zmq_msg_t client;     //  the client's routing id
    zmq_msg_t client_rid; //  the client's request-id frame
    zmq_msg_t body;       //  the packed Request until it goes to a worker
} s_slot_t;

//  A ROUTER routing id as a hash key.
typedef struct {
    uint8_t len;       //  1..255
    uint8_t data[255]; //  the bytes
} s_idkey_t;

//  One connected worker.
struct s_worker_t {
    s_idkey_t key;           //  routing id; the workers table's key
    s_service_t *service;    //  the service it serves
    size_t index;            //  position in service->workers
    int credit;              //  requests it may hold
    int held;                //  requests it holds (in flight or answered late)
    uint32_t head;           //  list of held slots
    int64_t expiry;          //  monotonic ms: silent until then means dead
    int64_t last_sent;       //  monotonic ms of the last message sent to it
    uint64_t dispatched;     //  requests handed to it since it connected
    s_worker_t *prev, *next; //  the list of all workers
};

//  One service: its workers and its queue.
struct s_service_t {
    char *name;           //  owned; also the services table's key
    size_t name_len;      //  strlen(name)
    s_worker_t **workers; //  owned array of borrowed workers
    size_t nworkers, cap; //  used and allocated entries
    size_t rotor;         //  where the next search for credit starts
    uint32_t head, tail;  //  the FIFO of queued slots
    size_t queued;        //  its length
    int64_t credit;       //  credit announced by all its workers
    int64_t held;         //  requests its workers hold
    int64_t idle_since;   //  monotonic ms it became empty; 0 when in use
};

typedef struct {
    linli_broker_opts_t opts; //  copy; opts.endpoints points into endpoints
    char endpoints[];         //  owned copy of the endpoint list
} s_args_t;

typedef struct {
    linli_broker_opts_t opts;  //  as given, defaults filled in
    zsock_t *pipe;             //  the actor pipe (borrowed)
    zsock_t *router;           //  workers' ROUTER (also clients', without a frontend)
    zsock_t *frontend;         //  the clients' own ROUTER, when client_endpoints are given
    void *client_handle;       //  libzmq socket clients are answered on
    void *handle;              //  its libzmq socket
    zloop_t *loop;             //  the reactor
    zhashx_t *services;        //  name -> s_service_t (owned)
    zhashx_t *workers;         //  s_idkey_t -> s_worker_t (owned)
    s_worker_t *all;           //  list of every worker
    s_slot_t **chunks;         //  slot pool, in chunks that never move
    size_t nchunks;            //  chunks allocated
    uint32_t free_head;        //  free slots
    uint32_t *heap;            //  min-heap of slot indices by expires
    size_t heap_len, heap_cap; //  used and allocated entries
    int expiry_timer;          //  zloop timer for the heap's top, -1 when none
    int64_t armed_at;          //  when that timer fires, S_NEVER when none
    int64_t now;               //  monotonic ms, read once per event
    uint64_t requests;         //  REQs accepted from clients
    uint64_t replies;          //  REPs sent to clients
    uint64_t expired_workers;  //  workers expired or vanished
    int64_t log_window;        //  start of the current bad-message log second
    unsigned log_count;        //  bad messages logged in it
    unsigned log_suppressed;   //  bad messages not logged in it
} s_broker_t;

static void s_worker_lost(s_broker_t *self, s_worker_t *w, const char *why, bool counted);

// ---------------------------------------------------------------- slots

//  The slot at idx (which must exist).
static inline s_slot_t *
s_slot(s_broker_t *self, uint32_t idx)
{
    return &self->chunks[idx >> S_CHUNK_BITS][idx & (S_CHUNK_SIZE - 1)];
}

//  Take a free slot; grows the pool by a chunk when empty. S_NIL when full.
static uint32_t
s_slot_alloc(s_broker_t *self)
{
    if (self->free_head == S_NIL) {
        if (self->nchunks == S_MAX_CHUNKS)
            return S_NIL;
        s_slot_t **chunks = realloc(self->chunks, (self->nchunks + 1) * sizeof *chunks);
        if (!chunks)
            return S_NIL;
        self->chunks = chunks;
        s_slot_t *chunk = calloc(S_CHUNK_SIZE, sizeof *chunk);
        if (!chunk)
            return S_NIL;
        chunks[self->nchunks] = chunk;
        uint32_t base = (uint32_t)(self->nchunks * S_CHUNK_SIZE);
        //  Link in reverse so the lowest index is handed out first.
        for (uint32_t i = S_CHUNK_SIZE; i-- > 0;) {
            s_slot_t *slot = &chunk[i];
            zmq_msg_init(&slot->client);
            zmq_msg_init(&slot->client_rid);
            zmq_msg_init(&slot->body);
            slot->gen = 1;
            slot->heap_pos = S_NIL;
            slot->next = self->free_head;
            self->free_head = base + i;
        }
        self->nchunks++;
    }
    uint32_t idx = self->free_head;
    s_slot_t *slot = s_slot(self, idx);
    self->free_head = slot->next;
    slot->prev = slot->next = S_NIL;
    slot->worker = NULL;
    slot->service = NULL;
    slot->deadline = S_NEVER;
    slot->expires = S_NEVER;
    return idx;
}

// ---------------------------------------------------------------- expiry heap

//  Swap heap entries i and j, keeping each slot's heap_pos right.
static inline void
s_heap_swap(s_broker_t *self, size_t i, size_t j)
{
    uint32_t a = self->heap[i], b = self->heap[j];
    self->heap[i] = b;
    self->heap[j] = a;
    s_slot(self, b)->heap_pos = (uint32_t)i;
    s_slot(self, a)->heap_pos = (uint32_t)j;
}

//  Restore heap order around position i.
static void
s_heap_fix(s_broker_t *self, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s_slot(self, self->heap[parent])->expires <= s_slot(self, self->heap[i])->expires)
            break;
        s_heap_swap(self, i, parent);
        i = parent;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < self->heap_len &&
            s_slot(self, self->heap[l])->expires < s_slot(self, self->heap[m])->expires)
            m = l;
        if (r < self->heap_len &&
            s_slot(self, self->heap[r])->expires < s_slot(self, self->heap[m])->expires)
            m = r;
        if (m == i)
            break;
        s_heap_swap(self, i, m);
        i = m;
    }
}

//  Take slot idx out of the heap, if it is in.
static void
s_heap_remove(s_broker_t *self, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    if (slot->heap_pos == S_NIL)
        return;
    size_t pos = slot->heap_pos;
    size_t last = --self->heap_len;
    if (pos != last) {
        s_heap_swap(self, pos, last);
        s_heap_fix(self, pos);
    }
    slot->heap_pos = S_NIL;
}

//  Set when the broker answers for slot idx (S_NEVER: never). 0 or -1 (no memory).
static int
s_heap_set(s_broker_t *self, uint32_t idx, int64_t expires)
{
    s_slot_t *slot = s_slot(self, idx);
    if (expires == S_NEVER) {
        s_heap_remove(self, idx);
        slot->expires = S_NEVER;
        return 0;
    }
    slot->expires = expires;
    if (slot->heap_pos != S_NIL) {
        s_heap_fix(self, slot->heap_pos);
        return 0;
    }
    if (self->heap_len == self->heap_cap) {
        size_t cap = self->heap_cap ? self->heap_cap * 2 : 1024;
        uint32_t *heap = realloc(self->heap, cap * sizeof *heap);
        if (!heap)
            return -1;
        self->heap = heap;
        self->heap_cap = cap;
    }
    slot->heap_pos = (uint32_t)self->heap_len;
    self->heap[self->heap_len++] = idx;
    s_heap_fix(self, slot->heap_pos);
    return 0;
}

//  Return a slot to the pool, dropping whatever it still holds.
static void
s_slot_release(s_broker_t *self, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    s_heap_remove(self, idx);
    //  zmq_msg_close leaves a message unusable: make the three empty again.
    zmq_msg_close(&slot->client);
    zmq_msg_init(&slot->client);
    zmq_msg_close(&slot->client_rid);
    zmq_msg_init(&slot->client_rid);
    zmq_msg_close(&slot->body);
    zmq_msg_init(&slot->body);
    slot->state = S_FREE;
    slot->gen++;
    slot->worker = NULL;
    slot->service = NULL;
    slot->prev = S_NIL;
    slot->next = self->free_head;
    self->free_head = idx;
}

// ---------------------------------------------------------------- lists

//  Append slot idx to its service's queue.
static void
s_queue_push_back(s_broker_t *self, s_service_t *svc, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    slot->prev = svc->tail;
    slot->next = S_NIL;
    if (svc->tail != S_NIL)
        s_slot(self, svc->tail)->next = idx;
    else
        svc->head = idx;
    svc->tail = idx;
    svc->queued++;
    slot->state = S_QUEUED;
}

//  Put slot idx back at the head of its service's queue (it was never delivered).
static void
s_queue_push_front(s_broker_t *self, s_service_t *svc, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    slot->prev = S_NIL;
    slot->next = svc->head;
    if (svc->head != S_NIL)
        s_slot(self, svc->head)->prev = idx;
    else
        svc->tail = idx;
    svc->head = idx;
    svc->queued++;
    slot->state = S_QUEUED;
}

//  Take slot idx out of its service's queue.
static void
s_queue_remove(s_broker_t *self, s_service_t *svc, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    if (slot->prev != S_NIL)
        s_slot(self, slot->prev)->next = slot->next;
    else
        svc->head = slot->next;
    if (slot->next != S_NIL)
        s_slot(self, slot->next)->prev = slot->prev;
    else
        svc->tail = slot->prev;
    slot->prev = slot->next = S_NIL;
    svc->queued--;
}

//  Add slot idx to the list of requests w holds.
static void
s_held_add(s_broker_t *self, s_worker_t *w, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    slot->prev = S_NIL;
    slot->next = w->head;
    if (w->head != S_NIL)
        s_slot(self, w->head)->prev = idx;
    w->head = idx;
    slot->worker = w;
    w->held++;
    w->dispatched++;
    w->service->held++;
}

//  Take slot idx out of the list of requests w holds.
static void
s_held_remove(s_broker_t *self, s_worker_t *w, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    if (slot->prev != S_NIL)
        s_slot(self, slot->prev)->next = slot->next;
    else
        w->head = slot->next;
    if (slot->next != S_NIL)
        s_slot(self, slot->next)->prev = slot->prev;
    slot->prev = slot->next = S_NIL;
    slot->worker = NULL;
    w->held--;
    w->service->held--;
}

// ---------------------------------------------------------------- logging

//  Log a dropped message, at most ten lines a second (a flood must not
//  become a flood of log lines).
static void
s_bad(s_broker_t *self, const char *who, const char *why)
{
    if (self->now - self->log_window >= 1000) {
        if (self->log_suppressed)
            linli_warn("broker: %u more bad messages dropped", self->log_suppressed);
        self->log_window = self->now;
        self->log_count = 0;
        self->log_suppressed = 0;
    }
    if (self->log_count++ < 10)
        linli_warn("broker: dropped a bad message from %s: %s", who, why);
    else
        self->log_suppressed++;
}

// ---------------------------------------------------------------- sending

//  Send the answer body (consumed) to the client of slot idx. The slot keeps
//  nothing it needs afterwards: the caller releases it.
static void
s_send_client(s_broker_t *self, uint32_t idx, zmq_msg_t *body)
{
    s_slot_t *slot = s_slot(self, idx);
    //  With ZMQ_ROUTER_MANDATORY only the routing frame can fail: once it is
    //  accepted the rest of the message goes to the same peer.
    if (zmq_msg_send(&slot->client, self->client_handle, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        if (errno == EHOSTUNREACH)
            linli_debug("broker: client of a %s request is gone", slot->service->name);
        else
            linli_warn("broker: reply to a %s client dropped: %s", slot->service->name,
                       zmq_strerror(errno));
        return;
    }
    zmq_send(self->client_handle, S_TAG_CLIENT, S_TAG_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->client_handle, "REP", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->client_handle, slot->service->name, slot->service->name_len,
             ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_msg_send(&slot->client_rid, self->client_handle, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_msg_send(body, self->client_handle, ZMQ_DONTWAIT);
    self->replies++;
}

//  Answer slot idx's client with an error the broker makes itself.
static void
s_answer(s_broker_t *self, uint32_t idx, int status, const char *code, const char *message)
{
    Linli__Reply reply = LINLI__REPLY__INIT;
    reply.status = status;
    reply.error_code = (char *)code;
    reply.error_message = (char *)message;
    if (status == 503) {
        reply.has_retry_after_s = 1;
        reply.retry_after_s = 1;
    }
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, linli__reply__get_packed_size(&reply)) == -1)
        return;
    linli__reply__pack(&reply, zmq_msg_data(&body));
    s_send_client(self, idx, &body);
    zmq_msg_close(&body);
}

//  Send a command without arguments to the worker at key. 0, or -1 when it is
//  unreachable.
static int
s_send_worker_cmd(s_broker_t *self, const s_idkey_t *key, const char *cmd, const char *service,
                  size_t service_len)
{
    if (zmq_send(self->handle, key->data, key->len, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    zmq_send(self->handle, S_TAG_WORKER, S_TAG_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, cmd, strlen(cmd), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, service, service_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, "", 0, ZMQ_DONTWAIT);
    return 0;
}

//  Hand slot idx (taken out of its queue) to w. 0, or -1 when w cannot be
//  reached (nothing was sent; the slot is unchanged).
static int
s_deliver(s_broker_t *self, s_worker_t *w, uint32_t idx)
{
    s_slot_t *slot = s_slot(self, idx);
    uint8_t rid[8];
    uint32_t gen = slot->gen;
    for (int i = 0; i < 4; i++) {
        rid[i] = (uint8_t)(idx >> (8 * i));
        rid[4 + i] = (uint8_t)(gen >> (8 * i));
    }
    if (zmq_send(self->handle, w->key.data, w->key.len, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    zmq_send(self->handle, S_TAG_WORKER, S_TAG_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, "REQ", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, w->service->name, w->service->name_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, rid, sizeof rid, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_msg_send(&slot->body, self->handle, ZMQ_DONTWAIT);
    w->last_sent = self->now;
    slot->state = S_INFLIGHT;
    s_held_add(self, w, idx);
    s_heap_set(self, idx, slot->deadline);
    return 0;
}

// ---------------------------------------------------------------- services

//  The worker of svc with the most free credit, rotating among ties; NULL
//  when all credit is taken. O(workers of the service), never O(requests).
static s_worker_t *
s_pick(s_service_t *svc)
{
    size_t n = svc->nworkers;
    s_worker_t *best = NULL;
    int best_free = 0;
    size_t best_at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = (svc->rotor + i) % n;
        s_worker_t *w = svc->workers[j];
        int free_credit = w->credit - w->held;
        if (free_credit > best_free) {
            best = w;
            best_free = free_credit;
            best_at = j;
        }
    }
    if (best)
        svc->rotor = best_at + 1;
    return best;
}

//  Hand queued requests of svc to its workers while any has credit.
static void
s_dispatch(s_broker_t *self, s_service_t *svc)
{
    while (svc->queued) {
        s_worker_t *w = s_pick(svc);
        if (!w)
            break;
        uint32_t idx = svc->head;
        s_queue_remove(self, svc, idx);
        if (s_deliver(self, w, idx) == -1) {
            //  Not delivered, so it cannot have run: it keeps its place.
            s_queue_push_front(self, svc, idx);
            s_worker_lost(self, w, "unreachable", true);
        }
    }
}

//  Set the expiry of every queued request of svc: its deadline while the
//  service has workers, at most no_worker_wait_ms from now while it has none.
//  O(queue), but only when the service gains its first or loses its last worker.
static void
s_queue_rearm(s_broker_t *self, s_service_t *svc)
{
    int64_t wait_until = self->now + self->opts.no_worker_wait_ms;
    for (uint32_t idx = svc->head; idx != S_NIL; idx = s_slot(self, idx)->next) {
        s_slot_t *slot = s_slot(self, idx);
        int64_t expires = slot->deadline;
        if (svc->nworkers == 0 && wait_until < expires)
            expires = wait_until;
        s_heap_set(self, idx, expires);
    }
}

//  The service called name (name_len bytes, no NUL inside), created when new.
//  NULL when out of memory.
static s_service_t *
s_service_require(s_broker_t *self, const char *name, size_t name_len)
{
    char key[256];
    memcpy(key, name, name_len);
    key[name_len] = '\0';
    s_service_t *svc = zhashx_lookup(self->services, key);
    if (svc) {
        svc->idle_since = 0;
        return svc;
    }
    svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    svc->name = strdup(key);
    svc->name_len = name_len;
    svc->head = svc->tail = S_NIL;
    if (!svc->name || zhashx_insert(self->services, svc->name, svc) == -1) {
        free(svc->name);
        free(svc);
        return NULL;
    }
    return svc;
}

//  Free a service that has no workers and no requests.
static void
s_service_destroy(s_broker_t *self, s_service_t *svc)
{
    zhashx_delete(self->services, svc->name);
    free(svc->workers);
    free(svc->name);
    free(svc);
}

// ---------------------------------------------------------------- workers

//  Forget w: every request it held is answered 504 "worker_lost" (it may have
//  run), and while the service has no worker left its queue waits at most
//  no_worker_wait_ms. counted: an expiry or vanishing, not a BYE.
static void
s_worker_lost(s_broker_t *self, s_worker_t *w, const char *why, bool counted)
{
    s_service_t *svc = w->service;
    linli_log_ctx(counted ? LINLI_LOG_WARN : LINLI_LOG_INFO, NULL, NULL,
                  "broker: %s worker %s, %d requests lost", svc->name, why, w->held);
    if (counted)
        self->expired_workers++;
    while (w->head != S_NIL) {
        uint32_t idx = w->head;
        s_slot_t *slot = s_slot(self, idx);
        s_held_remove(self, w, idx);
        if (slot->state == S_INFLIGHT)
            s_answer(self, idx, 504, "worker_lost",
                     "The worker handling this request was lost; it may have run.");
        s_slot_release(self, idx);
    }
    svc->credit -= w->credit;
    size_t last = --svc->nworkers;
    if (w->index != last) {
        svc->workers[w->index] = svc->workers[last];
        svc->workers[w->index]->index = w->index;
    }
    zhashx_delete(self->workers, &w->key);
    if (w->prev)
        w->prev->next = w->next;
    else
        self->all = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
    if (svc->nworkers == 0 && svc->queued)
        s_queue_rearm(self, svc);
}

//  A new worker for svc with credit; NULL when out of memory.
static s_worker_t *
s_worker_new(s_broker_t *self, const s_idkey_t *key, s_service_t *svc, int credit)
{
    if (svc->nworkers == svc->cap) {
        size_t cap = svc->cap ? svc->cap * 2 : 4;
        s_worker_t **workers = realloc(svc->workers, cap * sizeof *workers);
        if (!workers)
            return NULL;
        svc->workers = workers;
        svc->cap = cap;
    }
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    memcpy(&w->key, key, sizeof *key);
    w->service = svc;
    w->credit = credit;
    w->head = S_NIL;
    w->expiry = self->now + (int64_t)self->opts.liveness * self->opts.heartbeat_ms;
    w->last_sent = self->now;
    if (zhashx_insert(self->workers, &w->key, w) == -1) {
        free(w);
        return NULL;
    }
    w->index = svc->nworkers;
    svc->workers[svc->nworkers++] = w;
    svc->credit += credit;
    svc->idle_since = 0;
    w->next = self->all;
    if (self->all)
        self->all->prev = w;
    self->all = w;
    return w;
}

//  FNV-1a over a routing id.
static size_t
s_idkey_hash(const void *key)
{
    const s_idkey_t *k = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < k->len; i++) {
        h ^= k->data[i];
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

//  Equality of routing ids, as zhashx wants it (0 when equal).
static int
s_idkey_compare(const void *a, const void *b)
{
    const s_idkey_t *x = a, *y = b;
    if (x->len != y->len)
        return 1;
    return memcmp(x->data, y->data, x->len);
}

// ---------------------------------------------------------------- wire input

//  Read a protobuf varint from *p (advanced). 0, or -1 when malformed.
static int
s_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

//  Find deadline_ms (field 4) in a packed Request without unpacking it (no
//  allocation); 0 when absent. 0, or -1 when the wire format is broken or
//  the required method (field 1) is missing.
static int
s_scan_request(const uint8_t *p, size_t len, int64_t *deadline_ms)
{
    const uint8_t *end = p + len;
    bool method = false;
    *deadline_ms = 0;
    while (p < end) {
        uint64_t key, v;
        if (s_varint(&p, end, &key) == -1 || (key >> 3) == 0)
            return -1;
        uint64_t field = key >> 3;
        switch (key & 7) {
        case 0:
            if (s_varint(&p, end, &v) == -1)
                return -1;
            if (field == 4)
                *deadline_ms = (int64_t)v;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 2:
            if (s_varint(&p, end, &v) == -1 || v > (uint64_t)(end - p))
                return -1;
            if (field == 1)
                method = true;
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        default:
            return -1;
        }
    }
    return method ? 0 : -1;
}

//  True when frame m holds exactly the len bytes of s.
static inline bool
s_frame_is(zmq_msg_t *m, const char *s, size_t len)
{
    return zmq_msg_size(m) == len && memcmp(zmq_msg_data(m), s, len) == 0;
}

//  A REQ from a client: part = [id][tag][REQ][service][rid][body].
static void
s_on_client(s_broker_t *self, zmq_msg_t *part)
{
    if (!s_frame_is(&part[2], "REQ", 3)) {
        s_bad(self, "a client", "unknown command");
        return;
    }
    size_t service_len = zmq_msg_size(&part[3]);
    const char *service = zmq_msg_data(&part[3]);
    if (service_len == 0 || service_len > 255 || memchr(service, '\0', service_len)) {
        s_bad(self, "a client", "bad service name");
        return;
    }
    size_t rid_len = zmq_msg_size(&part[4]);
    if (rid_len == 0 || rid_len > 255) {
        s_bad(self, "a client", "bad request-id");
        return;
    }
    s_service_t *svc = s_service_require(self, service, service_len);
    uint32_t idx = svc ? s_slot_alloc(self) : S_NIL;
    if (idx == S_NIL) {
        linli_error("broker: out of memory, %s request dropped", svc ? svc->name : "a");
        return;
    }
    self->requests++;
    s_slot_t *slot = s_slot(self, idx);
    slot->service = svc;
    zmq_msg_move(&slot->client, &part[0]);
    zmq_msg_move(&slot->client_rid, &part[4]);
    zmq_msg_move(&slot->body, &part[5]);

    int64_t deadline_ms;
    if (s_scan_request(zmq_msg_data(&slot->body), zmq_msg_size(&slot->body), &deadline_ms)) {
        s_answer(self, idx, 400, "bad_envelope", "The request envelope could not be parsed.");
        s_slot_release(self, idx);
        return;
    }
    if (deadline_ms > 0) {
        int64_t remaining = deadline_ms - zclock_time();
        if (remaining <= 0) {
            s_answer(self, idx, 504, "timeout", "The request's deadline had passed.");
            s_slot_release(self, idx);
            return;
        }
        if (remaining < S_MAX_REMAINING)
            slot->deadline = self->now + remaining;
    }
    if (svc->queued >= (size_t)self->opts.max_queue) {
        s_answer(self, idx, 503, "overloaded", "Too many requests are waiting for this service.");
        s_slot_release(self, idx);
        return;
    }
    s_queue_push_back(self, svc, idx);
    int64_t expires = slot->deadline;
    if (svc->nworkers == 0 && self->now + self->opts.no_worker_wait_ms < expires)
        expires = self->now + self->opts.no_worker_wait_ms;
    s_heap_set(self, idx, expires);
    s_dispatch(self, svc);
}

//  Parse a READY's credit: decimal 1..S_MAX_CREDIT; -1 when invalid.
static int
s_parse_credit(zmq_msg_t *m)
{
    size_t len = zmq_msg_size(m);
    const char *s = zmq_msg_data(m);
    if (len == 0 || len > 6)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= S_MAX_CREDIT ? v : -1;
}

//  A REP from worker w: part = [id][tag][REP][service][rid][body].
static void
s_on_reply(s_broker_t *self, s_worker_t *w, zmq_msg_t *part)
{
    if (zmq_msg_size(&part[4]) != 8) {
        s_bad(self, "a worker", "bad request-id");
        return;
    }
    const uint8_t *rid = zmq_msg_data(&part[4]);
    uint32_t idx = 0, gen = 0;
    for (int i = 0; i < 4; i++) {
        idx |= (uint32_t)rid[i] << (8 * i);
        gen |= (uint32_t)rid[4 + i] << (8 * i);
    }
    s_slot_t *slot = (idx >> S_CHUNK_BITS) < self->nchunks ? s_slot(self, idx) : NULL;
    if (!slot || slot->gen != gen || slot->worker != w ||
        (slot->state != S_INFLIGHT && slot->state != S_ANSWERED)) {
        s_bad(self, "a worker", "reply to a request it does not hold");
        return;
    }
    s_held_remove(self, w, idx);
    if (slot->state == S_INFLIGHT)
        s_send_client(self, idx, &part[5]);
    s_slot_release(self, idx);
    s_dispatch(self, w->service);
}

//  A message from a worker: part = [id][tag][command][service][rid][body].
static void
s_on_worker(s_broker_t *self, zmq_msg_t *part)
{
    s_idkey_t key;
    key.len = (uint8_t)zmq_msg_size(&part[0]);
    memcpy(key.data, zmq_msg_data(&part[0]), key.len);
    s_worker_t *w = zhashx_lookup(self->workers, &key);
    if (w)
        w->expiry = self->now + (int64_t)self->opts.liveness * self->opts.heartbeat_ms;
    size_t service_len = zmq_msg_size(&part[3]);
    const char *service = zmq_msg_data(&part[3]);
    if (service_len > 255 || memchr(service, '\0', service_len)) {
        s_bad(self, "a worker", "bad service name");
        return;
    }

    if (s_frame_is(&part[2], "READY", 5)) {
        int credit = s_parse_credit(&part[5]);
        if (service_len == 0 || credit == -1) {
            s_bad(self, "a worker", "READY without a service or a valid credit");
            return;
        }
        //  A READY on a socket we know answers a BYE that crossed it (a worker
        //  keeps what it holds on the same socket): only the credit changes.
        if (w && w->service->name_len == service_len &&
            memcmp(w->service->name, service, service_len) == 0) {
            w->service->credit += credit - w->credit;
            w->credit = credit;
            s_dispatch(self, w->service);
            return;
        }
        if (w)
            s_worker_lost(self, w, "changed service", false);
        s_service_t *svc = s_service_require(self, service, service_len);
        w = svc ? s_worker_new(self, &key, svc, credit) : NULL;
        if (!w) {
            linli_error("broker: out of memory, %.*s worker refused", (int)service_len, service);
            return;
        }
        linli_info("broker: %s worker ready, credit %d", svc->name, credit);
        if (svc->nworkers == 1 && svc->queued)
            s_queue_rearm(self, svc);
        s_dispatch(self, svc);
    } else if (s_frame_is(&part[2], "BYE", 3)) {
        if (w)
            s_worker_lost(self, w, "left", false);
    } else if (!s_frame_is(&part[2], "REP", 3) && !s_frame_is(&part[2], "HB", 2)) {
        s_bad(self, "a worker", "unknown command");
    } else if (!w) {
        //  HB or REP from a worker we do not know (after a broker restart or
        //  its expiry): BYE makes it send READY again.
        s_send_worker_cmd(self, &key, "BYE", service, service_len);
    } else if (s_frame_is(&part[2], "REP", 3)) {
        s_on_reply(self, w, part);
    }
}

//  One message from the ROUTER (nparts frames, the identity first).
static void
s_on_message(s_broker_t *self, zmq_msg_t *part, size_t nparts, bool too_many, bool from_frontend)
{
    if (too_many || nparts != 6) {
        s_bad(self, "a peer", "not six frames");
        return;
    }
    if (zmq_msg_size(&part[0]) == 0 || zmq_msg_size(&part[0]) > 255) {
        s_bad(self, "a peer", "bad routing id");
        return;
    }
    //  With a frontend, a client's request (which names the caller the
    //  services trust) is taken only from the frontend, and a worker only
    //  from the workers' socket: a peer on the workers' TCP port cannot
    //  pose as the gateway.
    bool split = self->frontend != NULL;
    if (s_frame_is(&part[1], S_TAG_CLIENT, S_TAG_LEN)) {
        if (split && !from_frontend)
            s_bad(self, "a worker-side peer", "client request on the workers' socket");
        else
            s_on_client(self, part);
    } else if (s_frame_is(&part[1], S_TAG_WORKER, S_TAG_LEN)) {
        if (split && from_frontend)
            s_bad(self, "a client", "worker command on the clients' socket");
        else
            s_on_worker(self, part);
    } else
        s_bad(self, "a peer", "unknown protocol tag");
}

// ---------------------------------------------------------------- timers

static int s_on_expiry(zloop_t *loop, int timer_id, void *arg);

//  Make sure a timer fires when the heap's earliest expiry comes. Re-armed
//  only when that moment moves earlier (rare: most new deadlines are later).
static void
s_arm(s_broker_t *self)
{
    if (self->heap_len == 0)
        return;
    int64_t top = s_slot(self, self->heap[0])->expires;
    if (top >= self->armed_at)
        return;
    if (self->expiry_timer != -1)
        zloop_timer_end(self->loop, self->expiry_timer);
    int64_t delay = top - zclock_mono();
    self->expiry_timer =
        zloop_timer(self->loop, delay > 1 ? (size_t)delay : 1, 1, s_on_expiry, self);
    self->armed_at = self->expiry_timer == -1 ? S_NEVER : top;
}

//  Answer every request whose time has come: 503 "no_worker" for one that
//  waited for a worker in vain, 504 "timeout" for one past its deadline.
static int
s_on_expiry(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_broker_t *self = arg;
    self->expiry_timer = -1;
    self->armed_at = S_NEVER;
    self->now = zclock_mono();
    while (self->heap_len) {
        uint32_t idx = self->heap[0];
        s_slot_t *slot = s_slot(self, idx);
        if (slot->expires > self->now)
            break;
        s_heap_remove(self, idx);
        if (slot->state == S_QUEUED) {
            s_queue_remove(self, slot->service, idx);
            if (slot->deadline <= self->now)
                s_answer(self, idx, 504, "timeout", "The request's deadline passed in the queue.");
            else
                s_answer(self, idx, 503, "no_worker", "No worker serves this service.");
            s_slot_release(self, idx);
        } else if (slot->state == S_INFLIGHT) {
            //  The worker still holds it: its credit comes back with the
            //  late reply (dropped), or when the worker is lost.
            s_answer(self, idx, 504, "timeout", "The request's deadline passed at the worker.");
            slot->state = S_ANSWERED;
        }
    }
    s_arm(self);
    return 0;
}

//  Every heartbeat: expire silent workers, heartbeat the others, forget
//  services long unused.
static int
s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_broker_t *self = arg;
    self->now = zclock_mono();
    s_worker_t *next;
    for (s_worker_t *w = self->all; w; w = next) {
        next = w->next;
        //  Losing a worker frees no credit elsewhere, so nothing is
        //  dispatched here, and only w (never next) is freed.
        if (self->now >= w->expiry) {
            s_worker_lost(self, w, "expired", true);
        } else if (self->now - w->last_sent >= self->opts.heartbeat_ms / 2) {
            //  Requests count as heartbeats: a busy worker is not sent more.
            if (s_send_worker_cmd(self, &w->key, "HB", w->service->name, w->service->name_len) ==
                -1) {
                s_worker_lost(self, w, "unreachable", true);
            } else {
                w->last_sent = self->now;
            }
        }
    }
    s_service_t *idle[16];
    size_t nidle = 0;
    for (s_service_t *svc = zhashx_first(self->services); svc && nidle < 16;
         svc = zhashx_next(self->services)) {
        if (svc->nworkers || svc->queued || svc->held)
            svc->idle_since = 0;
        else if (!svc->idle_since)
            svc->idle_since = self->now;
        else if (self->now - svc->idle_since >= S_SERVICE_IDLE_MS)
            idle[nidle++] = svc;
    }
    for (size_t i = 0; i < nidle; i++)
        s_service_destroy(self, idle[i]);
    s_arm(self);
    return 0;
}

// ---------------------------------------------------------------- actor

//  Read everything waiting on the ROUTER (up to a batch, so timers and the
//  pipe get their turn under a flood; zmq_poll reports what is left).
static int
s_on_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    s_broker_t *self = arg;
    self->now = zclock_mono();
    void *handle = zsock_resolve(sock);
    bool from_frontend = sock == self->frontend;
    //  Read until nothing is left rather than asking ZMQ_EVENTS before each
    //  message: that asks the kernel twice (getpid, poll) every time, while
    //  a receive that finds a message asks nothing.
    for (int count = 0; count < S_BATCH; count++) {
        zmq_msg_t part[6];
        bool too_many;
        size_t nparts = linli_frames_recv(handle, part, 6, &too_many);
        if (!nparts)
            break;
        s_on_message(self, part, nparts, too_many, from_frontend);
        linli_frames_close(part, nparts);
    }
    s_arm(self);
    return 0;
}

//  The stats JSON (see linli_broker.h). Caller frees.
static char *
s_stats(s_broker_t *self)
{
    json_t *services = json_object();
    for (s_service_t *svc = zhashx_first(self->services); svc; svc = zhashx_next(self->services)) {
        //  Requests each connected worker was given: shows the load is shared.
        json_t *dispatched = json_array();
        for (size_t i = 0; i < svc->nworkers; i++)
            json_array_append_new(dispatched,
                                  json_integer((json_int_t)svc->workers[i]->dispatched));
        json_object_set_new(services, svc->name,
                            json_pack("{sIsIsIsIso}", "workers", (json_int_t)svc->nworkers,
                                      "credit", (json_int_t)svc->credit, "inflight",
                                      (json_int_t)svc->held, "queued", (json_int_t)svc->queued,
                                      "dispatched", dispatched));
    }
    json_t *root = json_pack("{sosIsIsI}", "services", services, "requests",
                             (json_int_t)self->requests, "replies", (json_int_t)self->replies,
                             "expired_workers", (json_int_t)self->expired_workers);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

//  Commands from the owner: $TERM ends the actor, STATS asks for the JSON.
static int
s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    s_broker_t *self = arg;
    char *cmd = zstr_recv(pipe);
    if (!cmd)
        return -1;
    int rc = 0;
    if (streq(cmd, "$TERM")) {
        rc = -1;
    } else if (streq(cmd, "STATS")) {
        char *text = s_stats(self);
        zstr_send(pipe, text ? text : "{}");
        free(text);
    } else {
        linli_warn("broker: unknown pipe command %s", cmd);
    }
    free(cmd);
    return rc;
}

//  Free everything; accepts NULL.
static void
s_broker_destroy(s_broker_t **self_p)
{
    s_broker_t *self = *self_p;
    if (!self)
        return;
    while (self->all) {
        s_worker_t *w = self->all;
        self->all = w->next;
        free(w);
    }
    zhashx_destroy(&self->workers);
    if (self->services) {
        for (s_service_t *svc = zhashx_first(self->services); svc;
             svc = zhashx_next(self->services)) {
            free(svc->workers);
            free(svc->name);
            free(svc);
        }
        zhashx_destroy(&self->services);
    }
    for (size_t c = 0; c < self->nchunks; c++) {
        for (size_t i = 0; i < S_CHUNK_SIZE; i++) {
            zmq_msg_close(&self->chunks[c][i].client);
            zmq_msg_close(&self->chunks[c][i].client_rid);
            zmq_msg_close(&self->chunks[c][i].body);
        }
        free(self->chunks[c]);
    }
    free(self->chunks);
    free(self->heap);
    zloop_destroy(&self->loop);
    zsock_destroy(&self->frontend);
    zsock_destroy(&self->router);
    free(self);
    *self_p = NULL;
}

//  Bind sock to every endpoint of a comma-separated list. Endpoints bound,
//  0 when the list is empty, -1 when one fails or memory runs out (logged).
static int
s_bind_all(zsock_t *sock, const char *endpoints)
{
    char *list = strdup(endpoints);
    if (!list) {
        linli_error("broker: out of memory copying the endpoints to bind");
        return -1;
    }
    int bound = 0;
    for (char *cursor = list, *ep; (ep = linli_list_next(&cursor));) {
        if (zsock_bind(sock, "%s", ep) == -1) {
            linli_error("broker: cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
            bound = -1;
            break;
        }
        linli_info("broker: bound %s", ep);
        bound++;
    }
    free(list);
    if (bound == 0)
        linli_error("broker: no endpoint to bind");
    return bound;
}

//  Create the broker state and bind every endpoint. NULL on failure (logged).
static s_broker_t *
s_broker_new(zsock_t *pipe, const linli_broker_opts_t *opts)
{
    s_broker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    self->pipe = pipe;
    self->free_head = S_NIL;
    self->expiry_timer = -1;
    self->armed_at = S_NEVER;
    self->now = zclock_mono();
    self->router = zsock_new(ZMQ_ROUTER);
    self->loop = zloop_new();
    self->services = zhashx_new();
    self->workers = zhashx_new();
    if (!self->router || !self->loop || !self->services || !self->workers) {
        s_broker_destroy(&self);
        return NULL;
    }
    //  Keys are owned by the values (the service's name, the worker's key).
    zhashx_set_key_duplicator(self->services, NULL);
    zhashx_set_key_destructor(self->services, NULL);
    zhashx_set_key_duplicator(self->workers, NULL);
    zhashx_set_key_destructor(self->workers, NULL);
    zhashx_set_key_hasher(self->workers, s_idkey_hash);
    zhashx_set_key_comparator(self->workers, s_idkey_compare);
    self->handle = zsock_resolve(self->router);
    zsock_set_router_mandatory(self->router, 1);
    zsock_set_sndhwm(self->router, S_HWM);
    zsock_set_rcvhwm(self->router, S_HWM);
    zsock_set_linger(self->router, 0);

    self->client_handle = self->handle;
    if (s_bind_all(self->router, opts->endpoints) <= 0) {
        s_broker_destroy(&self);
        return NULL;
    }
    if (opts->client_endpoints && *opts->client_endpoints) {
        self->frontend = zsock_new(ZMQ_ROUTER);
        if (!self->frontend) {
            s_broker_destroy(&self);
            return NULL;
        }
        zsock_set_router_mandatory(self->frontend, 1);
        zsock_set_sndhwm(self->frontend, S_HWM);
        zsock_set_rcvhwm(self->frontend, S_HWM);
        zsock_set_linger(self->frontend, 0);
        self->client_handle = zsock_resolve(self->frontend);
        if (s_bind_all(self->frontend, opts->client_endpoints) <= 0) {
            s_broker_destroy(&self);
            return NULL;
        }
        zloop_reader(self->loop, self->frontend, s_on_router, self);
        zloop_reader_set_tolerant(self->loop, self->frontend);
    }
    zloop_reader(self->loop, self->router, s_on_router, self);
    zloop_reader_set_tolerant(self->loop, self->router);
    zloop_reader(self->loop, pipe, s_on_pipe, self);
    zloop_timer(self->loop, (size_t)opts->heartbeat_ms, 0, s_on_heartbeat, self);
    return self;
}

//  The actor: signals the handshake, then 0 or -1 for the binds, then runs.
static void
s_broker_actor(zsock_t *pipe, void *arg)
{
    s_args_t *args = arg;
    s_broker_t *self = s_broker_new(pipe, &args->opts);
    free(args);
    zsock_signal(pipe, 0);
    zsock_signal(pipe, self ? 0 : (byte)-1);
    if (self) {
        zloop_start(self->loop);
        s_broker_destroy(&self);
        return;
    }
    //  Failed: wait for the owner's $TERM so zactor_destroy finds us.
    char *cmd;
    while ((cmd = zstr_recv(pipe))) {
        bool term = streq(cmd, "$TERM");
        free(cmd);
        if (term)
            break;
    }
}

zactor_t *
linli_broker_new(const linli_broker_opts_t *opts)
{
    if (!opts || !opts->endpoints) {
        linli_error("broker: no endpoints given");
        return NULL;
    }
    size_t len = strlen(opts->endpoints);
    size_t clen = opts->client_endpoints ? strlen(opts->client_endpoints) : 0;
    s_args_t *args = malloc(sizeof *args + len + 1 + clen + 1);
    if (!args)
        return NULL;
    memcpy(args->endpoints, opts->endpoints, len + 1);
    args->opts = *opts;
    args->opts.endpoints = args->endpoints;
    if (opts->client_endpoints) {
        memcpy(args->endpoints + len + 1, opts->client_endpoints, clen + 1);
        args->opts.client_endpoints = args->endpoints + len + 1;
    }
    //  Zero or negative means "the default".
    if (args->opts.heartbeat_ms <= 0)
        args->opts.heartbeat_ms = 1000;
    if (args->opts.liveness <= 0)
        args->opts.liveness = 3;
    if (args->opts.no_worker_wait_ms < 0)
        args->opts.no_worker_wait_ms = 0;
    if (args->opts.max_queue <= 0)
        args->opts.max_queue = 10000;
    zactor_t *actor = zactor_new(s_broker_actor, args);
    if (!actor)
        return NULL;
    if (zsock_wait(actor) != 0) {
        zactor_destroy(&actor);
        return NULL;
    }
    return actor;
}

char *
linli_broker_stats(zactor_t *broker)
{
    if (!broker || zstr_send(broker, "STATS") == -1)
        return NULL;
    return zstr_recv(broker);
}
