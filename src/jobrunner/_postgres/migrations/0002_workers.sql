-- Worker heartbeats: which workers are alive, where, and how busy.
CREATE TABLE {workers} (
    id          text        PRIMARY KEY,
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    version     text        NOT NULL,
    job_types   text[]      NOT NULL DEFAULT '{{}}',
    concurrency integer     NOT NULL,
    running     integer     NOT NULL DEFAULT 0,
    processed   bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
