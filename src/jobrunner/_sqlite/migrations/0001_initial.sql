-- The job table, its indexes, and the wake-up counters idle workers poll.
-- Times are unix epoch seconds (REAL) taken from the backend's clock; JSON values are TEXT.
-- Placeholders in braces are filled with quoted names derived from the configured table.
CREATE TABLE {job} (
    -- AUTOINCREMENT: ids are never reused after a delete, like PostgreSQL's identity.
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    type              TEXT    NOT NULL CHECK (type <> ''),
    queue             TEXT    NOT NULL DEFAULT 'default',
    user_id           TEXT,
    parent_id         INTEGER,  -- no foreign key, as on PostgreSQL: it would tax every write
    status            TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    -- Ranges as PostgreSQL's integer, so both engines refuse the same values.
    priority          INTEGER NOT NULL DEFAULT 0
                      CHECK (priority BETWEEN -2147483648 AND 2147483647),
    payload           TEXT    NOT NULL DEFAULT '{{}}',
    result            TEXT,
    error             TEXT,
    progress          REAL    CHECK (progress BETWEEN 0 AND 1),
    progress_message  TEXT,
    checkpoint        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts      INTEGER CHECK (max_attempts BETWEEN 1 AND 2147483647),
    run_at            REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    created_at        REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    started_at        REAL,
    finished_at       REAL,
    locked_by         TEXT,
    locked_until      REAL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1))
);

-- Claiming reads only pending rows, so finished rows never slow it down.
CREATE INDEX {claim_index} ON {job} (type, priority DESC, run_at, id) WHERE status = 'pending';
-- Rescuing reads only running rows by lease expiry; cross-process cancels read them too.
CREATE INDEX {lease_index} ON {job} (locked_until) WHERE status = 'running';
-- The app's "my jobs" query.
CREATE INDEX {user_index} ON {job} (user_id, status, created_at DESC) WHERE user_id IS NOT NULL;
-- Pruning and "recent failures" read finished rows by age.
CREATE INDEX {finished_index} ON {job} (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX {parent_index} ON {job} (parent_id) WHERE parent_id IS NOT NULL;

-- SQLite has no LISTEN/NOTIFY: writers bump these counters in their transaction, and idle
-- workers in other processes read them when `PRAGMA data_version` says something changed.
CREATE TABLE {wakeup} (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    jobs     INTEGER NOT NULL DEFAULT 0,  -- jobs may have become runnable
    cancels  INTEGER NOT NULL DEFAULT 0   -- a running job was asked to cancel
);
INSERT INTO {wakeup} (id) VALUES (1);
