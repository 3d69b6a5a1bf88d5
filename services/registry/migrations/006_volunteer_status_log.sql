-- Every status change of a volunteer, who made it and why: the record behind
-- a verification or a suspension (records must be true and traceable; fake
-- "service hours" start with accounts nobody verified). Never in events:
-- a reason is free text and may name people.
CREATE TABLE volunteer_status_log (
    id           bigserial PRIMARY KEY,
    volunteer_id bigint NOT NULL REFERENCES volunteers (id) ON DELETE CASCADE,
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    reason       text,
    actor        bigint REFERENCES accounts (id),
    changed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX volunteer_status_log_volunteer ON volunteer_status_log (volunteer_id, id);
