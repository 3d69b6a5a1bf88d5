//  gateway_routes: the route table — method + path pattern to (access,
//  service, method, request and reply message). The gateway holds no
//  per-endpoint code: adding an endpoint is one line here.
#ifndef GATEWAY_ROUTES_H
#define GATEWAY_ROUTES_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

typedef struct {
    const char *verb;                          //  "GET", "POST", "PATCH", "PUT", "DELETE"
    const char *path;                          //  "/v1/areas/{code}": {x} fills field x
    const char *access;                        //  "public", "user", or roles "a|b"
    const char *service;                       //  broker service name
    const char *rpc;                           //  "registry.GetArea"
    const ProtobufCMessageDescriptor *request; //  built from path, query and body
    const ProtobufCMessageDescriptor *reply;   //  rendered as the JSON answer
    const char *raw_body;                      //  bytes field the raw body fills (e.g. CSV);
                                               //  NULL: the body is JSON
    const char *max_body_cfg;                  //  config entry of this route's body limit;
                                               //  NULL: LINLI_MAX_BODY_BYTES
} gateway_route_t;

//  The table, ended by a {NULL} entry.
extern const gateway_route_t gateway_routes[];

//  Number of routes in the table.
size_t gateway_routes_count(void);

//  Outcome of a look-up.
typedef enum {
    GATEWAY_ROUTE_FOUND,
    GATEWAY_ROUTE_NO_PATH,   //  404
    GATEWAY_ROUTE_NO_METHOD, //  405: the path exists with other verbs
    GATEWAY_ROUTE_BAD_PATH,  //  400: a path parameter is not valid UTF-8 or too long
} gateway_match_t;

//  Find the route for verb and the (still %-encoded) path. On FOUND, *route
//  is set and the path parameters are added to params (string values).
gateway_match_t gateway_routes_match(const char *verb, const char *path,
                                     const gateway_route_t **route, json_t *params);

#endif
