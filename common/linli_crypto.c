//  linli_crypto: libsodium behind the few calls the services need.
#include "linli_crypto.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_KEYBYTES 32
#define S_MAC_B64_LEN 43 //  base64url of 32 bytes, no padding
#define S_SEALED_PREFIX "v1:"
#define S_SEALED_AD "linli.pii.v1" //  binds the format version into the tag
#define S_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

//  crypto_kdf contexts are exactly 8 characters; subkey ids pick the use.
static const char s_kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "LinliKey";
enum { S_SUBKEY_PII_ENC = 1, S_SUBKEY_PII_HASH = 2, S_SUBKEY_SIGN = 3 };

static bool s_ready = false;                 //  keys are loaded
static unsigned char s_key_enc[S_KEYBYTES];  //  XChaCha20-Poly1305 key of PII at rest
static unsigned char s_key_hash[S_KEYBYTES]; //  HMAC key of look-up hashes
static unsigned char s_key_sign[S_KEYBYTES]; //  HMAC key of signed codes

static unsigned long long s_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE; //  argon2id passes
static size_t s_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;             //  argon2id bytes
static pthread_mutex_t s_dummy_lock = PTHREAD_MUTEX_INITIALIZER;           //  guards s_dummy
static char s_dummy[crypto_pwhash_STRBYTES];                               //  for unknown accounts

//  sodium_init is idempotent and thread-safe; key-less calls use this too.
static bool
s_sodium(void)
{
    return sodium_init() >= 0;
}

//  Copy in without surrounding white space into buf; its length, or -1 if too long.
static int
s_trim(const char *in, char *buf, size_t cap)
{
    while (*in && isspace((unsigned char)*in))
        in++;
    size_t len = strlen(in);
    while (len > 0 && isspace((unsigned char)in[len - 1]))
        len--;
    if (len >= cap)
        return -1;
    memcpy(buf, in, len);
    buf[len] = '\0';
    return (int)len;
}

//  Decode a 32-byte key from 64 hex characters or any base64 variant. 0 or -1.
static int
s_decode_key(const char *text, size_t len, unsigned char key[S_KEYBYTES])
{
    unsigned char bin[64]; //  larger than the key, so a longer encoding is caught
    size_t binlen = 0;
    const char *end = NULL;
    if (len == 2 * S_KEYBYTES &&
        sodium_hex2bin(key, S_KEYBYTES, text, len, NULL, &binlen, &end) == 0 &&
        binlen == S_KEYBYTES && end == text + len)
        return 0;
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        if (sodium_base642bin(bin, sizeof bin, text, len, NULL, &binlen, &end, variants[i]) == 0 &&
            end == text + len && binlen == S_KEYBYTES) {
            memcpy(key, bin, S_KEYBYTES);
            sodium_memzero(bin, sizeof bin);
            return 0;
        }
    }
    sodium_memzero(bin, sizeof bin);
    return -1;
}

int
linli_crypto_init(const char *pii_key, char *err, size_t errlen)
{
    char dummy_err[8];
    if (!err || errlen == 0) {
        err = dummy_err;
        errlen = sizeof dummy_err;
    }
    err[0] = '\0';
    //  A failed init leaves no keys: nothing runs on a key nobody meant.
    linli_crypto_clear();
    if (!s_sodium()) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    if (!pii_key || !*pii_key) {
        snprintf(err, errlen,
                 "LINLI_PII_KEY is required: 32 random bytes as 64 hex characters or base64 "
                 "(e.g. openssl rand -hex 32)");
        return -1;
    }
    char text[128];
    int len = s_trim(pii_key, text, sizeof text);
    unsigned char master[S_KEYBYTES];
    if (len < 0 || s_decode_key(text, (size_t)len, master)) {
        sodium_memzero(master, sizeof master);
        snprintf(err, errlen,
                 "LINLI_PII_KEY must be 32 random bytes as 64 hex characters or base64 "
                 "(e.g. openssl rand -hex 32); got %zu characters that are neither",
                 len < 0 ? strlen(pii_key) : (size_t)len);
        sodium_memzero(text, sizeof text);
        return -1;
    }
    sodium_memzero(text, sizeof text);
    //  A key of one repeated byte is a placeholder someone forgot to replace.
    bool uniform = true;
    for (int i = 1; i < S_KEYBYTES; i++)
        if (master[i] != master[0])
            uniform = false;
    if (uniform) {
        sodium_memzero(master, sizeof master);
        snprintf(err, errlen, "LINLI_PII_KEY is not random (every byte is the same)");
        return -1;
    }
    crypto_kdf_derive_from_key(s_key_enc, sizeof s_key_enc, S_SUBKEY_PII_ENC, s_kdf_context,
                               master);
    crypto_kdf_derive_from_key(s_key_hash, sizeof s_key_hash, S_SUBKEY_PII_HASH, s_kdf_context,
                               master);
    crypto_kdf_derive_from_key(s_key_sign, sizeof s_key_sign, S_SUBKEY_SIGN, s_kdf_context, master);
    sodium_memzero(master, sizeof master);
    s_ready = true;
    return 0;
}

