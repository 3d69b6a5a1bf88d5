//  gateway: the HTTP/JSON front door. Owns the broker (an actor in this
//  process that workers connect to), a client of it on the event loop, the
//  evhttp server, the session store connection and the metrics.
#ifndef GATEWAY_H
#define GATEWAY_H

#include <event2/event.h>

#include "linli_config.h"

typedef struct gateway_t gateway_t;

//  The gateway's own configuration entries.
extern const linli_cfg_entry_t gateway_cfg[];

//  Start the broker, bind HTTP, register events in base (borrowed). NULL on
//  failure (logged). Caller owns.
gateway_t *gateway_new(struct event_base *base, const linli_config_t *config);

//  Stop everything; accepts NULL and nulls the caller's pointer.
void gateway_destroy(gateway_t **self_p);

#endif
