//  linli_constraints: the limits the codec (linli_codec.c) enforces on message
//  fields. protobuf-c descriptors carry no custom options, so they live here.
//
//  How to add a line: one line per constrained field, kept sorted by message
//  full name, then field name, in a block per .proto file. Use designated
//  initialisers and leave out what does not apply:
//    numbers   .min/.max: inclusive range; both 0 means none, so a one-sided
//              range spells out the other side (.min = 1, .max = INT64_MAX)
//    strings   .min_len/.max_len in UTF-8 characters (without a .max_len,
//              LINLI_CODEC_DEFAULT_MAX_LEN applies); .pattern: POSIX ERE the
//              whole string must match (no ^ or $ needed); .one_of: "a|b|c"
//    repeated  .min_len/.max_len count items (without a .max_len,
//              LINLI_CODEC_DEFAULT_MAX_ITEMS applies); .min/.max, .pattern and
//              .one_of apply to every item
//    bytes     .min_len/.max_len in bytes
//    enums     .one_of: the value names accepted
//  A constraint is matched by message and field name; a name that matches no
//  field is never used, so check the spelling against the .proto. The codec
//  indexes the table once, at first use: order matters only to readers.
//  A pattern that does not compile is logged and refuses every value.
#include "linli_codec.h"

//  Roles, highest first; an admin grants only roles below its own.
#define S_ROLES                                                                                    \
    "city_admin|district_admin|street_admin|community_worker|org_leader|volunteer|resident"
//  An area code (province 2, city 4, district 6, street 9, community 12
//  digits) or an organisation: "org:<id>".
#define S_SCOPE "[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12}|org:[A-Za-z0-9_.-]{1,64}"

//  An area code of any level.
#define S_AREA "[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12}"
//  A community's code (12 digits).
#define S_COMMUNITY "[0-9]{12}"
//  A skill tag; a free-time slot (day and part of day).
#define S_SKILL "[a-z][a-z0-9_]{0,31}"
#define S_SLOT "(mon|tue|wed|thu|fri|sat|sun)_(am|pm|eve)"
#define S_VSTATUS "pending|verified|suspended|left"
#define S_POLITICAL "party_member|probationary_member|league_member|masses|other"
//  Passwords: at most 64 characters (256 bytes of UTF-8, what
//  linli_password_hash takes).
//  A record id: a positive decimal number.
#define S_ID "[1-9][0-9]{0,17}"

