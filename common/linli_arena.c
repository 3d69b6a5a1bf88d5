//  linli_arena: a bump allocator for protobuf-c unpacking.
#include "linli_arena.h"

#include <stdlib.h>
#include <string.h>

//  protobuf-c alloc: from the arena, 16-byte aligned, else malloc.
static void *
s_alloc(void *data, size_t size)
{
    linli_arena_t *arena = data;
    size_t need = (size + 15) & ~(size_t)15;
    if (need >= size && arena->size - arena->used >= need) {
        void *p = arena->buf + arena->used;
        arena->used += need;
        return p;
    }
    return malloc(size);
}

//  protobuf-c free: nothing for arena memory (reset wholesale), free otherwise.
static void
s_free(void *data, void *p)
{
    linli_arena_t *arena = data;
    if ((uint8_t *)p >= arena->buf && (uint8_t *)p < arena->buf + arena->size)
        return;
    free(p);
}

int
linli_arena_init(linli_arena_t *self, size_t size)
{
    memset(self, 0, sizeof *self);
    self->buf = malloc(size);
    if (!self->buf)
        return -1;
    self->size = size;
    self->base.alloc = s_alloc;
    self->base.free = s_free;
    self->base.allocator_data = self;
    return 0;
}

void
linli_arena_clear(linli_arena_t *self)
{
    free(self->buf);
    memset(self, 0, sizeof *self);
}

void
linli_arena_reset(linli_arena_t *self)
{
    self->used = 0;
}
