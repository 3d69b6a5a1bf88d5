//  docs/openapi.yaml is kept true to the gateway's route table: every route
//  is documented under its path and verb with the same access rule
//  (x-linli-access) and service method (x-linli-rpc), its reply schema is
//  the reply message's name (Empty for a message without fields), and every documented operation
//  that names a method is a route. Read line by line: the document's layout (paths at two spaces,
//  verbs at four, operation keys at six) is part of what is checked.
#include "gateway_routes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_OPS 256

typedef struct {
    char path[160];
    char verb[8];     //  upper case
    char access[128]; //  x-linli-access
    char rpc[96];     //  x-linli-rpc
    char reply[96];   //  schema of the first 2xx answer, "" when none
    bool matched;     //  a route has it
} s_op_t;

static s_op_t s_ops[S_MAX_OPS];
static size_t s_nops;

//  The value after "key: " on a line indented by indent spaces, or NULL.
static const char *
s_value(const char *line, int indent, const char *key)
{
    for (int i = 0; i < indent; i++)
        if (line[i] != ' ')
            return NULL;
    size_t klen = strlen(key);
    if (strncmp(line + indent, key, klen) || line[indent + klen] != ':')
        return NULL;
    const char *v = line + indent + klen + 1;
    while (*v == ' ')
        v++;
    return v;
}

//  Copy a value without its line end into out.
static void
s_copy(char *out, size_t cap, const char *v)
{
    size_t n = strcspn(v, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static int
s_load(void **state)
{
    (void)state;
    FILE *f = fopen(LINLI_SOURCE_DIR "/docs/openapi.yaml", "r");
    if (!f)
        return -1;
    char line[1024], path[160] = "";
    bool in_paths = false, in_2xx = false, want_ref = false;
    s_op_t *op = NULL;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "paths:", 6)) {
            in_paths = true;
            continue;
        }
        if (in_paths && line[0] != ' ' && line[0] != '\n' && line[0] != '#')
            in_paths = false; //  the next top-level key (components)
        if (!in_paths)
            continue;
        if (!strncmp(line, "  /", 3)) {
            s_copy(path, sizeof path, line + 2);
            size_t n = strlen(path);
            if (n && path[n - 1] == ':')
                path[n - 1] = '\0';
            op = NULL;
            continue;
        }
        static const char *verbs[] = {"get", "post", "put", "patch", "delete"};
        bool verb_line = false;
        for (size_t i = 0; i < 5; i++) {
            if (!strncmp(line, "    ", 4) && line[4] != ' ' &&
                !strncmp(line + 4, verbs[i], strlen(verbs[i])) &&
                line[4 + strlen(verbs[i])] == ':') {
                if (s_nops == S_MAX_OPS) {
                    fclose(f);
                    return -1;
                }
                op = &s_ops[s_nops++];
                memset(op, 0, sizeof *op);
                snprintf(op->path, sizeof op->path, "%s", path);
                for (size_t k = 0; verbs[i][k]; k++)
                    op->verb[k] = (char)toupper((unsigned char)verbs[i][k]);
                in_2xx = want_ref = false;
                verb_line = true;
            }
        }
        if (verb_line || !op)
            continue;
        const char *v;
        if ((v = s_value(line, 6, "x-linli-access")))
            s_copy(op->access, sizeof op->access, v);
        else if ((v = s_value(line, 6, "x-linli-rpc")))
            s_copy(op->rpc, sizeof op->rpc, v);
        else if (!strncmp(line, "        '2", 10))
            in_2xx = !op->reply[0];
        else if (!strncmp(line, "        '", 9))
            in_2xx = false;
        else if (in_2xx && strstr(line, "schema:"))
            want_ref = true;
        else if (want_ref) {
            //  The line after "schema:": a named schema, or an inline one.
            v = strstr(line, "$ref: '#/components/schemas/");
            s_copy(op->reply, sizeof op->reply,
                   v ? v + strlen("$ref: '#/components/schemas/") : "(inline)");
            op->reply[strcspn(op->reply, "'")] = '\0';
            in_2xx = want_ref = false;
        }
    }
    fclose(f);
    return s_nops ? 0 : -1;
}

//  The documented operation of every route (NULL when it has none), in the
//  route table's order; the operations a route has are marked matched.
static s_op_t *s_route_ops[S_MAX_OPS];

//  Load the document and match the route table against it, once for both tests.
static int
s_setup(void **state)
{
    if (s_load(state))
        return -1;
    size_t n = gateway_routes_count();
    if (n > S_MAX_OPS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const gateway_route_t *r = &gateway_routes[i];
        s_route_ops[i] = NULL;
        for (size_t k = 0; k < s_nops && !s_route_ops[i]; k++)
            if (!strcmp(s_ops[k].path, r->path) && !strcmp(s_ops[k].verb, r->verb))
                s_route_ops[i] = &s_ops[k];
        if (s_route_ops[i])
            s_route_ops[i]->matched = true;
    }
    return 0;
}

static void
test_every_route_is_documented(void **state)
{
    (void)state;
    size_t n = gateway_routes_count();
    assert_true(n > 10);
    for (size_t i = 0; i < n; i++) {
        const gateway_route_t *r = &gateway_routes[i];
        const s_op_t *found = s_route_ops[i];
        if (!found)
            fail_msg("route %s %s is not in docs/openapi.yaml", r->verb, r->path);
        if (strcmp(found->rpc, r->rpc))
            fail_msg("%s %s: x-linli-rpc is '%s', the route calls %s", r->verb, r->path, found->rpc,
                     r->rpc);
        if (strcmp(found->access, r->access))
            fail_msg("%s %s: x-linli-access is '%s', the route admits %s", r->verb, r->path,
                     found->access, r->access);
        //  A message without fields is documented as the shared Empty.
        bool empty = r->reply->n_fields == 0 && !strcmp(found->reply, "Empty");
        if (!empty && strcmp(found->reply, r->reply->short_name))
            fail_msg("%s %s: the documented answer is '%s', the route replies %s", r->verb, r->path,
                     found->reply, r->reply->short_name);
    }
}

static void
test_every_documented_method_is_a_route(void **state)
{
    (void)state;
    size_t with_rpc = 0;
    for (size_t k = 0; k < s_nops; k++) {
        if (!s_ops[k].rpc[0])
            continue; //  served by the gateway itself (/healthz, /metrics)
        with_rpc++;
        if (!s_ops[k].matched)
            fail_msg("docs/openapi.yaml documents %s %s (%s), which no route serves", s_ops[k].verb,
                     s_ops[k].path, s_ops[k].rpc);
    }
    assert_int_equal(with_rpc, gateway_routes_count());
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_is_documented),
        cmocka_unit_test(test_every_documented_method_is_a_route),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
