-- Organisations and teams (志愿服务组织 / 队伍) and their members. A team
-- belongs to an organisation and serves an area inside the organisation's.
-- The leader is a volunteer; it holds the grant (org_leader, 'org:<id>')
-- while it leads (written in the same transaction as the leader change).

CREATE TABLE organizations (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    area        text NOT NULL REFERENCES areas (code),
    type        text NOT NULL CHECK (type IN ('organization', 'team')),
    parent_id   bigint REFERENCES organizations (id),
    leader_id   bigint REFERENCES volunteers (id),
    description text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'dissolved')),
    created_by  bigint REFERENCES accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- A team has an organisation; an organisation has no parent.
    CHECK ((type = 'team') = (parent_id IS NOT NULL))
);
-- Listing a subtree (area prefix) in id order; the teams of an organisation.
CREATE INDEX organizations_area ON organizations (area text_pattern_ops, id);
CREATE INDEX organizations_parent ON organizations (parent_id, id) WHERE parent_id IS NOT NULL;

CREATE TABLE org_members (
    org_id     bigint NOT NULL REFERENCES organizations (id),
    account_id bigint NOT NULL REFERENCES volunteers (id) ON DELETE CASCADE,
    role       text NOT NULL DEFAULT 'member' CHECK (role IN ('leader', 'member')),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, account_id)
);
-- A volunteer's organisations.
CREATE INDEX org_members_account ON org_members (account_id, org_id);
-- One leader per organisation at most.
CREATE UNIQUE INDEX org_members_one_leader ON org_members (org_id) WHERE role = 'leader';
