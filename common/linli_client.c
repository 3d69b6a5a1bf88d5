//  linli_client: the asking side of the broker protocol (docs/broker.md).
//
//  Pending requests live in a pool of entries, found by handle through an
//  open-addressing hash and ordered by due time in an indexed min-heap, so
//  send, reply, cancel and timeout are O(1) or O(log n) and
//  linli_client_next_timeout_ms is O(1). Replies are unpacked into an arena
//  reset after each one.
#include "linli_client.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_arena.h"
#include "linli_frames.h"
#include "linli_log.h"

#define S_TAG "LNLC1"
#define S_TAG_LEN 5
#define S_NIL UINT32_MAX
#define S_ARENA_SIZE (64 * 1024) //  replies larger than this use malloc
#define S_HWM 100000             //  DEALER queue limits

//  One request waiting for its answer.
typedef struct {
    uint64_t handle;           //  its handle and request-id; 0 when the entry is free
    int64_t due;               //  monotonic ms when the client answers 504 itself
    linli_client_fn *callback; //  called once with the answer
    void *arg;                 //  its first argument
    uint32_t heap_pos;         //  index in the heap
    uint32_t next_free;        //  free list link
} s_pending_t;

struct linli_client_t {
    zsock_t *sock;        //  the DEALER
    void *handle;         //  its libzmq socket
    uint64_t last_handle; //  counter behind every handle
    s_pending_t *entries; //  owned pool
    uint32_t nentries;    //  entries allocated
    uint32_t free_head;   //  free entries
    uint32_t *table;      //  hash: entry indices by handle, S_NIL when empty
    size_t table_mask;    //  table size - 1 (a power of two)
    size_t count;         //  pending requests
    uint32_t *heap;       //  entry indices by due
    size_t heap_len;      //  entries in the heap (== count)
    size_t heap_cap;      //  its size
    linli_arena_t arena;  //  reply unpacking memory
    bool in_process;      //  inside linli_client_process (callbacks may not nest it)
};

// ---------------------------------------------------------------- hash

//  Home bucket of handle h (Fibonacci hashing: handles are a counter).
static inline size_t
s_bucket(const linli_client_t *self, uint64_t h)
{
    return (size_t)((h * 0x9E3779B97F4A7C15ULL) >> 32) & self->table_mask;
}

//  The entry of handle h, or S_NIL.
static uint32_t
s_lookup(const linli_client_t *self, uint64_t h)
{
    for (size_t i = s_bucket(self, h);; i = (i + 1) & self->table_mask) {
        uint32_t idx = self->table[i];
        if (idx == S_NIL || self->entries[idx].handle == h)
            return idx;
    }
}

//  Put entry idx in a table without growing it.
static void
s_table_put(linli_client_t *self, uint32_t idx)
{
    size_t i = s_bucket(self, self->entries[idx].handle);
    while (self->table[i] != S_NIL)
        i = (i + 1) & self->table_mask;
    self->table[i] = idx;
}

//  Make room for one more entry in the table (load at most one half). 0 or -1.
static int
s_table_reserve(linli_client_t *self)
{
    size_t cap = self->table_mask + 1;
    if ((self->count + 1) * 2 <= cap)
        return 0;
    uint32_t *old = self->table;
    uint32_t *table = malloc(cap * 2 * sizeof *table);
    if (!table)
        return -1;
    memset(table, 0xff, cap * 2 * sizeof *table);
    self->table = table;
    self->table_mask = cap * 2 - 1;
    for (size_t i = 0; i < cap; i++)
        if (old[i] != S_NIL)
            s_table_put(self, old[i]);
    free(old);
    return 0;
}

//  Take handle h out of the table (backward-shift deletion: no tombstones).
static void
s_table_delete(linli_client_t *self, uint64_t h)
{
    size_t i = s_bucket(self, h);
    while (self->table[i] != S_NIL && self->entries[self->table[i]].handle != h)
        i = (i + 1) & self->table_mask;
    if (self->table[i] == S_NIL)
        return;
    self->table[i] = S_NIL;
    for (size_t j = (i + 1) & self->table_mask; self->table[j] != S_NIL;
         j = (j + 1) & self->table_mask) {
        size_t k = s_bucket(self, self->entries[self->table[j]].handle);
        //  Move j into the hole at i unless its home k lies cyclically in (i, j].
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            self->table[i] = self->table[j];
            self->table[j] = S_NIL;
            i = j;
        }
    }
}

