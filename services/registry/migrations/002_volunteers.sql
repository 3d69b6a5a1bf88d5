-- Volunteers (志愿者): an account of kind 'volunteer' plus its real-name record.
-- ID numbers and phones are sealed (linli_pii_encrypt) with a keyed hash
-- beside them (linli_pii_hash): de-duplication city-wide and look-up without
-- ever storing the number in the clear.

-- Accounts created by import have no password until one is set.
ALTER TABLE accounts ALTER COLUMN password_hash DROP NOT NULL;

CREATE TABLE volunteers (
    id               bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    community        text NOT NULL REFERENCES areas (code),
    id_number_enc    text NOT NULL,
    id_number_hash   text NOT NULL UNIQUE,
    gender           text CHECK (gender IN ('male', 'female')),
    birth_year       int CHECK (birth_year BETWEEN 1900 AND 2100),
    political_status text CHECK (political_status IN
                         ('party_member', 'probationary_member', 'league_member', 'masses', 'other')),
    skills           text[] NOT NULL DEFAULT '{}',
    free_slots       text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'verified', 'suspended', 'left')),
    source           text NOT NULL DEFAULT 'self' CHECK (source IN ('self', 'staff', 'import')),
    verified_by      bigint REFERENCES accounts (id),
    verified_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Listing by area prefix in id order (keyset pagination), filters by status and skill.
CREATE INDEX volunteers_community ON volunteers (community text_pattern_ops, id);
CREATE INDEX volunteers_status ON volunteers (status, id);
CREATE INDEX volunteers_skills ON volunteers USING gin (skills);
CREATE INDEX accounts_name ON accounts (name text_pattern_ops);
