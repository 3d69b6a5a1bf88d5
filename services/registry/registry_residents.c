//  registry_residents: residents (服务对象 / 居民), the people the service
//  serves; protobuf in, protobuf out, SQL in registry_residents_store.c.
//
//  Staff (community_worker and above) register residents in communities of
//  their scope, read, change and list them there; a resident who may log in
//  (an account of kind resident) reads its own record. Everyone else, and
//  staff of other areas, get 404 for a record and 403 for an area. Address,
//  phone and family contacts are sealed at rest, shown whole to the resident
//  and covering staff only, and never leave in events or logs.
#include "registry.h"
#include "registry_util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_auth.h"
#include "linli_crypto.h"
#include "linli_idem.h"
#include "registry_residents.h"
#include "registry_residents_store.h"
#include "linli/registry_orgs.pb-c.h"

#define S_STAFF 1        //  rank of the least staff role (community_worker)
#define S_MAX_CONTACTS 5 //  family contacts per resident (as the constraints table says)

// ---------------------------------------------------------------- helpers

//  True when the caller may see r whole: the resident itself, or staff
//  whose scope covers its community.
static bool
s_full_view(const Linli__Caller *caller, const registry_resident_t *r)
{
    if (r->account_id && registry_parse_id(caller->user_id) == r->account_id)
        return true;
    return linli_auth_rank_over(caller, r->community) >= S_STAFF;
}

//  A phone for one viewer: whole, or masked.
static void
s_phone_for(const char *phone, bool full, char *out, size_t cap)
{
    if (full)
        snprintf(out, cap, "%s", phone);
    else
        linli_mask_phone(phone, out, cap);
}

//  Seal plain ("" stays "") into dst. 0, or -1 when sealing fails or the
//  result does not fit.
static int
s_seal(const char *plain, char *dst, size_t cap)
{
    if (!*plain) {
        *dst = '\0';
        return 0;
    }
    char *sealed = linli_pii_encrypt(plain);
    int rc = sealed && strlen(sealed) < cap ? 0 : -1;
    if (!rc)
        snprintf(dst, cap, "%s", sealed);
    free(sealed);
    return rc;
}

//  What one resident looks like to one caller. Strings point into r or here.
typedef struct {
    Linli__Registry__Resident msg;
    Linli__Registry__FamilyContact contacts[S_MAX_CONTACTS];
    Linli__Registry__FamilyContact *contact_ptrs[S_MAX_CONTACTS];
    char *category_ptrs[REGISTRY_RESIDENT_MAX_CATEGORIES];
    char id[24];
    char account_id[24];
    char phone[LINLI_MASK_CAP];
    char *address; //  owned, decrypted; wiped by s_view_clear
    char contact_name[S_MAX_CONTACTS][132];
    char contact_relation[S_MAX_CONTACTS][68];
    char contact_phone[S_MAX_CONTACTS][LINLI_MASK_CAP];
} s_view_t;

//  Fill v for caller; detail adds the address and family contacts.
static void
s_view(const registry_resident_t *r, const Linli__Caller *caller, bool detail, s_view_t *v)
{
    memset(v, 0, sizeof *v);
    linli__registry__resident__init(&v->msg);
    bool full = s_full_view(caller, r);
    snprintf(v->id, sizeof v->id, "%" PRId64, r->id);
    v->msg.id = v->id;
    v->msg.name = (char *)r->name;
    v->msg.community = (char *)r->community;
    for (size_t i = 0; i < r->n_categories; i++)
        v->category_ptrs[i] = (char *)r->categories[i];
    v->msg.n_care_categories = r->n_categories;
    v->msg.care_categories = v->category_ptrs;
    v->msg.has_consent = true;
    v->msg.consent = r->consent;
    if (r->birth_year) {
        v->msg.has_birth_year = true;
        v->msg.birth_year = r->birth_year;
    }
    if (r->account_id) {
        snprintf(v->account_id, sizeof v->account_id, "%" PRId64, r->account_id);
        v->msg.account_id = v->account_id;
    }
    v->msg.has_created_at = v->msg.has_updated_at = true;
    v->msg.created_at = r->created_at_ms;
    v->msg.updated_at = r->updated_at_ms;
    char *phone = linli_pii_decrypt(r->phone_enc);
    if (phone) {
        s_phone_for(phone, full, v->phone, sizeof v->phone);
        v->msg.phone = v->phone;
        linli_pii_free(&phone);
    }
    if (!detail)
        return;
    //  No one but the person and covering staff sees the address at all.
    if (full && (v->address = linli_pii_decrypt(r->address_enc)))
        v->msg.address = v->address;
    char *family = linli_pii_decrypt(r->family_enc);
    json_t *list = family ? json_loads(family, 0, NULL) : NULL;
    linli_pii_free(&family);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(list) && n < S_MAX_CONTACTS; i++) {
        json_t *c = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *relation = json_string_value(json_object_get(c, "relation"));
        const char *cphone = json_string_value(json_object_get(c, "phone"));
        Linli__Registry__FamilyContact *m = &v->contacts[n];
        linli__registry__family_contact__init(m);
        snprintf(v->contact_name[n], sizeof v->contact_name[n], "%s", name ? name : "");
        m->name = v->contact_name[n];
        if (relation) {
            snprintf(v->contact_relation[n], sizeof v->contact_relation[n], "%s", relation);
            m->relation = v->contact_relation[n];
        }
        if (cphone) {
            s_phone_for(cphone, full, v->contact_phone[n], sizeof v->contact_phone[n]);
            m->phone = v->contact_phone[n];
        }
        v->contact_ptrs[n++] = m;
    }
    json_decref(list);
    v->msg.n_family_contacts = n;
    v->msg.family_contacts = v->contact_ptrs;
}

