-- One-time codes with which a person sets a password: staff issue one for an
-- account without a password (imported volunteers) or to reset a forgotten
-- one; the person uses it once, within its lifetime, in a few tries. Only a
-- keyed hash of the code (bound to the account) is kept.
CREATE TABLE password_codes (
    account_id bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash  text COLLATE "C" NOT NULL,
    issued_by  bigint REFERENCES accounts (id),
    expires_at timestamptz NOT NULL,
    attempts   int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