void
linli_crypto_clear(void)
{
    s_ready = false;
    sodium_memzero(s_key_enc, sizeof s_key_enc);
    sodium_memzero(s_key_hash, sizeof s_key_hash);
    sodium_memzero(s_key_sign, sizeof s_key_sign);
}

//  ---- personal data at rest

//  Nonces come from a per-thread pool of random bytes refilled 4 KiB at a
//  time: one getrandom() per ~170 seals instead of one each (a bulk import
//  seals two fields a row). A forked child drops the pool it inherited, so
//  parent and child never use the same nonce.
static _Thread_local unsigned char s_pool[4096];
static _Thread_local size_t s_pool_used = sizeof s_pool;
static pthread_once_t s_pool_once = PTHREAD_ONCE_INIT;

static void
s_pool_child(void)
{
    sodium_memzero(s_pool, sizeof s_pool);
    s_pool_used = sizeof s_pool;
}

static void
s_pool_register(void)
{
    pthread_atfork(NULL, NULL, s_pool_child);
}

static void
s_random_pooled(unsigned char *out, size_t n)
{
    pthread_once(&s_pool_once, s_pool_register);
    if (n > sizeof s_pool) {
        randombytes_buf(out, n);
        return;
    }
    if (sizeof s_pool - s_pool_used < n) {
        randombytes_buf(s_pool, sizeof s_pool);
        s_pool_used = 0;
    }
    memcpy(out, s_pool + s_pool_used, n);
    s_pool_used += n;
}

char *
linli_pii_encrypt(const char *plain)
{
    if (!s_ready || !plain)
        return NULL;
    size_t len = strlen(plain);
    const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t abytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if (len > SIZE_MAX / 2 - npub - abytes)
        return NULL;
    size_t binlen = npub + len + abytes;
    unsigned char *bin = malloc(binlen);
    if (!bin)
        return NULL;
    s_random_pooled(bin, npub);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(bin + npub, &clen, (const unsigned char *)plain, len,
                                               (const unsigned char *)S_SEALED_AD,
                                               strlen(S_SEALED_AD), NULL, bin, s_key_enc);
    size_t b64cap = sodium_base64_ENCODED_LEN(binlen, S_B64);
    size_t prefix = strlen(S_SEALED_PREFIX);
    char *out = malloc(prefix + b64cap);
    if (out) {
        memcpy(out, S_SEALED_PREFIX, prefix);
        sodium_bin2base64(out + prefix, b64cap, bin, binlen, S_B64);
    }
    free(bin);
    return out;
}

char *
linli_pii_decrypt(const char *sealed)
{
    const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t abytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    size_t prefix = strlen(S_SEALED_PREFIX);
    if (!s_ready || !sealed || strncmp(sealed, S_SEALED_PREFIX, prefix) != 0)
        return NULL;
    const char *b64 = sealed + prefix;
    size_t b64len = strlen(b64);
    size_t bincap = b64len / 4 * 3 + 3;
    if (bincap < npub + abytes)
        return NULL;
    unsigned char *bin = malloc(bincap);
    if (!bin)
        return NULL;
    size_t binlen = 0;
    const char *end = NULL;
    char *plain = NULL;
    //  Strict decoding: the whole string, canonical trailing bits.
    if (sodium_base642bin(bin, bincap, b64, b64len, NULL, &binlen, &end, S_B64) == 0 &&
        end == b64 + b64len && binlen >= npub + abytes) {
        size_t clen = binlen - npub;
        plain = malloc(clen - abytes + 1);
        unsigned long long plen = 0;
        if (plain &&
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                (unsigned char *)plain, &plen, NULL, bin + npub, clen,
                (const unsigned char *)S_SEALED_AD, strlen(S_SEALED_AD), bin, s_key_enc) == 0) {
            plain[plen] = '\0';
        } else {
            free(plain);
            plain = NULL;
        }
    }
    free(bin);
    return plain;
}

