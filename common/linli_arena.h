//  linli_arena: a bump allocator for protobuf-c unpacking. Messages unpacked
//  with it cost no malloc per field while they fit; it is reset wholesale
//  once the message is done with (linli_arena_reset), and anything larger
//  falls back to malloc/free transparently.
#ifndef LINLI_ARENA_H
#define LINLI_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    ProtobufCAllocator base; //  pass &arena->base to protobuf-c; must stay first
    uint8_t *buf;            //  owned
    size_t size;             //  its capacity
    size_t used;             //  bytes handed out since the last reset
} linli_arena_t;

//  Give self a buffer of size bytes. 0 or -1 (out of memory).
int linli_arena_init(linli_arena_t *self, size_t size);

//  Free the buffer; self may be initialised again.
void linli_arena_clear(linli_arena_t *self);

//  Forget everything handed out: call once the unpacked message is released.
void linli_arena_reset(linli_arena_t *self);

#endif
