-- Cluster-wide limits, pauses and fair claiming (see the PostgreSQL migration for the design).
-- Times are unix epoch seconds. Claims hold the write lock, so they see each other's jobs.
CREATE TABLE {limits} (
    type                  TEXT    PRIMARY KEY,
    concurrency           INTEGER CHECK (concurrency >= 0),
    per_user              INTEGER CHECK (per_user >= 0),
    rate_count            INTEGER CHECK (rate_count >= 1),
    rate_seconds          REAL    CHECK (rate_seconds > 0),
    default_concurrency   INTEGER CHECK (default_concurrency >= 1),
    default_per_user      INTEGER CHECK (default_per_user >= 1),
    default_rate_count    INTEGER CHECK (default_rate_count >= 1),
    default_rate_seconds  REAL    CHECK (default_rate_seconds > 0),
    paused                INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    paused_until          REAL,
    pause_reason          TEXT,
    fair                  INTEGER NOT NULL DEFAULT 1 CHECK (fair IN (0, 1)),
    next_start_at         REAL,
    updated_at            REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    CHECK ((rate_count IS NULL) = (rate_seconds IS NULL)),
    CHECK ((default_rate_count IS NULL) = (default_rate_seconds IS NULL))
);

CREATE TABLE {queue_pauses} (
    queue      TEXT PRIMARY KEY,
    reason     TEXT,
    paused_at  REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);

CREATE TABLE {turns} (
    type        TEXT    NOT NULL,
    user_key    TEXT    NOT NULL,
    next_turn   INTEGER NOT NULL,
    updated_at  REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    PRIMARY KEY (type, user_key)
);

-- SQLite cannot drop a column default, so turn stays nullable: jobrunner's inserts set it, and
-- the trigger below sets it for a plain INSERT that names none.
ALTER TABLE {job} ADD COLUMN turn INTEGER;
UPDATE {job} SET turn = 0;

CREATE INDEX {fair_claim_index} ON {job} (type, priority DESC, turn, run_at, id)
    WHERE status = 'pending';
DROP INDEX {claim_index_in_schema};

CREATE TRIGGER {turn_trigger} AFTER INSERT ON {job} FOR EACH ROW WHEN NEW.turn IS NULL
BEGIN
    INSERT INTO {turns} (type, user_key, next_turn)
    VALUES (
        NEW.type,
        coalesce(NEW.user_id, ''),
        coalesce((SELECT turn FROM {job} WHERE status = 'pending' AND type = NEW.type
                  AND id <> NEW.id ORDER BY priority DESC, turn LIMIT 1), 0) + 1)
    ON CONFLICT (type, user_key) DO UPDATE
    SET next_turn = max(next_turn, excluded.next_turn - 1) + 1,
        updated_at = (julianday('now') - 2440587.5) * 86400.0;
    UPDATE {job}
    SET turn = CASE WHEN EXISTS (SELECT 1 FROM {limits} WHERE type = NEW.type AND NOT fair)
                    THEN 0
                    ELSE (SELECT next_turn - 1 FROM {turns}
                          WHERE type = NEW.type AND user_key = coalesce(NEW.user_id, ''))
               END
    WHERE id = NEW.id;
END;

-- A change to limits or pauses wakes idle workers in other processes (the claims' own
-- bookkeeping, next_start_at, does not).
CREATE TRIGGER {limits_notify_trigger} AFTER UPDATE ON {limits} FOR EACH ROW
    WHEN OLD.concurrency IS NOT NEW.concurrency OR OLD.per_user IS NOT NEW.per_user
      OR OLD.rate_count IS NOT NEW.rate_count OR OLD.rate_seconds IS NOT NEW.rate_seconds
      OR OLD.default_concurrency IS NOT NEW.default_concurrency
      OR OLD.default_per_user IS NOT NEW.default_per_user
      OR OLD.default_rate_count IS NOT NEW.default_rate_count
      OR OLD.default_rate_seconds IS NOT NEW.default_rate_seconds
      OR OLD.paused IS NOT NEW.paused OR OLD.paused_until IS NOT NEW.paused_until
      OR OLD.fair IS NOT NEW.fair
BEGIN
    UPDATE {wakeup} SET jobs = jobs + 1;
END;
CREATE TRIGGER {limits_change_trigger} AFTER DELETE ON {limits} FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET jobs = jobs + 1;
END;
CREATE TRIGGER {queue_pauses_notify_trigger} AFTER DELETE ON {queue_pauses} FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET jobs = jobs + 1;
END;
