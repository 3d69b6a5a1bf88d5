-- Registry: areas and accounts. Runs with search_path = registry.

CREATE TABLE areas (
    code     text PRIMARY KEY CHECK (code ~ '^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?$'),
    name     text NOT NULL,
    level    text NOT NULL CHECK (level IN ('province', 'city', 'district', 'street', 'community')),
    parent   text REFERENCES areas (code),
    lat      double precision,
    lng      double precision
);
CREATE INDEX areas_parent ON areas (parent, code);

-- One row per person who can log in. Phones are stored encrypted, with a
-- keyed hash beside them for the login look-up (DESIGN.md, flow 1).
CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('staff', 'volunteer', 'resident')),
    name          text NOT NULL,
    phone_enc     text NOT NULL,
    phone_hash    text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    area          text NOT NULL REFERENCES areas (code),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_by    bigint REFERENCES accounts (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_area ON accounts (area text_pattern_ops, id);

-- Roles over scopes: an area code prefix, or "org:<id>" later.
CREATE TABLE grants (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       text NOT NULL,
    scope      text NOT NULL,
    PRIMARY KEY (account_id, role, scope)
);

-- Transactional outbox (common/linli_outbox.h).
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    type       text NOT NULL,
    area       text NOT NULL DEFAULT '',
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Idempotency keys and first replies (common/linli_idem.h).
CREATE TABLE idempotency (
    scope        text NOT NULL,
    key          text NOT NULL,
    method       text NOT NULL,
    request_hash text NOT NULL,
    status       int,
    reply        bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
