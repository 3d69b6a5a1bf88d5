//  linli-registry: config -> registry actor -> wait for SIGTERM -> destroy.
//  `linli-registry migrate` applies migrations; `seed-demo` also loads the
//  demo city's areas.
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "linli_log.h"
#include "registry_service.h"

int
main(int argc, char **argv)
{
    const linli_cfg_entry_t *const tables[] = {linli_cfg_common, registry_cfg, NULL};
    const char *command = argc > 1 ? argv[1] : "serve";
    if (strcmp(command, "serve") && strcmp(command, "migrate") && strcmp(command, "seed-demo")) {
        printf("usage: linli-registry [serve|migrate|seed-demo]\nEnvironment:\n");
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
    if (strcmp(command, "serve")) {
        registry_t reg;
        rc = 1;
        if (registry_open(&reg, config) == 0) {
            if (registry_prepare(&reg, config) == 0 &&
                (!strcmp(command, "migrate") || registry_store_load_demo_areas(reg.store) == 0))
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
