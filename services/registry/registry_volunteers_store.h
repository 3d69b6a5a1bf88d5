//  registry_volunteers_store: the SQL of volunteers. Plain C types.
#ifndef REGISTRY_VOLUNTEERS_STORE_H
#define REGISTRY_VOLUNTEERS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli_pg.h"
#include "registry_people.h"

typedef struct {
    int64_t id;
    char name[260];
    char community[16];
    char id_number_enc[160];
    char phone_enc[128];
    char gender[8];
    int birth_year;
    char political_status[24];
    char skills[REGISTRY_MAX_TAGS * 34 + 3];     //  array literal "{a,b}"
    char free_slots[REGISTRY_MAX_TAGS * 10 + 3]; //  likewise
    char status[16];
    char source[12];
    int64_t verified_at_ms; //  0 when never
    int64_t created_at_ms;
    int64_t updated_at_ms;
} registry_volunteer_t;

typedef enum {
    REGISTRY_VOL_OK,
    REGISTRY_VOL_DUP_ID_NUMBER, //  the person is registered already
    REGISTRY_VOL_DUP_PHONE,     //  the phone belongs to another account
} registry_vol_outcome_t;

//  Insert account + volunteer inside the caller's open transaction.
//  password_hash may be NULL (no login yet). On a duplicate nothing is
//  written by this call and the caller rolls back.
int registry_volunteer_insert(linli_pg_t *pg, const registry_person_t *p, const char *password_hash,
                              const char *source, int64_t created_by, registry_volunteer_t *out,
                              registry_vol_outcome_t *outcome);

//  One volunteer; *found false if none. lock: SELECT … FOR UPDATE (in a transaction).
int registry_volunteer_get(linli_pg_t *pg, int64_t id, bool lock, registry_volunteer_t *out,
                           bool *found);

//  The volunteers among ids (n of them, distinct or not), in any order, into
//  out (room for n); *found how many. One query for a batch of reads.
int registry_volunteer_get_many(linli_pg_t *pg, const int64_t *ids, size_t n,
                                registry_volunteer_t *out, size_t *found);

//  Write back name, community, political_status, skills, free_slots (and the
//  account's name and area) of v, stamp updated_at; in the caller's
//  transaction. Refreshes v's timestamps.
int registry_volunteer_save(linli_pg_t *pg, registry_volunteer_t *v);

//  Set status (and verified_by/at when it becomes verified) and log the change
//  with its reason (may be NULL) in volunteer_status_log; in the caller's
//  transaction. Refreshes v.
int registry_volunteer_set_status(linli_pg_t *pg, registry_volunteer_t *v, const char *status,
                                  int64_t actor, const char *reason);

//  One recorded status change.
typedef struct {
    int64_t id; //  the log record's id
    char from_status[16];
    char to_status[16];
    char reason[1040]; //  up to 256 characters of UTF-8
    bool has_reason;
    int64_t actor; //  0 when none
    int64_t changed_at_ms;
} registry_status_change_t;

//  A volunteer's status changes with id > after, oldest first, at most max;
//  *more when others follow.
int registry_volunteer_status_log(linli_pg_t *pg, int64_t volunteer, int64_t after,
                                  registry_status_change_t *out, size_t max, size_t *n, bool *more);

//  *led when leader leads an active organisation volunteer belongs to. 0 or -1.
int registry_volunteer_led_by(linli_pg_t *pg, int64_t volunteer, int64_t leader, bool *led);

typedef struct {
    const char *area;        //  code prefix (required)
    const char *skill;       //  NULL: any
    const char *status;      //  NULL: any
    const char *name_prefix; //  NULL: any
    const char *phone_hash;  //  NULL: any
    const char *id_hash;     //  NULL: any
} registry_volunteer_filter_t;

//  Volunteers matching f with id > after, at most max, by id; *more when others follow.
int registry_volunteer_list(linli_pg_t *pg, const registry_volunteer_filter_t *f, int64_t after,
                            registry_volunteer_t *out, size_t max, size_t *n, bool *more);

#endif
