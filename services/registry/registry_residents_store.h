//  registry_residents_store: the SQL of residents (服务对象). Plain C types
//  in and out; no protobuf. Personal data arrives and leaves sealed
//  (linli_pii_encrypt): this file never sees it in the clear. Functions that
//  change rows run inside the caller's open transaction.
#ifndef REGISTRY_RESIDENTS_STORE_H
#define REGISTRY_RESIDENTS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli_pg.h"

#define REGISTRY_RESIDENT_MAX_CATEGORIES 6

typedef struct {
    int64_t id;
    int64_t account_id;     //  the resident's login account; 0 for none
    char name[260];         //  64 characters of UTF-8
    char community[16];     //  12-digit community code
    char address_enc[1024]; //  sealed address; "" for none
    char phone_enc[256];    //  sealed phone; "" for none
    char phone_hash[65];    //  linli_pii_hash("phone", …); "" for none
    size_t n_categories;    //  entries in categories
    //  care categories: elderly_alone, child_left_behind, …
    char categories[REGISTRY_RESIDENT_MAX_CATEGORIES][24];
    bool consent;          //  agreed to be registered
    char family_enc[4096]; //  sealed JSON array of {name, relation, phone}; "" for none
    int birth_year;        //  0 when unknown
    int64_t created_at_ms;
    int64_t updated_at_ms;
} registry_resident_t;

//  Insert r (its id and timestamps filled in). 0 or -1.
int registry_residents_store_insert(linli_pg_t *pg, registry_resident_t *r, int64_t created_by);

//  The resident with this id; *found false if none. With for_update the row
//  is locked until the caller's transaction ends. 0 or -1.
int registry_residents_store_get(linli_pg_t *pg, int64_t id, bool for_update,
                                 registry_resident_t *out, bool *found);

//  Write every changeable column of r; refreshes r->updated_at_ms. 0 or -1.
int registry_residents_store_update(linli_pg_t *pg, registry_resident_t *r);

//  Residents whose community starts with prefix and, when category is not
//  "", who have that care category; ids after `after`, at most max, in id
//  order; *more when others follow. Address and family contacts are left
//  out ("") of list rows. 0 or -1.
int registry_residents_store_list(linli_pg_t *pg, const char *prefix, const char *category,
                                  int64_t after, registry_resident_t *out, size_t max, size_t *n,
                                  bool *more);

//  Bring the resident's login account in line with its record: name, phone
//  (sealed and hashed), area, and the scope of its resident grant. *taken
//  when another account has that phone (nothing written). 0 or -1.
int registry_residents_store_account_sync(linli_pg_t *pg, int64_t account_id, const char *name,
                                          const char *phone_enc, const char *phone_hash,
                                          const char *community, bool *taken);

#endif
