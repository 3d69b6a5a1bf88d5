//  registry_routes: every module's method table, merged for the worker.
#include "registry.h"

#include <stdlib.h>

//  The modules' tables. Add a module's table here.
static const linli_route_t *const s_tables[] = {
    registry_account_routes,   registry_org_routes,    registry_resident_routes,
    registry_volunteer_routes, registry_import_routes, NULL,
};

const linli_route_t *
registry_routes(void)
{
    static linli_route_t merged[256];
    static bool built = false;
    if (!built) {
        size_t n = 0;
        for (size_t t = 0; s_tables[t]; t++)
            for (const linli_route_t *r = s_tables[t]; r->method && n + 1 < 256; r++)
                merged[n++] = *r;
        merged[n] = (linli_route_t){NULL, NULL, NULL};
        built = true;
    }
    return merged;
}
