//  linli_crypto: personal data at rest (PIPL), passwords, session tokens,
//  signed codes, and the checks and masks for phone and ID numbers.
//
//  One secret, LINLI_PII_KEY (32 random bytes, 64 hex characters or base64),
//  feeds crypto_kdf with separate subkeys for encryption, look-up hashes and
//  signatures, so no two uses ever share a key. linli_crypto_init runs once at
//  start-up before any thread uses this module; after it the keys are only
//  read, so every function here is thread-safe. Nothing here logs a phone,
//  ID number, password, token or key.
#ifndef LINLI_CRYPTO_H
#define LINLI_CRYPTO_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#define LINLI_HASH_HEX_CAP 65  //  64 hex characters of a 32-byte hash + NUL
#define LINLI_TOKEN_CAP 44     //  43 characters of base64url(32 bytes) + NUL
#define LINLI_RANDOM_ID_CAP 33 //  32 hex characters of 128 bits + NUL
#define LINLI_SIGN_OVERHEAD 44 //  "." + 43 characters of base64url(HMAC-SHA256)
#define LINLI_PHONE_CAP 12     //  11 digits + NUL
#define LINLI_MASK_CAP 32      //  room for any mask written here
#define LINLI_PASSWORD_MAX 256 //  longer passwords are refused before hashing
#define LINLI_ID_REASON_CAP 24 //  room for any linli_id_number_check reason

//  Load the master key (64 hex characters or base64 of 32 bytes; surrounding
//  white space is ignored) and derive the subkeys. Calls sodium_init. 0, or -1
//  with a message in err that never contains the key; after a failure no key
//  is loaded. May be called again to switch keys (tests), not while other
//  threads use the module.
int linli_crypto_init(const char *pii_key, char *err, size_t errlen);

//  Wipe the keys; the keyed functions then fail until the next init.
void linli_crypto_clear(void);

//  ---- personal data at rest

//  Encrypt a string (XChaCha20-Poly1305, random nonce) into a printable
//  "v1:" + base64url(nonce || ciphertext). NULL when not initialised, plain is
//  NULL, or out of memory. Caller owns (free).
char *linli_pii_encrypt(const char *plain);

//  Decrypt what linli_pii_encrypt made. NULL on a wrong key, tampering,
//  garbage or NULL. Caller owns; free it with linli_pii_free, which wipes it.
char *linli_pii_decrypt(const char *sealed);

//  Wipe and free a string holding personal data; accepts NULL and nulls the
//  caller's pointer.
void linli_pii_free(char **plain_p);

//  Keyed look-up hash (HMAC-SHA256, hex) of plain, separated by kind so equal
//  strings of different kinds differ. Normalises first: kind "phone" keeps
//  digits only and drops a leading +86 / 0086; kind "id_number" drops white
//  space and upper-cases x. Stable for a given key: de-duplication and login
//  look-up. 0, or -1 with out = "" when not initialised or an argument is NULL.
int linli_pii_hash(const char *kind, const char *plain, char out[LINLI_HASH_HEX_CAP]);

//  ---- phone and ID numbers

//  Validate a mainland mobile number (11 digits, 1[3-9]...) and write its
//  canonical digits; spaces and dashes and a leading +86 / 0086 are accepted.
//  0, or -1 with out = "" (when cap > 0). cap >= LINLI_PHONE_CAP.
int linli_phone_normalize(const char *in, char *out, size_t cap);

//  Mask a phone for display: a mobile number as "138****5678", any other
//  digit string of 8 or more as "****" + its last 4, anything else (short,
//  empty, NULL, non-ASCII) as "****". Never writes past cap (LINLI_MASK_CAP).
void linli_mask_phone(const char *in, char *out, size_t cap);

//  Mask an ID number for display: 18 characters as "420102********123X",
//  the old 15-digit form as "420102******123", anything else as "****".
//  Never writes past cap (LINLI_MASK_CAP).
void linli_mask_id_number(const char *in, char *out, size_t cap);

//  Check a resident ID number (GB 11643-1999): 0, or -1 with the first
//  failure's code in reason: "bad_length", "bad_char", "bad_region" (first
//  two digits not a province code), "bad_birth_date" (not a date, before
//  1900 or in the future), "bad_check_digit" (ISO 7064 MOD 11-2). reason may
//  be NULL; cap >= LINLI_ID_REASON_CAP.
int linli_id_number_check(const char *id, char *reason, size_t cap);

//  Birth date of a valid ID number. 0, or -1 when linli_id_number_check fails.
int linli_id_number_birth(const char *id, int *year, int *month, int *day);

//  ---- passwords (argon2id)

//  Cost of new hashes (clamped to crypto_pwhash_*_MIN); defaults INTERACTIVE.
//  Set at start-up; tests lower it to the minimum.
void linli_password_set_limits(unsigned long long opslimit, size_t memlimit);

//  Hash a password (1..LINLI_PASSWORD_MAX bytes) into out. 0, or -1 when it
//  is empty, too long, or memory runs out.
int linli_password_hash(const char *pw, char out[crypto_pwhash_STRBYTES]);

//  True when pw matches hash. hash NULL (unknown account) does the same work
//  against a dummy hash and returns false, so a login cannot tell unknown
//  accounts from wrong passwords by timing.
bool linli_password_verify(const char *hash, const char *pw);

//  A hash of a random password nobody knows, made with the current limits
//  (borrowed, lives as long as the process): verify against it when the
//  account does not exist. Not for use while the limits change.
const char *linli_password_dummy(void);

//  True when hash was made with other limits than the current ones: rehash
//  after a successful login.
bool linli_password_needs_rehash(const char *hash);

//  ---- session tokens, signed codes, ids

//  A new token: 32 random bytes, base64url without padding (43 characters).
//  0, or -1 with out = "" when cap < LINLI_TOKEN_CAP.
int linli_token_new(char *out, size_t cap);

//  Hash of a token (BLAKE2b-256, hex): what Redis stores instead of the token.
void linli_token_hash(const char *token, char out[LINLI_HASH_HEX_CAP]);

//  Sign payload (HMAC-SHA256 with its own subkey): out = payload "."
//  base64url(mac). The payload is readable, not secret: no personal data in
//  it; put an expiry in it if it should expire. 0, or -1 when not
//  initialised or cap < strlen(payload) + LINLI_SIGN_OVERHEAD + 1.
int linli_sign(const char *payload, char *out, size_t cap);

//  Check a signed token and copy its payload out. 0, or -1 (out = "") when
//  the signature is wrong, the token malformed, or cap too small.
int linli_verify(const char *signed_token, char *payload_out, size_t cap);

//  A 128-bit random id in hex (event ids and the like). 0, or -1 with
//  out = "" when cap < LINLI_RANDOM_ID_CAP.
int linli_random_id(char *out, size_t cap);

#endif
