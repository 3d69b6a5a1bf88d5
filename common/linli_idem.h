//  linli_idem: idempotent mutations (DESIGN.md "Idempotency"). A handler
//  opens its transaction with linli_idem_begin; a request carrying an
//  Idempotency-Key records (caller, key, hash of method+body) there, and the
//  reply is stored by linli_idem_commit in the same transaction as the change.
//  A repeat gets the first reply; the same key with another body 422; a
//  concurrent duplicate waits on the first's row lock, then gets its reply.
//  Only successful replies are kept: a failed attempt may be retried.
//
//  Every service's migrations create the table (LINLI_IDEM_DDL).
#ifndef LINLI_IDEM_H
#define LINLI_IDEM_H

#include <stdbool.h>

#include "linli_pg.h"
#include "linli_worker.h"

#define LINLI_IDEM_DDL                                                                             \
    "CREATE TABLE idempotency (scope text NOT NULL, key text NOT NULL, method text NOT NULL, "     \
    "request_hash text NOT NULL, status int, reply bytea, "                                        \
    "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (scope, key))"

typedef enum {
    LINLI_IDEM_NEW,      //  go on: the transaction is open
    LINLI_IDEM_REPLAYED, //  the first reply was sent again; return 0
    LINLI_IDEM_ANSWERED, //  an error (422, 503) was answered; return 0
} linli_idem_rc_t;

typedef struct {
    linli_pg_t *pg; //  borrowed
    bool keyed;     //  the request carried a key
    char scope[64]; //  whose key: the caller's id, or "anonymous"
    char key[136];  //  the Idempotency-Key
} linli_idem_t;

//  Open the handler's transaction and claim the request's key, if any.
linli_idem_rc_t linli_idem_begin(linli_pg_t *pg, linli_request_t *request, linli_idem_t *idem);

//  Store the reply with the key, commit, and answer. Returns 0; on a failed
//  commit answers 503 instead (nothing was changed).
int linli_idem_commit(linli_idem_t *idem, linli_request_t *request, int status,
                      const ProtobufCMessage *body);

//  Store the reply with the key and commit, without answering: for a handler
//  whose answer carries more than may be stored (a login token). 0 or -1
//  (rolled back; nothing changed).
int linli_idem_finish(linli_idem_t *idem, int status, const ProtobufCMessage *body);

//  Roll back and answer an error. Returns 0.
int linli_idem_abort(linli_idem_t *idem, linli_request_t *request, int status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

//  Delete keys older than max_age_s (run from a timer). Rows deleted, or -1.
int linli_idem_expire(linli_pg_t *pg, int max_age_s);

#endif
