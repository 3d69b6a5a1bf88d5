//  registry_orgs_store: the SQL of organisations, teams and their members.
//  Plain C types in and out; no protobuf. Functions that change rows run
//  inside the caller's open transaction (linli_idem_begin opens it).
#ifndef REGISTRY_ORGS_STORE_H
#define REGISTRY_ORGS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli_pg.h"

#define REGISTRY_ORG_NAME_CAP 260  //  64 characters of UTF-8
#define REGISTRY_ORG_DESC_CAP 2004 //  500 characters of UTF-8

typedef struct {
    int64_t id;
    char name[REGISTRY_ORG_NAME_CAP];
    char area[16];     //  area code it serves
    char type[16];     //  organization | team
    int64_t parent_id; //  a team's organisation; 0 for none
    int64_t leader_id; //  volunteer (account) id; 0 for none
    char description[REGISTRY_ORG_DESC_CAP];
    char status[16]; //  active | dissolved
    int members;     //  member rows, the leader included
    int64_t created_at_ms;
    int64_t updated_at_ms;
} registry_org_t;

typedef struct {
    int64_t account_id; //  the volunteer
    char name[REGISTRY_ORG_NAME_CAP];
    char community[16];
    char role[16]; //  leader | member
    int64_t joined_at_ms;
} registry_org_member_t;

//  One volunteer as organisations need it.
typedef struct {
    int64_t id;
    char community[16];
    char status[16]; //  pending | verified | suspended | left
} registry_org_volunteer_t;

//  A filter for registry_orgs_store_list; "" and 0 mean "any".
typedef struct {
    const char *area;   //  area code prefix
    const char *type;   //  organization | team
    const char *status; //  active | dissolved
    int64_t parent_id;  //  teams of this organisation
} registry_org_filter_t;

//  The organisation with this id; *found false if none. With for_update the
//  row is locked until the caller's transaction ends. 0 or -1.
int registry_orgs_store_get(linli_pg_t *pg, int64_t id, bool for_update, registry_org_t *out,
                            bool *found);

//  Insert org (its id, timestamps and status filled in) and, when it has a
//  leader, the leader's member row and grant. 0 or -1.
int registry_orgs_store_insert(linli_pg_t *pg, registry_org_t *org, int64_t created_by);

//  Write org's name, description and status; refreshes org->updated_at_ms. 0 or -1.
int registry_orgs_store_update(linli_pg_t *pg, registry_org_t *org);

//  Move the leadership of org_id from old_leader to new_leader (either 0 for
//  none): the old leader stays a member, the new one becomes one if it was
//  not; the org_leader grant moves; organizations.leader_id is set.
//  *new_member when the new leader was not a member before. 0 or -1.
int registry_orgs_store_set_leader(linli_pg_t *pg, int64_t org_id, int64_t old_leader,
                                   int64_t new_leader, bool *new_member);

//  Active teams of an organisation. 0 or -1.
int registry_orgs_store_active_teams(linli_pg_t *pg, int64_t org_id, int *n);

//  Organisations matching f with id > after, at most max, in id order;
//  *more when others follow. 0 or -1.
int registry_orgs_store_list(linli_pg_t *pg, const registry_org_filter_t *f, int64_t after,
                             registry_org_t *out, size_t max, size_t *n, bool *more);

//  The volunteer with this id; *found false if none. 0 or -1.
int registry_orgs_store_volunteer(linli_pg_t *pg, int64_t id, registry_org_volunteer_t *out,
                                  bool *found);

//  The member row of account_id in org_id; *found false if none. 0 or -1.
int registry_orgs_store_member_get(linli_pg_t *pg, int64_t org_id, int64_t account_id,
                                   registry_org_member_t *out, bool *found);

//  Add account_id to org_id as a member; *existed when it was one already
//  (nothing written). Fills out. 0 or -1.
int registry_orgs_store_member_add(linli_pg_t *pg, int64_t org_id, int64_t account_id,
                                   registry_org_member_t *out, bool *existed);

//  Remove account_id from org_id; *removed false when it was not a member. 0 or -1.
int registry_orgs_store_member_remove(linli_pg_t *pg, int64_t org_id, int64_t account_id,
                                      bool *removed);

//  Members of org_id with account id > after, at most max, in id order. 0 or -1.
int registry_orgs_store_members(linli_pg_t *pg, int64_t org_id, int64_t after,
                                registry_org_member_t *out, size_t max, size_t *n, bool *more);

//  The active organisations account_id belongs to, org id > after, at most
//  max, in id order, with its role and joining time in roles. 0 or -1.
int registry_orgs_store_of_volunteer(linli_pg_t *pg, int64_t account_id, int64_t after,
                                     registry_org_t *out, registry_org_member_t *roles, size_t max,
                                     size_t *n, bool *more);

//  Take the org_leader grant of org_id from leader_id (dissolution); 0 does
//  nothing. 0 or -1.
int registry_orgs_store_revoke_leader_grant(linli_pg_t *pg, int64_t org_id, int64_t leader_id);

#endif
