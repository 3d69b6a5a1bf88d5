//  registry_import_job: the work of one import job (its row is
//  registry_import_store's). Rows are checked and sealed in C
//  (registry_person_prepare), streamed by binary COPY into a TEMP staging
//  table, and written in ONE transaction: duplicates found set-wise, then
//  accounts, volunteers, volunteers.imported events (by community, up to
//  500 volunteers each), the row errors and
//  the job's counts together — nothing half-written. The HTTP jobs' runner,
//  the CLI and the demo loader share it.
#ifndef REGISTRY_IMPORT_JOB_H
#define REGISTRY_IMPORT_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli_pg.h"
#include "registry_import_store.h"
#include "registry_people.h"

typedef struct registry_import_job_t registry_import_job_t;

//  How a claimed job runs.
typedef struct {
    int64_t job_id;            //  its import_jobs row; pg's session holds its advisory lock
    const char *grants;        //  "role scope,…": a row's community must lie in a staff scope
    int64_t created_by;        //  creator and verifier of the rows; 0 = none
    const char *actor;         //  "actor" of the events: the creator's id, or "import"
    const char *password_hash; //  every account's (demo); NULL = none (they log in after a reset)
    bool dry_run;              //  write the report only
    bool bulk; //  drop the secondary indexes before the inserts and build them after (a
               //  city's migration: both tables are locked until the commit)
    int (*should_stop)(void *arg); //  polled every batch; nonzero ends the job (may be NULL)
    void *stop_arg;
} registry_import_opts_t;

//  What a finished job did.
typedef struct {
    int64_t total;    //  rows seen
    int64_t imported; //  volunteers created (dry run: that would be)
    int64_t rejected; //  rows refused
} registry_import_result_t;

//  Begin the work: load the communities, create the staging tables on pg
//  (the job's session) and open the COPY. side is a second connection for
//  progress and id blocks (both borrowed). opts' strings are borrowed for
//  the job's life. NULL on failure (logged). Caller owns.
registry_import_job_t *registry_import_job_new(linli_pg_t *pg, linli_pg_t *side,
                                               const registry_import_opts_t *opts);

//  Abort what is not committed and free; accepts NULL and nulls the pointer.
void registry_import_job_destroy(registry_import_job_t **self_p);

//  The number of rows to expect and the phase, for progress (best effort).
void registry_import_job_expect(registry_import_job_t *self, int64_t total);

//  One row: checked, sealed and staged, or staged as a row error (a normal
//  outcome). 0, or -1 when the job cannot go on (store trouble, or
//  should_stop said so: see registry_import_job_stopped).
int registry_import_job_add(registry_import_job_t *self, int64_t line,
                            const registry_person_input_t *in, const char *status);

//  One refused row (its field may be ""). 0 or -1 as above.
int registry_import_job_reject(registry_import_job_t *self, int64_t line, const char *code,
                               const char *field, const char *message);

//  True when the last failure was should_stop asking to stop.
bool registry_import_job_stopped(const registry_import_job_t *self);

//  Write everything in one transaction and mark the job done. 0 or -1 (the
//  transaction rolled back: nothing was written).
int registry_import_job_commit(registry_import_job_t *self, registry_import_result_t *out);

#endif
