-- Idempotency keys, usage and budgets, schedules (see the PostgreSQL migration for the design).
ALTER TABLE {job} ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX {unique_key_index} ON {job} (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running');

ALTER TABLE {job} ADD COLUMN usage TEXT;  -- JSON

CREATE TABLE {usage} (
    user_id  TEXT NOT NULL,
    day      TEXT NOT NULL,  -- YYYY-MM-DD, UTC
    unit     TEXT NOT NULL,
    amount   REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, unit)
);

CREATE TABLE {budgets} (
    user_id     TEXT NOT NULL DEFAULT '',
    unit        TEXT NOT NULL CHECK (unit <> ''),
    period      TEXT NOT NULL CHECK (period IN ('daily', 'monthly')),
    amount      REAL NOT NULL CHECK (amount >= 0),
    types       TEXT,  -- a JSON array, or null: every type
    updated_at  REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    PRIMARY KEY (user_id, unit, period)
);

CREATE TABLE {schedules} (
    name          TEXT    PRIMARY KEY CHECK (name <> ''),
    type          TEXT    NOT NULL CHECK (type <> ''),
    payload       TEXT    NOT NULL DEFAULT '{{}}',
    queue         TEXT    NOT NULL DEFAULT 'default',
    priority      INTEGER NOT NULL DEFAULT 0,
    cron          TEXT,
    every         REAL    CHECK (every > 0),
    tz            TEXT    NOT NULL DEFAULT 'UTC',
    missed        TEXT    NOT NULL DEFAULT 'once' CHECK (missed IN ('once', 'skip')),
    paused        INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    origin        TEXT    NOT NULL DEFAULT 'cli',
    next_run_at   REAL,
    last_run_at   REAL,
    last_job_id   INTEGER,
    created_at    REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    updated_at    REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    CHECK ((cron IS NULL) <> (every IS NULL))
);

-- A budget raised or removed may free held jobs; a schedule added or changed may be due.
CREATE TRIGGER {budgets_notify_trigger} AFTER DELETE ON {budgets} FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET jobs = jobs + 1;
END;
CREATE TRIGGER {budgets_change_trigger} AFTER UPDATE ON {budgets} FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET jobs = jobs + 1;
END;
CREATE TRIGGER {budgets_insert_trigger} AFTER INSERT ON {budgets} FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET jobs = jobs + 1;  -- a user's own budget may replace a default of 0
END;
-- Schedules have their own counter: a change wakes the workers' schedulers, not their claims.
ALTER TABLE {wakeup} ADD COLUMN schedules INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER {schedules_notify_trigger} AFTER INSERT ON {schedules} FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET schedules = schedules + 1;
END;
CREATE TRIGGER {schedules_change_trigger} AFTER UPDATE OF cron, every, tz, paused ON {schedules}
    FOR EACH ROW
BEGIN
    UPDATE {wakeup} SET schedules = schedules + 1;
END;

-- Who is over a budget now (see the PostgreSQL migration).
CREATE VIEW {over_budget} AS
WITH period AS (
    SELECT date('now') AS today, date('now', 'start of month') AS month
), spent AS (
    SELECT u.user_id, u.unit,
           coalesce(sum(u.amount) FILTER (WHERE u.day = period.today), 0) AS daily,
           sum(u.amount) AS monthly
    FROM {usage} AS u, period
    WHERE u.day >= period.month
    GROUP BY u.user_id, u.unit
), applied AS (
    SELECT s.user_id, b.unit, b.period, b.amount, b.types, b.user_id = '' AS by_default,
           CASE b.period WHEN 'daily' THEN s.daily ELSE s.monthly END AS spent
    FROM spent AS s
    JOIN {budgets} AS b ON b.unit = s.unit AND (b.user_id = s.user_id OR (
        b.user_id = '' AND NOT EXISTS (
            SELECT 1 FROM {budgets} AS own
            WHERE own.user_id = s.user_id AND own.unit = b.unit AND own.period = b.period)))
)
SELECT user_id, unit, period, amount, types, by_default, spent FROM applied
WHERE spent >= amount
UNION ALL
SELECT b.user_id, b.unit, b.period, b.amount, b.types, 0, 0
FROM {budgets} AS b
WHERE b.user_id <> '' AND b.amount = 0
  AND NOT EXISTS (SELECT 1 FROM spent AS s WHERE s.user_id = b.user_id AND s.unit = b.unit);
