-- Keyed hashes and event ids are opaque bytes: their indexes compare them
-- with memcmp (the "C" collation) instead of the database's locale rules
-- (strcoll). Equality is unchanged; index builds and inserts get cheaper
-- (a city's import builds or updates these indexes millions of times).
-- Same type, other collation: PostgreSQL rebuilds the indexes, not the tables
-- (seconds per table at a city's size, under an exclusive lock), so the
-- service's statement timeout does not apply to this migration.
SET LOCAL statement_timeout = 0;
ALTER TABLE accounts ALTER COLUMN phone_hash TYPE text COLLATE "C";
ALTER TABLE volunteers ALTER COLUMN id_number_hash TYPE text COLLATE "C";
ALTER TABLE residents ALTER COLUMN phone_hash TYPE text COLLATE "C";
ALTER TABLE outbox ALTER COLUMN event_id TYPE text COLLATE "C";