// ---------------------------------------------------------------- heap

//  Swap heap positions a and b.
static inline void
s_heap_swap(linli_client_t *self, size_t a, size_t b)
{
    uint32_t x = self->heap[a], y = self->heap[b];
    self->heap[a] = y;
    self->heap[b] = x;
    self->entries[y].heap_pos = (uint32_t)a;
    self->entries[x].heap_pos = (uint32_t)b;
}

//  Restore heap order around position i.
static void
s_heap_fix(linli_client_t *self, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->entries[self->heap[parent]].due <= self->entries[self->heap[i]].due)
            break;
        s_heap_swap(self, i, parent);
        i = parent;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < self->heap_len &&
            self->entries[self->heap[l]].due < self->entries[self->heap[m]].due)
            m = l;
        if (r < self->heap_len &&
            self->entries[self->heap[r]].due < self->entries[self->heap[m]].due)
            m = r;
        if (m == i)
            break;
        s_heap_swap(self, i, m);
        i = m;
    }
}

// ---------------------------------------------------------------- entries

//  Add a pending request; returns its entry, or S_NIL when out of memory.
static uint32_t
s_pending_add(linli_client_t *self, uint64_t h, int64_t due, linli_client_fn *callback, void *arg)
{
    if (s_table_reserve(self) == -1)
        return S_NIL;
    if (self->heap_len == self->heap_cap) {
        size_t cap = self->heap_cap ? self->heap_cap * 2 : 256;
        uint32_t *heap = realloc(self->heap, cap * sizeof *heap);
        if (!heap)
            return S_NIL;
        self->heap = heap;
        self->heap_cap = cap;
    }
    if (self->free_head == S_NIL) {
        uint32_t n = self->nentries ? self->nentries * 2 : 256;
        s_pending_t *entries = realloc(self->entries, n * sizeof *entries);
        if (!entries)
            return S_NIL;
        self->entries = entries;
        for (uint32_t i = n; i-- > self->nentries;) {
            entries[i].handle = 0;
            entries[i].next_free = self->free_head;
            self->free_head = i;
        }
        self->nentries = n;
    }
    uint32_t idx = self->free_head;
    s_pending_t *p = &self->entries[idx];
    self->free_head = p->next_free;
    p->handle = h;
    p->due = due;
    p->callback = callback;
    p->arg = arg;
    s_table_put(self, idx);
    self->count++;
    p->heap_pos = (uint32_t)self->heap_len;
    self->heap[self->heap_len++] = idx;
    s_heap_fix(self, p->heap_pos);
    return idx;
}

//  Forget entry idx (from table, heap and pool).
static void
s_pending_remove(linli_client_t *self, uint32_t idx)
{
    s_pending_t *p = &self->entries[idx];
    s_table_delete(self, p->handle);
    self->count--;
    size_t pos = p->heap_pos, last = --self->heap_len;
    if (pos != last) {
        s_heap_swap(self, pos, last);
        s_heap_fix(self, pos);
    }
    p->handle = 0;
    p->next_free = self->free_head;
    self->free_head = idx;
}

// ---------------------------------------------------------------- public

linli_client_t *
linli_client_new(const char *endpoint)
{
    if (!endpoint)
        return NULL;
    linli_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->free_head = S_NIL;
    self->table_mask = 255;
    self->table = malloc(256 * sizeof *self->table);
    linli_arena_init(&self->arena, S_ARENA_SIZE);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->table || !self->arena.buf || !self->sock) {
        linli_client_destroy(&self);
        return NULL;
    }
    memset(self->table, 0xff, 256 * sizeof *self->table);
    self->handle = zsock_resolve(self->sock);
    zsock_set_linger(self->sock, 0);
    zsock_set_sndhwm(self->sock, S_HWM);
    zsock_set_rcvhwm(self->sock, S_HWM);
    if (zsock_connect(self->sock, "%s", endpoint) == -1) {
        linli_error("client: cannot connect to %s", endpoint);
        linli_client_destroy(&self);
        return NULL;
    }
    return self;
}

