//  registry_orgs: organisations' methods (registry_org_routes) and the
//  events they record, which the demo loader records the same way.
#ifndef REGISTRY_ORGS_H
#define REGISTRY_ORGS_H

#include <stdint.h>

#include "linli_pg.h"
#include "registry_orgs_store.h"

//  Record an organisation event in the outbox, inside pg's open transaction:
//  ids and the area only; previous_leader (0 = none) when the leader changed.
//  Strings borrowed. 0 or -1.
int registry_orgs_emit(linli_pg_t *pg, const char *type, const registry_org_t *o,
                       int64_t previous_leader, const char *actor);

//  Record a member joining or leaving o, inside pg's open transaction. 0 or -1.
int registry_orgs_emit_member(linli_pg_t *pg, const char *type, const registry_org_t *o,
                              int64_t volunteer, const char *role, const char *actor);

#endif
