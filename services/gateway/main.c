//  linli-gateway: config -> event base -> signals -> gateway -> loop.
#include <czmq.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "linli_log.h"

static void
s_on_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)events;
    linli_info("signal %d: stopping", (int)sig);
    event_base_loopexit((struct event_base *)arg, NULL);
}

int
main(int argc, char **argv)
{
    const linli_cfg_entry_t *const tables[] = {linli_cfg_common, gateway_cfg, NULL};
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("linli-gateway: the HTTP/JSON API and the broker.\nEnvironment:\n");
        linli_config_print_help(tables);
        return 0;
    }
    char err[512];
    linli_config_t *config = linli_config_load(tables, err, sizeof err);
    if (!config) {
        fprintf(stderr, "linli-gateway: %s\n", err);
        return 1;
    }
    int level = linli_log_level_parse(linli_config_str(config, "LINLI_LOG_LEVEL"));
    linli_log_init("gateway", level < 0 ? LINLI_LOG_INFO : (linli_log_level_t)level);
    linli_config_log(config);

    //  Signals come through libevent; CZMQ must not install its own.
    zsys_handler_set(NULL);
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (!base) {
        linli_error("gateway: no event base");
        linli_config_destroy(&config);
        return 1;
    }
    struct event *sigterm = evsignal_new(base, SIGTERM, s_on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, s_on_signal, base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);

    gateway_t *gateway = gateway_new(base, config);
    int rc = 1;
    if (gateway) {
        event_base_dispatch(base);
        rc = 0;
    }
    gateway_destroy(&gateway);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(base);
    linli_config_destroy(&config);
    return rc;
}
