-- Worker heartbeats: which workers are alive, where, and how busy.
CREATE TABLE {workers} (
    id          TEXT    PRIMARY KEY,
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    version     TEXT    NOT NULL,
    job_types   TEXT    NOT NULL DEFAULT '[]',  -- a JSON array of strings
    concurrency INTEGER NOT NULL,
    running     INTEGER NOT NULL DEFAULT 0,
    processed   INTEGER NOT NULL DEFAULT 0,
    started_at  REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    last_seen   REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