//  Wipe and free what s_view decrypted.
static void
s_view_clear(s_view_t *v)
{
    linli_pii_free(&v->address);
    sodium_memzero(v->phone, sizeof v->phone);
    sodium_memzero(v->contact_phone, sizeof v->contact_phone);
}

int
registry_residents_emit(linli_pg_t *pg, const char *type, const registry_resident_t *r,
                        const char *previous_community, const char *actor)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, r->id);
    char *categories[REGISTRY_RESIDENT_MAX_CATEGORIES];
    for (size_t i = 0; i < r->n_categories; i++)
        categories[i] = (char *)r->categories[i];
    Linli__Registry__ResidentEvent data = LINLI__REGISTRY__RESIDENT_EVENT__INIT;
    data.id = id;
    data.community = (char *)r->community;
    data.n_care_categories = r->n_categories;
    data.care_categories = categories;
    data.actor = (char *)actor;
    if (previous_community && strcmp(previous_community, r->community))
        data.previous_community = (char *)previous_community;
    data.has_can_log_in = true;
    data.can_log_in = r->account_id != 0;
    return registry_emit(pg, type, "resident", r->id, r->community, &data.base);
}

//  Record a type event about r, then answer status with r as the caller sees
//  it and commit the open transaction (or abort it).
static int
s_emit_commit(registry_t *self, linli_idem_t *idem, linli_request_t *request, int status,
              const char *type, const registry_resident_t *r, const char *previous_community)
{
    const Linli__Caller *caller = linli_request_caller(request);
    if (registry_residents_emit(self->pg, type, r, previous_community, caller->user_id))
        return linli_idem_abort(idem, request, 503, "store_unavailable",
                                "the event could not be recorded");
    s_view_t *view = malloc(sizeof *view);
    if (!view)
        return linli_idem_abort(idem, request, 503, "overloaded", "out of memory");
    s_view(r, caller, true, view);
    int rc = linli_idem_commit(idem, request, status, &view->msg.base);
    s_view_clear(view);
    free(view);
    return rc;
}

//  Answer unless community is a community inside the caller's scope: 403
//  outside it, 422 when it is not a community. true to go on.
static bool
s_community_ok(registry_t *self, linli_request_t *request, const char *community)
{
    const Linli__Caller *caller = linli_request_caller(request);
    if (linli_auth_rank_over(caller, community) < S_STAFF) {
        linli_fail_field(request, 403, "out_of_scope", "community",
                         "that community is outside your area");
        return false;
    }
    bool exists;
    if (registry_community_exists(self->store, community, &exists)) {
        linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
        return false;
    }
    if (!exists) {
        linli_fail_field(request, 422, "unknown_community", "community", "no community has code %s",
                         community);
        return false;
    }
    return true;
}

//  Normalise and seal a phone into r (phone "" clears it). Answers 400 on a
//  bad number; true to go on.
static bool
s_set_phone(linli_request_t *request, const char *phone_in, registry_resident_t *r)
{
    if (!*phone_in) {
        r->phone_enc[0] = r->phone_hash[0] = '\0';
        return true;
    }
    char phone[LINLI_PHONE_CAP + 8];
    if (linli_phone_normalize(phone_in, phone, sizeof phone)) {
        linli_fail_field(request, 400, "invalid_format", "phone",
                         "phone must be a mainland mobile number");
        return false;
    }
    if (linli_pii_hash("phone", phone, r->phone_hash) ||
        s_seal(phone, r->phone_enc, sizeof r->phone_enc)) {
        linli_fail(request, 500, "internal", "the phone could not be sealed");
        return false;
    }
    return true;
}