void
linli_client_destroy(linli_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_client_t *self = *self_p;
    zsock_destroy(&self->sock);
    free(self->entries);
    free(self->table);
    free(self->heap);
    linli_arena_clear(&self->arena);
    free(self);
    *self_p = NULL;
}

int
linli_client_fd(linli_client_t *self)
{
    return zsock_fd(self->sock);
}

uint64_t
linli_client_send(linli_client_t *self, const char *service, const Linli__Request *request,
                  int64_t timeout_ms, linli_client_fn *callback, void *arg)
{
    if (!self || !service || !*service || strlen(service) > 255 || !request || !request->method ||
        !callback)
        return 0;
    //  Bounded so deadline arithmetic cannot overflow: 30 days is forever here.
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (timeout_ms > 30LL * 86400000)
        timeout_ms = 30LL * 86400000;
    //  A shallow copy borrows every string; only the deadline changes: no
    //  later than this client will wait.
    Linli__Request req = *request;
    int64_t deadline = zclock_time() + timeout_ms;
    if (!req.has_deadline_ms || req.deadline_ms <= 0 || req.deadline_ms > deadline) {
        req.has_deadline_ms = 1;
        req.deadline_ms = deadline;
    }
    uint64_t h = ++self->last_handle;
    uint32_t idx = s_pending_add(self, h, zclock_mono() + timeout_ms, callback, arg);
    if (idx == S_NIL)
        return 0;
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, linli__request__get_packed_size(&req)) == -1) {
        s_pending_remove(self, idx);
        return 0;
    }
    linli__request__pack(&req, zmq_msg_data(&body));
    char rid[24];
    int rid_len = snprintf(rid, sizeof rid, "%" PRIu64, h);
    //  Only the first frame can fail: the rest of a message always follows it.
    if (zmq_send(self->handle, S_TAG, S_TAG_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        linli_warn("client: request to %s not sent: %s", service, zmq_strerror(errno));
        zmq_msg_close(&body);
        s_pending_remove(self, idx);
        return 0;
    }
    zmq_send(self->handle, "REQ", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, service, strlen(service), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->handle, rid, (size_t)rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_msg_send(&body, self->handle, ZMQ_DONTWAIT);
    zmq_msg_close(&body);
    return h;
}

void
linli_client_cancel(linli_client_t *self, uint64_t handle)
{
    if (!self || !handle)
        return;
    uint32_t idx = s_lookup(self, handle);
    if (idx != S_NIL)
        s_pending_remove(self, idx);
}

//  The request-id frame as a handle; 0 when it is not one.
static uint64_t
s_parse_handle(zmq_msg_t *m)
{
    size_t len = zmq_msg_size(m);
    const char *s = zmq_msg_data(m);
    if (len == 0 || len > 19)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

//  Handle one message read from the broker (nparts frames).
static void
s_on_message(linli_client_t *self, zmq_msg_t *part, size_t nparts)
{
    if (nparts != 5 || zmq_msg_size(&part[0]) != S_TAG_LEN ||
        memcmp(zmq_msg_data(&part[0]), S_TAG, S_TAG_LEN) != 0 || zmq_msg_size(&part[1]) != 3 ||
        memcmp(zmq_msg_data(&part[1]), "REP", 3) != 0) {
        linli_warn("client: malformed message from the broker dropped");
        return;
    }
    uint64_t h = s_parse_handle(&part[3]);
    uint32_t idx = h ? s_lookup(self, h) : S_NIL;
    if (idx == S_NIL)
        return; //  cancelled or already answered (timed out): a late reply
    linli_client_fn *callback = self->entries[idx].callback;
    void *arg = self->entries[idx].arg;
    //  Forgotten before the callback, which may send or cancel.
    s_pending_remove(self, idx);
    linli_arena_reset(&self->arena);
    Linli__Reply *reply =
        linli__reply__unpack(&self->arena.base, zmq_msg_size(&part[4]), zmq_msg_data(&part[4]));
    if (reply) {
        callback(arg, reply);
        linli__reply__free_unpacked(reply, &self->arena.base);
    } else {
        linli_warn("client: unreadable reply from the broker");
        Linli__Reply bad = LINLI__REPLY__INIT;
        bad.status = 502;
        bad.error_code = "bad_reply";
        bad.error_message = "The service's reply could not be read.";
        callback(arg, &bad);
    }
}

void
linli_client_process(linli_client_t *self)
{
    if (!self || self->in_process)
        return;
    self->in_process = true;
    //  Receive until nothing is left: the last, empty receive also takes in
    //  the socket's pending commands, so the edge-triggered fd is re-armed
    //  as ZMQ_EVENTS would leave it, at no cost for the messages found.
    for (;;) {
        zmq_msg_t part[5];
        bool too_many;
        size_t nparts = linli_frames_recv(self->handle, part, 5, &too_many);
        if (!nparts)
            break;
        s_on_message(self, part, too_many ? 6 : nparts);
        linli_frames_close(part, nparts);
    }
    int64_t now = zclock_mono();
    while (self->heap_len && self->entries[self->heap[0]].due <= now) {
        uint32_t idx = self->heap[0];
        linli_client_fn *callback = self->entries[idx].callback;
        void *arg = self->entries[idx].arg;
        s_pending_remove(self, idx);
        Linli__Reply timeout = LINLI__REPLY__INIT;
        timeout.status = 504;
        timeout.error_code = "timeout";
        timeout.error_message = "No reply came within the time allowed.";
        callback(arg, &timeout);
    }
    self->in_process = false;
}

int64_t
linli_client_next_timeout_ms(const linli_client_t *self)
{
    if (!self || !self->heap_len)
        return -1;
    int64_t left = self->entries[self->heap[0]].due - zclock_mono();
    return left > 0 ? left : 0;
}

size_t
linli_client_pending(const linli_client_t *self)
{
    return self ? self->count : 0;
}

//  A heap copy of reply the caller frees with linli__reply__free_unpacked
//  (reply, NULL); NULL when out of memory.
static Linli__Reply *
s_reply_copy(const Linli__Reply *reply)
{
    size_t len = linli__reply__get_packed_size(reply);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    linli__reply__pack(reply, buf);
    Linli__Reply *copy = linli__reply__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

//  What a blocking call waits for.
typedef struct {
    Linli__Reply *reply; //  the copied answer
    bool done;           //  true once answered
} s_call_t;

//  Callback of a blocking call: keep a copy of the answer.
static void
s_call_done(void *arg, const Linli__Reply *reply)
{
    s_call_t *call = arg;
    call->reply = s_reply_copy(reply);
    call->done = true;
}

Linli__Reply *
linli_client_call(linli_client_t *self, const char *service, const Linli__Request *request,
                  int64_t timeout_ms)
{
    s_call_t call = {NULL, false};
    //  From inside a callback process() cannot run again, so nothing would come.
    uint64_t handle = 0;
    if (self && self->in_process)
        linli_error("client: linli_client_call from inside a reply callback");
    else
        handle = linli_client_send(self, service, request, timeout_ms, s_call_done, &call);
    while (handle && !call.done) {
        zmq_pollitem_t item = {self->handle, 0, ZMQ_POLLIN, 0};
        int64_t wait = linli_client_next_timeout_ms(self);
        if (zmq_poll(&item, 1, (long)(wait < 0 ? 1000 : wait)) == -1 && errno == ETERM) {
            //  The context is ending: call points into this frame, forget it.
            linli_client_cancel(self, handle);
            break;
        }
        linli_client_process(self);
    }
    if (!call.reply) {
        Linli__Reply made = LINLI__REPLY__INIT;
        made.status = call.done ? 500 : 503;
        made.error_code = call.done ? "internal" : "unavailable";
        made.error_message =
            call.done ? "Out of memory copying the reply." : "The request could not be sent.";
        call.reply = s_reply_copy(&made);
        //  Without memory for a few bytes there is nothing sensible to return.
        if (!call.reply)
            abort();
    }
    return call.reply;
}