void
linli_pii_free(char **plain_p)
{
    if (!plain_p || !*plain_p)
        return;
    sodium_memzero(*plain_p, strlen(*plain_p));
    free(*plain_p);
    *plain_p = NULL;
}

//  Canonical phone: digits only, mainland country code (+86, 0086, or 86
//  before 11 digits) dropped; another "+" country code is kept with its '+'
//  so a foreign number never equals a mainland one. Writes at most
//  strlen(in) + 1 bytes into out.
static void
s_phone_digits(const char *in, char *out)
{
    const char *p = in;
    while (*p == ' ' || *p == '\t')
        p++;
    bool plus = *p == '+';
    size_t n = 0;
    if (plus)
        out[n++] = '+';
    for (; *p; p++)
        if (*p >= '0' && *p <= '9')
            out[n++] = *p;
    out[n] = '\0';
    size_t drop = 0;
    if (plus && strncmp(out, "+86", 3) == 0)
        drop = 3;
    else if (!plus && n == 15 && strncmp(out, "0086", 4) == 0)
        drop = 4;
    else if (!plus && n == 13 && strncmp(out, "86", 2) == 0)
        drop = 2;
    if (drop)
        memmove(out, out + drop, n - drop + 1);
}

//  ID number without white space, x upper-cased.
static void
s_id_canonical(const char *in, char *out)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (isspace((unsigned char)*p))
            continue;
        out[n++] = *p == 'x' ? 'X' : *p;
    }
    out[n] = '\0';
}

int
linli_pii_hash(const char *kind, const char *plain, char out[LINLI_HASH_HEX_CAP])
{
    out[0] = '\0';
    if (!s_ready || !kind || !plain)
        return -1;
    size_t len = strlen(plain);
    char *norm = malloc(len + 1);
    if (!norm)
        return -1;
    if (strcmp(kind, "phone") == 0)
        s_phone_digits(plain, norm);
    else if (strcmp(kind, "id_number") == 0)
        s_id_canonical(plain, norm);
    else
        memcpy(norm, plain, len + 1);
    //  kind and its NUL first: no (kind, value) pair can run into another.
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, s_key_hash, sizeof s_key_hash);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)kind, strlen(kind) + 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)norm, strlen(norm));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, LINLI_HASH_HEX_CAP, mac, sizeof mac);
    sodium_memzero(norm, len + 1);
    sodium_memzero(&st, sizeof st);
    free(norm);
    return 0;
}

//  ---- phone and ID numbers

int
linli_phone_normalize(const char *in, char *out, size_t cap)
{
    if (out && cap > 0)
        out[0] = '\0';
    if (!in || !out || cap < LINLI_PHONE_CAP)
        return -1;
    //  Only digits, blanks, dashes and a leading "+86" make a mainland number.
    const char *p = in;
    while (*p == ' ')
        p++;
    if (*p == '+' && strncmp(p, "+86", 3) != 0)
        return -1;
    if (*p == '+')
        p++;
    size_t ndigits = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++ndigits > 15)
                return -1;
        } else if (*p != ' ' && *p != '-') {
            return -1;
        }
    }
    char digits[18]; //  '+', at most 15 digits, NUL
    s_phone_digits(in, digits);
    if (strlen(digits) != 11 || digits[0] != '1' || digits[1] < '3' || digits[1] > '9')
        return -1;
    memcpy(out, digits, LINLI_PHONE_CAP);
    return 0;
}

//  The digits of a plain number (digits, blanks, dashes, a leading '+'), at
//  most cap - 1 of them; their count, or -1 when it is not such a number.
static int
s_plain_number(const char *in, char *digits, size_t cap)
{
    size_t n = 0;
    if (!in)
        return -1;
    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= cap)
                return -1;
            digits[n++] = *p;
        } else if (*p != ' ' && *p != '-' && !(*p == '+' && p == in)) {
            return -1;
        }
    }
    digits[n] = '\0';
    return (int)n;
}

void
linli_mask_phone(const char *in, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    char mobile[LINLI_PHONE_CAP];
    if (in && linli_phone_normalize(in, mobile, sizeof mobile) == 0) {
        snprintf(out, cap, "%.3s****%s", mobile, mobile + 7);
        return;
    }
    //  Other numbers (landlines, foreign): only the last four digits show.
    char digits[24];
    int n = s_plain_number(in, digits, sizeof digits);
    if (n >= 8)
        snprintf(out, cap, "****%s", digits + n - 4);
    else
        snprintf(out, cap, "****");
}

