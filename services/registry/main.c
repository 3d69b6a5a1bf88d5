//  linli-registry: config -> registry actor -> wait for SIGTERM -> destroy.
//  Other commands are tools that run once and exit (see s_tools).
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "linli_log.h"
#include "registry_import.h"
#include "registry_index.h"
#include "registry_service.h"

//  A tool: runs with the stores open and the schema current. 0 on success.
typedef int(s_tool_fn)(registry_t *reg, const linli_config_t *config, int argc, char **argv);

static int
s_migrate(registry_t *reg, const linli_config_t *config, int argc, char **argv)
{
    (void)reg;
    (void)config;
    (void)argc;
    (void)argv;
    return 0; //  registry_prepare did it
}

static int
s_seed_demo(registry_t *reg, const linli_config_t *config, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (registry_store_load_demo_areas(reg->store))
        return -1;
    // ---- import runner: demo volunteers here
    if (registry_import_demo(reg, config))
        return -1;
    return 0;
}

static const struct {
    const char *name; //  the command word
    s_tool_fn *fn;    //  what it runs
    const char *help; //  one line
} s_tools[] = {
    {"migrate", s_migrate, "apply migrations, create the city and bootstrap admin, exit"},
    {"seed-demo", s_seed_demo, "migrate, then load the demo city (idempotent)"},
    // ---- import runner: tools here
    {"import-volunteers", registry_import_tool,
     "import-volunteers FILE (--as-city-admin | --as ACCOUNT_ID) [--dry-run]: import a CSV "
     "of volunteers now, print counts, rate and the first row errors"},
    {"demo-csv", registry_import_demo_csv_tool,
     "demo-csv N FILE [--from K]: write N generated volunteers as an import CSV"},
    // ---- read model: tools here
    {"rebuild-index", registry_index_tool,
     "rebuild the matching index in Redis from PostgreSQL (--clear: drop it first)"},
    {NULL, NULL, NULL},
};

int
main(int argc, char **argv)
{
    const linli_cfg_entry_t *const tables[] = {linli_cfg_common, registry_cfg, NULL};
    const char *command = argc > 1 ? argv[1] : "serve";
    int tool = -1;
    for (int i = 0; s_tools[i].name; i++)
        if (!strcmp(command, s_tools[i].name))
            tool = i;
    if (tool < 0 && strcmp(command, "serve")) {
        printf("usage: linli-registry [serve | COMMAND ...]\n  serve: run the service "
               "(default)\n");
        for (int i = 0; s_tools[i].name; i++)
            printf("  %s: %s\n", s_tools[i].name, s_tools[i].help);
        printf("Environment:\n");
        linli_config_print_help(tables);
        return strcmp(command, "--help") ? 2 : 0;
    }
    char err[512];
    linli_config_t *config = linli_config_load(tables, err, sizeof err);
    if (!config) {
        fprintf(stderr, "linli-registry: %s\n", err);
        return 1;
    }
    int level = linli_log_level_parse(linli_config_str(config, "LINLI_LOG_LEVEL"));
    linli_log_init("registry", level < 0 ? LINLI_LOG_INFO : (linli_log_level_t)level);
    linli_config_log(config);

    int rc = 0;
    if (tool >= 0) {
        registry_t reg;
        rc = 1;
        if (registry_open(&reg, config) == 0) {
            if (registry_prepare(&reg, config) == 0 &&
                s_tools[tool].fn(&reg, config, argc - 2, argv + 2) == 0)
                rc = 0;
            registry_close(&reg);
        }
        if (rc)
            linli_error("%s failed", command);
    } else {
        zactor_t *actor = zactor_new(registry_service_actor, config);
        zpoller_t *poller = zpoller_new(actor, NULL);
        //  NULL: interrupted by SIGTERM/SIGINT. The actor itself: it ended on its own.
        if (zpoller_wait(poller, -1) == actor) {
            linli_error("registry stopped: it could not start");
            rc = 1;
        }
        zpoller_destroy(&poller);
        zactor_destroy(&actor);
    }
    linli_config_destroy(&config);
    return rc;
}
