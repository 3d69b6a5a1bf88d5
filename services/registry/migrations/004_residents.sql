-- Residents (服务对象 / 居民): people the service serves, registered by
-- community workers with their consent. Address, phone and family contacts
-- are sealed (linli_pii_encrypt); the phone has a keyed hash beside it
-- (linli_pii_hash) for look-up. A resident who may log in has an account of
-- kind 'resident' (account_id).

CREATE TABLE residents (
    id                  bigserial PRIMARY KEY,
    account_id          bigint UNIQUE REFERENCES accounts (id),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    community           text NOT NULL REFERENCES areas (code) CHECK (length(community) = 12),
    address_enc         text,
    phone_enc           text,
    phone_hash          text,
    care_categories     text[] NOT NULL DEFAULT '{}' CHECK (care_categories <@ ARRAY[
                            'elderly_alone', 'child_left_behind', 'disabled', 'low_income',
                            'veteran_family', 'other']::text[]),
    -- Registration needs consent; a withdrawal (to come) deletes the record.
    consent             boolean NOT NULL,
    family_contacts_enc text,             -- sealed JSON array of {name, relation, phone}
    birth_year          int CHECK (birth_year BETWEEN 1900 AND 2100),
    created_by          bigint REFERENCES accounts (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((phone_enc IS NULL) = (phone_hash IS NULL))
);
-- Listing by area prefix in id order; filtering by category; look-up by phone.
CREATE INDEX residents_community ON residents (community text_pattern_ops, id);
CREATE INDEX residents_categories ON residents USING gin (care_categories);
CREATE INDEX residents_phone ON residents (phone_hash) WHERE phone_hash IS NOT NULL;
