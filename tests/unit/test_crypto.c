//  Unit tests for linli_crypto: keys, PII at rest, look-up hashes, phone and
//  ID number rules, masks, passwords, tokens and signed codes.
#include "linli_crypto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_key_hex = "8c1f0a4e2b7d9c3f6a5e1b0d2c4f7a9e3b6d8c0f1a2e4b7d9c3f6a5e1b0d2c4f";
static const char *s_other_key_hex =
    "1f2e3d4c5b6a79880f1e2d3c4b5a69780e1d2c3b4a5968770d1c2b3a49586776";

//  Every test starts from the first key.
static int
s_setup(void **state)
{
    (void)state;
    char err[256];
    if (linli_crypto_init(s_key_hex, err, sizeof err) != 0) {
        fprintf(stderr, "init: %s\n", err);
        return -1;
    }
    linli_password_set_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    return 0;
}

//  The check character of 17 digits, computed here independently (ISO 7064 MOD 11-2).
static char
s_check_char(const char *first17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int weight = 1;
        for (int k = 0; k < 17 - i; k++)
            weight = weight * 2 % 11;
        sum += (first17[i] - '0') * weight;
    }
    int value = (12 - sum % 11) % 11;
    return value == 10 ? 'X' : (char)('0' + value);
}

//  A complete ID number from 17 digits with the right check character.
static void
s_make_id(const char *first17, char out[19])
{
    memcpy(out, first17, 17);
    out[17] = s_check_char(first17);
    out[18] = '\0';
}

static const char *
s_reason_of(const char *id)
{
    static char reason[LINLI_ID_REASON_CAP];
    strcpy(reason, "unset");
    if (linli_id_number_check(id, reason, sizeof reason) == 0)
        return "ok";
    return reason;
}

static void
test_init_rejects_bad_keys(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(linli_crypto_init(NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "LINLI_PII_KEY is required"));
    assert_int_equal(linli_crypto_init("", err, sizeof err), -1);
    assert_int_equal(linli_crypto_init("c2hvcnQ=", err, sizeof err), -1); //  "short"
    assert_non_null(strstr(err, "32 random bytes"));
    assert_null(strstr(err, "c2hvcnQ")); //  never echoes the key
    char hex63[64];
    memcpy(hex63, s_key_hex, 63);
    hex63[63] = '\0';
    assert_int_equal(linli_crypto_init(hex63, err, sizeof err), -1);
    assert_non_null(strstr(err, "got 63 characters"));
    char hex66[67];
    snprintf(hex66, sizeof hex66, "%sab", s_key_hex);
    assert_int_equal(linli_crypto_init(hex66, err, sizeof err), -1);
    char nothex[65];
    memset(nothex, 'g', 64);
    nothex[64] = '\0';
    assert_int_equal(linli_crypto_init(nothex, err, sizeof err), -1);
    char zeros[65];
    memset(zeros, '0', 64);
    zeros[64] = '\0';
    assert_int_equal(linli_crypto_init(zeros, err, sizeof err), -1);
    assert_non_null(strstr(err, "not random"));
    //  A failed init leaves no key behind, not even the previous one.
    assert_null(linli_pii_encrypt("13812345678"));
    assert_int_equal(linli_crypto_init(s_key_hex, NULL, 0), 0);
    char *sealed = linli_pii_encrypt("13812345678");
    assert_non_null(sealed);
    free(sealed);
}

