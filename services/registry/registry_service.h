//  registry_service: the registry actor and the steps main and tools share.
#ifndef REGISTRY_SERVICE_H
#define REGISTRY_SERVICE_H

#include <czmq.h>

#include "registry.h"

//  Open the stores named by config (lazy connections; fails only on a bad
//  secret or out of memory). 0 or -1.
int registry_open(registry_t *reg, const linli_config_t *config);

//  Close what registry_open opened.
void registry_close(registry_t *reg);

//  Apply migrations, make sure the city and the bootstrap admin exist, load
//  the area tree. 0 or -1 (PostgreSQL not reachable yet, or a bad migration).
int registry_prepare(registry_t *reg, const linli_config_t *config);

//  Record an event about a staff account in the outbox, inside the caller's
//  open transaction; previous_area: its home area before a move (NULL when
//  it stays). 0 or -1.
int registry_emit_staff(registry_t *self, const char *type, const registry_account_t *a,
                        const char *actor, const char *previous_area);

//  The actor: args is the linli_config_t (borrowed). Ends on $TERM.
void registry_service_actor(zsock_t *pipe, void *args);

#endif