const linli_constraint_t linli_constraints[] = {
    //  proto/linli/envelope.proto
    {.message = "linli.Caller", .field = "client_addr", .max_len = 64},
    {.message = "linli.Caller", .field = "kind", .one_of = "staff|volunteer|resident"},
    {.message = "linli.Caller", .field = "session", .max_len = 64},
    {.message = "linli.Caller", .field = "user_id", .min_len = 1, .max_len = 64},
    {.message = "linli.Grant", .field = "role", .one_of = S_ROLES},
    {.message = "linli.Grant", .field = "scope", .pattern = S_SCOPE},
    {.message = "linli.Reply", .field = "error_code", .max_len = 64},
    {.message = "linli.Reply", .field = "error_field", .max_len = 128},
    {.message = "linli.Reply", .field = "error_message", .max_len = 1024},
    {.message = "linli.Reply", .field = "status", .min = 100, .max = 599},
    {.message = "linli.Request", .field = "idempotency_key", .min_len = 1, .max_len = 128},
    {.message = "linli.Request",
     .field = "method",
     .max_len = 128,
     .pattern = "[a-z][a-z0-9_]*\\.[A-Za-z][A-Za-z0-9_]*"},
    {.message = "linli.Request", .field = "request_id", .max_len = 128},

    //  proto/linli/registry.proto
    {.message = "linli.registry.CreateStaffRequest", .field = "grants", .min_len = 1, .max_len = 8},
    {.message = "linli.registry.CreateStaffRequest", .field = "name", .min_len = 1, .max_len = 64},
    {.message = "linli.registry.CreateStaffRequest",
     .field = "password",
     .min_len = 8,
     .max_len = 64},
    {.message = "linli.registry.CreateStaffRequest", .field = "phone", .min_len = 1, .max_len = 20},
    {.message = "linli.registry.GetAreaRequest", .field = "code", .pattern = S_AREA},
    {.message = "linli.registry.GetStaffRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.ListAreasRequest", .field = "cursor", .pattern = S_AREA},
    {.message = "linli.registry.ListAreasRequest", .field = "limit", .min = 1, .max = 500},
    {.message = "linli.registry.ListAreasRequest", .field = "parent", .pattern = S_AREA},
    {.message = "linli.registry.ListStaffRequest", .field = "area", .pattern = S_AREA},
    {.message = "linli.registry.ListStaffRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.ListStaffRequest", .field = "limit", .min = 1, .max = 500},
    {.message = "linli.registry.LoginRequest", .field = "password", .min_len = 1, .max_len = 64},
    {.message = "linli.registry.LoginRequest", .field = "phone", .min_len = 1, .max_len = 20},
    {.message = "linli.registry.SetPasswordRequest", .field = "code", .pattern = "[0-9]{8}"},
    {.message = "linli.registry.SetPasswordRequest",
     .field = "password",
     .min_len = 8,
     .max_len = 64},
    {.message = "linli.registry.SetPasswordRequest", .field = "phone", .min_len = 1, .max_len = 20},

    //  proto/linli/registry.proto: volunteers
    {.message = "linli.registry.GetVolunteerRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.IssuePasswordCodeRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.JoinCodeRequest", .field = "code", .pattern = S_COMMUNITY},
    {.message = "linli.registry.ListVolunteersRequest", .field = "area", .pattern = S_AREA},
    {.message = "linli.registry.ListVolunteersRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.ListVolunteersRequest", .field = "limit", .min = 1, .max = 500},
    {.message = "linli.registry.ListVolunteersRequest", .field = "q", .min_len = 1, .max_len = 64},
    {.message = "linli.registry.ListVolunteersRequest", .field = "skill", .pattern = S_SKILL},
    {.message = "linli.registry.ListVolunteersRequest", .field = "status", .one_of = S_VSTATUS},
    {.message = "linli.registry.SetStaffGrantsRequest",
     .field = "grants",
     .min_len = 1,
     .max_len = 8},
    {.message = "linli.registry.SetStaffGrantsRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.SetStaffStatusRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.SetStaffStatusRequest",
     .field = "status",
     .one_of = "active|disabled"},
    {.message = "linli.registry.SetVolunteerStatusRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.SetVolunteerStatusRequest", .field = "reason", .max_len = 256},
    {.message = "linli.registry.SetVolunteerStatusRequest",
     .field = "status",
     .one_of = "verified|suspended|left"},
    {.message = "linli.registry.SignUpRequest", .field = "community", .pattern = S_COMMUNITY},
    {.message = "linli.registry.SignUpRequest",
     .field = "free_slots",
     .max_len = 21,
     .pattern = S_SLOT},
    {.message = "linli.registry.SignUpRequest", .field = "gender", .one_of = "male|female"},
    {.message = "linli.registry.SignUpRequest", .field = "id_number", .min_len = 1, .max_len = 32},
    {.message = "linli.registry.SignUpRequest", .field = "join_code", .min_len = 1, .max_len = 256},
    {.message = "linli.registry.SignUpRequest", .field = "name", .min_len = 1, .max_len = 64},
    {.message = "linli.registry.SignUpRequest", .field = "password", .min_len = 8, .max_len = 64},
    {.message = "linli.registry.SignUpRequest", .field = "phone", .min_len = 1, .max_len = 20},
    {.message = "linli.registry.SignUpRequest", .field = "political_status", .one_of = S_POLITICAL},
    {.message = "linli.registry.SignUpRequest",
     .field = "skills",
     .max_len = 32,
     .pattern = S_SKILL},
    {.message = "linli.registry.UpdateVolunteerRequest",
     .field = "community",
     .pattern = S_COMMUNITY},
    {.message = "linli.registry.UpdateVolunteerRequest",
     .field = "free_slots",
     .max_len = 21,
     .pattern = S_SLOT},
    {.message = "linli.registry.UpdateVolunteerRequest",
     .field = "gender",
     .one_of = "male|female"},
    {.message = "linli.registry.UpdateVolunteerRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.UpdateVolunteerRequest",
     .field = "name",
     .min_len = 1,
     .max_len = 64},
    {.message = "linli.registry.UpdateVolunteerRequest",
     .field = "political_status",
     .one_of = S_POLITICAL},
    {.message = "linli.registry.UpdateVolunteerRequest",
     .field = "skills",
     .max_len = 32,
     .pattern = S_SKILL},
    {.message = "linli.registry.VerifyVolunteerRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.VolunteerStatusLogRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.VolunteerStatusLogRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.VolunteerStatusLogRequest", .field = "limit", .min = 1, .max = 500},

//  proto/linli/registry_orgs.proto
#define S_CARE "elderly_alone|child_left_behind|disabled|low_income|veteran_family|other"
    {.message = "linli.registry.AddOrgMemberRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.AddOrgMemberRequest", .field = "volunteer_id", .pattern = S_ID},
    {.message = "linli.registry.CreateOrganizationRequest", .field = "area", .pattern = S_AREA},
    {.message = "linli.registry.CreateOrganizationRequest", .field = "description", .max_len = 500},
    {.message = "linli.registry.CreateOrganizationRequest", .field = "leader_id", .pattern = S_ID},
    {.message = "linli.registry.CreateOrganizationRequest",
     .field = "name",
     .min_len = 1,
     .max_len = 64},
    {.message = "linli.registry.CreateOrganizationRequest", .field = "parent_id", .pattern = S_ID},
    {.message = "linli.registry.CreateOrganizationRequest",
     .field = "type",
     .one_of = "organization|team"},
    {.message = "linli.registry.CreateResidentRequest", .field = "address", .max_len = 128},
    {.message = "linli.registry.CreateResidentRequest",
     .field = "birth_year",
     .min = 1900,
     .max = 2100},
    {.message = "linli.registry.CreateResidentRequest",
     .field = "care_categories",
     .max_len = 6,
     .one_of = S_CARE},
    {.message = "linli.registry.CreateResidentRequest",
     .field = "community",
     .pattern = S_COMMUNITY},
    {.message = "linli.registry.CreateResidentRequest", .field = "family_contacts", .max_len = 5},
    {.message = "linli.registry.CreateResidentRequest",
     .field = "name",
     .min_len = 1,
     .max_len = 64},
    {.message = "linli.registry.CreateResidentRequest",
     .field = "password",
     .min_len = 8,
     .max_len = 64},
    {.message = "linli.registry.CreateResidentRequest",
     .field = "phone",
     .min_len = 1,
     .max_len = 20},
    {.message = "linli.registry.DissolveOrganizationRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.FamilyContact", .field = "name", .min_len = 1, .max_len = 32},
    {.message = "linli.registry.FamilyContact", .field = "phone", .min_len = 1, .max_len = 20},
    {.message = "linli.registry.FamilyContact", .field = "relation", .max_len = 16},
    {.message = "linli.registry.GetOrganizationRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.GetResidentRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.ListOrgMembersRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.ListOrgMembersRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.ListOrgMembersRequest", .field = "limit", .min = 1, .max = 500},
    {.message = "linli.registry.ListOrganizationsRequest", .field = "area", .pattern = S_AREA},
    {.message = "linli.registry.ListOrganizationsRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.ListOrganizationsRequest", .field = "limit", .min = 1, .max = 500},
    {.message = "linli.registry.ListOrganizationsRequest", .field = "parent_id", .pattern = S_ID},
    {.message = "linli.registry.ListOrganizationsRequest",
     .field = "status",
     .one_of = "active|dissolved"},
    {.message = "linli.registry.ListOrganizationsRequest",
     .field = "type",
     .one_of = "organization|team"},
    {.message = "linli.registry.ListResidentsRequest", .field = "area", .pattern = S_AREA},
    {.message = "linli.registry.ListResidentsRequest", .field = "category", .one_of = S_CARE},
    {.message = "linli.registry.ListResidentsRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.ListResidentsRequest", .field = "limit", .min = 1, .max = 500},
    {.message = "linli.registry.RemoveOrgMemberRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.RemoveOrgMemberRequest", .field = "volunteer_id", .pattern = S_ID},
    {.message = "linli.registry.UpdateOrganizationRequest", .field = "description", .max_len = 500},
    {.message = "linli.registry.UpdateOrganizationRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.UpdateOrganizationRequest", .field = "leader_id", .pattern = S_ID},
    {.message = "linli.registry.UpdateOrganizationRequest",
     .field = "name",
     .min_len = 1,
     .max_len = 64},
    {.message = "linli.registry.UpdateResidentRequest", .field = "address", .max_len = 128},
    {.message = "linli.registry.UpdateResidentRequest",
     .field = "birth_year",
     .min = 1900,
     .max = 2100},
    {.message = "linli.registry.UpdateResidentRequest",
     .field = "care_categories",
     .max_len = 6,
     .one_of = S_CARE},
    {.message = "linli.registry.UpdateResidentRequest",
     .field = "community",
     .pattern = S_COMMUNITY},
    {.message = "linli.registry.UpdateResidentRequest", .field = "family_contacts", .max_len = 5},
    {.message = "linli.registry.UpdateResidentRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.UpdateResidentRequest",
     .field = "name",
     .min_len = 1,
     .max_len = 64},
    {.message = "linli.registry.UpdateResidentRequest", .field = "phone", .max_len = 20},
    {.message = "linli.registry.VolunteerOrganizationsRequest", .field = "cursor", .pattern = S_ID},
    {.message = "linli.registry.VolunteerOrganizationsRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.VolunteerOrganizationsRequest",
     .field = "limit",
     .min = 1,
     .max = 500},

    //  proto/linli/registry_import.proto
    {.message = "linli.registry.GetImportRequest", .field = "id", .pattern = S_ID},
    {.message = "linli.registry.ImportJob", .field = "errors", .max_len = 1000},

    {.message = NULL},
};
