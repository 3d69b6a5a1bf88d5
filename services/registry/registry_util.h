//  registry_util: the small helpers every registry module shares — ids,
//  store rows, the caller's staff scope, outbox events and keyset-list
//  pages — so each is written, and fixed, once.
#ifndef REGISTRY_UTIL_H
#define REGISTRY_UTIL_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "linli/registry.pb-c.h"
#include "linli_pg.h"
#include "linli_worker.h"
#include "registry_people.h"
#include "registry_store.h"

// ---------------------------------------------------------------- values

//  Parse a decimal id (at most 18 digits); 0 when it is not one.
int64_t registry_parse_id(const char *s);

//  Copy src (NULL = "") into dst[cap], truncating.
void registry_copy(char *dst, size_t cap, const char *src);

//  A bigint column of a result row (as text) as int64.
int64_t registry_col_int64(const PGresult *res, int row, int col);

//  This year in local time (the age checks of imports and the demo).
int registry_this_year(void);

// ---------------------------------------------------------------- callers and areas

//  The widest scope (shortest area code) of the caller's grants of at least
//  min_rank — a list's default area; NULL when it holds none. Borrowed from caller.
const char *registry_staff_scope(const Linli__Caller *caller, int min_rank);

//  Is code a community of the tree? 0 with *exists, or -1 when the store failed.
int registry_community_exists(registry_store_t *store, const char *code, bool *exists);

//  Fill msgs and ptrs (REGISTRY_MAX_GRANTS each) with account a's grants;
//  strings borrowed from a. Returns the count.
size_t registry_grant_msgs(const registry_account_t *a, Linli__Grant *msgs, Linli__Grant **ptrs);

// ---------------------------------------------------------------- events

//  Record an event about kind/id ("organization/42") in the outbox, inside
//  pg's open transaction; data is packed, nothing is kept. 0 or -1.
int registry_emit(linli_pg_t *pg, const char *type, const char *kind, int64_t id, const char *area,
                  const ProtobufCMessage *data);

// ---------------------------------------------------------------- store rows

//  Fills the record at out from row of res (a store's row reader).
typedef void(registry_row_fn)(PGresult *res, int row, void *out);

//  Run sql with params and read its one row, if any, into out with
//  from_row; *found says whether there was one. 0 or -1.
int registry_get_row(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                     registry_row_fn *from_row, void *out, bool *found);

//  registry_get_row with one text parameter ($1: param).
int registry_get_one(linli_pg_t *pg, const char *sql, const char *param, registry_row_fn *from_row,
                     void *out, bool *found);

//  registry_get_one with id (as $1::bigint).
int registry_get_by_id(linli_pg_t *pg, const char *sql, int64_t id, registry_row_fn *from_row,
                       void *out, bool *found);

//  registry_get_by_id for a change, inside the caller's open transaction:
//  row id of table is locked (FOR UPDATE) by a statement of its own first,
//  then sql (a plain read) runs. A locking statement that waited for the
//  lock would see the row's newest version but the rows it joins and its
//  sub-selects as they were when it started; the read after the lock sees
//  everything committed before it got the lock.
int registry_get_locked(linli_pg_t *pg, const char *table, const char *sql, int64_t id,
                        registry_row_fn *from_row, void *out, bool *found);

//  Run sql with params; *exists says whether it returned any row. 0 or -1.
int registry_exists(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                    bool *exists);

//  Run sql with params, which returns one row (a count, a sum, a RETURNING
//  of one row), and read its first column as int64 into *value. 0, or -1
//  when the store failed or no row came (logged).
int registry_get_int64(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       int64_t *value);

// ---------------------------------------------------------------- keyset lists

//  Run sql, a keyset page query whose LIMIT is max + 1, and read up to max
//  rows into out (an array of row_size records) with from_row; *n rows read,
//  *more when a row follows them. 0 or -1 (*n = 0).
int registry_page_exec(linli_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       registry_row_fn *from_row, void *out, size_t row_size, size_t max, size_t *n,
                       bool *more);

//  registry_page_exec for the rows of one owner (a volunteer's status log,
//  an organisation's members): sql's $1 is owner (bigint), $2 the keyset
//  cursor after (bigint), $3 the LIMIT (max + 1).
int registry_page_of(linli_pg_t *pg, const char *sql, int64_t owner, int64_t after,
                     registry_row_fn *from_row, void *out, size_t row_size, size_t max, size_t *n,
                     bool *more);

#define REGISTRY_PAGE_DEFAULT 100 //  items per page unless limit says
#define REGISTRY_PAGE_MAX 500     //  the most a page holds

//  One page of a keyset list: the store's rows, their message views and the
//  item pointers a List…Reply borrows (items = 1, next_cursor = 2 in every
//  one). All three are owned by the page.
typedef struct {
    void *rows;               //  limit rows for the store, zeroed
    void *views;              //  limit views, zeroed
    ProtobufCMessage **items; //  limit pointers into views, set by the handler
    size_t n;                 //  rows the store filled
    bool more;                //  rows follow this page
} registry_page_t;

//  A list request's paging: limit (default 100, 1..500) and the keyset
//  cursor (the last id of the previous page; 0 without one). 0, or -1 after
//  answering 400 (out_of_range limit, invalid_format cursor).
int registry_page_args(linli_request_t *request, protobuf_c_boolean has_limit, int32_t limit_in,
                       const char *cursor, size_t *limit, int64_t *after);

//  Allocate a page of limit rows of row_size and views of view_size. 0, or
//  -1 when out of memory (nothing held).
int registry_page_alloc(registry_page_t *page, size_t limit, size_t row_size, size_t view_size);

//  Answer 200 with reply (a List…Reply) holding the page's n items and,
//  when more follow, next_cursor = cursor (borrowed; the last row's key).
int registry_page_reply(registry_page_t *page, linli_request_t *request, ProtobufCMessage *reply,
                        const char *cursor);

//  Free what registry_page_alloc allocated; the page is unusable afterwards.
void registry_page_free(registry_page_t *page);

//  A volunteer's matching state as VolunteerEvent data — what every
//  volunteer event carries (ids, area codes, tags; never a name, phone or ID
//  number). The message borrows community, status and actor; the tags are
//  parsed from their array literals ("{a,b}") into the storage here.
typedef struct {
    Linli__Registry__VolunteerEvent msg;
    char id[24];
    char tag_buf[2][REGISTRY_MAX_TAGS * 34 + 3];
    const char *skills[REGISTRY_MAX_TAGS], *slots[REGISTRY_MAX_TAGS];
} registry_volunteer_event_t;

void registry_volunteer_event_init(registry_volunteer_event_t *e, int64_t id, const char *community,
                                   const char *status, const char *skills, const char *free_slots,
                                   const char *actor, int64_t version);

#endif
