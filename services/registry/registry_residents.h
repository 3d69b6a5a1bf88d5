//  registry_residents: residents' methods (registry_resident_routes) and the
//  events they record, which the demo loader records the same way.
#ifndef REGISTRY_RESIDENTS_H
#define REGISTRY_RESIDENTS_H

#include "linli_pg.h"
#include "registry_residents_store.h"

//  Record a resident event in the outbox, inside pg's open transaction: id,
//  community and care categories only — never an address or phone.
//  previous_community (NULL = none) is sent when it differs. 0 or -1.
int registry_residents_emit(linli_pg_t *pg, const char *type, const registry_resident_t *r,
                            const char *previous_community, const char *actor);

#endif
