//  gateway_metrics: request counters by route and status, a latency
//  histogram, rendered in Prometheus text format. Single-threaded (the
//  gateway's event loop).
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway_sessions.h"

typedef struct gateway_metrics_t gateway_metrics_t;

//  New metrics for nroutes routes (route index nroutes counts requests that
//  matched none). Caller owns.
gateway_metrics_t *gateway_metrics_new(size_t nroutes);
void gateway_metrics_destroy(gateway_metrics_t **self_p);

//  Count one answered request.
void gateway_metrics_observe(gateway_metrics_t *self, size_t route, int status, int64_t latency_us);

//  Append the Prometheus text of every metric to out (a growing buffer the
//  caller frees); route_name(i) names route i. broker_json is the broker's
//  stats snapshot (may be NULL); sessions the session look-ups' counters.
char *gateway_metrics_render(const gateway_metrics_t *self, const char *(*route_name)(size_t),
                             const char *broker_json, const gateway_sessions_stats_t *sessions);

#endif
