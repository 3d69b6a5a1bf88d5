//  registry_import: bulk import of volunteers from CSV — the HTTP methods
//  that queue a job and report on it, the runner that works the queue (any
//  registry process), the CLI for a city moving from its old system, and
//  the demo city's volunteers. All of them go through registry_import_job.
//
//  CSV: UTF-8 (a BOM is fine), a header row, columns in any order:
//    name, id_number, phone, community       required
//    gender, political_status, status        optional (status: pending | verified)
//    skills, free_slots                      optional, ';'-separated
#ifndef REGISTRY_IMPORT_H
#define REGISTRY_IMPORT_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "registry.h"
#include "registry_import_job.h"

//  How a CSV job ended.
typedef struct {
    registry_import_result_t result; //  counts, when done
    bool failed;                     //  a job-level error ended it (recorded in the job)
    char error_code[32];             //  bad_header, bad_quoting, not_utf8, empty_file, …
    char error[256];                 //  one sentence
    int64_t error_line;              //  0 when none
    double seconds;                  //  wall time of the run
} registry_import_outcome_t;

//  Run claimed job over the CSV bytes data[len] (borrowed): check the whole
//  file's structure first (nothing is written when it is broken), then
//  stage every row and write them in one transaction. pg holds the job's
//  lock; side is a second connection. should_stop (may be NULL) is polled
//  every few thousand rows. 0 when the job ended — done, or failed with a
//  job-level error, both recorded and the job let go of; -1 when it could
//  not end (store trouble, or stopped): the caller releases or requeues it.
int registry_import_run_csv(linli_pg_t *pg, linli_pg_t *side, const registry_import_row_t *job,
                            const char *data, size_t len, int64_t max_rows, bool bulk,
                            int (*should_stop)(void *arg), void *stop_arg,
                            registry_import_outcome_t *out);

//  The runner actor: claims and runs queued jobs until $TERM. args is the
//  linli_config_t (borrowed; outlives the actor). Opens its own connections.
void registry_import_actor(zsock_t *pipe, void *args);

//  Tool `import-volunteers FILE (--as-city-admin | --as ACCOUNT_ID) [--dry-run]`:
//  the same job, run here and now; prints counts, rate and the first errors.
int registry_import_tool(registry_t *reg, const linli_config_t *config, int argc, char **argv);

//  Load the demo city's volunteers (LINLI_DEMO_VOLUNTEERS of them, spread
//  over every community) through the same staging path; idempotent: only
//  those not loaded yet are added. Prints three demo logins on stdout. 0 or -1.
int registry_import_demo(registry_t *reg, const linli_config_t *config);

//  Tool `demo-csv N FILE [--from K]`: write N generated volunteers (demo
//  numbering from K, default 0) as an import CSV, for benchmarks and trials.
int registry_import_demo_csv_tool(registry_t *reg, const linli_config_t *config, int argc,
                                  char **argv);

// ---- the demo generator (registry_import_demo.c)

//  One generated volunteer: a plausible name, a valid ID number (GB 11643
//  check digit) from the community's district, a unique mobile number.
typedef struct {
    char name[32];
    char id_number[20];
    char phone[16];
    char community[16];
    const char *gender;           //  male | female, as the ID number says
    const char *political_status; //  one of registry_people's values
    const char *skills[3];
    size_t n_skills;
    const char *free_slots[3];
    size_t n_free_slots;
    const char *status; //  pending | verified (about 70 %)
} registry_demo_person_t;

//  Volunteer number i (0 ..< 10,000,000, each unique) over the sorted
//  community codes (n of them, n >= 1); born 16 to 75 years before this_year.
void registry_demo_person(int64_t i, const char (*communities)[16], size_t n, int this_year,
                          registry_demo_person_t *out);

//  The GB 11643 check character of the first 17 digits of id.
char registry_demo_check_digit(const char *id17);

#endif
