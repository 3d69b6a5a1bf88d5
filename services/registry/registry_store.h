//  registry_store: all of the registry's SQL (and the in-memory area tree).
//  Plain C types in and out; no protobuf.
#ifndef REGISTRY_STORE_H
#define REGISTRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli_pg.h"

#define REGISTRY_MAX_GRANTS 32

typedef struct {
    char code[16];   //  12 digits at most
    char name[260];  //  UTF-8
    char level[12];  //  city | district | street | community
    char parent[16]; //  "" for the top
    double lat, lng; //  centre
    bool has_center; //  lat/lng set
    int children;    //  direct children
} registry_area_t;

typedef struct {
    char role[32];
    char scope[32]; //  an area code, or "org:<id>"
} registry_grant_t;

typedef struct {
    int64_t id;
    char kind[16];
    char name[260];
    char phone_enc[256];     //  sealed phone (linli_pii_encrypt)
    char password_hash[160]; //  argon2id string
    char area[16];
    char status[16];
    char volunteer_status[16]; //  a volunteer's status (pending, verified, …); "" for others
    int64_t created_at_ms;
    size_t n_grants;
    registry_grant_t grants[REGISTRY_MAX_GRANTS];
} registry_account_t;

typedef struct registry_store_t registry_store_t;

//  New store over pg (borrowed). Caller owns.
registry_store_t *registry_store_new(linli_pg_t *pg);
void registry_store_destroy(registry_store_t **self_p);

//  Reload the area tree from PostgreSQL into memory. 0 or -1.
int registry_store_areas_reload(registry_store_t *self);

//  Make sure the city's own area row exists (the root of the tree). 0 or -1.
int registry_store_ensure_city(registry_store_t *self, const char *code, const char *name);

//  One area by code; *found false when there is none. 0 or -1.
int registry_store_area_get(registry_store_t *self, const char *code, registry_area_t *out,
                            bool *found);

//  Children of parent ("" = the top level) after the code `after` ("" = from
//  the start), at most max of them, in code order; *more when others follow.
int registry_store_area_children(registry_store_t *self, const char *parent, const char *after,
                                 registry_area_t *out, size_t max, size_t *n, bool *more);

//  The account that logs in with this phone hash; *found false if none.
int registry_store_account_by_phone(registry_store_t *self, const char *phone_hash,
                                    registry_account_t *out, bool *found);

//  The account with this id; *found false if none.
int registry_store_account_get(registry_store_t *self, int64_t id, registry_account_t *out,
                               bool *found);

//  The same, its row locked until the caller's open transaction ends.
int registry_store_account_lock(registry_store_t *self, int64_t id, registry_account_t *out,
                                bool *found);

//  Set the account's status (active | disabled), inside the caller's open
//  transaction. 0 or -1.
int registry_store_account_set_status(registry_store_t *self, int64_t id, const char *status);

//  Replace the account's grants by account->grants and its area by
//  account->area, inside the caller's open transaction. 0 or -1.
int registry_store_account_set_grants(registry_store_t *self, const registry_account_t *account);

//  Insert an account and its grants, inside the caller's open transaction.
//  *taken when the phone is already registered (nothing written). Fills
//  account->id and created_at_ms.
int registry_store_account_insert(registry_store_t *self, registry_account_t *account,
                                  const char *phone_hash, int64_t created_by, bool *taken);

//  Staff accounts whose area starts with prefix, ids after `after`, at most
//  max, in id order; *more when others follow.
int registry_store_staff_list(registry_store_t *self, const char *prefix, int64_t after,
                              registry_account_t *out, size_t max, size_t *n, bool *more);

//  Replace account_id's password code by code_hash, valid ttl_s seconds,
//  inside the caller's open transaction; *expires_at_ms when it ends.
int registry_store_password_code_put(registry_store_t *self, int64_t account_id,
                                     const char *code_hash, int64_t issued_by, int ttl_s,
                                     int64_t *expires_at_ms);

typedef enum {
    REGISTRY_CODE_OK,    //  the code matched: used up, the password set
    REGISTRY_CODE_NONE,  //  no live code for the account (none, expired, used up)
    REGISTRY_CODE_WRONG, //  another code: one try counted (the last one deletes it)
} registry_code_outcome_t;

//  Use account_id's password code, inside the caller's open transaction
//  (commit it whatever the outcome: a wrong try is counted in it). When the
//  account is active and code_hash is its live code's hash, set the password
//  to hash_fn(arg)'s result (computed only then; NULL on failure) and delete
//  the code; a wrong one counts a try, and the max_tries-th deletes it.
//  0, or -1 on store trouble (roll back).
int registry_store_password_code_use(registry_store_t *self, int64_t account_id,
                                     const char *code_hash, int max_tries,
                                     char *(*hash_fn)(void *arg), void *arg,
                                     registry_code_outcome_t *outcome);

//  Load the demo city's streets and communities under the districts (13 real
//  districts of Wuhan, generated streets and ≈3,300 communities). Idempotent.
int registry_store_load_demo_areas(registry_store_t *self);

#endif
