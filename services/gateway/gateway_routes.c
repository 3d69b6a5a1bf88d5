//  gateway_routes: the route table and its matcher.
#include "gateway_routes.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "linli/registry.pb-c.h"
#include "linli/registry_import.pb-c.h"
#include "linli/registry_orgs.pb-c.h"

#define ADMINS "city_admin|district_admin|street_admin"
#define STAFF "city_admin|district_admin|street_admin|community_worker"

#define REG(name) &linli__registry__##name##__descriptor

//  A JSON route, and a route whose raw body fills a bytes field.
#define R(verb, path, access, service, rpc, req, rep)                                              \
    {                                                                                              \
        verb, path, access, service, rpc, req, rep, NULL, NULL                                     \
    }
#define RAW(verb, path, access, service, rpc, req, rep, field, limit_cfg)                          \
    {                                                                                              \
        verb, path, access, service, rpc, req, rep, field, limit_cfg                               \
    }

const gateway_route_t gateway_routes[] = {
    R("GET", "/v1/areas/{code}", "public", "registry", "registry.GetArea", REG(get_area_request),
      REG(area)),
    R("GET", "/v1/areas", "public", "registry", "registry.ListAreas", REG(list_areas_request),
      REG(list_areas_reply)),
    R("POST", "/v1/auth/login", "public", "registry", "registry.Login", REG(login_request),
      REG(login_reply)),
    R("POST", "/v1/auth/password", "public", "registry", "registry.SetPassword",
      REG(set_password_request), REG(login_reply)),
    R("POST", "/v1/volunteers/{id}/password-code", STAFF, "registry", "registry.IssuePasswordCode",
      REG(issue_password_code_request), REG(password_code)),
    R("POST", "/v1/auth/logout", "user", "registry", "registry.Logout", REG(logout_request),
      REG(logout_reply)),
    R("GET", "/v1/me", "user", "registry", "registry.Me", REG(me_request), REG(user)),
    R("POST", "/v1/staff", ADMINS, "registry", "registry.CreateStaff", REG(create_staff_request),
      REG(user)),
    R("GET", "/v1/staff/{id}", ADMINS, "registry", "registry.GetStaff", REG(get_staff_request),
      REG(user)),
    R("GET", "/v1/staff", ADMINS, "registry", "registry.ListStaff", REG(list_staff_request),
      REG(list_staff_reply)),
    R("POST", "/v1/staff/{id}/status", ADMINS, "registry", "registry.SetStaffStatus",
      REG(set_staff_status_request), REG(user)),
    R("PUT", "/v1/staff/{id}/grants", ADMINS, "registry", "registry.SetStaffGrants",
      REG(set_staff_grants_request), REG(user)),
    // ---- volunteers
    R("POST", "/v1/volunteers", "public", "registry", "registry.SignUp", REG(sign_up_request),
      REG(sign_up_reply)),
    R("GET", "/v1/volunteers/{id}", "user", "registry", "registry.GetVolunteer",
      REG(get_volunteer_request), REG(volunteer)),
    R("PATCH", "/v1/volunteers/{id}", "user", "registry", "registry.UpdateVolunteer",
      REG(update_volunteer_request), REG(volunteer)),
    R("POST", "/v1/volunteers/{id}/verify", STAFF, "registry", "registry.VerifyVolunteer",
      REG(verify_volunteer_request), REG(volunteer)),
    R("POST", "/v1/volunteers/{id}/status", "user", "registry", "registry.SetVolunteerStatus",
      REG(set_volunteer_status_request), REG(volunteer)),
    R("GET", "/v1/volunteers", STAFF, "registry", "registry.ListVolunteers",
      REG(list_volunteers_request), REG(list_volunteers_reply)),
    R("GET", "/v1/volunteers/{id}/status-log", STAFF, "registry", "registry.VolunteerStatusLog",
      REG(volunteer_status_log_request), REG(volunteer_status_log_reply)),
    R("GET", "/v1/areas/{code}/join-code", STAFF, "registry", "registry.JoinCode",
      REG(join_code_request), REG(join_code_reply)),
    // ---- organisations and teams
    R("POST", "/v1/organizations", STAFF, "registry", "registry.CreateOrganization",
      REG(create_organization_request), REG(organization)),
    R("GET", "/v1/organizations", "user", "registry", "registry.ListOrganizations",
      REG(list_organizations_request), REG(list_organizations_reply)),
    R("GET", "/v1/organizations/{id}", "user", "registry", "registry.GetOrganization",
      REG(get_organization_request), REG(organization)),
    R("PATCH", "/v1/organizations/{id}", STAFF, "registry", "registry.UpdateOrganization",
      REG(update_organization_request), REG(organization)),
    R("DELETE", "/v1/organizations/{id}", STAFF, "registry", "registry.DissolveOrganization",
      REG(dissolve_organization_request), REG(organization)),
    R("POST", "/v1/organizations/{id}/members", "user", "registry", "registry.AddOrgMember",
      REG(add_org_member_request), REG(organization_member)),
    R("GET", "/v1/organizations/{id}/members", "user", "registry", "registry.ListOrgMembers",
      REG(list_org_members_request), REG(list_org_members_reply)),
    R("DELETE", "/v1/organizations/{id}/members/{volunteer_id}", "user", "registry",
      "registry.RemoveOrgMember", REG(remove_org_member_request), REG(remove_org_member_reply)),
    R("GET", "/v1/volunteers/{id}/organizations", "user", "registry",
      "registry.VolunteerOrganizations", REG(volunteer_organizations_request),
      REG(volunteer_organizations_reply)),
    // ---- residents
    R("POST", "/v1/residents", STAFF, "registry", "registry.CreateResident",
      REG(create_resident_request), REG(resident)),
    R("GET", "/v1/residents", STAFF, "registry", "registry.ListResidents",
      REG(list_residents_request), REG(list_residents_reply)),
    R("GET", "/v1/residents/{id}", "user", "registry", "registry.GetResident",
      REG(get_resident_request), REG(resident)),
    R("PATCH", "/v1/residents/{id}", STAFF, "registry", "registry.UpdateResident",
      REG(update_resident_request), REG(resident)),
    // ---- imports
    RAW("POST", "/v1/imports/volunteers", STAFF, "registry", "registry.ImportVolunteers",
        REG(import_volunteers_request), REG(import_job), "csv", "LINLI_IMPORT_MAX_BYTES"),
    R("GET", "/v1/imports/{id}", STAFF, "registry", "registry.GetImport", REG(get_import_request),
      REG(import_job)),
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

size_t
gateway_routes_count(void)
{
    size_t n = 0;
    while (gateway_routes[n].verb)
        n++;
    return n;
}

//  Match one pattern against path. With params NULL only the shape is
//  compared (cheap, no allocation); otherwise the %-decoded parameters are
//  added to params. Returns 1 matched, 0 not, -1 a parameter is unusable.
static int
s_match(const char *pattern, const char *path, json_t *params)
{
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *slash = strchr(s, '/');
            size_t vlen = slash ? (size_t)(slash - s) : strlen(s);
            if (!close || vlen == 0)
                return 0;
            if (params) {
                if (vlen > 512)
                    return -1;
                char name[64], raw[513];
                snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
                memcpy(raw, s, vlen);
                raw[vlen] = '\0';
                size_t dlen = 0;
                char *value = evhttp_uridecode(raw, 0, &dlen);
                if (!value || strlen(value) != dlen) {
                    free(value);
                    return -1; //  an encoded NUL
                }
                json_t *str = json_string(value);
                free(value);
                if (!str)
                    return -1; //  not UTF-8
                json_object_set_new(params, name, str);
            }
            p = close + 1;
            s += vlen;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return 0;
        }
    }
    return (*p || *s) ? 0 : 1;
}

gateway_match_t
gateway_routes_match(const char *verb, const char *path, const gateway_route_t **route,
                     json_t *params)
{
    bool path_seen = false;
    for (const gateway_route_t *r = gateway_routes; r->verb; r++) {
        if (s_match(r->path, path, NULL) != 1)
            continue;
        path_seen = true;
        if (strcmp(r->verb, verb))
            continue;
        if (s_match(r->path, path, params) != 1)
            return GATEWAY_ROUTE_BAD_PATH;
        *route = r;
        return GATEWAY_ROUTE_FOUND;
    }
    return path_seen ? GATEWAY_ROUTE_NO_METHOD : GATEWAY_ROUTE_NO_PATH;
}