//  Copy care categories into r, each once. They were checked against the
//  allowed names by the constraints table.
static void
s_set_categories(char **items, size_t n, registry_resident_t *r)
{
    r->n_categories = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < r->n_categories; j++)
            seen = seen || !strcmp(r->categories[j], items[i]);
        if (!seen && r->n_categories < REGISTRY_RESIDENT_MAX_CATEGORIES)
            snprintf(r->categories[r->n_categories++], sizeof r->categories[0], "%s", items[i]);
    }
}

//  Seal family contacts into r as a JSON array (none clears them), phones
//  normalised. Answers 400 on a bad phone; true to go on.
static bool
s_set_family(linli_request_t *request, Linli__Registry__FamilyContact **items, size_t n,
             registry_resident_t *r)
{
    r->family_enc[0] = '\0';
    if (n == 0)
        return true;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        json_t *c = json_object();
        json_array_append_new(list, c);
        json_object_set_new(c, "name", json_string(items[i]->name));
        if (items[i]->relation)
            json_object_set_new(c, "relation", json_string(items[i]->relation));
        if (items[i]->phone) {
            char phone[LINLI_PHONE_CAP + 8];
            if (linli_phone_normalize(items[i]->phone, phone, sizeof phone)) {
                json_decref(list);
                char field[48];
                snprintf(field, sizeof field, "family_contacts[%zu].phone", i);
                linli_fail_field(request, 400, "invalid_format", field,
                                 "phone must be a mainland mobile number");
                return false;
            }
            json_object_set_new(c, "phone", json_string(phone));
        }
    }
    char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    int rc = text ? s_seal(text, r->family_enc, sizeof r->family_enc) : -1;
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    if (rc) {
        linli_fail(request, 500, "internal", "the family contacts could not be sealed");
        return false;
    }
    return true;
}

// ---------------------------------------------------------------- handlers