void
linli_mask_id_number(const char *in, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    size_t len = in ? strnlen(in, 19) : 0;
    size_t ndigits = 0;
    while (ndigits < len && in[ndigits] >= '0' && in[ndigits] <= '9')
        ndigits++;
    if (len == 18 && (ndigits == 18 || (ndigits == 17 && (in[17] == 'X' || in[17] == 'x'))))
        snprintf(out, cap, "%.6s********%.3s%c", in, in + 14, in[17] == 'x' ? 'X' : in[17]);
    else if (len == 15 && ndigits == 15)
        snprintf(out, cap, "%.6s******%.3s", in, in + 12);
    else
        snprintf(out, cap, "****");
}

//  Province-level codes of GB/T 2260, and 83 for Taiwan residents' permits
//  (81 and 82 serve Hong Kong and Macao).
static bool
s_province(int code)
{
    static const int codes[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34,
                                35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
                                53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code)
            return true;
    return false;
}

static int
s_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int
s_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

static int
s_reason(char *reason, size_t cap, const char *code)
{
    if (reason && cap > 0)
        snprintf(reason, cap, "%s", code);
    return -1;
}

int
linli_id_number_check(const char *id, char *reason, size_t cap)
{
    if (reason && cap > 0)
        reason[0] = '\0';
    if (!id || strnlen(id, 19) != 18)
        return s_reason(reason, cap, "bad_length");
    for (int i = 0; i < 17; i++)
        if (id[i] < '0' || id[i] > '9')
            return s_reason(reason, cap, "bad_char");
    char last = id[17] == 'x' ? 'X' : id[17];
    if ((last < '0' || last > '9') && last != 'X')
        return s_reason(reason, cap, "bad_char");
    if (!s_province(s_digits(id, 2)))
        return s_reason(reason, cap, "bad_region");

    int year = s_digits(id + 6, 4), month = s_digits(id + 10, 2), day = s_digits(id + 12, 2);
    if (year < 1900 || month < 1 || month > 12 || day < 1 || day > s_days_in_month(year, month))
        return s_reason(reason, cap, "bad_birth_date");
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm))
        return s_reason(reason, cap, "bad_birth_date");
    long today = (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    if ((long)year * 10000 + month * 100 + day > today)
        return s_reason(reason, cap, "bad_birth_date");

    //  ISO 7064 MOD 11-2: weights 2^(17-i) mod 11.
    static const int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (id[i] - '0') * weights[i];
    if (check[sum % 11] != last)
        return s_reason(reason, cap, "bad_check_digit");
    return 0;
}

int
linli_id_number_birth(const char *id, int *year, int *month, int *day)
{
    if (linli_id_number_check(id, NULL, 0))
        return -1;
    if (year)
        *year = s_digits(id + 6, 4);
    if (month)
        *month = s_digits(id + 10, 2);
    if (day)
        *day = s_digits(id + 12, 2);
    return 0;
}

//  ---- passwords

void
linli_password_set_limits(unsigned long long opslimit, size_t memlimit)
{
    s_opslimit = opslimit < crypto_pwhash_OPSLIMIT_MIN ? crypto_pwhash_OPSLIMIT_MIN : opslimit;
    s_memlimit = memlimit < crypto_pwhash_MEMLIMIT_MIN ? crypto_pwhash_MEMLIMIT_MIN : memlimit;
}

int
linli_password_hash(const char *pw, char out[crypto_pwhash_STRBYTES])
{
    out[0] = '\0';
    if (!pw || !s_sodium())
        return -1;
    //  Refused before hashing: argon2 on megabytes of input is a cheap DoS.
    size_t len = strnlen(pw, LINLI_PASSWORD_MAX + 1);
    if (len == 0 || len > LINLI_PASSWORD_MAX)
        return -1;
    int rc =
        crypto_pwhash_str_alg(out, pw, len, s_opslimit, s_memlimit, crypto_pwhash_ALG_ARGON2ID13);
    if (rc != 0)
        out[0] = '\0'; //  out of memory
    return rc == 0 ? 0 : -1;
}

