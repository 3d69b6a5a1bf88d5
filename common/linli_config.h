//  linli_config: configuration from LINLI_* environment variables, one table
//  per service (name, type, default, help), validated at start.
#ifndef LINLI_CONFIG_H
#define LINLI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef enum {
    LINLI_CFG_STRING,
    LINLI_CFG_INT,
    LINLI_CFG_BOOL,
} linli_cfg_type_t;

typedef struct {
    const char *name;          //  environment variable, e.g. "LINLI_REDIS_PORT"
    linli_cfg_type_t type;     //  how the value is parsed and checked
    const char *default_value; //  NULL: required (secrets have no default)
    int64_t min, max;          //  inclusive range for LINLI_CFG_INT
    bool secret;               //  never logged, never echoed in errors
    const char *help;          //  one line for README and --help
} linli_cfg_entry_t;

//  End-of-table marker.
#define LINLI_CFG_END                                                                              \
    {                                                                                              \
        NULL, LINLI_CFG_STRING, NULL, 0, 0, false, NULL                                            \
    }

//  Entries every process reads: logging, Redis, PostgreSQL, broker.
extern const linli_cfg_entry_t linli_cfg_common[];

typedef struct linli_config_t linli_config_t;

//  Read the variables of every table in tables (a NULL-terminated array of
//  LINLI_CFG_END-terminated tables). On any missing or invalid value returns
//  NULL and writes one clear sentence to err. Caller owns the result.
linli_config_t *linli_config_load(const linli_cfg_entry_t *const *tables, char *err, size_t errlen);

//  Destroy; accepts NULL and nulls the caller's pointer.
void linli_config_destroy(linli_config_t **self_p);

//  Effective value of a string entry (borrowed; lives as long as the config).
//  A name not in the tables is a programmer error and aborts.
const char *linli_config_str(const linli_config_t *self, const char *name);
int64_t linli_config_int(const linli_config_t *self, const char *name);
bool linli_config_bool(const linli_config_t *self, const char *name);

//  Log every effective value at info, secrets masked.
void linli_config_log(const linli_config_t *self);

//  Print the tables as help text (name, default, help) to stdout.
void linli_config_print_help(const linli_cfg_entry_t *const *tables);

//  The next item of a comma-separated list such as LINLI_BROKER_ENDPOINTS,
//  spaces around it trimmed, empty items skipped; NULL at the end. *cursor
//  starts at the (writable) list, which is cut up in place.
char *linli_list_next(char **cursor);

#endif