static void
test_init_accepts_hex_and_base64(void **state)
{
    (void)state;
    unsigned char raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    char hex[65], b64[64], b64url[64], text[80];
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64url, sizeof b64url, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char err[256];
    char h_hex[LINLI_HASH_HEX_CAP], h_b64[LINLI_HASH_HEX_CAP], h_url[LINLI_HASH_HEX_CAP];
    assert_int_equal(linli_crypto_init(hex, err, sizeof err), 0);
    assert_int_equal(linli_pii_hash("phone", "13812345678", h_hex), 0);
    assert_int_equal(linli_crypto_init(b64, err, sizeof err), 0);
    assert_int_equal(linli_pii_hash("phone", "13812345678", h_b64), 0);
    snprintf(text, sizeof text, "  %s\n", b64url); //  as read from a file
    assert_int_equal(linli_crypto_init(text, err, sizeof err), 0);
    assert_int_equal(linli_pii_hash("phone", "13812345678", h_url), 0);
    //  Three spellings of one key are one key.
    assert_string_equal(h_hex, h_b64);
    assert_string_equal(h_hex, h_url);
    s_setup(NULL);
}

static void
test_id_numbers_valid(void **state)
{
    (void)state;
    //  Well-known examples.
    assert_string_equal(s_reason_of("11010519491231002X"), "ok");
    assert_string_equal(s_reason_of("11010519491231002x"), "ok");
    assert_string_equal(s_reason_of("420102199001011236"), "ok");
    //  Generated with the check character computed here.
    const char *bodies[] = {"42010219900101123", "42011120000229001", "81000019851231567",
                            "65010219000101000", "11010520240615888"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char id[19];
        s_make_id(bodies[i], id);
        assert_string_equal(s_reason_of(id), "ok");
    }
    int y = 0, m = 0, d = 0;
    assert_int_equal(linli_id_number_birth("11010519491231002X", &y, &m, &d), 0);
    assert_int_equal(y, 1949);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);
    assert_int_equal(linli_id_number_birth("11010519491231002Y", &y, &m, &d), -1);
    assert_int_equal(linli_id_number_birth(NULL, &y, &m, &d), -1);
}

static void
test_id_number_reasons(void **state)
{
    (void)state;
    char id[19];
    assert_string_equal(s_reason_of(NULL), "bad_length");
    assert_string_equal(s_reason_of(""), "bad_length");
    assert_string_equal(s_reason_of("42010219900101123"), "bad_length");
    assert_string_equal(s_reason_of("4201021990010112344"), "bad_length");
    assert_string_equal(s_reason_of("四二零一零二一九九零"), "bad_length");
    assert_string_equal(s_reason_of("42010219900101123Y"), "bad_char");
    assert_string_equal(s_reason_of("4201021990X1011234"), "bad_char");
    assert_string_equal(s_reason_of("42010219900101 234"), "bad_char");
    assert_string_equal(s_reason_of("4201021990010112\xe5\x9b"), "bad_char");
    s_make_id("00000019900101123", id);
    assert_string_equal(s_reason_of(id), "bad_region");
    s_make_id("99010219900101123", id);
    assert_string_equal(s_reason_of(id), "bad_region");
    s_make_id("10010219900101123", id);
    assert_string_equal(s_reason_of(id), "bad_region");
    s_make_id("42010219000229123", id); //  1900 is not a leap year
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    s_make_id("42010220010229123", id);
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    s_make_id("42010219901301123", id);
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    s_make_id("42010219900100123", id);
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    s_make_id("42010219900431123", id);
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    s_make_id("42010218991231123", id);
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    //  The standard's own sample (born 1880) has a right check digit but
    //  predates 1900.
    assert_string_equal(s_reason_of("440524188001010014"), "bad_birth_date");
    //  Born next year: in the future.
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char body[32];
    snprintf(body, sizeof body, "420102%04d0101123", (tm.tm_year + 1900 + 1) % 10000);
    s_make_id(body, id);
    assert_string_equal(s_reason_of(id), "bad_birth_date");
    assert_string_equal(s_reason_of("420102199001011234"), "bad_check_digit");
    assert_string_equal(s_reason_of("110105194912310029"), "bad_check_digit");
    //  A small reason buffer is never overrun; NULL is allowed.
    char tiny[4];
    assert_int_equal(linli_id_number_check("420102199001011235", tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "bad");
    assert_int_equal(linli_id_number_check("420102199001011235", NULL, 0), -1);
}

static void
test_phone_normalize(void **state)
{
    (void)state;
    char out[LINLI_PHONE_CAP];
    const char *ok[] = {"13812345678",        "+86 138 1234 5678", "+8613812345678",
                        "0086-138-1234-5678", "8613812345678",     " 138-1234-5678 "};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(linli_phone_normalize(ok[i], out, sizeof out), 0);
        assert_string_equal(out, "13812345678");
    }
    assert_int_equal(linli_phone_normalize("19912345678", out, sizeof out), 0);
    const char *bad[] = {"",
                         "1381234567",
                         "138123456789",
                         "12812345678",
                         "23812345678",
                         "1381234567a",
                         "+1 5551234567",
                         "138.1234.5678",
                         "一三八一二三四五六七八",
                         "+86+13812345678",
                         "0000000000000013812345678"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(out, "x");
        assert_int_equal(linli_phone_normalize(bad[i], out, sizeof out), -1);
        assert_string_equal(out, "");
    }
    assert_int_equal(linli_phone_normalize(NULL, out, sizeof out), -1);
    char small[11];
    assert_int_equal(linli_phone_normalize("13812345678", small, sizeof small), -1);
}

