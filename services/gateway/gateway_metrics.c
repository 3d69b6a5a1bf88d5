//  gateway_metrics: counters and a latency histogram in Prometheus format.
#include "gateway_metrics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STATUSES 16 //  distinct statuses kept per route (few exist)

static const double s_buckets_ms[] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
#define S_NBUCKETS (sizeof s_buckets_ms / sizeof s_buckets_ms[0])

typedef struct {
    int status[S_STATUSES];     //  status codes seen
    uint64_t count[S_STATUSES]; //  answers per status
} s_route_t;

struct gateway_metrics_t {
    size_t nroutes;                   //  routes + 1 for "unmatched"
    s_route_t *routes;                //  owned, nroutes entries
    uint64_t buckets[S_NBUCKETS + 1]; //  latency histogram (+Inf last)
    double sum_s;                     //  total latency, seconds
    uint64_t total;                   //  requests observed
};

gateway_metrics_t *
gateway_metrics_new(size_t nroutes)
{
    gateway_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->nroutes = nroutes + 1;
    self->routes = calloc(self->nroutes, sizeof(s_route_t));
    if (!self->routes) {
        free(self);
        return NULL;
    }
    return self;
}

void
gateway_metrics_destroy(gateway_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->routes);
    free(*self_p);
    *self_p = NULL;
}

void
gateway_metrics_observe(gateway_metrics_t *self, size_t route, int status, int64_t latency_us)
{
    if (route >= self->nroutes)
        route = self->nroutes - 1;
    s_route_t *r = &self->routes[route];
    for (int i = 0; i < S_STATUSES; i++) {
        if (r->status[i] == status || r->status[i] == 0) {
            r->status[i] = status;
            r->count[i]++;
            break;
        }
    }
    double ms = (double)latency_us / 1000.0;
    size_t b = 0;
    while (b < S_NBUCKETS && ms > s_buckets_ms[b])
        b++;
    self->buckets[b]++;
    self->sum_s += ms / 1000.0;
    self->total++;
}

typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static void s_printf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_printf(s_buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *data = realloc(b->data, cap);
        if (!data)
            return;
        b->data = data;
        b->cap = cap;
    }
}

//  A label value in Prometheus' text format: backslash, double quote and
//  newline escaped. Service names come from workers and clients of the
//  broker; one quote in a name would otherwise break the whole scrape.
static void
s_label(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else
            out[o++] = *p;
    }
    out[o] = '\0';
}

//  Gauge linli_broker_<field> with one line per service of the broker's
//  stats (services may be NULL: the header only).
static void
s_broker_gauge(s_buf_t *b, json_t *services, const char *field, const char *help)
{
    s_printf(b, "# HELP linli_broker_%s %s\n# TYPE linli_broker_%s gauge\n", field, help, field);
    const char *svc;
    json_t *v;
    char label[2 * 255 + 1];
    json_object_foreach(services, svc, v)
    {
        s_label(label, sizeof label, svc);
        s_printf(b, "linli_broker_%s{service=\"%s\"} %lld\n", field, label,
                 (long long)json_integer_value(json_object_get(v, field)));
    }
}

char *
gateway_metrics_render(const gateway_metrics_t *self, const char *(*route_name)(size_t),
                       const char *broker_json, const gateway_sessions_stats_t *sessions)
{
    s_buf_t b = {0};
    s_printf(&b, "# HELP linli_http_requests_total HTTP requests answered, by route and status.\n"
                 "# TYPE linli_http_requests_total counter\n");
    for (size_t i = 0; i < self->nroutes; i++) {
        const s_route_t *r = &self->routes[i];
        const char *name = i + 1 < self->nroutes ? route_name(i) : "unmatched";
        for (int k = 0; k < S_STATUSES && r->status[k]; k++)
            s_printf(&b, "linli_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", name,
                     r->status[k], (unsigned long long)r->count[k]);
    }
    s_printf(&b, "# HELP linli_http_request_duration_seconds Time from request to answer.\n"
                 "# TYPE linli_http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < S_NBUCKETS; i++) {
        cumulative += self->buckets[i];
        s_printf(&b, "linli_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 s_buckets_ms[i] / 1000.0, (unsigned long long)cumulative);
    }
    cumulative += self->buckets[S_NBUCKETS];
    s_printf(&b, "linli_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
             (unsigned long long)cumulative);
    s_printf(&b, "linli_http_request_duration_seconds_sum %.6f\n", self->sum_s);
    s_printf(&b, "linli_http_request_duration_seconds_count %llu\n",
             (unsigned long long)self->total);

    json_t *stats = broker_json ? json_loads(broker_json, 0, NULL) : NULL;
    json_t *services = stats ? json_object_get(stats, "services") : NULL;
    s_broker_gauge(&b, services, "workers", "Workers connected, by service.");
    s_broker_gauge(&b, services, "queued", "Requests waiting for a worker, by service.");
    s_broker_gauge(&b, services, "inflight", "Requests held by workers, by service.");
    json_decref(stats);
    s_printf(&b,
             "# HELP linli_session_lookups_total Bearer tokens resolved, from the gateway's "
             "cache or from Redis.\n"
             "# TYPE linli_session_lookups_total counter\n"
             "linli_session_lookups_total{from=\"cache\"} %llu\n"
             "linli_session_lookups_total{from=\"redis\"} %llu\n"
             "# HELP linli_session_cache_entries Sessions held in the gateway's cache.\n"
             "# TYPE linli_session_cache_entries gauge\n"
             "linli_session_cache_entries %zu\n"
             "# HELP linli_sessions_ended_total Ended sessions announced to this gateway.\n"
             "# TYPE linli_sessions_ended_total counter\n"
             "linli_sessions_ended_total %llu\n",
             (unsigned long long)sessions->hits, (unsigned long long)sessions->misses,
             sessions->entries, (unsigned long long)sessions->ended);
    return b.data;
}
