//  registry_people: a volunteer's real-name record, checked and sealed.
#include "registry_people.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_crypto.h"
#include "linli_utf8.h"

static const char *s_political[] = {
    "party_member", "probationary_member", "league_member", "masses", "other", NULL};

static int
s_fail(registry_person_error_t *err, const char *code, const char *field, const char *message)
{
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->field, sizeof err->field, "%s", field);
    snprintf(err->message, sizeof err->message, "%s", message);
    return -1;
}

//  UTF-8 characters in s, or -1 when s is not valid UTF-8 (as the codec
//  checks it) or holds a control character.
static long
s_utf8_chars(const char *s)
{
    size_t len = strlen(s), chars;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20)
            return -1;
    if (linli_utf8_count(s, len, &chars))
        return -1;
    return (long)chars;
}

int
registry_name_check(const char *name, registry_person_error_t *err)
{
    if (!name || !*name)
        return s_fail(err, "missing_field", "name", "name is required");
    long chars = s_utf8_chars(name);
    if (chars < 0)
        return s_fail(err, "invalid_format", "name", "name holds invalid characters");
    if (chars > 64)
        return s_fail(err, "too_long", "name", "name must be at most 64 characters");
    return 0;
}

bool
registry_political_valid(const char *status)
{
    for (size_t i = 0; status && s_political[i]; i++)
        if (!strcmp(status, s_political[i]))
            return true;
    return false;
}

bool
registry_skill_valid(const char *skill)
{
    size_t n = skill ? strlen(skill) : 0;
    if (n < 1 || n > 32 || skill[0] < 'a' || skill[0] > 'z')
        return false;
    return strspn(skill, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

bool
registry_slot_valid(const char *slot)
{
    static const char *days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (!slot || strlen(slot) < 6 || slot[3] != '_')
        return false;
    bool day = false;
    for (size_t i = 0; i < 7; i++)
        if (!strncmp(slot, days[i], 3))
            day = true;
    const char *part = slot + 4;
    return day && (!strcmp(part, "am") || !strcmp(part, "pm") || !strcmp(part, "eve"));
}

int
registry_tags_literal(const char *const *tags, size_t n, bool (*valid)(const char *), char *out,
                      size_t cap)
{
    size_t len = 0;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (!valid(tags[i]))
            return -1;
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(tags[i], tags[j]))
                dup = true;
        if (dup)
            continue;
        size_t t = strlen(tags[i]);
        if (len + t + 3 > cap)
            return -1;
        if (len > 1)
            out[len++] = ',';
        memcpy(out + len, tags[i], t);
        len += t;
    }
    out[len++] = '}';
    out[len] = '\0';
    return 0;
}

int
registry_person_prepare(const registry_person_input_t *in, int this_year, registry_person_t *out,
                        registry_person_error_t *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (registry_name_check(in->name, err))
        return -1;
    snprintf(out->name, sizeof out->name, "%s", in->name);

    if (!in->id_number || !*in->id_number)
        return s_fail(err, "missing_field", "id_number", "id_number is required");
    char id[24], reason[LINLI_ID_REASON_CAP];
    if (strlen(in->id_number) != 18)
        return s_fail(err, "bad_length", "id_number", "an ID number has 18 characters");
    snprintf(id, sizeof id, "%s", in->id_number);
    if (id[17] == 'x')
        id[17] = 'X';
    if (linli_id_number_check(id, reason, sizeof reason)) {
        char message[160];
        snprintf(message, sizeof message, "the ID number is not valid (%s)", reason);
        return s_fail(err, reason, "id_number", message);
    }
    int year = 0, month = 0, day = 0;
    linli_id_number_birth(id, &year, &month, &day);
    out->birth_year = year;
    if (this_year - year < REGISTRY_MIN_AGE)
        return s_fail(err, "too_young", "id_number",
                      "volunteers register from the age of 14 (younger: with a guardian, offline)");
    //  GB 11643: the 17th digit is odd for men, even for women.
    snprintf(out->gender, sizeof out->gender, "%s", ((id[16] - '0') % 2) ? "male" : "female");
    if (in->gender && *in->gender) {
        if (strcmp(in->gender, "male") && strcmp(in->gender, "female"))
            return s_fail(err, "invalid_value", "gender", "gender must be male or female");
        if (strcmp(in->gender, out->gender))
            return s_fail(err, "invalid_value", "gender", "gender does not match the ID number");
    }

    if (!in->phone || !*in->phone)
        return s_fail(err, "missing_field", "phone", "phone is required");
    char phone[LINLI_PHONE_CAP];
    if (linli_phone_normalize(in->phone, phone, sizeof phone))
        return s_fail(err, "invalid_format", "phone", "phone must be a mainland mobile number");

    if (!in->community || strlen(in->community) != 12 || strspn(in->community, "0123456789") != 12)
        return s_fail(err, "invalid_format", "community",
                      "community must be a 12-digit community code");
    snprintf(out->community, sizeof out->community, "%s", in->community);

    if (in->political_status && *in->political_status) {
        if (!registry_political_valid(in->political_status))
            return s_fail(err, "invalid_value", "political_status",
                          "political_status must be party_member, probationary_member, "
                          "league_member, masses or other");
        snprintf(out->political_status, sizeof out->political_status, "%s", in->political_status);
    }
    if (in->n_skills > REGISTRY_MAX_TAGS ||
        registry_tags_literal(in->skills, in->n_skills, registry_skill_valid, out->skills,
                              sizeof out->skills))
        return s_fail(err, "invalid_value", "skills",
                      "skills are up to 32 words of a-z, 0-9 and _");
    if (in->n_free_slots > REGISTRY_MAX_TAGS ||
        registry_tags_literal(in->free_slots, in->n_free_slots, registry_slot_valid,
                              out->free_slots, sizeof out->free_slots))
        return s_fail(err, "invalid_value", "free_slots",
                      "free_slots are like sat_am: mon..sun, then am, pm or eve");

    //  Sealed for storage, hashed (keyed) for look-up and de-duplication.
    char *sealed_id = linli_pii_encrypt(id);
    char *sealed_phone = linli_pii_encrypt(phone);
    int rc = 0;
    if (!sealed_id || !sealed_phone || strlen(sealed_id) >= sizeof out->id_number_enc ||
        strlen(sealed_phone) >= sizeof out->phone_enc ||
        linli_pii_hash("id_number", id, out->id_number_hash) ||
        linli_pii_hash("phone", phone, out->phone_hash)) {
        rc = s_fail(err, "internal", "", "the record could not be sealed");
    } else {
        snprintf(out->id_number_enc, sizeof out->id_number_enc, "%s", sealed_id);
        snprintf(out->phone_enc, sizeof out->phone_enc, "%s", sealed_phone);
    }
    free(sealed_id);
    free(sealed_phone);
    return rc;
}

size_t
registry_tags_parse(const char *literal, char *buf, size_t cap, const char **out, size_t max)
{
    size_t n = 0;
    if (!literal || cap == 0)
        return 0;
    size_t len = strlen(literal);
    if (len < 2 || literal[0] != '{' || literal[len - 1] != '}') {
        buf[0] = '\0';
        return 0;
    }
    snprintf(buf, cap, "%.*s", (int)(len - 2), literal + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = tok;
    return n;
}