static void
test_masks(void **state)
{
    (void)state;
    char out[LINLI_MASK_CAP];
    linli_mask_phone("13812345678", out, sizeof out);
    assert_string_equal(out, "138****5678");
    linli_mask_phone("+86 138-1234-5678", out, sizeof out);
    assert_string_equal(out, "138****5678");
    linli_mask_phone("027-8765-4321", out, sizeof out); //  a landline
    assert_string_equal(out, "****4321");
    linli_mask_phone("12812345678", out, sizeof out); //  not a mobile: last four only
    assert_string_equal(out, "****5678");
    const char *unclassified[] = {"",
                                  "123",
                                  "1234567",
                                  "一三八一二三四五六七八",
                                  "138abc45678",
                                  "12345678901234567890123456789"};
    for (size_t i = 0; i < sizeof unclassified / sizeof unclassified[0]; i++) {
        linli_mask_phone(unclassified[i], out, sizeof out);
        assert_string_equal(out, "****");
    }
    linli_mask_phone(NULL, out, sizeof out);
    assert_string_equal(out, "****");

    linli_mask_id_number("420102199001011234", out, sizeof out);
    assert_string_equal(out, "420102********1234");
    linli_mask_id_number("42010219900101123x", out, sizeof out);
    assert_string_equal(out, "420102********123X");
    linli_mask_id_number("420102900101123", out, sizeof out); //  old 15-digit form
    assert_string_equal(out, "420102******123");
    const char *odd[] = {"",
                         "4",
                         "420102",
                         "4201021990010112345",
                         "42010219900101123Y",
                         "四二零一零二一九九零零一",
                         "42010219900X011234"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        linli_mask_id_number(odd[i], out, sizeof out);
        assert_string_equal(out, "****");
    }
    linli_mask_id_number(NULL, out, sizeof out);
    assert_string_equal(out, "****");

    //  Small buffers are truncated, never overrun (ASan watches).
    char *tiny = malloc(5);
    linli_mask_phone("13812345678", tiny, 5);
    assert_string_equal(tiny, "138*");
    linli_mask_id_number("420102199001011234", tiny, 5);
    assert_string_equal(tiny, "4201");
    linli_mask_id_number("420102199001011234", tiny, 0);
    free(tiny);
}

