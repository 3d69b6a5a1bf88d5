//  registry: what every registry handler shares — its stores and settings.
#ifndef REGISTRY_H
#define REGISTRY_H

#include "linli_config.h"
#include "linli_idem.h"
#include "linli_pg.h"
#include "linli_redis.h"
#include "linli_worker.h"
#include "registry_store.h"

typedef struct {
    linli_pg_t *pg;          //  owned by the service
    linli_redis_t *redis;    //  owned by the service
    registry_store_t *store; //  owned by the service
    int session_ttl_s;       //  bearer token lifetime
    int login_failures;      //  wrong passwords per phone per window before 429
    int login_window_s;      //  that window
    int login_per_addr;      //  login attempts per client address per window
    int signup_per_addr;     //  self sign-ups per client address per hour
    int password_code_ttl_s; //  lifetime of a one-time password code
} registry_t;

//  The registry's configuration entries.
extern const linli_cfg_entry_t registry_cfg[];

//  Each module's methods, {NULL}-ended (registry_handlers.c, registry_volunteers.c, …).
extern const linli_route_t registry_account_routes[];
extern const linli_route_t registry_org_routes[];      //  registry_orgs.c
extern const linli_route_t registry_resident_routes[]; //  registry_residents.c
extern const linli_route_t registry_volunteer_routes[];
//  Methods answered in batches, {NULL}-ended (registry_volunteers.c).
extern const linli_batch_route_t registry_volunteer_batches[];
extern const linli_route_t registry_import_routes[]; //  registry_import.c

//  The error code refusing a volunteer in this status a session
//  ("volunteer_suspended", "volunteer_left"), or NULL when it may have one
//  (registry_volunteers.c). A move into such a status ends its sessions.
const char *registry_volunteer_barred(const char *status);

//  Commit the handler's change (stored under its idempotency key) that ends
//  every session of account_id, and answer status + body. The sessions end
//  before the commit: when Redis cannot do it the change is rolled back and
//  503 session_store_unavailable answered, so no change stands whose sessions
//  live on. They end once more after the commit, for a login that listed its
//  session in between (registry_handlers.c). Returns 0.
int registry_commit_ending_sessions(registry_t *self, linli_idem_t *idem, linli_request_t *request,
                                    int status, const ProtobufCMessage *body,
                                    const char *account_id);

//  Every method of the registry: the modules' tables merged, {NULL}-ended.
//  Built once, never freed (static storage).
const linli_route_t *registry_routes(void);

#endif