const char *
linli_password_dummy(void)
{
    //  Made once (again after the limits change) from a password nobody knows.
    pthread_mutex_lock(&s_dummy_lock);
    if (!*s_dummy || crypto_pwhash_str_needs_rehash(s_dummy, s_opslimit, s_memlimit) != 0) {
        char random_pw[LINLI_RANDOM_ID_CAP];
        if (linli_random_id(random_pw, sizeof random_pw) != 0 ||
            crypto_pwhash_str_alg(s_dummy, random_pw, strlen(random_pw), s_opslimit, s_memlimit,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0)
            s_dummy[0] = '\0';
    }
    pthread_mutex_unlock(&s_dummy_lock);
    return s_dummy;
}

bool
linli_password_verify(const char *hash, const char *pw)
{
    if (!pw || !s_sodium())
        return false;
    size_t len = strnlen(pw, LINLI_PASSWORD_MAX + 1);
    if (len == 0 || len > LINLI_PASSWORD_MAX)
        return false;
    if (!hash) {
        //  The answer is false whatever this says; only the work matters.
        int rc = crypto_pwhash_str_verify(linli_password_dummy(), pw, len);
        (void)rc;
        return false;
    }
    if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

bool
linli_password_needs_rehash(const char *hash)
{
    if (!hash || strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return true;
    return crypto_pwhash_str_needs_rehash(hash, s_opslimit, s_memlimit) != 0;
}

//  ---- session tokens, signed codes, ids

int
linli_token_new(char *out, size_t cap)
{
    if (!out || cap < LINLI_TOKEN_CAP || !s_sodium()) {
        if (out && cap > 0)
            out[0] = '\0';
        return -1;
    }
    unsigned char bin[32];
    randombytes_buf(bin, sizeof bin);
    sodium_bin2base64(out, cap, bin, sizeof bin, S_B64);
    sodium_memzero(bin, sizeof bin);
    return 0;
}

void
linli_token_hash(const char *token, char out[LINLI_HASH_HEX_CAP])
{
    unsigned char h[32];
    const char *t = token ? token : "";
    (void)s_sodium();
    crypto_generichash(h, sizeof h, (const unsigned char *)t, strlen(t), NULL, 0);
    sodium_bin2hex(out, LINLI_HASH_HEX_CAP, h, sizeof h);
}

//  HMAC-SHA256 of payload[0..len) with the signing subkey, in base64url (43 + NUL).
static void
s_mac_b64(const char *payload, size_t len, char out[S_MAC_B64_LEN + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)payload, len, s_key_sign);
    sodium_bin2base64(out, S_MAC_B64_LEN + 1, mac, sizeof mac, S_B64);
}

int
linli_sign(const char *payload, char *out, size_t cap)
{
    if (out && cap > 0)
        out[0] = '\0';
    if (!s_ready || !payload || !out)
        return -1;
    size_t len = strlen(payload);
    if (len > SIZE_MAX - LINLI_SIGN_OVERHEAD - 1 || cap < len + LINLI_SIGN_OVERHEAD + 1)
        return -1;
    char mac[S_MAC_B64_LEN + 1];
    s_mac_b64(payload, len, mac);
    memcpy(out, payload, len);
    out[len] = '.';
    memcpy(out + len + 1, mac, sizeof mac);
    return 0;
}

int
linli_verify(const char *signed_token, char *payload_out, size_t cap)
{
    if (payload_out && cap > 0)
        payload_out[0] = '\0';
    if (!s_ready || !signed_token || !payload_out)
        return -1;
    //  The MAC never contains '.', so the last one separates it.
    const char *dot = strrchr(signed_token, '.');
    if (!dot || strlen(dot + 1) != S_MAC_B64_LEN)
        return -1;
    size_t len = (size_t)(dot - signed_token);
    if (len >= cap)
        return -1;
    unsigned char given[crypto_auth_hmacsha256_BYTES];
    size_t binlen = 0;
    const char *end = NULL;
    if (sodium_base642bin(given, sizeof given, dot + 1, S_MAC_B64_LEN, NULL, &binlen, &end,
                          S_B64) != 0 ||
        binlen != sizeof given || *end != '\0')
        return -1;
    unsigned char want[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(want, (const unsigned char *)signed_token, len, s_key_sign);
    if (sodium_memcmp(given, want, sizeof want) != 0)
        return -1;
    memcpy(payload_out, signed_token, len);
    payload_out[len] = '\0';
    return 0;
}

int
linli_random_id(char *out, size_t cap)
{
    if (!out || cap < LINLI_RANDOM_ID_CAP || !s_sodium()) {
        if (out && cap > 0)
            out[0] = '\0';
        return -1;
    }
    unsigned char bin[16];
    randombytes_buf(bin, sizeof bin);
    sodium_bin2hex(out, cap, bin, sizeof bin);
    return 0;
}