static void
test_encrypt_round_trip(void **state)
{
    (void)state;
    const char *samples[] = {"420102199001011234", "13812345678", "", "张三 湖北省武汉市江岸区"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char *sealed = linli_pii_encrypt(samples[i]);
        assert_non_null(sealed);
        assert_memory_equal(sealed, "v1:", 3);
        if (*samples[i])
            assert_null(strstr(sealed, samples[i]));
        char *plain = linli_pii_decrypt(sealed);
        assert_non_null(plain);
        assert_string_equal(plain, samples[i]);
        linli_pii_free(&plain);
        assert_null(plain);
        free(sealed);
    }
    //  A random nonce: the same input seals differently every time.
    char *a = linli_pii_encrypt("13812345678");
    char *b = linli_pii_encrypt("13812345678");
    assert_string_not_equal(a, b);
    free(a);
    free(b);
    linli_pii_free(NULL);
    assert_null(linli_pii_encrypt(NULL));
}

static void
test_decrypt_refuses_tamper_and_garbage(void **state)
{
    (void)state;
    char *sealed = linli_pii_encrypt("420102199001011234");
    assert_non_null(sealed);
    size_t len = strlen(sealed);
    //  Change every character after the prefix in turn: never decrypts.
    for (size_t i = 3; i < len; i++) {
        char *bad = strdup(sealed);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_null(linli_pii_decrypt(bad));
        free(bad);
    }
    char *cut = strdup(sealed);
    cut[len - 1] = '\0';
    assert_null(linli_pii_decrypt(cut));
    cut[3 + 10] = '\0';
    assert_null(linli_pii_decrypt(cut));
    free(cut);
    char *v2 = strdup(sealed);
    v2[1] = '2';
    assert_null(linli_pii_decrypt(v2));
    free(v2);
    const char *garbage[] = {"", "v1:", "v1:====", "hello",
                             "v1:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        assert_null(linli_pii_decrypt(garbage[i]));
    assert_null(linli_pii_decrypt(NULL));

    //  Another key cannot open it, and the right key again can.
    char err[256];
    assert_int_equal(linli_crypto_init(s_other_key_hex, err, sizeof err), 0);
    assert_null(linli_pii_decrypt(sealed));
    assert_int_equal(linli_crypto_init(s_key_hex, err, sizeof err), 0);
    char *plain = linli_pii_decrypt(sealed);
    assert_string_equal(plain, "420102199001011234");
    linli_pii_free(&plain);

    //  Without keys nothing is sealed or opened.
    linli_crypto_clear();
    assert_null(linli_pii_decrypt(sealed));
    assert_null(linli_pii_encrypt("x"));
    char h[LINLI_HASH_HEX_CAP];
    assert_int_equal(linli_pii_hash("phone", "13812345678", h), -1);
    assert_string_equal(h, "");
    free(sealed);
    s_setup(NULL);
}

static void
test_pii_hash(void **state)
{
    (void)state;
    char a[LINLI_HASH_HEX_CAP], b[LINLI_HASH_HEX_CAP];
    assert_int_equal(linli_pii_hash("phone", "13812345678", a), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_int_equal(linli_pii_hash("phone", "13812345678", b), 0);
    assert_string_equal(a, b); //  stable
    const char *same_phone[] = {"+86 138 1234 5678", "138-1234-5678", "008613812345678",
                                "8613812345678"};
    for (size_t i = 0; i < sizeof same_phone / sizeof same_phone[0]; i++) {
        assert_int_equal(linli_pii_hash("phone", same_phone[i], b), 0);
        assert_string_equal(a, b);
    }
    assert_int_equal(linli_pii_hash("phone", "13812345679", b), 0);
    assert_string_not_equal(a, b);
    //  A foreign number never equals a mainland one with the same digits.
    assert_int_equal(linli_pii_hash("phone", "+1 3812345678", b), 0);
    assert_int_equal(linli_pii_hash("phone", "13812345678", a), 0);
    assert_string_not_equal(a, b);
    //  Kinds are separated.
    assert_int_equal(linli_pii_hash("id_number", "13812345678", b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(linli_pii_hash("id_number", "11010519491231002X", a), 0);
    assert_int_equal(linli_pii_hash("id_number", "11010519491231002x", b), 0);
    assert_string_equal(a, b);
    assert_int_equal(linli_pii_hash("id_number", " 11010519491231002X ", b), 0);
    assert_string_equal(a, b);
    //  Keyed: another key, another hash.
    assert_int_equal(linli_crypto_init(s_other_key_hex, NULL, 0), 0);
    assert_int_equal(linli_pii_hash("id_number", "11010519491231002X", b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(linli_pii_hash(NULL, "x", b), -1);
    assert_int_equal(linli_pii_hash("phone", NULL, b), -1);
    s_setup(NULL);
}

static void
test_passwords(void **state)
{
    (void)state;
    char hash[crypto_pwhash_STRBYTES];
    assert_int_equal(linli_password_hash("correct horse battery staple", hash), 0);
    assert_memory_equal(hash, "$argon2id$", 10);
    assert_true(linli_password_verify(hash, "correct horse battery staple"));
    assert_false(linli_password_verify(hash, "correct horse battery stapler"));
    assert_false(linli_password_verify(hash, ""));
    assert_false(linli_password_verify(hash, NULL));
    assert_false(linli_password_verify(NULL, "correct horse battery staple"));
    const char *dummy = linli_password_dummy();
    assert_memory_equal(dummy, "$argon2id$", 10);
    assert_false(linli_password_verify(dummy, "correct horse battery staple"));
    assert_false(linli_password_needs_rehash(dummy));
    assert_false(linli_password_verify("$argon2id$garbage", "x"));
    assert_false(linli_password_verify("", "x"));
    assert_false(linli_password_needs_rehash(hash));

    char again[crypto_pwhash_STRBYTES];
    assert_int_equal(linli_password_hash("correct horse battery staple", again), 0);
    assert_string_not_equal(hash, again); //  salted

    char longest[LINLI_PASSWORD_MAX + 2];
    memset(longest, 'p', LINLI_PASSWORD_MAX);
    longest[LINLI_PASSWORD_MAX] = '\0';
    assert_int_equal(linli_password_hash(longest, again), 0);
    assert_true(linli_password_verify(again, longest));
    longest[LINLI_PASSWORD_MAX] = 'p';
    longest[LINLI_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(linli_password_hash(longest, again), -1);
    assert_string_equal(again, "");
    assert_false(linli_password_verify(hash, longest));
    assert_int_equal(linli_password_hash("", again), -1);
    assert_int_equal(linli_password_hash(NULL, again), -1);

    //  Raised limits: old hashes still verify but ask to be rehashed.
    linli_password_set_limits(crypto_pwhash_OPSLIMIT_MIN + 1, crypto_pwhash_MEMLIMIT_MIN * 2);
    assert_true(linli_password_needs_rehash(hash));
    assert_true(linli_password_verify(hash, "correct horse battery staple"));
    assert_false(linli_password_verify(NULL, "anything"));
    assert_true(linli_password_needs_rehash(NULL));
    linli_password_set_limits(0, 0); //  clamped to the minimum
    assert_false(linli_password_needs_rehash(hash));
}

static void
test_tokens_and_ids(void **state)
{
    (void)state;
    char a[LINLI_TOKEN_CAP], b[LINLI_TOKEN_CAP];
    assert_int_equal(linli_token_new(a, sizeof a), 0);
    assert_int_equal(linli_token_new(b, sizeof b), 0);
    assert_int_equal(strlen(a), 43);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    assert_string_not_equal(a, b);
    char small[LINLI_TOKEN_CAP - 1];
    assert_int_equal(linli_token_new(small, sizeof small), -1);
    assert_string_equal(small, "");

    char ha[LINLI_HASH_HEX_CAP], hb[LINLI_HASH_HEX_CAP];
    linli_token_hash(a, ha);
    linli_token_hash(a, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(strspn(ha, "0123456789abcdef"), 64);
    linli_token_hash(b, hb);
    assert_string_not_equal(ha, hb);
    //  Key-less: the same after the keys change or go.
    linli_crypto_clear();
    linli_token_hash(a, hb);
    assert_string_equal(ha, hb);
    s_setup(NULL);

    char id1[LINLI_RANDOM_ID_CAP], id2[LINLI_RANDOM_ID_CAP];
    assert_int_equal(linli_random_id(id1, sizeof id1), 0);
    assert_int_equal(linli_random_id(id2, sizeof id2), 0);
    assert_int_equal(strlen(id1), 32);
    assert_int_equal(strspn(id1, "0123456789abcdef"), 32);
    assert_string_not_equal(id1, id2);
    char id_small[LINLI_RANDOM_ID_CAP - 1];
    assert_int_equal(linli_random_id(id_small, sizeof id_small), -1);
}

static void
test_sign_verify(void **state)
{
    (void)state;
    const char *payload = "join.420102001001.1767225600";
    char signed_token[128], out[64];
    assert_int_equal(linli_sign(payload, signed_token, sizeof signed_token), 0);
    assert_int_equal(strlen(signed_token), strlen(payload) + 44);
    assert_memory_equal(signed_token, payload, strlen(payload));
    assert_int_equal(linli_verify(signed_token, out, sizeof out), 0);
    assert_string_equal(out, payload);

    //  Any change to payload or MAC is refused.
    size_t len = strlen(signed_token);
    for (size_t i = 0; i < len; i++) {
        char bad[128];
        strcpy(bad, signed_token);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(linli_verify(bad, out, sizeof out), -1);
        assert_string_equal(out, "");
    }
    char cut[128];
    strcpy(cut, signed_token);
    cut[len - 1] = '\0';
    assert_int_equal(linli_verify(cut, out, sizeof out), -1);
    assert_int_equal(linli_verify("no-dot-here", out, sizeof out), -1);
    assert_int_equal(linli_verify("", out, sizeof out), -1);
    assert_int_equal(linli_verify(NULL, out, sizeof out), -1);
    //  The payload must fit.
    char tiny[8];
    assert_int_equal(linli_verify(signed_token, tiny, sizeof tiny), -1);
    assert_int_equal(linli_sign(payload, tiny, sizeof tiny), -1);
    char exact[29 + 44];
    assert_int_equal(linli_sign(payload, exact, sizeof exact), 0);
    assert_int_equal(linli_sign(payload, exact, sizeof exact - 1), -1);
    //  An empty payload signs too.
    assert_int_equal(linli_sign("", signed_token, sizeof signed_token), 0);
    assert_int_equal(linli_verify(signed_token, out, sizeof out), 0);
    assert_string_equal(out, "");

    //  Another key does not accept it.
    assert_int_equal(linli_sign(payload, signed_token, sizeof signed_token), 0);
    assert_int_equal(linli_crypto_init(s_other_key_hex, NULL, 0), 0);
    assert_int_equal(linli_verify(signed_token, out, sizeof out), -1);
    s_setup(NULL);
    assert_int_equal(linli_verify(signed_token, out, sizeof out), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_init_rejects_bad_keys, s_setup),
        cmocka_unit_test_setup(test_init_accepts_hex_and_base64, s_setup),
        cmocka_unit_test_setup(test_id_numbers_valid, s_setup),
        cmocka_unit_test_setup(test_id_number_reasons, s_setup),
        cmocka_unit_test_setup(test_phone_normalize, s_setup),
        cmocka_unit_test_setup(test_masks, s_setup),
        cmocka_unit_test_setup(test_encrypt_round_trip, s_setup),
        cmocka_unit_test_setup(test_decrypt_refuses_tamper_and_garbage, s_setup),
        cmocka_unit_test_setup(test_pii_hash, s_setup),
        cmocka_unit_test_setup(test_passwords, s_setup),
        cmocka_unit_test_setup(test_tokens_and_ids, s_setup),
        cmocka_unit_test_setup(test_sign_verify, s_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
