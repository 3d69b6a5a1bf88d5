-- Bulk import jobs (registry_import.c). A job is queued by the HTTP request
-- with its file, claimed by any registry process's runner (FOR UPDATE SKIP
-- LOCKED, then a session advisory lock on the job held while it runs: a
-- runner that dies loses the lock with its connection, and the next runner
-- takes the job again), and ends in one transaction that writes the
-- volunteers, their events, the row errors and the job's counts together.

CREATE TABLE import_jobs (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL DEFAULT 'volunteers' CHECK (kind IN ('volunteers', 'demo')),
    created_by     bigint REFERENCES accounts (id),
    grants         text NOT NULL DEFAULT '',  -- the caller's grants at submission: "role scope,…"
    dry_run        boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'done', 'failed')),
    phase          text CHECK (phase IN ('checking', 'staging', 'writing')),
    runner         text,                      -- host:pid of the process that last claimed it
    attempts       int NOT NULL DEFAULT 0,    -- claims so far; a job that keeps killing its runner fails
    error_code     text,
    error          text,
    error_line     bigint,
    total_rows     bigint NOT NULL DEFAULT 0,
    processed_rows bigint NOT NULL DEFAULT 0,
    imported       bigint NOT NULL DEFAULT 0,
    rejected       bigint NOT NULL DEFAULT 0,
    file_bytes     bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz
);
-- The runners' queue: unfinished jobs in order.
CREATE INDEX import_jobs_open ON import_jobs (id) WHERE status IN ('queued', 'running');

-- The uploaded file, kept apart so job rows stay small (progress updates
-- rewrite them), and deleted when the job ends. Stored as is: CSV is
-- written once and read once, compressing it costs more than it saves.
CREATE TABLE import_files (
    job_id  bigint PRIMARY KEY REFERENCES import_jobs (id) ON DELETE CASCADE,
    payload bytea NOT NULL
);
ALTER TABLE import_files ALTER COLUMN payload SET STORAGE EXTERNAL;

-- Refused rows: one per line. Messages name the field, never its value.
CREATE TABLE import_errors (
    job_id  bigint NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line    bigint NOT NULL,
    code    text NOT NULL,
    field   text NOT NULL DEFAULT '',
    message text NOT NULL,
    PRIMARY KEY (job_id, line)
);
