//  registry_people: checks and seals a volunteer's real-name record — the one
//  path shared by sign-up, staff entry and bulk import, so every volunteer
//  is validated and de-duplicated the same way. Pure logic apart from the
//  crypto (linli_crypto_init must have run).
#ifndef REGISTRY_PEOPLE_H
#define REGISTRY_PEOPLE_H

#include <stdbool.h>
#include <stddef.h>

#define REGISTRY_MAX_TAGS 32 //  skills or free slots per volunteer
#define REGISTRY_MIN_AGE 14  //  younger people do not register (PIPL: children are sensitive)

//  What someone typed (all borrowed; NULL or "" = not given).
typedef struct {
    const char *name;
    const char *id_number;
    const char *phone;
    const char *community;
    const char *gender;           //  must match the ID number when given
    const char *political_status; //  one of registry_political_statuses
    const char *const *skills;    //  [a-z][a-z0-9_]{0,31}
    size_t n_skills;
    const char *const *free_slots; //  mon..sun _ am|pm|eve
    size_t n_free_slots;
} registry_person_input_t;

//  The record as stored: sealed, hashed, normalised.
typedef struct {
    char name[260];
    char community[16];
    char id_number_enc[160];
    char id_number_hash[65];
    char phone_enc[128];
    char phone_hash[65];
    char gender[8];                              //  from the ID number
    int birth_year;                              //  from the ID number
    char political_status[24];                   //  "" when not given
    char skills[REGISTRY_MAX_TAGS * 34 + 3];     //  PostgreSQL array literal "{a,b}"
    char free_slots[REGISTRY_MAX_TAGS * 10 + 3]; //  likewise
} registry_person_t;

//  Why an input was refused: code (invalid_format, invalid_value, too_long,
//  bad_check_digit, bad_birth_date, bad_length, bad_char, bad_region,
//  too_young, missing_field), the field, one sentence.
typedef struct {
    char code[32];
    char field[32];
    char message[160];
} registry_person_error_t;

//  Check in and fill out. 0, or -1 with err filled. this_year bounds ages.
int registry_person_prepare(const registry_person_input_t *in, int this_year,
                            registry_person_t *out, registry_person_error_t *err);

//  Check a name alone (1..64 characters, no control characters). 0 or -1.
int registry_name_check(const char *name, registry_person_error_t *err);

//  True for a known political status.
bool registry_political_valid(const char *status);

//  True for a valid skill / free-slot tag.
bool registry_skill_valid(const char *skill);
bool registry_slot_valid(const char *slot);

//  Write tags (each checked by valid) as a PostgreSQL array literal "{a,b}"
//  into out; the tags are plain words, so they need no quoting. Duplicates
//  are dropped. 0, or -1 on an invalid tag or when out is too small.
int registry_tags_literal(const char *const *tags, size_t n, bool (*valid)(const char *), char *out,
                          size_t cap);

//  Parse a PostgreSQL text[] literal of plain tags ("{a,b}") into out
//  (pointers into buf, which receives a copy). Returns the count.
size_t registry_tags_parse(const char *literal, char *buf, size_t cap, const char **out,
                           size_t max);

#endif
