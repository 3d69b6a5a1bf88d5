//  linli_config: LINLI_* environment configuration, validated at start.
#include "linli_config.h"
#include "linli_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const linli_cfg_entry_t linli_cfg_common[] = {
    {"LINLI_LOG_LEVEL", LINLI_CFG_STRING, "info", 0, 0, false,
     "lowest log level written: debug, info, warn, error"},
    {"LINLI_REDIS_HOST", LINLI_CFG_STRING, "127.0.0.1", 0, 0, false, "Redis host"},
    {"LINLI_REDIS_PORT", LINLI_CFG_INT, "6390", 1, 65535, false, "Redis port"},
    {"LINLI_REDIS_SOCKET", LINLI_CFG_STRING, "", 0, 0, false,
     "Redis Unix socket path (same host); when set, LINLI_REDIS_HOST and _PORT are unused"},
    {"LINLI_REDIS_PREFIX", LINLI_CFG_STRING, "linli:", 0, 0, false,
     "prefix of every Redis key (lets several suites share one Redis)"},
    {"LINLI_REDIS_TIMEOUT_MS", LINLI_CFG_INT, "2000", 10, 60000, false,
     "Redis connect and command timeout"},
    {"LINLI_PG_DSN", LINLI_CFG_STRING, "host=127.0.0.1 port=5440 dbname=linli user=linli", 0, 0,
     true, "PostgreSQL connection string (libpq); may hold a password, so never logged"},
    {"LINLI_PG_STATEMENT_TIMEOUT_MS", LINLI_CFG_INT, "5000", 10, 600000, false,
     "PostgreSQL statement_timeout for every service connection"},
    {"LINLI_HEARTBEAT_MS", LINLI_CFG_INT, "1000", 10, 60000, false,
     "broker <-> worker heartbeat interval; a peer silent for 3 is dead"},
    {"LINLI_BROKER_ENDPOINTS", LINLI_CFG_STRING, "tcp://127.0.0.1:5555", 0, 0, false,
     "comma-separated broker endpoints a worker connects to (one per gateway)"},
    LINLI_CFG_END,
};

typedef struct {
    const linli_cfg_entry_t *entry; //  borrowed from the static table
    char *value;                    //  owned effective value
    int64_t ivalue;                 //  parsed value for INT and BOOL
} s_item_t;

struct linli_config_t {
    s_item_t *items; //  owned array
    size_t count;    //  items used
};

static int
s_parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        *out = true;
    else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        *out = false;
    else
        return -1;
    return 0;
}

linli_config_t *
linli_config_load(const linli_cfg_entry_t *const *tables, char *err, size_t errlen)
{
    size_t total = 0;
    for (size_t t = 0; tables[t]; t++)
        for (const linli_cfg_entry_t *e = tables[t]; e->name; e++)
            total++;
    linli_config_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->items = calloc(total ? total : 1, sizeof(s_item_t));
    if (!self->items) {
        free(self);
        return NULL;
    }
    for (size_t t = 0; tables[t]; t++) {
        for (const linli_cfg_entry_t *e = tables[t]; e->name; e++) {
            s_item_t *item = &self->items[self->count++];
            item->entry = e;
            const char *raw = getenv(e->name);
            if (raw && !*raw)
                raw = NULL;
            if (!raw)
                raw = e->default_value;
            if (!raw) {
                snprintf(err, errlen, "%s is required and has no default: %s", e->name,
                         e->help ? e->help : "");
                linli_config_destroy(&self);
                return NULL;
            }
            item->value = strdup(raw);
            if (!item->value) {
                linli_config_destroy(&self);
                return NULL;
            }
            if (e->type == LINLI_CFG_INT) {
                char *end = NULL;
                errno = 0;
                long long v = strtoll(raw, &end, 10);
                if (errno || end == raw || *end || v < e->min || v > e->max) {
                    snprintf(err, errlen, "%s must be an integer from %lld to %lld, got '%s'",
                             e->name, (long long)e->min, (long long)e->max,
                             e->secret ? "***" : raw);
                    linli_config_destroy(&self);
                    return NULL;
                }
                item->ivalue = v;
            } else if (e->type == LINLI_CFG_BOOL) {
                bool b;
                if (s_parse_bool(raw, &b)) {
                    snprintf(err, errlen, "%s must be true or false, got '%s'", e->name,
                             e->secret ? "***" : raw);
                    linli_config_destroy(&self);
                    return NULL;
                }
                item->ivalue = b;
            }
        }
    }
    return self;
}

void
linli_config_destroy(linli_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    linli_config_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->items[i].value);
    free(self->items);
    free(self);
    *self_p = NULL;
}

static const s_item_t *
s_find(const linli_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (!strcmp(self->items[i].entry->name, name))
            return &self->items[i];
    //  A name missing from the tables is a bug in our code, never user input.
    fprintf(stderr, "linli_config: no entry named %s\n", name);
    abort();
}

const char *
linli_config_str(const linli_config_t *self, const char *name)
{
    return s_find(self, name)->value;
}

int64_t
linli_config_int(const linli_config_t *self, const char *name)
{
    return s_find(self, name)->ivalue;
}

bool
linli_config_bool(const linli_config_t *self, const char *name)
{
    return s_find(self, name)->ivalue != 0;
}

void
linli_config_log(const linli_config_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        const s_item_t *item = &self->items[i];
        linli_info("config %s=%s", item->entry->name, item->entry->secret ? "***" : item->value);
    }
}

void
linli_config_print_help(const linli_cfg_entry_t *const *tables)
{
    for (size_t t = 0; tables[t]; t++)
        for (const linli_cfg_entry_t *e = tables[t]; e->name; e++)
            printf("  %-32s %s (default: %s)\n", e->name, e->help ? e->help : "",
                   e->default_value ? (e->secret ? "***" : e->default_value) : "none, required");
}

char *
linli_list_next(char **cursor)
{
    while (*cursor && **cursor) {
        char *item = *cursor;
        char *comma = strchr(item, ',');
        if (comma) {
            *comma = '\0';
            *cursor = comma + 1;
        } else
            *cursor = item + strlen(item);
        while (*item == ' ')
            item++;
        size_t len = strlen(item);
        while (len && item[len - 1] == ' ')
            item[--len] = '\0';
        if (len)
            return item;
    }
    return NULL;
}