//  registry.CreateResident: staff register a resident of a community in
//  their scope, with the resident's consent; with a password the resident
//  gets an account (kind resident) to log in with its phone.
static int
s_create_resident(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__CreateResidentRequest *req =
        (const Linli__Registry__CreateResidentRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    if (!s_community_ok(self, request, req->community))
        return 0;
    if (!req->has_consent || !req->consent)
        return linli_fail_field(request, 422, "consent_required", "consent",
                                "a resident is registered only with their consent");
    if (req->password && !req->phone)
        return linli_fail_field(request, 422, "phone_required", "phone",
                                "a resident who logs in needs a phone");

    //  On the heap: it holds several kilobytes of sealed text.
    registry_resident_t *r = calloc(1, sizeof *r);
    registry_account_t *account = req->password ? calloc(1, sizeof *account) : NULL;
    if (!r || (req->password && !account)) {
        free(r);
        free(account);
        return linli_fail(request, 503, "overloaded", "out of memory");
    }
    int rc = 0;
    snprintf(r->name, sizeof r->name, "%s", req->name);
    snprintf(r->community, sizeof r->community, "%s", req->community);
    r->consent = true;
    r->birth_year = req->has_birth_year ? req->birth_year : 0;
    s_set_categories(req->care_categories, req->n_care_categories, r);
    if (!s_set_phone(request, req->phone ? req->phone : "", r) ||
        !s_set_family(request, req->family_contacts, req->n_family_contacts, r))
        goto done;
    if (s_seal(req->address ? req->address : "", r->address_enc, sizeof r->address_enc)) {
        rc = linli_fail(request, 500, "internal", "the address could not be sealed");
        goto done;
    }
    if (account) {
        snprintf(account->kind, sizeof account->kind, "resident");
        snprintf(account->name, sizeof account->name, "%s", r->name);
        snprintf(account->area, sizeof account->area, "%s", r->community);
        snprintf(account->phone_enc, sizeof account->phone_enc, "%s", r->phone_enc);
        account->n_grants = 1;
        snprintf(account->grants[0].role, sizeof account->grants[0].role, "resident");
        snprintf(account->grants[0].scope, sizeof account->grants[0].scope, "%s", r->community);
        if (linli_password_hash(req->password, account->password_hash)) {
            rc = linli_fail_field(request, 400, "invalid_value", "password",
                                  "the password cannot be used");
            goto done;
        }
    }

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        goto done; //  replayed, or answered already
    int64_t actor = registry_parse_id(caller->user_id);
    if (account) {
        bool taken;
        if (registry_store_account_insert(self->store, account, r->phone_hash, actor, &taken)) {
            rc = linli_idem_abort(&idem, request, 503, "store_unavailable",
                                  "the registry store is unavailable");
            goto done;
        }
        if (taken) {
            rc = linli_idem_abort(&idem, request, 409, "phone_taken",
                                  "an account with this phone exists");
            goto done;
        }
        r->account_id = account->id;
    }
    if (registry_residents_store_insert(self->pg, r, actor)) {
        rc = linli_idem_abort(&idem, request, 503, "store_unavailable",
                              "the registry store is unavailable");
        goto done;
    }
    rc = s_emit_commit(self, &idem, request, 201, "linli.registry.resident.created", r, NULL);
done:
    if (account)
        sodium_memzero(account, sizeof *account);
    free(account);
    free(r);
    return rc;
}

//  registry.GetResident: the resident itself, or staff covering its
//  community; anyone else 404, so existence is not leaked.
static int
s_get_resident(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__GetResidentRequest *req =
        (const Linli__Registry__GetResidentRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    if (!registry_parse_id(caller->user_id))
        return linli_fail(request, 401, "unauthenticated", "log in first");
    int64_t id = registry_parse_id(req->id);
    registry_resident_t *r = malloc(sizeof *r);
    s_view_t *view = malloc(sizeof *view);
    bool found = false;
    int rc;
    if (!r || !view)
        rc = linli_fail(request, 503, "overloaded", "out of memory");
    else if (id && registry_residents_store_get(self->pg, id, false, r, &found))
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    else if (!found || !s_full_view(caller, r))
        rc = linli_fail(request, 404, "resident_not_found", "no such resident");
    else {
        s_view(r, caller, true, view);
        rc = linli_reply(request, 200, &view->msg.base);
        s_view_clear(view);
    }
    free(view);
    free(r);
    return rc;
}

//  registry.UpdateResident: staff covering the resident change what is
//  given (proto2 presence); a move goes to a community of their scope. A
//  resident who logs in keeps its account in step (name, phone, area).
static int
s_update_resident(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__UpdateResidentRequest *req =
        (const Linli__Registry__UpdateResidentRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    bool clear_categories = req->has_clear_care_categories && req->clear_care_categories;
    bool clear_family = req->has_clear_family_contacts && req->clear_family_contacts;
    if (clear_categories && req->n_care_categories)
        return linli_fail_field(request, 400, "invalid_value", "clear_care_categories",
                                "give care_categories or clear_care_categories, not both");
    if (clear_family && req->n_family_contacts)
        return linli_fail_field(request, 400, "invalid_value", "clear_family_contacts",
                                "give family_contacts or clear_family_contacts, not both");
    if (req->community && !s_community_ok(self, request, req->community))
        return 0;
    int64_t id = registry_parse_id(req->id);

    //  The changes, prepared (sealed) before the transaction.
    registry_resident_t *patch = calloc(1, sizeof *patch);
    registry_resident_t *r = calloc(1, sizeof *r);
    if (!patch || !r) {
        free(patch);
        free(r);
        return linli_fail(request, 503, "overloaded", "out of memory");
    }
    int rc = 0;
    if ((req->phone && !s_set_phone(request, req->phone, patch)) ||
        ((req->n_family_contacts || clear_family) &&
         !s_set_family(request, req->family_contacts, req->n_family_contacts, patch)))
        goto done;
    if (req->address && s_seal(req->address, patch->address_enc, sizeof patch->address_enc)) {
        rc = linli_fail(request, 500, "internal", "the address could not be sealed");
        goto done;
    }

    linli_idem_t idem;
    if (linli_idem_begin(self->pg, request, &idem) != LINLI_IDEM_NEW)
        goto done;
    bool found = false;
    if (id && registry_residents_store_get(self->pg, id, true, r, &found)) {
        rc = linli_idem_abort(&idem, request, 503, "store_unavailable",
                              "the registry store is unavailable");
        goto done;
    }
    //  Only staff covering the resident: the resident itself reads, not writes.
    if (!found || linli_auth_rank_over(caller, r->community) < S_STAFF) {
        rc = linli_idem_abort(&idem, request, 404, "resident_not_found", "no such resident");
        goto done;
    }
    if (req->phone && !*req->phone && r->account_id) {
        linli_pg_rollback(self->pg);
        rc = linli_fail_field(request, 422, "phone_required", "phone",
                              "a resident who logs in keeps a phone");
        goto done;
    }
    char previous[16];
    snprintf(previous, sizeof previous, "%s", r->community);
    if (req->name)
        snprintf(r->name, sizeof r->name, "%s", req->name);
    if (req->community)
        snprintf(r->community, sizeof r->community, "%s", req->community);
    if (req->address)
        memcpy(r->address_enc, patch->address_enc, sizeof r->address_enc);
    if (req->phone) {
        memcpy(r->phone_enc, patch->phone_enc, sizeof r->phone_enc);
        memcpy(r->phone_hash, patch->phone_hash, sizeof r->phone_hash);
    }
    if (req->n_care_categories || clear_categories)
        s_set_categories(req->care_categories, req->n_care_categories, r);
    if (req->n_family_contacts || clear_family)
        memcpy(r->family_enc, patch->family_enc, sizeof r->family_enc);
    if (req->has_birth_year)
        r->birth_year = req->birth_year;
    if (r->account_id && (req->name || req->phone || req->community)) {
        bool taken;
        if (registry_residents_store_account_sync(self->pg, r->account_id, r->name, r->phone_enc,
                                                  r->phone_hash, r->community, &taken)) {
            rc = linli_idem_abort(&idem, request, 503, "store_unavailable",
                                  "the registry store is unavailable");
            goto done;
        }
        if (taken) {
            rc = linli_idem_abort(&idem, request, 409, "phone_taken",
                                  "an account with this phone exists");
            goto done;
        }
    }
    if (registry_residents_store_update(self->pg, r)) {
        rc = linli_idem_abort(&idem, request, 503, "store_unavailable",
                              "the registry store is unavailable");
        goto done;
    }
    rc = s_emit_commit(self, &idem, request, 200, "linli.registry.resident.updated", r, previous);
done:
    sodium_memzero(patch, sizeof *patch);
    free(patch);
    free(r);
    return rc;
}

//  registry.ListResidents: residents of an area in the caller's scope, by
//  id, optionally of one care category; staff only, without addresses and
//  family contacts (GET one for those).
static int
s_list_residents(void *self_, linli_request_t *request, const ProtobufCMessage *msg)
{
    registry_t *self = (registry_t *)self_;
    const Linli__Registry__ListResidentsRequest *req =
        (const Linli__Registry__ListResidentsRequest *)msg;
    const Linli__Caller *caller = linli_request_caller(request);
    //  Default: the widest area the caller serves as staff.
    const char *area = req->area ? req->area : registry_staff_scope(caller, S_STAFF);
    if (!area || linli_auth_rank_over(caller, area) < S_STAFF)
        return linli_fail_field(request, 403, "out_of_scope", "area", "that area is outside yours");
    size_t limit;
    int64_t after;
    if (registry_page_args(request, req->has_limit, req->limit, req->cursor, &limit, &after))
        return 0;
    registry_page_t page;
    if (registry_page_alloc(&page, limit, sizeof(registry_resident_t), sizeof(s_view_t)))
        return linli_fail(request, 503, "overloaded", "out of memory");
    registry_resident_t *rows = page.rows;
    s_view_t *views = page.views;
    int rc;
    if (registry_residents_store_list(self->pg, area, req->category, after, rows, limit, &page.n,
                                      &page.more)) {
        rc = linli_fail(request, 503, "store_unavailable", "the registry store is unavailable");
    } else {
        Linli__Registry__ListResidentsReply reply = LINLI__REGISTRY__LIST_RESIDENTS_REPLY__INIT;
        for (size_t i = 0; i < page.n; i++) {
            s_view(&rows[i], caller, false, &views[i]);
            page.items[i] = &views[i].msg.base;
        }
        rc = registry_page_reply(&page, request, &reply.base, page.n ? views[page.n - 1].id : NULL);
        for (size_t i = 0; i < page.n; i++)
            s_view_clear(&views[i]);
    }
    registry_page_free(&page);
    return rc;
}

#define REG(name) &linli__registry__##name##__descriptor

const linli_route_t registry_resident_routes[] = {
    {"registry.CreateResident", REG(create_resident_request), s_create_resident},
    {"registry.GetResident", REG(get_resident_request), s_get_resident},
    {"registry.UpdateResident", REG(update_resident_request), s_update_resident},
    {"registry.ListResidents", REG(list_residents_request), s_list_residents},
    {NULL, NULL, NULL},
};
